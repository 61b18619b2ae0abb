"""The SDK and the CLI expose the declared ops (protocol/ops.py); get_participant, added by its
declaration and its ledger handler alone, works end to end over TCP against a real switch."""

import asyncio
import json

import pytest

from payswitch.client import AsyncClient, AsyncPool, Client, Forbidden, NotFound, SwitchError
from payswitch.client.cli import build_parser, main
from payswitch.protocol.ops import OPS


def subcommands(parser) -> dict:
    return parser._subparsers._group_actions[0].choices  # argparse has no API for them


def test_every_declared_sdk_method_and_cli_command_exists():
    for spec in OPS.values():
        if spec.sdk is not None:
            for sdk in (AsyncClient, Client, AsyncPool):
                assert callable(getattr(sdk, spec.sdk, None)), (sdk, spec.sdk)
        if spec.cli is not None:
            parser = build_parser()
            for word in spec.cli.split():
                parser = subcommands(parser).get(word)
                assert parser is not None, spec
    for op, spec in OPS.items():  # `call` takes every op the SDK has a method for
        if spec.sdk is not None:
            assert build_parser().parse_args(["call", op]).op == op
    with pytest.raises(SystemExit):
        build_parser().parse_args(["call", "hello"])


async def bank_a_with_traffic(switch) -> str:
    """bank-a (cap USD 1000) has paid bank-b 300 and holds 200 pending; returns its token."""
    async with await AsyncClient.connect(switch.host, switch.port,
                                         token=switch.admin_token) as admin:
        created = await admin.create_participants([
            {"id": "bank-a", "name": "Bank A", "net_debit_cap": {"USD": 1000}},
            {"id": "bank-b", "name": "Bank B"}])
        assert all(r.ok for r in await admin.create_accounts([
            {"id": "a-1", "participant": "bank-a", "currency": "USD", "overdraft_limit": None},
            {"id": "b-1", "participant": "bank-b", "currency": "USD"}]))
        assert (await admin.transfer("t-1", "a-1", "b-1", 300)).ok
        assert (await admin.transfer("t-2", "a-1", "b-1", 200, pending=True)).ok
        return created[0].token


BANK_A = {"id": "bank-a", "name": "Bank A", "net_debit_cap": {"USD": 1000}, "suspended": False,
          "settlement_accounts": {},
          "positions": [{"currency": "USD", "debits": 300, "credits": 0, "net": -300,
                         "reserved": 200, "headroom": 500}]}


async def test_get_participant_over_tcp_through_the_generated_sdk_method(switch):
    token = await bank_a_with_traffic(switch)
    async with await AsyncClient.connect(switch.host, switch.port, participant="bank-a",
                                         token=token) as bank_a:
        assert await bank_a.get_participant(id="bank-a") == BANK_A
        with pytest.raises(Forbidden) as info:
            await bank_a.get_participant(id="bank-b")
        assert info.value.message == "bank-a may read only its own participant record, " \
                                     "not bank-b's"
        # the headroom is what the cap lets through: one more unit is refused
        with pytest.raises(SwitchError) as refused:
            await bank_a.transfer("t-3", "a-1", "b-1", 501)
        assert refused.value.code == "net_debit_cap_exceeded"
        assert (await bank_a.transfer("t-3", "a-1", "b-1", 500)).ok
        assert (await bank_a.get_participant(id="bank-a"))["positions"][0]["headroom"] == 0
    async with AsyncPool(2, host=switch.host, port=switch.port,
                         token=switch.admin_token) as pool:
        records = await asyncio.gather(pool.get_participant(id="bank-a"),
                                       pool.get_participant(id="bank-b"))
        assert [r["name"] for r in records] == ["Bank A", "Bank B"]
        with pytest.raises(NotFound):
            await pool.get_participant(id="bank-z")


def test_get_participant_through_the_blocking_client_and_the_cli(switch, capsys):
    token = asyncio.run(bank_a_with_traffic(switch))
    with Client(switch.host, switch.port, participant="bank-a", token=token) as bank_a:
        assert bank_a.get_participant(id="bank-a") == BANK_A
    argv = ["--data-dir", str(switch.data_dir), "--participant", "bank-a", "--token", token,
            "--json", "call", "get_participant", '{"id": "bank-a"}']
    assert main(argv, environ={}) == 0
    assert json.loads(capsys.readouterr().out) == BANK_A
    assert main([*argv[:-1], '{"id": "bank-b"}'], environ={}) == 1
    assert "error: forbidden: bank-a may read only its own" in capsys.readouterr().err
