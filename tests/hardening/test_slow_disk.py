"""A disk gone slow (fdatasync delayed by an LD_PRELOAD shim in the real switch process): the
small writes the event loop makes itself go back to the WAL thread after the first slow fsync,
so a slow disk stalls the loop once, not at every write (switch/storage/wal_writer.py); and
every transfer is still answered, durable."""
import pytest

from payswitch.switch.storage.wal_writer import IN_LOOP_WRITE_MAX_FSYNC_S
from support.switch_process import SwitchProcess
from support.wire import WireClient
from support.world import create_world

from hardening.fault_support import build_fault_shim
from metrics.metrics_support import http_get, metrics_port, samples, value

TRANSFERS = 20
# Every fsync of the WAL while the trigger exists: well over the limit for writing in the loop
DELAY_US = int(IN_LOOP_WRITE_MAX_FSYNC_S * 1e6) * 3


@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    return build_fault_shim(tmp_path_factory.mktemp("shim"))


def wal_writes(switch) -> dict[str, float]:
    scraped = samples(http_get(metrics_port(switch), "/metrics")[1])
    return {thread: value(scraped, "payswitch_wal_writes_total", thread=thread)
            for thread in ("event_loop", "wal")}


def test_after_a_slow_fsync_the_writes_go_to_the_wal_thread(tmp_path, shim):
    trigger = tmp_path / "slow-disk-now"
    env = {"LD_PRELOAD": str(shim), "FAULT_TRIGGER": str(trigger),
           "FAULT_PATH_CONTAINS": "/wal/wal-", "FAULT_DELAY_US": str(DELAY_US),
           "FAULT_LOG": str(tmp_path / "faults.log")}
    switch = SwitchProcess(tmp_path / "data", extra_args=("--metrics-port", "0"),
                           env=env).start()
    try:
        with WireClient(switch.host, switch.port) as admin:
            admin.hello("admin", switch.admin_token)
            create_world(admin)
            trigger.touch()  # the disk turns slow
            before = wal_writes(switch)
            for n in range(TRANSFERS):  # one at a time: each write finds the writer idle
                created = admin.call("transfer", {
                    "id": f"slow-{n}", "debit_account": "a-funding", "credit_account": "a-2",
                    "amount": 1})
                assert created["status"] == "created", created
            after = wal_writes(switch)
    finally:
        switch.stop()
    delayed = (tmp_path / "faults.log").read_text().splitlines()
    assert len(delayed) >= TRANSFERS, "the shim did not slow the WAL's fsyncs"
    in_loop = after["event_loop"] - before["event_loop"]
    handed = after["wal"] - before["wal"]
    # the first write may be made in the loop (the fsync before it was fast); none after it
    assert in_loop <= 1 and in_loop + handed == TRANSFERS, (in_loop, handed)
