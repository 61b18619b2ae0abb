"""Overload against a real switch process: past the per-connection in-flight limit or the global
limit on replies waiting for the WAL, requests are answered `overloaded` at once, in order, and
change nothing; a client that respects the limit never sees it; memory stays bounded."""
import threading

from payswitch.protocol import decode_body, encode_body, encode_frame
from support.wire import WireClient
from support.world import FUNDS

from hardening.net_support import (SHARED_CPU_FLOOR_MS, LatencyProbe,
                                   assert_within_2x, measure_latency, rss_bytes, run_niced,
                                   start_with_world)


def transfer_frame(tid: str, request_id, codec: str = "msgpack") -> bytes:
    return encode_frame(encode_body({"id": request_id, "op": "transfer", "args": {
        "id": tid, "debit_account": "a-1", "credit_account": "b-1", "amount": 1}}, codec))


def flood(switch, prefix: str, count: int, client: WireClient | None = None) -> dict[str, str]:
    """Pipelines `count` transfers on an admin connection in one write; returns each
    transfer id's outcome (`created` or the error code), checking ids and order."""
    if client is None:
        client = WireClient(switch.host, switch.port)
        client.hello("admin", switch.admin_token)
    with client:
        ids = [f"{prefix}-{n}" for n in range(count)]
        client.send_raw(b"".join(transfer_frame(tid, n, "msgpack" if n % 2 else "json")
                                 for n, tid in enumerate(ids)))
        outcomes = {}
        for n, tid in enumerate(ids):
            reply = client.recv()
            assert reply["id"] == n, reply  # in order, overloaded or not
            outcomes[tid] = reply["result"]["status"] if reply["ok"] else reply["error"]["code"]
        return outcomes


def assert_only_created_happened(admin: WireClient, outcomes: dict[str, str], before: dict):
    created = [tid for tid, outcome in outcomes.items() if outcome == "created"]
    refused = [tid for tid, outcome in outcomes.items() if outcome == "overloaded"]
    assert set(outcomes.values()) <= {"created", "overloaded"}, set(outcomes.values())
    found = {t["id"] for t in admin.call("lookup_transfers", {"ids": list(outcomes)})["transfers"]}
    assert found == set(created)
    assert not found & set(refused)
    stats = admin.call("stats")
    assert stats["ledger"]["transfers"] == before["ledger"]["transfers"] + len(created)
    balance = admin.call("lookup_accounts", {"ids": ["a-1"]})["accounts"][0]["balance"]
    assert balance == FUNDS - (before["a_debited"] + len(created))
    return created, refused


def snapshot(admin: WireClient, debited: int = 0) -> dict:
    return {"ledger": admin.call("stats")["ledger"], "a_debited": debited}


def test_past_the_per_connection_limit_requests_are_overloaded_and_change_nothing(tmp_path,
                                                                                  stopper):
    switch, admin = start_with_world(tmp_path, stopper, "--max-inflight-per-connection", "8")
    with admin:
        before = snapshot(admin)
        outcomes = flood(switch, "pc", 400)
        created, refused = assert_only_created_happened(admin, outcomes, before)
        assert created and refused, outcomes
        assert admin.call("stats")["shed"]["requests_overloaded"] == len(refused)
        # the message says what to do
        with WireClient(switch.host, switch.port) as client:
            client.hello("admin", switch.admin_token)
            client.send_raw(b"".join(transfer_frame(f"pm-{n}", n) for n in range(200)))
            replies = [client.recv() for _ in range(200)]
            messages = {r["error"]["message"] for r in replies if not r["ok"]}
            assert any("in flight on this connection" in m for m in messages), messages


def test_a_client_that_respects_the_limit_never_sees_overloaded(tmp_path, stopper):
    limit = 8
    switch, admin = start_with_world(tmp_path, stopper, "--max-inflight-per-connection", str(limit))
    with admin, WireClient(switch.host, switch.port) as client:
        client.hello("admin", switch.admin_token)
        before = snapshot(admin)
        total, sent, outcomes = 600, 0, {}
        while sent < min(limit, total):
            client.send_raw(transfer_frame(f"ok-{sent}", sent))
            sent += 1
        for n in range(total):
            reply = client.recv()
            assert reply["id"] == n and reply["ok"], reply  # never overloaded
            outcomes[f"ok-{n}"] = reply["result"]["status"]
            if sent < total:
                client.send_raw(transfer_frame(f"ok-{sent}", sent))
                sent += 1
        created, _ = assert_only_created_happened(admin, outcomes, before)
        assert len(created) == total
        assert admin.call("stats")["shed"]["requests_overloaded"] == 0


def test_past_the_global_queue_limit_requests_are_overloaded_and_change_nothing(tmp_path,
                                                                                stopper):
    switch, admin = start_with_world(tmp_path, stopper, "--max-queued-replies", "16")
    with admin:
        before = snapshot(admin)
        results: dict[str, dict] = {}
        clients = [WireClient(switch.host, switch.port) for _ in range(4)]
        for client in clients:
            client.hello("admin", switch.admin_token)
        threads = [threading.Thread(target=lambda k=k: results.update(
            {str(k): flood(switch, f"g{k}", 300, clients[k])})) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        outcomes = {tid: o for per_connection in results.values()
                    for tid, o in per_connection.items()}
        assert len(outcomes) == 1200
        created, refused = assert_only_created_happened(admin, outcomes, before)
        assert created and refused
        stats = admin.call("stats")
        assert stats["shed"]["requests_overloaded"] == len(refused)
        assert stats["queued_replies"] == 0
        # the saturation message, and the operator's log line
        with WireClient(switch.host, switch.port) as client:
            client.hello("admin", switch.admin_token)
            client.send_raw(b"".join(transfer_frame(f"gm-{n}", n) for n in range(300)))
            messages = {r["error"]["message"] for r in (client.recv() for _ in range(300))
                        if not r["ok"]}
            assert any("saturated" in m for m in messages), messages


def test_memory_stays_bounded_under_a_sustained_pipelined_flood(tmp_path, stopper):
    """Eight connections each pipeline 20,000 requests (a write every 50, pings and reads held
    behind it for the WAL) and read the replies only as they come: with small limits the switch
    sheds what it cannot queue instead of buffering it."""
    switch, admin = start_with_world(tmp_path, stopper, "--max-queued-replies", "64",
                          "--max-inflight-per-connection", "32")
    with admin:
        rss_before = rss_bytes(switch.process.pid)
        ping = encode_frame(encode_body({"id": 2, "op": "ping"}, "msgpack"))
        read = encode_frame(encode_body({"id": 3, "op": "lookup_accounts",
                                         "args": {"ids": ["a-1", "b-1"]}}, "msgpack"))
        clients = [WireClient(switch.host, switch.port, timeout_s=60) for _ in range(8)]
        for client in clients:
            client.hello("admin", switch.admin_token)
        errors, seen = [], set()

        def blast(k: int, client: WireClient) -> None:
            try:
                burst = b"".join(transfer_frame(f"m{k}-{n}", 1) + (ping + read) * 24 + ping
                                 for n in range(400))
                sender = threading.Thread(target=client.sock.sendall, args=(burst,))
                sender.start()
                for _ in range(400 * 50):
                    reply, _ = decode_body(client.recv_body())
                    seen.add("ok" if reply["ok"] else reply["error"]["code"])
                sender.join()
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(repr(error))
            finally:
                client.close()

        threads = [threading.Thread(target=blast, args=(k, c)) for k, c in enumerate(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not errors, errors
        assert seen == {"ok", "overloaded"}, seen
        rss_after = rss_bytes(switch.process.pid)
        stats = admin.call("stats")
        assert stats["queued_replies"] == 0
        assert stats["shed"]["requests_overloaded"] > 0
        assert rss_after - rss_before < 40 << 20, (rss_before, rss_after)


def send_and_read_tiny_frames(host: str, port: int, count: int) -> int:
    """The attacker: `count` 5-byte frames with an undecodable body, in one write, and reads
    every `bad_frame` reply."""
    with WireClient(host, port, timeout_s=60) as attacker:
        sender = threading.Thread(target=attacker.sock.sendall,
                                  args=(encode_frame(b"\xc1") * count,))
        sender.start()
        for _ in range(count):
            reply, _ = decode_body(attacker.recv_body())
            assert reply["error"]["code"] == "bad_frame"
        sender.join()
    return count


FLOOD_FLOOR_MS = {**SHARED_CPU_FLOOR_MS, "p99_ms": 25.0}


def test_a_flood_of_tiny_frames_on_one_connection_does_not_stall_the_others(tmp_path, stopper):
    """One read can hold tens of thousands of 5-byte frames (each a `bad_frame` to answer); the
    switch splits a read 512 frames at a time and handles a connection's frames for at most a
    short turn (turn_s) before serving the others. Without the turns a good client waited
    seconds here; with them but with each read split whole, 10-14 ms at p99."""
    switch, admin = start_with_world(tmp_path, stopper)
    admin.close()
    baseline = measure_latency(switch.host, switch.port, switch.admin_token, count=300)
    probe = LatencyProbe(switch.host, switch.port, switch.admin_token)
    answered = run_niced(send_and_read_tiny_frames, switch.host, switch.port, 400_000)
    under_attack = probe.result()
    print("\ntiny-frame flood:", {"latency_baseline": baseline, "latency_during": under_attack})
    assert answered == 400_000
    assert under_attack["samples"] >= 50
    # The stall this guards against is the whole flood's time (seconds); the p99 floor is wide
    # enough for a busy 2-core CI box (it broke there at 3 ms while other suites ran), and finer
    # latency figures belong to benchmarks.
    assert_within_2x(baseline, under_attack, FLOOD_FLOOR_MS)
