"""fsync fails (a real EIO from libc, injected with an LD_PRELOAD shim into the real switch
process): fail-stop for writes, reads keep working (from the durable state only), a clear log
line, nothing acknowledged lost, and a restart once the disk is healthy recovers; unlike a full
disk, a failed fsync never resumes in-process (the kernel may have dropped the dirty pages)."""
import threading
import time

import pytest

from support.switch_process import SwitchProcess
from support.wire import WireClient
from support.world import FUNDS, create_world, lookup_all

from hardening.fault_support import (RecordingSender, assert_books_balance, build_fault_shim,
                                     wait_for_durable_reads)


@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    return build_fault_shim(tmp_path_factory.mktemp("shim"))


def fault_env(shim, tmp_path, path_contains: str) -> dict:
    return {"LD_PRELOAD": str(shim), "FAULT_TRIGGER": str(tmp_path / "fail-fsync-now"),
            "FAULT_PATH_CONTAINS": path_contains, "FAULT_LOG": str(tmp_path / "faults.log")}


def injected(tmp_path) -> list[str]:
    log = tmp_path / "faults.log"
    return log.read_text().splitlines() if log.exists() else []


def test_fsync_eio_stops_writes_keeps_reads_and_loses_nothing_acknowledged(tmp_path, shim):
    env = fault_env(shim, tmp_path, "/wal/wal-")
    switch = SwitchProcess(tmp_path / "data", env=env).start()
    try:
        with WireClient(switch.host, switch.port) as admin:
            admin.hello("admin", switch.admin_token)
            create_world(admin)
            stop = threading.Event()
            senders = [RecordingSender(switch.host, switch.port, switch.admin_token, f"s{n}",
                                       stop) for n in range(3)]
            for sender in senders:
                sender.start()
            time.sleep(0.6)
            (tmp_path / "fail-fsync-now").touch()  # the disk starts failing, mid-load
            for sender in senders:
                sender.join(30)
            stop.set()
            assert not any(s.is_alive() for s in senders)
            assert [s.error for s in senders] == [None] * 3
            assert [s.other for s in senders] == [[], [], []], "only `internal` may fail"
            acked = {k: v for s in senders for k, v in s.acked.items()}
            failed = {k: v for s in senders for k, v in s.internal.items()}
            sent = {k: v for s in senders for k, v in s.sent.items()}
            assert len(acked) > 50, "the load did not get going before the fault"
            assert all(s.internal for s in senders), "every client must see the failure"
            waiting = [m for m in failed.values() if m.startswith("not durable")]
            assert waiting, "the requests waiting for the failed fsync must get `internal`"
            assert all("Input/output error" in m for m in failed.values()), failed

            # fail-stop: every later mutation is refused, of any kind
            for op, args in [
                ("transfer", {"id": "late-1", "debit_account": "a-1", "credit_account": "b-1",
                              "amount": 1}),
                ("create_accounts", {"accounts": [{"id": "late-acc", "participant": "bank-a",
                                                   "currency": "USD"}]}),
                ("close_window", {})]:
                reply = admin.request(op, args)
                assert not reply["ok"] and reply["error"]["code"] == "internal", reply
                assert "writes are stopped" in reply["error"]["message"]
            # reads keep working, from the durable state only: what failed is not visible
            assert admin.call("ping") == {}
            wait_for_durable_reads(admin)
            assert not lookup_all(admin, failed), "a transfer that got `internal` is visible"
            accounts = assert_books_balance(admin)
            assert accounts["a-1"]["balance"] + accounts["b-1"]["balance"] == FUNDS
            some_acked = sorted(acked)[:50]
            assert set(lookup_all(admin, some_acked)) == set(some_acked)
            assert admin.call("get_account_transfers", {"account": "b-1", "limit": 10})
            stats = admin.call("stats")
            assert "Input/output error" in stats["wal"]["failed"]
        stopped = switch.log_events("writes_stopped")
        assert len(stopped) == 1 and "Input/output error" in stopped[0]["reason"], stopped
        assert stopped[0]["level"] == "critical" and "restart" in stopped[0]["action"]
        assert len(injected(tmp_path)) == 1, "after a failed fsync the log must not be " \
                                             "fsynced again (its dirty pages may be gone)"
        assert switch.stop() == 0
    finally:
        switch.stop()

    (tmp_path / "fail-fsync-now").unlink()  # the disk is replaced or healthy again
    switch.start()
    try:
        with WireClient(switch.host, switch.port) as admin:
            admin.hello("admin", switch.admin_token)
            found = lookup_all(admin, sent)
            missing = [i for i in acked if i not in found]
            assert not missing, f"acknowledged transfers lost: {missing[:5]}"
            for transfer_id, (amount, timestamp) in acked.items():
                assert (found[transfer_id]["amount"], found[transfer_id]["timestamp"]) == \
                    (amount, timestamp)
            accounts = assert_books_balance(admin)
            moved = sum(t["amount"] for t in found.values())
            assert accounts["b-1"]["balance"] == moved
            assert accounts["a-1"]["balance"] == FUNDS - moved
            assert admin.call("transfer", {"id": "after-recovery", "debit_account": "a-1",
                                           "credit_account": "b-1", "amount": 1})["status"] \
                == "created"
    finally:
        switch.stop()
