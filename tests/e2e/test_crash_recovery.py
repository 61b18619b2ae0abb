"""Crashes over real processes and real files: nothing acknowledged is ever lost."""
import itertools
import shutil
import signal
import threading
import time

import pytest

from support.load import TransferSender
from support.switch_process import SwitchProcess, run_switch_once
from support.wire import WireClient
from support.world import FUNDS, assert_debits_equal_credits, create_world, lookup_all
from payswitch.switch.storage.records import RecordScanner
from payswitch.switch.storage.recovery import recover
from payswitch.switch.storage.segments import list_segments, list_snapshots

ACCOUNTS = ["a-funding", "a-1", "a-2", "b-1", "b-eur"]
TRANSFER_FIELDS = ("debit_account", "credit_account", "amount", "reference")
sender_names = itertools.count()
SNAPSHOT_DEADLINE_S = 120.0  # generous: the builder is niced and the machine may be busy


def records_end(segment) -> int:
    """Where a segment's records end: the zeros the switch wrote ahead of them follow."""
    scanner = RecordScanner(segment.read_bytes())
    for _ in scanner:
        pass
    return scanner.good_end


def load_then_kill(switch: SwitchProcess, senders: int, run_s: float) -> list[TransferSender]:
    stop = threading.Event()
    threads = [TransferSender(switch.host, switch.port, switch.admin_token,
                              f"t{next(sender_names)}", stop)
               for _ in range(senders)]
    for thread in threads:
        thread.start()
    time.sleep(run_s)
    switch.kill()
    stop.set()
    for thread in threads:
        thread.join(10)
    return threads


def verify_after_restart(switch: SwitchProcess, threads: list[TransferSender]) -> int:
    acked = {k: v for t in threads for k, v in t.acked.items()}
    sent = set().union(*(t.sent_ids for t in threads))
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        found = lookup_all(admin, sent)
        for transfer_id, (item, timestamp) in acked.items():
            stored = found.get(transfer_id)
            assert stored is not None, f"acknowledged transfer {transfer_id} was lost"
            assert {f: stored[f] for f in TRANSFER_FIELDS} == \
                {f: item.get(f) for f in TRANSFER_FIELDS}
            assert stored["timestamp"] == timestamp
        moved = sum(t["amount"] for t in found.values())
        accounts = {a["id"]: a for a in admin.call("lookup_accounts", {"ids": ACCOUNTS})["accounts"]}
        assert accounts["b-1"]["balance"] == moved, "balances disagree with the stored transfers"
        assert accounts["a-1"]["balance"] == FUNDS - moved
        assert_debits_equal_credits(admin, ACCOUNTS)
    return len(acked)


def test_sigkill_under_load_loses_nothing_acknowledged(tmp_path):
    switch = SwitchProcess(tmp_path / "data").start()
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        create_world(admin)
    threads = load_then_kill(switch, senders=4, run_s=1.5)
    assert sum(len(t.acked) for t in threads) > 100, "the load did not get going"
    switch.start()
    try:
        verify_after_restart(switch, threads)
    finally:
        switch.stop()


@pytest.fixture
def rotating_switch(tmp_path):
    """Small segments and frequent snapshots; stopped afterwards, also when the test fails."""
    switch = SwitchProcess(tmp_path / "data", extra_args=(
        "--wal-segment-bytes", "20000", "--snapshot-every-bytes", "60000")).start()
    yield switch
    switch.stop()


def test_crash_rounds_with_snapshots_and_segment_rotation(rotating_switch):
    """Killed three times under load: every restart must recover from a snapshot (if one was
    published in time) plus log; and snapshots must follow, with old segments going away. A
    builder killed with its switch is fine: the restart counts the log it replayed towards the
    next snapshot, so one follows without new writes, however slow the machine."""
    switch = rotating_switch
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        create_world(admin)
    all_threads = []
    for _ in range(3):
        all_threads += load_then_kill(switch, senders=2, run_s=1.5)
        switch.start()
        verify_after_restart(switch, all_threads)
    deadline = time.monotonic() + SNAPSHOT_DEADLINE_S
    while not (list_snapshots(switch.data_dir / "snapshots")
               and list_segments(switch.data_dir / "wal")[0][0] > 1):
        assert time.monotonic() < deadline, \
            f"no snapshot, or no segment pruned, {SNAPSHOT_DEADLINE_S} s after the last restart"
        time.sleep(0.1)
    assert len(list_snapshots(switch.data_dir / "snapshots")) <= 2


def test_every_cut_of_the_logs_last_records_recovers_a_prefix(tmp_path):
    switch = SwitchProcess(tmp_path / "data").start()
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        create_world(admin)
        timestamps = {}
        for n in range(12):
            reply = admin.call("transfer", {"id": f"p{n}", "debit_account": "a-1",
                                            "credit_account": "b-1", "amount": 10 + n})
            timestamps[f"p{n}"] = reply["timestamp"]
    switch.kill()
    segment = list_segments(switch.data_dir / "wal")[-1][1]
    full, end = segment.read_bytes(), records_end(segment)
    cut_dir = tmp_path / "cut"
    recovered_counts = []
    for cut in range(end - 600, end + 1):  # a write cut short leaves the zeros after it
        shutil.rmtree(cut_dir, ignore_errors=True)
        shutil.copytree(switch.data_dir, cut_dir)
        (cut_dir / "wal" / segment.name).write_bytes(full[:cut] + bytes(len(full) - cut))
        recovered = recover(cut_dir / "wal", cut_dir / "snapshots")
        result = recovered.state.execute("admin", "lookup_transfers",
                                         {"ids": list(timestamps)}, 0).result
        present = {t["id"] for t in result["transfers"]}
        expected_prefix = {i for i in timestamps if int(i[1:]) < len(present)}
        assert present == expected_prefix, f"cut at {cut}: not a prefix"
        recovered_counts.append(len(present))
    assert recovered_counts == sorted(recovered_counts)
    assert recovered_counts[-1] == 12 and recovered_counts[0] < 12


def test_torn_tail_is_cut_off_with_a_warning_and_the_switch_starts(tmp_path):
    switch = SwitchProcess(tmp_path / "data").start()
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        create_world(admin)
    switch.kill()
    segment = list_segments(switch.data_dir / "wal")[-1][1]
    intact_size = records_end(segment)
    with open(segment, "r+b") as file:
        file.seek(intact_size)
        file.write(b"\x00\x00\x01\x00garbage of a write cut short")
    switch.start()
    assert segment.stat().st_size == intact_size
    assert "wal_torn_tail_truncated" in switch.log()
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        assert admin.call("lookup_accounts", {"ids": ["a-1"]})["accounts"][0]["balance"] == FUNDS
    switch.stop()


def test_damage_before_the_tail_refuses_to_start_naming_file_and_offset(tmp_path):
    switch = SwitchProcess(tmp_path / "data").start()
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        create_world(admin)
    switch.kill()
    segment = list_segments(switch.data_dir / "wal")[-1][1]
    data = bytearray(segment.read_bytes())
    data[20] ^= 0x55  # inside the first record
    segment.write_bytes(bytes(data))
    code, output = run_switch_once(switch.data_dir)
    assert code == 1
    assert str(segment) in output and "offset 0" in output and "Refusing to start" in output


def test_sigterm_finishes_in_flight_work_writes_a_snapshot_and_exits_zero(tmp_path):
    switch = SwitchProcess(tmp_path / "data").start()
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        create_world(admin)
        for n in range(50):  # pipelined, unanswered when the signal arrives
            admin.send({"id": n, "op": "transfer", "args": {
                "id": f"s{n}", "debit_account": "a-1", "credit_account": "b-1", "amount": 1}})
        switch.process.send_signal(signal.SIGTERM)
        replies = []
        try:
            while len(replies) < 50:
                replies.append(admin.recv())
        except ConnectionError:
            pass
    assert switch.process.wait(30) == 0
    assert list_snapshots(switch.data_dir / "snapshots"), "no snapshot at shutdown"
    acked = {r["id"] for r in replies if r["ok"]}
    refused = [r for r in replies if not r["ok"]]
    assert all(r["error"]["code"] == "shutting_down" for r in refused)
    switch.start()
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        stored = lookup_all(admin, [f"s{n}" for n in range(50)])
        assert {f"s{n}" for n in acked} <= set(stored)
        assert admin.call("lookup_accounts", {"ids": ["b-1"]})["accounts"][0]["balance"] == \
            len(stored)
    switch.stop()


def test_a_long_replay_at_start_is_followed_by_a_snapshot_without_new_writes(tmp_path):
    switch = SwitchProcess(tmp_path / "data").start()
    try:
        with WireClient(switch.host, switch.port) as admin:
            admin.hello("admin", switch.admin_token)
            create_world(admin)
            for n in range(400):
                admin.call("transfer", {"id": f"r{n}", "debit_account": "a-1",
                                        "credit_account": "b-1", "amount": 1,
                                        "reference": "x" * 200})
        switch.kill()
        log_bytes = sum(records_end(p) for _, p in list_segments(switch.data_dir / "wal"))
        assert log_bytes > 100_000 and not list_snapshots(switch.data_dir / "snapshots")
        switch.extra_args = ("--snapshot-every-bytes", str(log_bytes // 2))
        switch.start()
        deadline = time.monotonic() + 10
        while not list_snapshots(switch.data_dir / "snapshots"):
            assert time.monotonic() < deadline, "no snapshot after replaying the whole log"
            time.sleep(0.1)
    finally:
        switch.stop()
