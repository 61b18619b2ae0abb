"""Replication through a real three-server JetStream cluster (sync_interval: always) with two
or three switch nodes: failover, fencing, rejoin, joining empty, NATS servers lost."""
import asyncio
import signal
import socket
import time
from contextlib import contextmanager

import pytest

from payswitch.client import AsyncClient
from payswitch.client.cli import main as cli
from metrics.metrics_support import (REPO, http_get, metric_names_in, metrics_port,
                                     sample_names, samples, value)
from support.events_stream import assert_gap_free, read_events, wait_for_events_published
from support.nats_cluster import NatsCluster
from support.ports import free_ports as ports
from support.switch_process import run_switch_once
from support.replicated import (ADMIN_TOKEN, WAIT_S, admin, digest_at, node, senders, stats,
                                wait_for, wait_for_role, wait_for_same_state)
from support.world import assert_debits_equal_credits, create_world, lookup_all
from payswitch.protocol import encode_body, encode_frame

ACCOUNTS = ["a-funding", "a-1", "a-2", "b-1", "b-eur"]


@pytest.fixture
def cluster(tmp_path):
    nats = NatsCluster(tmp_path / "nats").start()
    try:
        yield nats
    finally:
        nats.stop()


@contextmanager
def primary_with_world(tmp_path, cluster, *args: str):
    """Node a, the primary, holding the standard world; flags `args`."""
    a = node(tmp_path, cluster, "a", ports(1)[0], *args).start()
    try:
        wait_for_role(a, "primary")
        with admin(a) as client:
            create_world(client)
        yield a
    finally:
        a.stop()


@contextmanager
def primary_and_standby(tmp_path, cluster, *args: str):
    """primary_with_world's node a, and node b, its standby (same flags)."""
    with primary_with_world(tmp_path, cluster, *args) as a:
        b = node(tmp_path, cluster, "b", ports(1)[0], *args).start()
        try:
            wait_for_role(b, "standby")
            yield a, b
        finally:
            b.stop()


@pytest.fixture
def pair(tmp_path, cluster):
    with primary_and_standby(tmp_path, cluster) as nodes:
        yield nodes


def everything_acknowledged_is_there(primary, threads) -> int:
    acked = {tid: ts for thread in threads for tid, ts in thread.acked.items()}
    with admin(primary) as client:
        stored = lookup_all(client, acked)
        assert set(stored) == set(acked)
        moved = {tid: (ts, stored[tid]["timestamp"]) for tid, ts in acked.items()
                 if stored[tid]["timestamp"] != ts}
        assert not moved, moved  # acknowledged with one timestamp, stored with another
        assert_debits_equal_credits(client, ACCOUNTS)
        balance = {a["id"]: a for a in client.call("lookup_accounts", {"ids": ["b-1"]})["accounts"]}
        assert balance["b-1"]["credits_posted"] == len(acked)  # each once: amount 1
    return len(acked)


def test_standby_follows_and_refuses_writes_naming_the_primary(pair, capsys, monkeypatch):
    a, b = pair
    digest = wait_for_same_state(a, b)
    assert digest["seq"] > 0 and len(digest["digest"]) == 64
    monkeypatch.setenv("SWITCH_ADMIN_TOKEN", ADMIN_TOKEN)
    for switch in (a, b):  # what an operator runs to compare the nodes
        assert cli(["--host", f"{switch.host}:{switch.port}", "state-digest"]) == 0
        assert f"seq {digest['seq']}  digest {digest['digest']}" in capsys.readouterr().out
    with admin(b) as client:
        reply = client.request("lookup_accounts", {"ids": ["a-1"]})
        assert reply["error"]["code"] == "not_primary"
        assert reply["error"]["primary"] == f"{a.host}:{a.port}"
        assert client.call("ping") == {}
    standby = stats(b)
    assert standby["role"] == "standby"
    assert standby["replication"]["lease_holder"] == "a"
    assert len(standby["replication"]["nats_servers"]) == 3
    status, body = http_get(metrics_port(b), "/readyz")
    assert status == 503 and "standby" in body and f"{a.host}:{a.port}" in body
    assert http_get(metrics_port(a), "/readyz")[0] == 200
    on_a, on_b = (samples(http_get(metrics_port(node), "/metrics")[1]) for node in (a, b))
    assert value(on_a, "payswitch_replication_role", role="primary") == 1
    assert value(on_b, "payswitch_replication_role", role="standby") == 1
    assert value(on_a, "payswitch_replication_appends_total") >= 1
    rules = (REPO / "docs/prometheus-alerts.yml").read_text()
    used = {name for name in metric_names_in(rules) if name.startswith("payswitch_replication_")}
    assert used and used <= sample_names(on_a), sorted(used - sample_names(on_a))


def test_primary_killed_under_load_a_standby_takes_over_losing_nothing(pair):
    a, b = pair
    with senders([a, b], 4) as threads:
        wait_for(lambda: sum(len(t.acked) for t in threads) >= 200, "transfers before the kill")
        a.kill()
        killed_at = time.monotonic()
        acked_at_kill = sum(len(t.acked) for t in threads)
        wait_for(lambda: sum(len(t.acked) for t in threads) >= acked_at_kill + 200,
                 "transfers after the failover")
    first_ack_after = min(t for thread in threads for t in thread.ack_times if t > killed_at)
    print(f"failover: writes resumed {first_ack_after - killed_at:.2f}s after the kill")
    assert stats(b)["role"] == "primary"
    assert everything_acknowledged_is_there(b, threads) >= acked_at_kill + 200


def test_killed_primary_rejoins_as_standby_with_the_same_state(pair, tmp_path, cluster):
    a, b = pair
    with senders([a, b], 2) as threads:
        wait_for(lambda: sum(len(t.acked) for t in threads) >= 100, "transfers")
        a.kill()
        wait_for_role(b, "primary")
        a.start()
        wait_for_role(a, "standby")
        done = sum(len(t.acked) for t in threads)
        wait_for(lambda: sum(len(t.acked) for t in threads) >= done + 100, "more transfers")
    wait_for_same_state(b, a)
    everything_acknowledged_is_there(b, threads)


def test_paused_primary_acknowledges_nothing_after_the_promotion(pair):
    a, b = pair
    with senders([a, b], 2) as threads:
        wait_for(lambda: sum(len(t.acked) for t in threads) >= 100, "transfers")
        a.process.send_signal(signal.SIGSTOP)
        try:
            wait_for_role(b, "primary")
            promoted = sum(len(t.acked) for t in threads)
            wait_for(lambda: sum(len(t.acked) for t in threads) >= promoted + 100,
                     "transfers on the new primary")
        finally:
            a.process.send_signal(signal.SIGCONT)
        # it steps down, restarts its process and follows the new primary
        wait_for(lambda: a.log_events("stepping_down"), "the old primary to step down")
        wait_for_role(a, "standby")
    assert everything_acknowledged_is_there(b, threads) > 0
    wait_for_same_state(b, a)


def test_empty_node_joins_from_the_stored_snapshot(tmp_path, cluster):
    small = ("--snapshot-every-bytes", "20000", "--max-log-bytes-since-snapshot", str(64 << 20))
    with primary_with_world(tmp_path, cluster, *small) as a:
        with senders([a], 2) as threads:
            wait_for(lambda: stats(a)["snapshots"]["published"] >= 3, "snapshots")
        wait_for(lambda: a.log_events("snapshot_uploaded"), "a snapshot uploaded")
        uploaded = a.log_events("snapshot_uploaded")[-1]
        assert uploaded["stream_trimmed_before"] is not None  # the stream does not grow forever
        c = node(tmp_path, cluster, "c", ports(1)[0]).start()
        try:
            wait_for_role(c, "standby")
            assert c.log_events("joined_from_stored_snapshot")
            wait_for_same_state(a, c)
            everything_acknowledged_is_there(a, threads)
        finally:
            c.stop()


def test_nats_servers_lost_one_writes_go_on_two_they_stop_then_resume(pair, cluster):
    a, b = pair
    with senders([a, b], 2) as threads:
        wait_for(lambda: sum(len(t.acked) for t in threads) >= 50, "transfers")
        cluster.servers[0].kill()
        done = sum(len(t.acked) for t in threads)
        wait_for(lambda: sum(len(t.acked) for t in threads) >= done + 100,
                 "transfers with one NATS server down")
        cluster.servers[1].kill()
        # no quorum: requests are refused with a retryable error (the primary's lease runs out:
        # not_primary; appends failing: unavailable), resent, never acknowledged meanwhile
        wait_for(lambda: sum(t.refusals.get("not_primary", 0) + t.refusals.get("unavailable", 0)
                             for t in threads), "a retryable refusal")
        stalled = sum(len(t.acked) for t in threads)
        time.sleep(2)
        assert sum(len(t.acked) for t in threads) <= stalled + len(threads)
        cluster.servers[1].start()
        cluster.servers[0].start()
        cluster.wait_healthy()
        wait_for(lambda: sum(len(t.acked) for t in threads) >= stalled + 100,
                 "transfers once NATS has a quorum again", timeout_s=120)
    primary = a if stats(a)["role"] == "primary" else b
    everything_acknowledged_is_there(primary, threads)


# a lease long enough for a to stay primary while NATS has no quorum
LONG_LEASE = ("--lease-ttl-s", "8", "--lease-safety-margin-s", "1", "--lease-renew-interval-s",
              "1")


def test_former_primary_discards_its_unreplicated_tail_when_it_rejoins(tmp_path, cluster):
    with primary_and_standby(tmp_path, cluster, *LONG_LEASE) as (a, b):
        discard_unreplicated_tail(a, b, cluster)


def discard_unreplicated_tail(a, b, cluster):
    wait_for_same_state(a, b)
    for server in cluster.servers[:2]:  # no quorum: a logs and fsyncs, the stream takes nothing
        server.kill()
    with admin(a) as client:
        for n in range(20):
            client.send({"id": n, "op": "transfer", "args": {
                "id": f"never-acked-{n}", "debit_account": "a-1", "credit_account": "b-1",
                "amount": 5}}, "json")
        # executed and fsynced into a's own log; their replies wait for the stream
        wait_for(lambda: stats(a)["wal"]["durable_seq"] >= digest_at(b)["seq"] + 1,
                 "the transfers in a's own log")
    a.kill()
    for server in cluster.servers[:2]:
        server.start()
    cluster.wait_healthy()
    wait_for_role(b, "primary")
    a.start()
    wait_for_role(a, "standby")
    discarded = a.log_events("unreplicated_tail_discarded")
    assert discarded and discarded[-1]["records"] >= 1
    wait_for_same_state(b, a)
    # Never acknowledged, so either outcome is right for them (a NATS server may have held
    # them and committed them once the quorum returned): the digests above say both nodes agree.
    with admin(b) as client:
        assert_debits_equal_credits(client, ACCOUNTS)


@pytest.mark.soak
def test_many_failovers_under_load_lose_nothing(pair):
    """Ten rounds of: kill -9 the primary under load, wait for the other node to take over,
    restart the dead one as a standby. Run with -m soak."""
    nodes = list(pair)
    with senders(nodes, 4) as threads:
        for round_number in range(10):
            primary = next(n for n in nodes if stats(n)["role"] == "primary")
            other = nodes[1 - nodes.index(primary)]
            done = sum(len(t.acked) for t in threads)
            wait_for(lambda: sum(len(t.acked) for t in threads) >= done + 100, "transfers")
            primary.kill()
            wait_for_role(other, "primary")
            primary.start()
            wait_for_role(primary, "standby")
    final = next(n for n in nodes if stats(n)["role"] == "primary")
    everything_acknowledged_is_there(final, threads)
    wait_for_same_state(final, nodes[1 - nodes.index(final)])


async def test_sdk_clients_ride_out_a_failover_starting_at_the_standby(pair):
    """Several SDK clients, each given the standby's address first: they follow not_primary
    to the primary, then across a kill -9 to the new one; every acknowledged transfer is
    there once, with the timestamp it was acknowledged with."""
    a, b = pair
    addresses = [f"{b.host}:{b.port}", f"{a.host}:{a.port}"]
    acked: dict[str, int] = {}
    stop = asyncio.Event()

    async def sender(name: str) -> None:
        client = await AsyncClient.connect(addresses=addresses, token=ADMIN_TOKEN,
                                           retry_deadline_s=30)
        async with client:
            counter = 0
            while not stop.is_set():
                counter += 1
                result = await client.transfer(f"{name}-{counter}", "a-1", "b-1", 1)
                assert result.ok, result
                acked[f"{name}-{counter}"] = result.timestamp

    async def until(count: int) -> None:
        while len(acked) < count:
            await asyncio.sleep(0.05)

    tasks = [asyncio.create_task(sender(f"sdk{n}")) for n in range(4)]
    try:
        await asyncio.wait_for(until(100), WAIT_S)
        await asyncio.to_thread(a.kill)
        killed_at = len(acked)
        await asyncio.wait_for(until(killed_at + 100), WAIT_S)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    with admin(b) as client:
        stored = lookup_all(client, acked)
        assert {tid: t["timestamp"] for tid, t in stored.items()} == acked
        assert_debits_equal_credits(client, ACCOUNTS)


def test_the_event_stream_across_a_failover_has_every_transfer_once_in_order(tmp_path, cluster):
    events = ("--events", cluster.urls, "--events-replicas", "3")
    with primary_and_standby(tmp_path, cluster, *events) as (a, b):
        with senders([a, b], 3) as threads:
            wait_for(lambda: sum(len(t.acked) for t in threads) >= 150, "transfers")
            a.kill()
            done = sum(len(t.acked) for t in threads)
            wait_for(lambda: sum(len(t.acked) for t in threads) >= done + 150,
                     "transfers on the new primary")
        a.start()
        wait_for_role(a, "standby")
        with admin(b) as client:
            wait_for_events_published(client)
        stream = read_events(cluster.urls)
    assert_gap_free(stream)
    created = [body["id"] for _, _, body in stream if body["type"] == "transfer.created"]
    acked = {tid for thread in threads for tid in thread.acked}
    assert len(created) == len(set(created))  # each once
    assert acked <= set(created)  # every acknowledged transfer (and the world's funding)
    assert [b["wal_seq"] for _, _, b in stream] == sorted(b["wal_seq"] for _, _, b in stream)


@contextmanager
def replies_unread(switch):
    """A client of `switch` that sends requests and reads none of the replies, until the switch
    stops reading from it: the replies fill its write buffer, and a shutdown waits for them
    (up to shutdown_timeout_s) while this lasts."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((switch.host, switch.port))
    try:
        sock.sendall(encode_frame(encode_body({"id": 0, "op": "hello", "args": {
            "participant": "admin", "token": ADMIN_TOKEN}}, "msgpack")))
        request = encode_frame(encode_body({"id": 1, "op": "stats"}, "msgpack"))
        sock.setblocking(False)
        pending = b""  # what is left of the frame being sent: frames go whole, one after another
        refused_since = None  # the last send refused for want of room, since when
        while refused_since is None or time.monotonic() - refused_since < 1.0:
            pending = pending or request
            try:
                pending = pending[sock.send(pending):]
                refused_since = None
            except BlockingIOError:
                refused_since = refused_since or time.monotonic()
                time.sleep(0.01)
        yield
    finally:
        sock.close()


def test_a_standby_stopping_does_not_take_over_when_the_primary_leaves(tmp_path, cluster):
    """A standby whose shutdown is under way (held open by a client that reads nothing) must
    not take the lease the primary hands back: it would fence the stream and open for writes
    only to stop, and its shutdown would then wait for what a primary waits for."""
    with primary_and_standby(tmp_path, cluster) as (a, b):
        with replies_unread(b):
            b.process.send_signal(signal.SIGTERM)
            wait_for(lambda: b.log_events("shutting_down"), "b to begin its shutdown")
            assert a.stop() == 0  # hands the lease back
            time.sleep(2.0)  # 20 of the standby's looks at the lease (lease_poll_interval_s)
            assert b.process.poll() is None  # still in its shutdown, held by the client
            assert not b.log_events("promoted_to_primary")
        assert b.stop() == 0
        assert b.log_events("stopped")


def test_a_cluster_whose_messages_are_too_small_is_refused_at_start(tmp_path):
    small = NatsCluster(tmp_path / "nats", size=1, max_payload_bytes=1 << 20).start()
    try:
        code, output = run_switch_once(tmp_path / "data", "--replication", small.urls,
                                       "--node-id", "a", "--replication-replicas", "1",
                                       "--advertise", "127.0.0.1:7999")
    finally:
        small.stop()
    assert code == 1
    assert "max_payload" in output and "1048576" in output and "8MB" in output


def test_replication_without_a_node_id_or_a_fixed_address_is_a_usage_error(tmp_path):
    code, output = run_switch_once(tmp_path / "data", "--replication", "nats://127.0.0.1:1")
    assert code == 2 and "--node-id" in output
    code, output = run_switch_once(tmp_path / "data", "--replication", "nats://127.0.0.1:1",
                                   "--node-id", "a")  # and --port 0
    assert code == 2 and "--advertise" in output
