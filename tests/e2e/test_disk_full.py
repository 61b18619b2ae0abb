"""A full disk under the log: fail-stop for writes, nothing half-written acknowledged, reads served
from the durable state only, and writes resume by themselves once space returns (no restart)."""
import time

import pytest

from support.filesystem import resize_tmpfs, small_tmpfs
from support.switch_process import SwitchProcess
from support.wire import WireClient
from support.world import FUNDS, assert_debits_equal_credits, create_world, lookup_all

from hardening.fault_support import wait_for_durable_reads

ACCOUNTS = ["a-funding", "a-1", "a-2", "b-1", "b-eur"]
RESUME_MIN_FREE_BYTES = 1 << 20


def transfer_args(transfer_id: str) -> dict:
    return {"id": transfer_id, "debit_account": "a-1", "credit_account": "b-1", "amount": 1,
            "reference": "r" * 256}


def fill_until_internal(admin: WireClient) -> tuple[dict[str, int], dict[str, str]]:
    """Pipelines transfers with long references until the switch answers `internal`;
    (acknowledged id -> timestamp, failed id -> message)."""
    acked, failed = {}, {}
    for round_number in range(2000):
        ids = [f"f{round_number}-{n}" for n in range(8)]
        for n, transfer_id in enumerate(ids):
            admin.send({"id": n, "op": "transfer", "args": transfer_args(transfer_id)})
        for transfer_id in ids:
            reply = admin.recv()
            if reply["ok"]:
                acked[transfer_id] = reply["result"]["timestamp"]
            else:
                assert reply["error"]["code"] == "internal", reply
                failed[transfer_id] = reply["error"]["message"]
        if failed:
            return acked, failed
    raise AssertionError("the disk never filled up")


def wait_until_created(admin: WireClient, transfer_id: str, timeout_s: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        reply = admin.request("transfer", transfer_args(transfer_id))
        if reply["ok"]:
            return reply["result"]
        assert reply["error"]["code"] == "internal", reply
        assert time.monotonic() < deadline, f"writes did not resume: {reply}"
        time.sleep(0.1)


def assert_durable_view(admin: WireClient, acked: dict[str, int], failed: dict[str, str]):
    found = lookup_all(admin, [*acked, *failed])
    assert not set(failed) & set(found), "a transfer that got `internal` is visible"
    assert set(found) == set(acked), "an acknowledged transfer is missing"
    assert all(found[i]["timestamp"] == ts for i, ts in acked.items())
    balances = {a["id"]: a["balance"] for a in admin.call(
        "lookup_accounts", {"ids": ["a-1", "b-1"]})["accounts"]}
    assert balances["b-1"] == len(acked) and balances["a-1"] == FUNDS - len(acked)
    assert_debits_equal_credits(admin, ACCOUNTS)


@pytest.mark.parametrize("segment_bytes", [64 << 20, 8 << 10], ids=["one-segment", "rotating"])
def test_disk_full_serves_only_durable_state_and_resumes_when_space_returns(tmp_path,
                                                                            segment_bytes):
    with small_tmpfs(tmp_path / "disk", 192 * 1024) as disk:
        switch = SwitchProcess(disk / "data", extra_args=(
            "--resume-min-free-bytes", str(RESUME_MIN_FREE_BYTES),
            "--wal-segment-bytes", str(segment_bytes))).start()
        try:
            with WireClient(switch.host, switch.port) as admin:
                admin.hello("admin", switch.admin_token)
                create_world(admin)
                acked, failed = fill_until_internal(admin)
                assert any(m.startswith("not durable") for m in failed.values()), \
                    "no request was executed in memory and then failed by the log"
                later = admin.request("transfer", transfer_args("after-failure"))
                assert later["error"]["code"] == "internal", later
                failed["after-failure"] = later["error"]["message"]
                wait_for_durable_reads(admin)
                assert_durable_view(admin, acked, failed)
                assert "No space left" in admin.call("stats")["wal"]["failed"]

                resize_tmpfs(disk, 16 << 20)
                resumed = wait_until_created(admin, "after-space")
                acked["after-space"] = resumed["timestamp"]
                resent = sorted(failed)
                results = admin.call("create_transfers", {"transfers": [
                    transfer_args(i) for i in resent]})["results"]
                assert [r["status"] for r in results] == ["created"] * len(failed), \
                    "a transfer that got `internal` must be safe to resend under its id"
                acked.update({i: r["timestamp"] for i, r in zip(resent, results)})
                assert_durable_view(admin, acked, {})
            assert len(switch.log_events("writes_resumed")) == 1
            assert switch.stop() == 0

            switch.start()
            with WireClient(switch.host, switch.port) as admin:
                admin.hello("admin", switch.admin_token)
                assert_durable_view(admin, acked, {})
        finally:
            switch.stop()
