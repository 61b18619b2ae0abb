"""Crash recovery: the newest intact snapshot, then every WAL record after it, replayed.

A torn record at the very tail of the last segment (a write cut short by a crash, never
acknowledged) is cut off with a warning. Damage anywhere else refuses to start, naming the file
and offset, because records after it may have been acknowledged. Zeros after a segment's records,
to its end, are the space the writer zeroed ahead of them (switch/storage/wal_writer.py): the log
ends there, and they are cut off quietly, so the writer goes on where the records end.
"""
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import msgpack
import structlog

from payswitch.switch.ledger.snapshot import UnsupportedSnapshotVersion
from payswitch.switch.storage.records import RecordScanner
from payswitch.switch.storage.wal_format import UnsupportedWalVersion
from payswitch.switch.storage.segments import list_segments, list_snapshots
from payswitch.switch.state import SwitchState
from payswitch.switch.storage.snapshots import SnapshotDamaged, read_snapshot

log = structlog.get_logger("switch.recovery")
PROGRESS_INTERVAL_S = 1.0
PROGRESS_EVERY_RECORDS = 4096


@dataclass
class RecoveryProgress:
    """How far a recovery has come, for /readyz; updated every PROGRESS_EVERY_RECORDS records
    (read by the metrics listener's thread, so only whole-int assignments)."""
    records_replayed: int = 0
    bytes_replayed: int = 0
    bytes_total: int | None = None  # known once the snapshot is loaded


class RecoveryError(Exception):
    """The data directory cannot be recovered safely; the message says where and why."""


@dataclass
class Recovered:
    state: SwitchState
    next_seq: int
    snapshot_seq: int
    records_replayed: int
    truncated_bytes: int
    log_bytes_read: int  # of the segments replayed: log a snapshot would spare the next start


def load_newest_snapshot(snapshot_dir: Path) -> tuple[int, SwitchState]:
    """The newest intact snapshot, falling back to older ones; (0, empty state) when none.
    Refuses one written in a newer version: the log after it may be newer too."""
    snapshots = list_snapshots(snapshot_dir)
    for seq, path in reversed(snapshots):
        started = time.monotonic()
        try:
            snapshot_seq, state = read_snapshot(path)
        except SnapshotDamaged as damage:
            log.warning("snapshot_damaged_falling_back", reason=str(damage))
            continue
        try:
            switch_state = SwitchState.from_snapshot_state(state)
        except UnsupportedSnapshotVersion as error:
            raise RecoveryError(f"{path}: {error}") from None
        # Restart time grows with the history in the snapshot: say how much and how long
        log.info("snapshot_loaded", path=str(path), seq=snapshot_seq, **switch_state.counts(),
                 elapsed_s=round(time.monotonic() - started, 3))
        return snapshot_seq, switch_state
    return 0, SwitchState()


def _segments_from(wal_dir: Path, snapshot_seq: int) -> list[tuple[int, Path]]:
    """The segments holding every record after `snapshot_seq`; refuses when one is missing."""
    segments = list_segments(wal_dir)
    start = 0
    for index, (first_seq, _) in enumerate(segments):
        if first_seq <= snapshot_seq + 1:
            start = index
    needed = segments[start:]
    if needed and needed[0][0] > snapshot_seq + 1:
        raise RecoveryError(
            f"records {snapshot_seq + 1}..{needed[0][0] - 1} are missing: no snapshot covers "
            f"them and {needed[0][1]} starts later (a snapshot or segment was deleted or damaged)")
    return needed


class AppliedRecord(NamedTuple):
    """One WAL record as replayed, with what executing it returned (None when it failed) and
    what the ledger committed meanwhile (switch.ledger.transfers.Commits: the change stream's
    transfers and expiries; None when not taken)."""
    seq: int
    now_ns: int
    caller: str
    op: str
    args: Any
    result: Any
    commits: Any = None


def apply_record(state: SwitchState, payload, last_seq: int, where: str) -> AppliedRecord | None:
    """Executes one WAL record's payload on `state`, the one replay path of crash recovery and
    of a standby following the replicated log. Returns None for a record at or before
    `last_seq` (already in the state); raises RecoveryError for a record out of order or one
    that does not change the state as it did when it was logged."""
    seq, now_ns, caller, op, args = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    if seq <= last_seq:
        return None
    if seq != last_seq + 1:
        raise RecoveryError(f"{where}: record {seq} follows {last_seq}; the log is out of order")
    executed = state.execute(caller, op, args, now_ns)
    if not executed.changed:
        detail = ("it changed nothing" if executed.error is None
                  else f"it failed with {executed.error.code}")
        raise RecoveryError(f"{where}: replaying record {seq} ({op}) diverged from the original "
                            f"run: {detail}")
    return AppliedRecord(seq, now_ns, caller, op, args, executed.result, state.take_commits())


class _Replayer:
    def __init__(self, state: SwitchState, snapshot_seq: int, total_bytes: int,
                 up_to_seq: int | None, progress: RecoveryProgress, on_applied=None):
        self.state = state
        self.on_applied = on_applied
        self.progress = progress
        progress.bytes_total = total_bytes
        self.up_to_seq = up_to_seq
        self.last_seq = snapshot_seq
        self.replayed = 0
        self.total_bytes = total_bytes
        self.done_bytes = 0
        self._next_progress = time.monotonic() + PROGRESS_INTERVAL_S

    def replay_segment(self, path: Path, first_seq: int, is_last: bool,
                       read_only: bool = False) -> int:
        """Applies the segment's records; returns how many torn tail bytes were cut off (read
        only: were left as they are). Zeros after the records are no torn tail: not counted."""
        data = path.read_bytes()
        try:
            scanner = RecordScanner(data, source=path)
        except UnsupportedWalVersion as error:
            raise RecoveryError(str(error)) from None
        if scanner.first_seq not in (None, first_seq):  # copied or renamed: not this log's
            raise RecoveryError(f"{path}: its header says it begins at record "
                                f"{scanner.first_seq}, its name at record {first_seq}")
        for offset, payload in scanner:
            if self.up_to_seq is not None and self.last_seq >= self.up_to_seq:
                return 0
            self._apply(path, offset, payload)
        if self.up_to_seq is not None and self.last_seq >= self.up_to_seq:
            return 0  # what follows may be a record being written at this very moment
        self.done_bytes += scanner.good_end  # records, not zeros nor a torn tail
        self._report(self.done_bytes)
        if scanner.damage is None:
            return 0
        if scanner.zeroed_to_end():
            if not read_only:
                _cut(path, scanner.good_end)
            return 0
        where = f"{path} at offset {scanner.good_end}"
        if not is_last or scanner.intact_record_follows():
            raise RecoveryError(
                f"WAL damaged before its tail: {where}: {scanner.damage}; intact records follow, "
                f"so acknowledged data may be affected. Refusing to start; inspect with "
                f"`python -m switch wal verify`.")
        torn_bytes = len(data) - scanner.good_end
        if read_only:  # a running switch may be appending this very record: stop before it
            log.info("wal_tail_not_read", file=str(path), offset=scanner.good_end,
                     bytes=torn_bytes, reason=scanner.damage)
            return torn_bytes
        log.warning("wal_torn_tail_truncated", file=str(path), offset=scanner.good_end,
                    bytes=torn_bytes, reason=scanner.damage)
        _cut(path, scanner.good_end)
        return torn_bytes

    def _report(self, bytes_replayed: int) -> None:
        self.progress.records_replayed = self.replayed
        self.progress.bytes_replayed = bytes_replayed

    def _apply(self, path: Path, offset: int, payload) -> None:
        applied = apply_record(self.state, payload, self.last_seq, f"{path} at offset {offset}")
        if applied is None:
            return  # covered by the snapshot
        if self.on_applied is not None:
            self.on_applied(applied)
        seq = applied.seq
        self.last_seq = seq
        self.replayed += 1
        if self.replayed % PROGRESS_EVERY_RECORDS == 0:
            self._report(self.done_bytes + offset)
            if time.monotonic() < self._next_progress:
                return
            self._next_progress = time.monotonic() + PROGRESS_INTERVAL_S
            log.info("recovery_progress", seq=seq, records=self.replayed,
                     percent=round(100 * self.done_bytes / max(self.total_bytes, 1), 1))


def _cut(path: Path, size: int) -> None:
    with open(path, "r+b") as file:
        file.truncate(size)
        os.fsync(file.fileno())


def recover(wal_dir: Path, snapshot_dir: Path, read_only: bool = False,
            up_to_seq: int | None = None,
            progress: RecoveryProgress | None = None, on_applied=None) -> Recovered:
    """The state of the newest snapshot plus every intact WAL record after it.

    `read_only=True` is for tools that inspect a data directory, possibly while a switch is
    running and appending to it: nothing is truncated or written, an incomplete record at the
    tail ends the replay quietly (`truncated_bytes` then counts the bytes left unread), and the
    invariants are not checked (the caller checks what it needs and reports it).
    `up_to_seq` stops the replay after that record (read only: the durable state of a running
    switch whose log has failed after it). `progress`, if given, is kept up to date.
    `on_applied(AppliedRecord)`, if given, is called for each record replayed after the snapshot.
    """
    started = time.monotonic()
    snapshot_seq, state = load_newest_snapshot(snapshot_dir)
    segments = _segments_from(wal_dir, snapshot_seq)
    replayer = _Replayer(state, snapshot_seq, sum(p.stat().st_size for _, p in segments),
                         up_to_seq, RecoveryProgress() if progress is None else progress,
                         on_applied)
    truncated = 0
    for index, (first_seq, path) in enumerate(segments):
        truncated += replayer.replay_segment(path, first_seq, is_last=index == len(segments) - 1,
                                             read_only=read_only)
    if not read_only:
        state.check_invariants()
    log.info("recovery_complete", snapshot_seq=snapshot_seq, records=replayer.replayed,
             last_seq=replayer.last_seq, truncated_bytes=truncated,
             elapsed_s=round(time.monotonic() - started, 3))
    return Recovered(state, replayer.last_seq + 1, snapshot_seq, replayer.replayed, truncated,
                     replayer.done_bytes)


def recover_up_to(wal_dir: Path, snapshot_dir: Path, seq: int) -> SwitchState:
    """The state after record `seq`, read-only, invariants checked: what a restart would hold
    if the log ended there (a running switch's durable state, or what a snapshot at `seq` holds)."""
    recovered = recover(wal_dir, snapshot_dir, read_only=True, up_to_seq=seq)
    if recovered.next_seq - 1 != seq:
        raise RecoveryError(f"the log on disk ends at record {recovered.next_seq - 1}, "
                            f"not at record {seq}")
    recovered.state.check_invariants()
    return recovered.state
