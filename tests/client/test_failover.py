"""The SDK fails over by itself: past an address where nothing listens, across a switch killed
(SIGKILL) and restarted on the next address, to the primary a standby names, and through
`unavailable`. Real switch processes throughout; the standby is a stand-in (the scripted peer of
support/peer.py answering hello, then `not_primary`), as the replication server is not on this
branch."""

import asyncio
import json

import pytest
from support.peer import Peer
from support.ports import free_port
from support.restart_load import transfer_across
from support.switch_process import SwitchProcess
from support.wire import WireClient
from support.world import FUNDS, assert_debits_equal_credits, create_world, switch_with_world

from payswitch.client import AsyncClient, AsyncPool, Client, NotPrimary, OutcomeUnknown, SwitchError
from payswitch.client.cli import main
from payswitch.protocol import codes, error_reply, ok_reply

WORLD_ACCOUNTS = ("a-funding", "a-1", "a-2", "b-1", "b-eur")
# Generous, so that a slow restart on a busy machine is still ridden out.
RETRY_DEADLINE_S = 60.0
# Every backoff passes the retry deadline: a request that succeeds under these never waited.
NEVER_BACKS_OFF = {"backoff_s": 100.0, "max_backoff_s": 100.0, "retry_deadline_s": 30.0}


def address(port: int) -> str:
    return f"127.0.0.1:{port}"


@pytest.fixture
def primary(tmp_path):
    """A real switch holding the standard world (support/world.py), stopped afterwards."""
    with switch_with_world(tmp_path / "data") as switch:
        yield switch


async def connect(addresses: list[str], switch, **kwargs) -> AsyncClient:
    return await AsyncClient.connect(addresses=addresses, token=switch.admin_token, **kwargs)


async def test_an_address_where_nothing_listens_is_passed_over(primary):
    dead, live = address(free_port()), address(primary.port)
    async with await connect([dead, live], primary) as client:
        assert client.address == live and client.addresses == [dead, live]
        assert (await client.transfer("t-1", "a-1", "b-1", 5)).status == "created"
    pairs = [("127.0.0.1", free_port()), ("127.0.0.1", primary.port)]
    async with await AsyncClient.connect(addresses=pairs, token=primary.admin_token) as client:
        assert client.address == live
        assert (await client.transfer("t-1", "a-1", "b-1", 5)).status == "exists"


async def test_no_address_answering_names_every_address_tried():
    dead = [address(free_port()), address(free_port())]
    with pytest.raises(ConnectionError) as caught:
        await AsyncClient.connect(addresses=dead, token="t")
    assert all(f"cannot connect to {a}" in str(caught.value) for a in dead)


def test_addresses_and_host_do_not_mix():
    with pytest.raises(ValueError, match="either addresses or host"):
        asyncio.run(AsyncClient.connect("127.0.0.1", addresses=["127.0.0.1:1"], token="t"))
    with pytest.raises(ValueError, match="has no port"):
        asyncio.run(AsyncClient.connect(addresses=["127.0.0.1"], token="t"))


async def test_transfers_in_flight_ride_out_a_kill_and_a_restart_on_the_second_address(
        tmp_path):
    """Eight senders pipeline transfers on one connection; the switch is killed under them and
    its data directory restarted on the second address. No sender sees an error, and each
    transfer reported done is in the ledger exactly once."""
    first_port, second_port = free_port(), free_port()
    first = SwitchProcess(tmp_path / "data", extra_args=("--port", str(first_port)))
    second = SwitchProcess(tmp_path / "data", extra_args=("--port", str(second_port)))
    first.start()
    try:
        with WireClient(first.host, first.port) as admin:
            admin.hello("admin", first.admin_token)
            create_world(admin)
        async with await connect([address(first_port), address(second_port)], first,
                                 retry_deadline_s=RETRY_DEADLINE_S) as client:
            async def kill_and_restart_elsewhere() -> None:
                first.kill()
                await asyncio.to_thread(second.start)

            killed_at, acknowledged = await transfer_across(client, "a-1", "b-1",
                                                            kill_and_restart_elsewhere, 8)
            assert 300 <= killed_at < len(acknowledged)
            assert client.address == address(second_port)
            history = [t.id async for t in client.iter_account_transfers("b-1")]
            assert sorted(history) == sorted(acknowledged)  # each once, nothing else
            by_id = {a.id: a for a in await client.lookup_accounts(["a-1", "b-1"])}
            assert by_id["b-1"].balance == sum(acknowledged.values())
            assert by_id["a-1"].balance == FUNDS - sum(acknowledged.values())
        with WireClient(second.host, second.port) as admin:
            admin.hello("admin", second.admin_token)
            assert_debits_equal_credits(admin, WORLD_ACCOUNTS)
    finally:
        first.stop()
        second.stop()


async def test_not_primary_sends_the_request_straight_to_the_primary_it_names(peer, primary):
    peer.act_as_standby(address(primary.port))
    async with await connect([address(peer.port)], primary, **NEVER_BACKS_OFF) as client:
        assert client.address == address(peer.port)  # a standby answers hello
        assert (await client.transfer("r-1", "a-1", "b-1", 10)).status == "created"
        assert client.address == address(primary.port)
        assert client.addresses == [address(peer.port), address(primary.port)]
        [b1] = await client.lookup_accounts(["b-1"])  # later calls go to the primary at once
        assert b1.balance == 10
    assert len(peer.ops("transfer")) == 1 and not peer.ops("lookup_accounts")


async def test_requests_pipelined_to_a_standby_each_reach_the_primary_once(peer, primary):
    peer.act_as_standby(address(primary.port))
    async with await connect([address(peer.port)], primary, backoff_s=0.01,
                             retry_deadline_s=RETRY_DEADLINE_S) as client:
        results = await asyncio.gather(*(client.transfer(f"p-{n}", "a-1", "b-1", n + 1)
                                         for n in range(50)))
        assert all(r.ok for r in results)
        [b1] = await client.lookup_accounts(["b-1"])
        assert b1.balance == sum(range(1, 51))


async def test_not_primary_without_a_primary_moves_on_to_the_next_address(peer, primary):
    peer.act_as_standby(None)
    async with await connect([address(peer.port), address(primary.port)], primary,
                             backoff_s=0.01) as client:
        assert client.address == address(peer.port)
        assert (await client.transfer("n-1", "a-1", "b-1", 7)).status == "created"
        assert client.address == address(primary.port)
    assert len(peer.ops("transfer")) == 1


async def test_a_request_without_a_reply_goes_on_to_the_next_address(peer, primary):
    peer.on("transfer", lambda request: peer.SILENT)
    async with await connect([address(peer.port), address(primary.port)], primary,
                             timeout_s=1.0, retry_deadline_s=RETRY_DEADLINE_S) as client:
        assert (await client.transfer("s-1", "a-1", "b-1", 3)).ok
        assert client.address == address(primary.port)
    assert peer.ops("transfer")


async def test_primaries_that_point_at_each_other_are_not_followed_around_forever(peer):
    """The second redirect to the same node backs off (past the deadline here): the transfer
    ends `OutcomeUnknown`, not in a loop."""
    other = Peer()
    await other.start()
    try:
        peer.act_as_standby(address(other.port))
        other.act_as_standby(address(peer.port))
        async with await AsyncClient.connect(addresses=[address(peer.port)], token="t",
                                             **NEVER_BACKS_OFF) as client:
            with pytest.raises(OutcomeUnknown):
                await client.transfer("loop-1", "a-1", "b-1", 1)
            with pytest.raises(NotPrimary):
                await client.lookup_accounts(["a-1"])
    finally:
        await other.stop()
    assert len(peer.ops("transfer")) == 2 and len(other.ops("transfer")) == 1


async def test_requests_never_resent_raise_not_primary_and_the_client_moves_on(peer, primary):
    peer.act_as_standby(address(primary.port))
    async with await connect([address(peer.port)], primary) as client:
        with pytest.raises(NotPrimary) as caught:
            await client.create_participants([{"id": "bank-c", "name": "Bank C"}])
        assert caught.value.primary == address(primary.port)
        assert client.address == address(primary.port)
        [created] = await client.create_participants([{"id": "bank-c", "name": "Bank C"}])
        assert created.ok and created.token
    assert len(peer.ops("create_participants")) == 1


async def test_unavailable_is_resent_with_the_same_id_on_the_same_connection(peer):
    def unavailable_twice(request: dict) -> dict:
        if len(peer.ops("transfer")) <= 2:
            return error_reply(request["id"], codes.UNAVAILABLE, "no quorum")
        return ok_reply(request["id"], {"status": "created", "timestamp": 5})
    peer.on("transfer", unavailable_twice)
    async with await AsyncClient.connect(port=peer.port, token="t", backoff_s=0.01) as client:
        assert (await client.transfer("u-1", "a", "b", 9)).status == "created"
    attempts = peer.ops("transfer")
    assert len(attempts) == 3 and all(a["args"] == attempts[0]["args"] for a in attempts)
    assert peer.connections == 1


async def test_unavailable_until_the_deadline_is_an_unknown_outcome_not_a_failure(peer):
    peer.on("transfer", lambda r: error_reply(r["id"], codes.UNAVAILABLE, "no quorum"))
    peer.on("lookup_transfers", lambda r: error_reply(r["id"], codes.UNAVAILABLE, "no quorum"))
    async with await AsyncClient.connect(port=peer.port, token="t", backoff_s=0.01,
                                         max_backoff_s=0.02, retry_deadline_s=0.3) as client:
        with pytest.raises(OutcomeUnknown, match="transfer u-2: outcome unknown"):
            await client.transfer("u-2", "a", "b", 9)
        with pytest.raises(SwitchError) as caught:
            await client.lookup_transfers(["u-2"])
    assert caught.value.code == codes.UNAVAILABLE
    assert len(peer.ops("transfer")) >= 2 and len(peer.ops("lookup_transfers")) >= 2


async def test_pool_connections_pass_dead_addresses_and_standbys(peer, primary):
    peer.act_as_standby(address(primary.port))
    addresses = [address(free_port()), address(peer.port)]
    async with AsyncPool(3, addresses=addresses, token=primary.admin_token,
                         backoff_s=0.01, retry_deadline_s=RETRY_DEADLINE_S) as pool:
        results = await asyncio.gather(*(pool.transfer(f"pool-{n}", "a-1", "b-1", 2)
                                         for n in range(30)))
        assert all(r.ok for r in results)
        [b1] = await pool.lookup_accounts(["b-1"])
    assert b1.balance == 60
    assert len(peer.ops("hello")) == 3  # each connection of the pool went there first


def test_sync_client_follows_the_primary(thread_peer, primary):
    thread_peer.act_as_standby(address(primary.port))
    dead = address(free_port())
    with Client(addresses=[dead, address(thread_peer.port)], token=primary.admin_token,
                backoff_s=0.01) as client:
        assert client.address == address(thread_peer.port)
        assert client.transfer("sync-1", "a-1", "b-1", 4).status == "created"
        assert client.address == address(primary.port)
        assert client.addresses == [dead, address(thread_peer.port), address(primary.port)]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv), environ={})
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_takes_hosts_repeated_or_comma_separated(primary, capsys):
    dead = address(free_port())
    data_dir = ("--data-dir", str(primary.data_dir))  # the port of "127.0.0.1", and the token
    code, out, _ = run_cli(capsys, *data_dir, "--host", dead, "--host", "127.0.0.1", "ping")
    assert code == 0 and out.startswith(f"pong from {address(primary.port)} in ")
    code, out, _ = run_cli(capsys, *data_dir, "--host", f"{dead},127.0.0.1", "--json",
                           "transfer", "a-1", "b-1", "25", "--id", "cli-f-1")
    assert code == 0 and json.loads(out)["status"] == "created"


def test_cli_follows_the_primary_a_standby_names(thread_peer, primary, capsys):
    thread_peer.act_as_standby(address(primary.port))
    code, out, _ = run_cli(capsys, "--token", primary.admin_token, "--host",
                           f"{address(thread_peer.port)},{address(free_port())}", "--json",
                           "balance", "a-1")
    assert code == 0 and json.loads(out)[0]["balance"] == FUNDS


def test_cli_command_never_resent_stops_at_a_standby_and_names_the_primary(thread_peer,
                                                                          primary, capsys):
    thread_peer.act_as_standby(address(primary.port))
    code, out, err = run_cli(capsys, "--token", primary.admin_token, "--host",
                             address(thread_peer.port), "close-window")
    assert code == 1 and out == ""
    assert err == f"error: not_primary: this node is a standby (the primary is " \
                  f"{address(primary.port)})\n"
    assert len(thread_peer.ops("close_window")) == 1


def test_cli_without_an_answer_names_every_address_tried(capsys):
    dead = [address(free_port()), address(free_port())]
    code, _, err = run_cli(capsys, "--token", "t", "--host", dead[0], "--host", dead[1], "stats")
    assert code == 2
    assert err.startswith(f"error: no answer from the switch at {dead[0]}, {dead[1]}: ")
    assert all(f"cannot connect to {a}" in err for a in dead)


async def test_shutting_down_is_resent_to_the_next_address(peer, primary):
    """A node told to stop (a planned switchover) took nothing: the transfer goes on."""
    peer.on("transfer", lambda r: error_reply(r["id"], codes.SHUTTING_DOWN, "stopping"))
    async with await connect([address(peer.port), address(primary.port)], primary,
                             backoff_s=0.01) as client:
        assert (await client.transfer("sd-1", "a-1", "b-1", 6)).status == "created"
        assert client.address == address(primary.port)
    assert len(peer.ops("transfer")) == 1


async def test_a_node_refusing_sessions_is_passed_over(peer, primary):
    peer.on("hello", lambda r: error_reply(r["id"], codes.SHUTTING_DOWN, "stopping"))
    async with await connect([address(peer.port), address(primary.port)], primary) as client:
        assert client.address == address(primary.port)
    with pytest.raises(ConnectionError, match=f"{address(peer.port)}: hello answered "
                                              "shutting_down: stopping"):
        await connect([address(peer.port)], primary)
