"""A full disk under the log: fail-stop for writes, reads keep working, nothing half-written is
acknowledged, and after space returns a restart recovers every acknowledged transfer."""
from support.filesystem import resize_tmpfs, small_tmpfs
from support.switch_process import SwitchProcess
from support.wire import WireClient
from support.world import FUNDS, assert_debits_equal_credits, create_world

ACCOUNTS = ["a-funding", "a-1", "a-2", "b-1", "b-eur"]


def fill_until_internal(admin: WireClient) -> tuple[dict[str, int], list[dict]]:
    """Pipelines transfers with long references until the switch answers `internal`."""
    acked, failures = {}, []
    for round_number in range(2000):
        ids = [f"f{round_number}-{n}" for n in range(8)]
        for n, transfer_id in enumerate(ids):
            admin.send({"id": n, "op": "transfer", "args": {
                "id": transfer_id, "debit_account": "a-1", "credit_account": "b-1",
                "amount": 1, "reference": "r" * 256}})
        for transfer_id in ids:
            reply = admin.recv()
            if reply["ok"]:
                acked[transfer_id] = reply["result"]["timestamp"]
            else:
                failures.append(reply)
        if failures:
            return acked, failures
    raise AssertionError("the disk never filled up")


def test_disk_full_stops_writes_keeps_reads_and_recovers_after_space_returns(tmp_path):
    with small_tmpfs(tmp_path / "disk", 192 * 1024) as disk:
        switch = SwitchProcess(disk / "data").start()
        try:
            with WireClient(switch.host, switch.port) as admin:
                admin.hello("admin", switch.admin_token)
                create_world(admin)
                acked, failures = fill_until_internal(admin)
                assert all(f["error"]["code"] == "internal" for f in failures), failures
                later = admin.request("transfer", {"id": "after-failure", "amount": 1,
                                                   "debit_account": "a-1", "credit_account": "b-1"})
                assert later["error"]["code"] == "internal"
                assert admin.call("lookup_accounts", {"ids": ["a-1"]})["accounts"]
            assert "writes_stopped" in switch.log()
            assert switch.stop() == 0
            resize_tmpfs(disk, 16 << 20)
            switch.start()
            with WireClient(switch.host, switch.port) as admin:
                admin.hello("admin", switch.admin_token)
                found = {t["id"]: t for t in admin.call(
                    "lookup_transfers", {"ids": sorted(acked)}, "msgpack")["transfers"]}
                assert set(found) == set(acked), "an acknowledged transfer was lost"
                assert all(found[i]["timestamp"] == ts for i, ts in acked.items())
                b1 = admin.call("lookup_accounts", {"ids": ["b-1", "a-1"]})["accounts"]
                balances = {a["id"]: a["balance"] for a in b1}
                assert balances["a-1"] == FUNDS - balances["b-1"]
                assert balances["b-1"] >= len(acked)
                assert_debits_equal_credits(admin, ACCOUNTS)
                assert admin.call("transfer", {"id": "after-recovery", "amount": 1,
                                               "debit_account": "a-1",
                                               "credit_account": "b-1"})["status"] == "created"
        finally:
            switch.stop()
