"""A full disk (a real tmpfs) under concurrent load: only `internal` for what was not durable,
`wal verify` sees at most a torn tail, a restart while the disk is still full serves reads and
stops writes again, and once space returns a restart recovers every acknowledged transfer and
takes writes again. (Resuming without a restart is tested in tests/e2e/test_disk_full.py.)"""
import threading

from support.filesystem import resize_tmpfs, small_tmpfs
from support.switch_process import SwitchProcess
from support.wire import WireClient
from support.world import FUNDS, create_world, lookup_all

from hardening.fault_support import (RecordingSender, assert_books_balance, run_switch_cli,
                                     wait_for_durable_reads)


def test_disk_full_under_concurrent_load_then_restart_full_then_restart_with_space(tmp_path):
    with small_tmpfs(tmp_path / "disk", 256 * 1024) as disk:
        switch = SwitchProcess(disk / "data")
        try:
            switch.start()
            with WireClient(switch.host, switch.port) as admin:
                admin.hello("admin", switch.admin_token)
                create_world(admin)
            stop = threading.Event()
            senders = [RecordingSender(switch.host, switch.port, switch.admin_token, f"d{n}",
                                       stop) for n in range(3)]
            for sender in senders:
                sender.start()
            for sender in senders:
                sender.join(60)
            stop.set()
            assert [s.error for s in senders] == [None] * 3
            assert [s.other for s in senders] == [[], [], []]
            assert all(s.internal for s in senders), "the disk never filled up"
            acked = {k: v for s in senders for k, v in s.acked.items()}
            sent = {k: v for s in senders for k, v in s.sent.items()}
            assert all("No space left on device" in m for s in senders
                       for m in s.internal.values())
            assert len(switch.log_events("writes_stopped")) == 1
            assert switch.stop() == 0

            code, output = run_switch_cli("wal", "verify", "--data-dir", switch.data_dir)
            assert code == 0 and "result: clean" in output, output

            switch.start()  # still full: recovery works, reads answer, the first write stops
            with WireClient(switch.host, switch.port) as admin:
                admin.hello("admin", switch.admin_token)
                assert set(acked) <= set(lookup_all(admin, acked))
                reply = admin.request("transfer", {"id": "still-full", "debit_account": "a-1",
                                                   "credit_account": "b-1",
                                                   "amount": 1, "reference": "x" * 256})
                for n in range(200):
                    if not reply["ok"]:
                        break
                    reply = admin.request("transfer", {
                        "id": f"still-full-{n}", "debit_account": "a-1",
                        "credit_account": "b-1", "amount": 1, "reference": "x" * 256})
                assert reply["error"]["code"] == "internal", reply
                wait_for_durable_reads(admin)
                assert_books_balance(admin)
            assert switch.stop() == 0

            resize_tmpfs(disk, 16 << 20)
            switch.start()
            with WireClient(switch.host, switch.port) as admin:
                admin.hello("admin", switch.admin_token)
                found = lookup_all(admin, sent)
                assert set(acked) <= set(found), "an acknowledged transfer was lost"
                assert all((found[i]["amount"], found[i]["timestamp"]) == v
                           for i, v in acked.items())
                accounts = assert_books_balance(admin)
                assert accounts["a-1"]["balance"] + accounts["b-1"]["balance"] == FUNDS
                assert admin.call("transfer", {"id": "space-again", "debit_account": "a-1",
                                               "credit_account": "b-1", "amount": 1})[
                    "status"] == "created"
        finally:
            switch.stop()
