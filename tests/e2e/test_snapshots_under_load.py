"""Snapshots keep pace with sustained writes on a machine whose cores are all busy, and the log
since the last snapshot (what a restart replays) stays under --max-log-bytes-since-snapshot:
when the builder falls behind, writes are refused `overloaded` until it publishes, reads go on.

Deadlines here are generous and nothing is timed: the tests hold on a loaded CI machine.
"""
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from support.processes import track
from support.switch_process import SwitchProcess, run_switch_once
from support.wire import WireClient
from support.world import FUNDS, create_world
from payswitch.switch.storage.recovery import recover
from payswitch.switch.storage.segments import list_segments, list_snapshots

SEGMENT_BYTES = 20_000
EVERY_BYTES = 20_000
MAX_LOG_BYTES = 60_000
# Writes are refused once the log reaches the bound; the request admitted just below it is
# still logged. Our requests make records of about 200 bytes: one of them, with room to spare.
ONE_REQUEST_BYTES = 1_000
DEADLINE_S = 180.0
BATCH_ITEMS = 1_000
STEP_BYTES = 100_000  # the submission of BATCH_ITEMS items, one record (a chunk is a tenth)
PIPELINE_DEPTH = 16
transfer_ids = itertools.count()


@pytest.fixture
def busy_cores():
    """Every core kept busy by a CPU-burning process at normal priority; killed afterwards."""
    burners = [track(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
               for _ in range(os.cpu_count() or 2)]
    yield burners
    for burner in burners:
        burner.kill()
        burner.wait()


@pytest.fixture
def bounded_switch(tmp_path):
    """A switch with tiny segments, snapshots and bound, and the standard world."""
    switch = SwitchProcess(tmp_path / "data", extra_args=(
        "--wal-segment-bytes", str(SEGMENT_BYTES), "--snapshot-every-bytes", str(EVERY_BYTES),
        "--max-log-bytes-since-snapshot", str(MAX_LOG_BYTES))).start()
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        switch.tokens = create_world(admin)
    yield switch
    switch.stop()


@pytest.fixture
def stopped_processes():
    """pids a test SIGSTOPs; each gets SIGCONT afterwards, whatever happened."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


def transfer(amount: int = 1) -> dict:
    return {"id": f"t{next(transfer_ids)}", "debit_account": "a-1", "credit_account": "b-1",
            "amount": amount}


def is_log_bound_refusal(reply: dict) -> bool:
    """A write refused for the restart-time bound: `overloaded`, naming the limit and value."""
    error = reply.get("error") or {}
    return (error.get("code") == "overloaded"
            and f"max_log_bytes_since_snapshot ({MAX_LOG_BYTES})" in error.get("message", ""))


class Writer(threading.Thread):
    """Pipelined single transfers until told to stop; counts what was acknowledged and what was
    refused for the log bound; any other answer is kept in `unexpected`."""

    def __init__(self, switch: SwitchProcess):
        super().__init__(daemon=True)
        self.client = WireClient(switch.host, switch.port, timeout_s=60)
        self.client.hello("admin", switch.admin_token)
        self.stop_event = threading.Event()
        self.acked = 0
        self.refused = 0
        self.unexpected: list = []

    def run(self) -> None:
        try:
            while not self.stop_event.is_set() and not self.unexpected:
                for n in range(PIPELINE_DEPTH):
                    self.client.send({"id": n, "op": "transfer", "args": transfer()}, "msgpack")
                for n in range(PIPELINE_DEPTH):
                    reply = self.client.recv()
                    if reply["ok"] and reply["result"]["status"] == "created":
                        self.acked += 1
                    elif is_log_bound_refusal(reply):
                        self.refused += 1
                    else:
                        self.unexpected.append(reply)
        except Exception as error:  # noqa: BLE001 - reported by the test
            self.unexpected.append(repr(error))
        finally:
            self.client.close()


def snapshot_stats(admin: WireClient) -> dict:
    return admin.call("stats")["snapshots"]


def test_snapshots_keep_pace_and_the_log_stays_bounded_with_every_core_busy(
        busy_cores, bounded_switch):
    switch = bounded_switch
    writer = Writer(switch)
    writer.start()
    most_log_bytes, published_with_acks = 0, []
    try:
        with WireClient(switch.host, switch.port, timeout_s=60) as admin:
            admin.hello("admin", switch.admin_token)
            deadline = time.monotonic() + DEADLINE_S
            # Until several snapshots were published and writes went on after each of them.
            while len(published_with_acks) < 4 and not writer.unexpected:
                assert time.monotonic() < deadline, \
                    f"only {len(published_with_acks)} snapshots in {DEADLINE_S} s of writes"
                stats = snapshot_stats(admin)
                most_log_bytes = max(most_log_bytes, stats["log_bytes_since_snapshot"])
                if (stats["published"] > len(published_with_acks)
                        and writer.acked > (published_with_acks or [0])[-1]):
                    published_with_acks.append(writer.acked)
                time.sleep(0.05)
            for burner in busy_cores:
                assert burner.poll() is None, "a CPU burner died: the cores were not kept busy"
    finally:
        writer.stop_event.set()
        writer.join(60)
    assert not writer.unexpected, writer.unexpected[:3]
    assert writer.acked > published_with_acks[0] > 0, "writes did not go on between snapshots"
    assert most_log_bytes <= MAX_LOG_BYTES + ONE_REQUEST_BYTES, \
        f"{most_log_bytes} bytes of log since a snapshot, the bound is {MAX_LOG_BYTES}"
    assert list_snapshots(switch.data_dir / "snapshots"), "no snapshot file"
    assert list_segments(switch.data_dir / "wal")[0][0] > 1, "no segment was pruned"

    # On disk: a crash now replays at most the bound, give or take the segment the snapshot is
    # in (read whole; a segment ends at the first group commit past SEGMENT_BYTES).
    switch.kill()
    recovered = recover(switch.data_dir / "wal", switch.data_dir / "snapshots", read_only=True)
    assert recovered.snapshot_seq > 0
    assert recovered.log_bytes_read <= MAX_LOG_BYTES + ONE_REQUEST_BYTES + 2 * SEGMENT_BYTES, \
        f"a restart would replay {recovered.log_bytes_read} bytes of log"


def builder_pids(switch_pid: int) -> list[int]:
    """The switch's snapshot builder processes (its children running switch.snapshot_builder)."""
    pids = []
    for task in Path(f"/proc/{switch_pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except FileNotFoundError:
            continue  # the thread ended meanwhile
        for child in map(int, children):
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
            if b"switch.snapshot_builder" in command:
                pids.append(child)
    return pids


def hold_a_builder(admin: WireClient, switch: SwitchProcess, stopped: list[int],
                   deadline: float, write: bool = True) -> int:
    """Writes (if `write`; else the test has something writing) until the switch starts a
    snapshot builder, and stops it (SIGSTOP): a real process, deterministically slow. Returns
    its pid."""
    while True:
        assert time.monotonic() < deadline, "no snapshot builder started"
        if write:
            reply = admin.request("transfer", transfer())
            assert reply["ok"] or is_log_bound_refusal(reply), reply
        else:
            time.sleep(0.005)
        for pid in builder_pids(switch.process.pid):
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
            return pid


def test_writes_wait_for_a_builder_that_falls_behind_and_reads_go_on(
        bounded_switch, stopped_processes):
    """A builder held still: writes are refused `overloaded` naming the limit, change nothing,
    reads are answered; once it goes on (SIGCONT) and publishes, writes are taken again."""
    switch = bounded_switch
    with WireClient(switch.host, switch.port, timeout_s=60) as admin:
        admin.hello("admin", switch.admin_token)
        deadline = time.monotonic() + DEADLINE_S
        builder = hold_a_builder(admin, switch, stopped_processes, deadline)
        published_before = snapshot_stats(admin)["published"]

        refused = None
        while refused is None:  # write until the bound is reached
            assert time.monotonic() < deadline, "writes were never refused"
            args = transfer()
            reply = admin.request("transfer", args)
            if not reply["ok"]:
                refused = (reply, args)
        reply, args = refused
        assert is_log_bound_refusal(reply), reply
        stats = snapshot_stats(admin)
        assert stats["writes_paused"] and stats["published"] == published_before
        assert stats["log_bytes_since_snapshot"] <= MAX_LOG_BYTES + ONE_REQUEST_BYTES
        # Not executed, and reads are answered meanwhile; other writes are refused too.
        assert admin.call("lookup_transfers", {"ids": [args["id"]]})["transfers"] == []
        balance = admin.call("lookup_accounts", {"ids": ["b-1"]})["accounts"][0]["balance"]
        assert 0 < balance < FUNDS
        assert is_log_bound_refusal(admin.request("create_accounts", {"accounts": [
            {"id": "late", "participant": "bank-a", "currency": "USD"}]}))

        os.kill(builder, signal.SIGCONT)
        while True:  # the same request, resent until the snapshot is published
            assert time.monotonic() < deadline, "writes did not resume after the snapshot"
            reply = admin.request("transfer", args)
            if reply["ok"]:
                break
            assert is_log_bound_refusal(reply), reply
            time.sleep(0.05)
        assert reply["result"]["status"] == "created"
        stats = snapshot_stats(admin)
        assert stats["published"] > published_before and not stats["writes_paused"]
        assert stats["writes_refused"] >= 2
        assert stats["log_bytes_since_snapshot"] < MAX_LOG_BYTES


def test_a_partial_batch_waits_at_the_bound_and_finishes_after_the_snapshot(
        bounded_switch, stopped_processes):
    """A batch is one of the switch's own writers: at the bound it waits (before validation,
    or between two chunks) until a snapshot is published, then goes on to the end."""
    switch = bounded_switch
    items = [{"id": f"batch-{n}", "debit_account": "a-1", "credit_account": "b-1", "amount": 1}
             for n in range(BATCH_ITEMS)]
    with WireClient(switch.host, switch.port, timeout_s=60) as admin, \
            WireClient(switch.host, switch.port, timeout_s=60) as bank:
        admin.hello("admin", switch.admin_token)
        bank.hello("bank-a", switch.tokens["bank-a"])
        deadline = time.monotonic() + DEADLINE_S
        submitted = bank.call("submit_batch", {
            "batch_id": "under-the-bound", "format": "json", "mode": "partial", "items": items,
            "control_count": BATCH_ITEMS, "control_sum": BATCH_ITEMS})
        assert submitted["state"] == "received"
        # Its submission and chunks fill the log; the builder that starts is held still.
        builder = hold_a_builder(admin, switch, stopped_processes, deadline, write=False)
        while not snapshot_stats(admin)["writes_paused"]:
            assert time.monotonic() < deadline, "the batch never reached the bound"
            time.sleep(0.05)
        # No snapshot can come now, so the batch cannot go on: it waits, and the log stays at
        # the bound plus the one step admitted below it (the submission is the largest).
        waiting = bank.call("get_batch", {"batch_id": "under-the-bound"})
        assert waiting["state"] in ("received", "processing"), waiting
        time.sleep(1.0)
        assert bank.call("get_batch", {"batch_id": "under-the-bound"}) == waiting
        assert snapshot_stats(admin)["log_bytes_since_snapshot"] <= MAX_LOG_BYTES + STEP_BYTES

        os.kill(builder, signal.SIGCONT)
        while (summary := bank.call("get_batch", {"batch_id": "under-the-bound"}))[
                "state"] in ("received", "processing"):
            assert time.monotonic() < deadline, f"the batch did not finish: {summary}"
            time.sleep(0.1)
        assert summary["state"] == "completed" and summary["created"] == BATCH_ITEMS, summary
        assert snapshot_stats(admin)["published"] >= 1


def test_a_bound_not_above_the_snapshot_interval_is_refused_naming_both(tmp_path):
    code, output = run_switch_once(tmp_path / "data", "--snapshot-every-bytes", "5000",
                                   "--max-log-bytes-since-snapshot", "5000")
    assert code == 2
    assert "max_log_bytes_since_snapshot (5000)" in output
    assert "snapshot_every_bytes (5000)" in output
