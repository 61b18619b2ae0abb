"""The SDK and the CLI against a real switch process (the `switch` fixture of tests/conftest.py)."""

import asyncio
import json

import pytest
from support.ports import free_port
from support.switch_process import SwitchProcess

from payswitch.client import (
    AsyncClient, AsyncPool, Client, Forbidden, InsufficientFunds, SwitchError, TransferResult,
)
from payswitch.client.cli import main

FUNDS = 1_000_000


async def admin_client(switch, **kwargs) -> AsyncClient:
    return await AsyncClient.connect(switch.host, switch.port, token=switch.admin_token, **kwargs)


async def create_world(client: AsyncClient) -> dict[str, str]:
    """bank-a owns funding (unlimited) and a-1 (funded); bank-b owns b-1. Returns the tokens."""
    created = await client.create_participants(
        [{"id": "bank-a", "name": "Bank A"}, {"id": "bank-b", "name": "Bank B"}])
    assert [r.status for r in created] == ["created", "created"]
    accounts = await client.create_accounts([
        {"id": "funding", "participant": "bank-a", "currency": "USD", "overdraft_limit": None},
        {"id": "a-1", "participant": "bank-a", "currency": "USD"},
        {"id": "b-1", "participant": "bank-b", "currency": "USD"},
    ])
    assert all(r.ok for r in accounts)
    assert (await client.transfer("fund-a-1", "funding", "a-1", FUNDS)).ok
    return {"bank-a": created[0].token, "bank-b": created[1].token}


async def balances(client: AsyncClient, *ids: str) -> dict[str, int]:
    return {a.id: a.balance for a in await client.lookup_accounts(ids)}


async def test_transfers_lookups_and_settlement(switch):
    async with await admin_client(switch) as client:
        await create_world(client)
        first = await client.transfer("t1", "a-1", "b-1", 700, reference="invoice 7")
        assert first.status == "created"
        assert await client.transfer("t1", "a-1", "b-1", 700, reference="invoice 7") == \
            TransferResult("exists", first.timestamp)
        with pytest.raises(InsufficientFunds):
            await client.transfer("t2", "a-1", "b-1", 10 * FUNDS)
        chain = await client.create_transfers([
            {"id": "c1", "debit_account": "a-1", "credit_account": "b-1", "amount": 1,
             "linked": True},
            {"id": "c2", "debit_account": "a-1", "credit_account": "b-1", "amount": 10 * FUNDS},
        ])
        assert [r.status for r in chain] == ["linked_event_failed", "insufficient_funds"]
        assert chain[0].message and "c2" in chain[0].message  # the item that broke the chain
        assert "a-1" in chain[1].message and str(10 * FUNDS) in chain[1].message
        assert (await client.transfer("p1", "a-1", "b-1", 300, pending=True, timeout_s=600)).ok
        assert (await client.post_pending("p1-post", "p1", amount=200)).ok
        [t1, p1] = await client.lookup_transfers(["t1", "p1", "never"])
        assert (t1.reference, t1.state, p1.state) == ("invoice 7", "posted", "posted")
        page = await client.get_account_transfers("b-1", limit=2)
        assert [t.id for t in page.transfers] == ["t1", "p1"] and page.next is not None
        rest = await client.get_account_transfers("b-1", after=page.next)
        assert [t.id for t in rest.transfers] == ["p1-post"] and rest.next is None
        assert await balances(client, "a-1", "b-1") == {"a-1": FUNDS - 900, "b-1": 900}
        report = await client.close_window()
        assert {(p.participant, p.net) for p in report.positions} == {("bank-a", -900),
                                                                       ("bank-b", 900)}
        assert [w.state for w in await client.list_windows()] == ["closed", "open"]


@pytest.mark.parametrize("codec", ["msgpack", "json"])
async def test_thousands_of_pipelined_transfers_on_one_connection(switch, codec):
    async with await admin_client(switch, codec=codec) as client:
        await create_world(client)
        results = await asyncio.gather(
            *(client.transfer(f"x{n}", "a-1", "b-1", 1) for n in range(3000)))
        assert all(r.status == "created" for r in results)
        timestamps = [r.timestamp for r in results]
        assert len(set(timestamps)) == 3000
        assert await balances(client, "a-1", "b-1") == {"a-1": FUNDS - 3000, "b-1": 3000}


async def test_a_participant_debits_only_its_own_accounts(switch):
    async with await admin_client(switch) as admin:
        tokens = await create_world(admin)
    async with await AsyncClient.connect(switch.host, switch.port, participant="bank-b",
                                         token=tokens["bank-b"]) as bank_b:
        with pytest.raises(Forbidden):
            await bank_b.transfer("steal", "a-1", "b-1", 5)
        assert [a.id for a in await bank_b.lookup_accounts(["a-1", "b-1"])] == ["b-1"]


async def test_pool_spreads_load_and_keeps_results_in_order(switch):
    async with await admin_client(switch) as admin:
        await create_world(admin)
    async with AsyncPool(4, host=switch.host, port=switch.port, token=switch.admin_token) as pool:
        items = [[{"id": f"b{n}-{i}", "debit_account": "a-1", "credit_account": "b-1",
                   "amount": 1} for i in range(50)] for n in range(20)]
        batches = await asyncio.gather(*(pool.create_transfers(chunk) for chunk in items))
        assert all(r.ok for batch in batches for r in batch)
        assert (await pool.stats())["connections"] >= 4


def test_sync_client(switch):
    with Client(switch.host, switch.port, token=switch.admin_token) as client:
        client.create_participants([{"id": "bank-a", "name": "Bank A"}])
        client.create_accounts([
            {"id": "funding", "participant": "bank-a", "currency": "USD", "overdraft_limit": None},
            {"id": "a-1", "participant": "bank-a", "currency": "USD"}])
        assert client.transfer("s1", "funding", "a-1", 50).ok
        [account] = client.lookup_accounts(["a-1"])
        assert account.balance == 50 and account.available == 50


async def test_batch_of_json_items(switch):
    async with await admin_client(switch) as client:
        await create_world(client)
        items = [{"id": f"batch-{n}", "debit_account": "a-1", "credit_account": "b-1",
                  "amount": n + 1} for n in range(10)]
        try:
            submitted = await client.submit_batch("batch-1", "json", items=items,
                                                  control_count=10, control_sum=55, mode="atomic")
        except SwitchError as error:
            if error.code != "unknown_op":
                raise
            pytest.skip("this switch build does not serve batches yet")
        assert submitted.batch_id == "batch-1"
        async with asyncio.timeout(10):
            while (batch := await client.get_batch("batch-1")).state not in ("completed",
                                                                              "rejected"):
                await asyncio.sleep(0.02)
        assert (batch.state, batch.created, batch.control_sum) == ("completed", 10, 55)
        page = await client.get_batch_results("batch-1")
        assert [r.index for r in page.results] == list(range(10))
        assert all(r.ok for r in page.results)


async def test_transfer_is_resent_across_a_switch_crash(tmp_path):
    """The acknowledged transfer survives SIGKILL; the retry after reconnecting answers `exists`
    with the original timestamp instead of moving the money twice."""
    switch = SwitchProcess(tmp_path / "data", extra_args=("--port", str(free_port()))).start()
    try:
        async with await admin_client(switch, backoff_s=0.02) as client:
            await create_world(client)
            first = await client.transfer("once", "a-1", "b-1", 123)
            switch.kill()
            restart = asyncio.create_task(asyncio.to_thread(switch.start))
            again = await client.transfer("once", "a-1", "b-1", 123)
            await restart
            assert again == TransferResult("exists", first.timestamp)
            assert await balances(client, "b-1") == {"b-1": 123}
    finally:
        switch.stop()


def run_cli(switch, capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["--data-dir", str(switch.data_dir), *argv], environ={})
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_finds_port_and_token_in_the_data_dir(switch, capsys):
    code, out, _ = run_cli(switch, capsys, "--json", "create-participant", "bank-a", "Bank A",
                           "--cap", "USD=1000")
    assert code == 0 and json.loads(out)["token"]
    assert run_cli(switch, capsys, "create-account", "funding", "--participant", "bank-a",
                   "--currency", "USD", "--overdraft-limit", "unlimited")[0] == 0
    assert run_cli(switch, capsys, "create-account", "a-1", "--participant", "bank-a",
                   "--currency", "USD")[0] == 0
    code, out, _ = run_cli(switch, capsys, "transfer", "funding", "a-1", "250", "--id", "cli-1")
    assert code == 0 and "created" in out
    code, out, _ = run_cli(switch, capsys, "balance", "a-1")
    assert code == 0 and out.splitlines()[1].split()[:5] == ["a-1", "bank-a", "USD", "250", "250"]
    code, _, err = run_cli(switch, capsys, "transfer", "a-1", "funding", "1000")
    assert code == 1 and err.startswith("error: insufficient_funds: ")
    code, out, _ = run_cli(switch, capsys, "--json", "lookup", "cli-1")
    assert code == 0 and json.loads(out)[0]["amount"] == 250
    assert run_cli(switch, capsys, "stats")[0] == 0
