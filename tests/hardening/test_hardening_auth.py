"""Security against a real switch process: failed hellos slowed per peer address and logged
(never the token), no token in any log or data file, and every op tried as the wrong
participant."""
import time

from payswitch.protocol import OPS
from support.switch_process import SwitchProcess
from support.wire import WireClient
from support.world import FUNDS, create_world

from hardening.net_support import (QUIET_FLOOR_MS, LatencyProbe, assert_within_2x,
                                   measure_latency)


def timed(client: WireClient, op: str, args: dict) -> tuple[dict, float]:
    started = time.monotonic()
    reply = client.request(op, args)
    return reply, time.monotonic() - started


# --- failed hellos -----------------------------------------------------------------------

BASE_S, MAX_S = 0.05, 0.4


def expected_delay(failure: int) -> float:
    return min(MAX_S, BASE_S * 2 ** (failure - 1))


def test_failed_hellos_are_slowed_per_address_and_logged_without_blocking_anyone(tmp_path,
                                                                                 stopper):
    switch = SwitchProcess(tmp_path / "data", extra_args=(
        "--hello-failure-delay-s", str(BASE_S), "--hello-failure-max-delay-s", str(MAX_S))).start()
    stopper(switch)
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        tokens = create_world(admin)
    baseline = measure_latency(switch.host, switch.port, switch.admin_token, count=300)
    probe = LatencyProbe(switch.host, switch.port, switch.admin_token)
    wrong = "wrong-token-QmFkVG9rZW4"
    with WireClient(switch.host, switch.port) as attacker:
        # one after another: each failure doubles the wait, up to the maximum
        started = time.monotonic()
        for failure in range(1, 7):
            reply, took = timed(attacker, "hello", {"participant": "bank-a", "token": wrong})
            assert reply["error"]["code"] == "unauthenticated"
            assert expected_delay(failure) - 0.01 <= took <= expected_delay(failure) + 0.3, \
                (failure, took)
        total = time.monotonic() - started
        assert total >= sum(expected_delay(n) for n in range(1, 7)) - 0.02, total
        # replies stay in order: pings pipelined behind a failed hello wait for it
        attacker.send({"id": "h", "op": "hello", "args": {"participant": "nobody",
                                                          "token": wrong}})
        attacker.send({"id": "p1", "op": "ping"})
        attacker.send({"id": "p2", "op": "ping"})
        order = [attacker.recv()["id"] for _ in range(3)]
        assert order == ["h", "p1", "p2"]
    # more connections from the same address buy no more guesses: their failures are
    # answered one delay apart
    attackers = [WireClient(switch.host, switch.port) for _ in range(3)]
    started = time.monotonic()
    for client in attackers:
        client.send({"id": 1, "op": "hello", "args": {"participant": "admin", "token": wrong}})
    finished = []
    for client in attackers:
        assert client.recv()["error"]["code"] == "unauthenticated"
        finished.append(time.monotonic() - started)
        client.close()
    assert max(finished) >= 3 * MAX_S - 0.02, finished
    # the good client was never held up, and a correct hello is answered at once
    under_attack = probe.result()
    with WireClient(switch.host, switch.port) as good:
        reply, took = timed(good, "hello", {"participant": "bank-a", "token": tokens["bank-a"]})
        assert reply["ok"] and took < 0.1, took
        # a success resets the count: the next failure waits the base delay again
        reply, took = timed(good, "hello", {"participant": "bank-a", "token": wrong})
        assert reply["error"]["code"] == "unauthenticated" and took < BASE_S + 0.1, took
    print("\nfailed hellos:", {"latency_baseline": baseline, "latency_during": under_attack})
    assert_within_2x(baseline, under_attack, QUIET_FLOOR_MS)
    failures = switch.log_events("hello_failed")
    assert [f["failures"] for f in failures[:10]] == list(range(1, 11)), failures
    assert failures[-1]["failures"] == 1  # after the reset
    for line in failures:
        assert set(line) >= {"participant", "peer", "failures", "delay_s"}
        assert line["peer"].startswith("127.0.0.1:")
    assert {f["participant"] for f in failures} == {"bank-a", "nobody", "admin"}
    assert wrong not in switch.log()


def test_no_token_is_ever_written_to_a_log_or_to_disk(tmp_path, stopper):
    switch = SwitchProcess(tmp_path / "data", extra_args=("--hello-failure-delay-s", "0")).start()
    stopper(switch)
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        tokens = create_world(admin)
        more = admin.call("create_participants", {"participants": [
            {"id": "bank-c", "name": "Bank C"}]})["results"][0]["token"]
        tokens["bank-c"] = more
    guesses = ["guess-" + tokens["bank-a"][:10], tokens["bank-a"][:-1], "QWxhZGRpbjpvcGVu"]
    with WireClient(switch.host, switch.port) as client:
        for participant, token in tokens.items():
            client.hello(participant, token)
        for guess in guesses + [tokens["bank-b"]]:  # a real token, for the wrong participant
            assert client.request("hello", {"participant": "bank-a", "token": guess})[
                "error"]["code"] == "unauthenticated"
        assert client.request("hello", {"participant": "admin", "token": tokens["bank-c"]})[
            "error"]["code"] == "unauthenticated"
    assert switch.stop() == 0  # a clean stop also writes a snapshot
    secrets = [*tokens.values(), *guesses, switch.admin_token]
    log = switch.log()
    assert len(switch.log_events("hello_failed")) == 5
    for secret in secrets:
        assert secret not in log
    data_files = [p for p in (tmp_path / "data").rglob("*") if p.is_file()
                  and p.name != "admin.token"]
    assert any(p.parent.name == "wal" for p in data_files)
    assert any(p.parent.name == "snapshots" for p in data_files)
    for path in data_files:
        content = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in content, (path, "holds a token in plain text")


# --- every op as the wrong participant -----------------------------------------------------

def tx(tid, debit, credit, amount, **extra) -> dict:
    return {"id": tid, "debit_account": debit, "credit_account": credit, "amount": amount,
            **extra}


def wait_batch(client: WireClient, batch_id: str) -> dict:
    deadline = time.monotonic() + 20
    while True:
        batch = client.call("get_batch", {"batch_id": batch_id})
        if batch["state"] in ("completed", "rejected") or time.monotonic() > deadline:
            return batch
        time.sleep(0.05)


def test_every_op_as_the_wrong_participant(switch, admin):
    """bank-a owns accounts, transfers (posted, pending), a batch and an upload; bank-c (no
    business with bank-a) and bank-b (its counterparty) try every op on them. Each must get the
    precise refusal, or see nothing of bank-a's, and bank-a's state must not change."""
    tokens = create_world(admin)
    tokens["bank-c"] = admin.call("create_participants", {"participants": [
        {"id": "bank-c", "name": "Bank C"}]})["results"][0]["token"]
    admin.call("create_accounts", {"accounts": [
        {"id": "c-1", "participant": "bank-c", "currency": "USD"}]})
    a = WireClient(switch.host, switch.port)
    a.hello("bank-a", tokens["bank-a"])
    assert a.call("transfer", tx("a-own", "a-1", "a-2", 10))["status"] == "created"
    assert a.call("transfer", tx("a-to-b", "a-1", "b-1", 20))["status"] == "created"
    assert a.call("transfer", tx("a-hold", "a-1", "a-2", 30, pending=True))["status"] == \
        "created"
    a.call("submit_batch", {"batch_id": "a-batch", "format": "json", "mode": "partial",
                            "items": [tx("a-b-1", "a-1", "a-2", 1)],
                            "control_count": 1, "control_sum": 1})
    assert wait_batch(a, "a-batch")["state"] == "completed"
    a.call("upload_batch_part", {"batch_id": "a-upload", "seq": 0, "data": "aWQs"})
    a_ids = ["a-funding", "a-1", "a-2"]
    a_transfers = ["fund-a-1", "a-own", "a-to-b", "a-hold", "a-b-1"]

    def a_state() -> dict:
        return {"accounts": admin.call("lookup_accounts", {"ids": a_ids})["accounts"],
                "transfers": admin.call("lookup_transfers", {"ids": a_transfers})["transfers"],
                "participants": admin.call("stats")["ledger"]["participants"],
                "batch": admin.call("get_batch", {"batch_id": "a-batch"}),
                "windows": admin.call("list_windows")["windows"]}

    before = a_state()
    c = WireClient(switch.host, switch.port)
    c.hello("bank-c", tokens["bank-c"])
    b = WireClient(switch.host, switch.port)
    b.hello("bank-b", tokens["bank-b"])
    covered = set()

    def error(client, op, args) -> str:
        covered.add(op)
        reply = client.request(op, args)
        assert reply["ok"] is False, (op, reply)
        return reply["error"]["code"]

    def result(client, op, args) -> dict:
        covered.add(op)
        return client.call(op, args)

    # no rights involved
    assert result(c, "ping", {}) == {}
    # a session for someone else: the token is bank-c's
    assert error(c, "hello", {"participant": "bank-a", "token": tokens["bank-c"]}) == \
        "unauthenticated"
    assert result(c, "lookup_accounts", {"ids": ["c-1"]})["accounts"][0]["id"] == "c-1"
    # the operator's ops
    assert error(c, "stats", {}) == "forbidden"
    assert error(c, "state_digest", {}) == "forbidden"
    assert error(c, "create_participants", {"participants": [{"id": "x", "name": "X"}]}) == \
        "forbidden"
    assert error(c, "set_participant", {"id": "bank-a", "suspended": True}) == "forbidden"
    assert error(c, "close_window", {}) == "forbidden"
    assert error(c, "rotate_token", {"participant": "bank-a"}) == "forbidden"
    # participants: only its own record
    assert error(c, "get_participant", {"id": "bank-a"}) == "forbidden"
    assert result(c, "get_participant", {"id": "bank-c"})["id"] == "bank-c"
    # accounts: only its own
    assert result(c, "create_accounts", {"accounts": [
        {"id": "c-sneaky", "participant": "bank-a", "currency": "USD"}]})["results"] == \
        [{"status": "forbidden", "message": "participant bank-a is not bank-c: a participant may "
                                            "create accounts only for itself"}]
    assert result(c, "lookup_accounts", {"ids": a_ids})["accounts"] == []
    # debits only its own accounts; posts and voids only its own pending transfers
    assert result(c, "create_transfers", {"transfers": [tx("c-steal-1", "a-1", "c-1", 5)]})[
        "results"] == [{"status": "forbidden", "timestamp": None, "message":
                        "debit account a-1 is not one of bank-c's accounts: a participant may "
                        "debit only its own accounts"}]
    assert error(c, "transfer", tx("c-steal-2", "a-1", "c-1", 5)) == "forbidden"
    assert error(b, "transfer", tx("b-steal", "a-1", "b-1", 5)) == "forbidden"
    assert error(c, "transfer", {"id": "c-post", "post_pending_id": "a-hold"}) == \
        "pending_not_found"
    assert error(c, "transfer", {"id": "c-void", "void_pending_id": "a-hold"}) == \
        "pending_not_found"
    # sees only transfers touching its accounts
    assert result(c, "lookup_transfers", {"ids": a_transfers})["transfers"] == []
    assert [t["id"] for t in result(b, "lookup_transfers", {"ids": a_transfers})[
        "transfers"]] == ["a-to-b"]
    assert error(c, "get_account_transfers", {"account": "a-1"}) == "account_not_found"
    assert error(b, "get_account_transfers", {"account": "a-1"}) == "account_not_found"
    # windows: only its own positions (none for bank-c)
    report = result(c, "get_window", {"window_id": 1})
    assert report["positions"] == [] and report["instructions"] == []
    assert [p["participant"] for p in result(b, "get_window", {"window_id": 1})[
        "positions"]] == ["bank-b"]
    assert result(c, "get_window_matrix", {"window_id": 1})["rows"] == []
    assert all(set(r.values()) & {"bank-b"}
               for r in result(b, "get_window_matrix", {"window_id": 1})["rows"])
    windows = result(c, "list_windows", {})["windows"]
    assert all(set(w) == {"window_id", "state", "opened_at", "closed_at"} for w in windows)
    # batches: someone else's batch id is taken, and invisible
    assert error(c, "upload_batch_part", {"batch_id": "a-upload", "seq": 1, "data": "YQ=="}) == \
        "exists_with_different_fields"
    assert error(c, "submit_batch", {"batch_id": "a-batch", "format": "json", "mode": "partial",
                                     "items": [tx("a-b-1", "a-1", "a-2", 1)],
                                     "control_count": 1, "control_sum": 1}) == \
        "exists_with_different_fields"
    assert error(c, "get_batch", {"batch_id": "a-batch"}) == "batch_not_found"
    assert error(c, "get_batch_results", {"batch_id": "a-batch"}) == "batch_not_found"
    # its own batch that debits bank-a: accepted, every item forbidden
    assert result(c, "submit_batch", {"batch_id": "c-batch", "format": "json",
                                      "mode": "partial",
                                      "items": [tx("c-b-1", "a-1", "c-1", 1)],
                                      "control_count": 1, "control_sum": 1})["state"] == \
        "received"
    assert wait_batch(c, "c-batch")["failed"] == 1
    assert [r["status"] for r in c.call("get_batch_results", {"batch_id": "c-batch"})[
        "results"]] == ["forbidden"]

    missing = set(OPS) - covered
    assert not missing, f"add a wrong-participant case for {sorted(missing)}"
    assert a_state() == before
    assert admin.call("lookup_accounts", {"ids": ["a-1"]})["accounts"][0]["balance"] == \
        FUNDS - 10 - 20 - 1
    # bank-c's failed hello left its session as it was, and bank-a was not suspended
    assert c.call("lookup_accounts", {"ids": ["c-1"]})["accounts"][0]["id"] == "c-1"
    assert a.call("transfer", tx("a-after", "a-1", "a-2", 1))["status"] == "created"
    for client in (a, b, c):
        client.close()
    assert tokens["bank-a"] not in switch.log() and tokens["bank-c"] not in switch.log()
