"""`python -m switch wal verify|repair`: inspect a data directory's log and snapshots, and cut a
damaged log back to its last good record once the operator confirms.

verify only reads (it may run beside a running switch; a record being written at that moment can
show as a torn tail, or, written over the zeros ahead of the records, rarely as damage with a
record after it: run it again). repair takes the data directory lock, so it never runs beside a
switch, and destroys nothing: the bytes cut off, the later segments and the snapshots newer than
the cut are moved to `wal/quarantine/<time>/`, from where an operator (or a support engineer) can
still read them.
"""
import fcntl
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgpack

from payswitch.protocol.atomic_file import fsync_dir
from payswitch.switch.ledger.snapshot import UnsupportedSnapshotVersion, check_readable
from payswitch.switch.storage.records import RecordScanner
from payswitch.switch.storage.segments import list_segments, list_snapshots
from payswitch.switch.storage.snapshots import SnapshotDamaged, read_snapshot
from payswitch.switch.storage.wal_format import UnsupportedWalVersion

QUARANTINE = "quarantine"


@dataclass
class SegmentReport:
    path: Path
    first_seq: int  # from the file name
    size: int
    version: int | None = None  # the format's (None: its header is damaged)
    records: int = 0
    first_record_seq: int | None = None
    last_record_seq: int | None = None  # of the intact prefix
    damage: str | None = None  # what is wrong at damage_offset (None: intact to the end)
    damage_offset: int | None = None
    records_after_damage: int = 0  # intact records found after the damage (resynchronizing)
    torn_tail: bool = False  # damage at the very end of the last segment: a cut-short append
    zero_tail: int = 0  # bytes of zeros after the records: space zeroed ahead of them, unused
    covered_by: int | None = None  # the newest intact snapshot holds all its records: unread

    @property
    def intact_records_follow(self) -> bool:
        return self.records_after_damage > 0


@dataclass
class SnapshotReport:
    path: Path
    seq: int
    damage: str | None
    version: int | None = None


@dataclass
class Report:
    data_dir: Path
    segments: list[SegmentReport] = field(default_factory=list)
    snapshots: list[SnapshotReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # gaps the records' seqs show
    # Files in a format newer than this build reads: the switch refuses to start, repair too
    unreadable: list[str] = field(default_factory=list)

    @property
    def first_damage(self) -> SegmentReport | None:
        """The first damage in the segments recovery reads (not those a snapshot covers)."""
        return next((s for s in self.segments if s.damage is not None and s.covered_by is None),
                    None)

    @property
    def damaged(self) -> bool:
        """Anything wrong besides a torn tail (which the switch cuts off itself at start)."""
        return (any(s.damage is not None and not s.torn_tail for s in self.segments)
                or any(s.damage is not None for s in self.snapshots) or bool(self.problems))


def _scan_segment(path: Path, first_seq: int, expected_seq: int | None,
                  is_last: bool) -> SegmentReport:
    data = path.read_bytes()
    scanner = RecordScanner(data, source=path)
    report = SegmentReport(path, first_seq, len(data), scanner.version)
    expected = first_seq if expected_seq is None else expected_seq
    for offset, payload in scanner:
        try:
            seq = msgpack.unpackb(payload, raw=False, strict_map_key=False)[0]
        except Exception as error:  # an intact checksum over a payload that is no record
            report.damage, report.damage_offset = f"undecodable record: {error}", offset
            break
        if seq != expected:
            report.damage = f"record {seq} where {expected} was expected (the log is out of order)"
            report.damage_offset = offset
            break
        report.first_record_seq = seq if report.first_record_seq is None else \
            report.first_record_seq
        report.last_record_seq, report.records, expected = seq, report.records + 1, seq + 1
    else:
        if scanner.zeroed_to_end():
            report.zero_tail = len(data) - scanner.good_end
        elif scanner.damage is not None:
            report.damage, report.damage_offset = scanner.damage, scanner.good_end
            report.records_after_damage = scanner.intact_records_after_damage()[0]
            report.torn_tail = is_last and not report.records_after_damage
        return report
    # a record that is intact but wrong: it and everything after it in this segment are suspect,
    # and a cut there loses it too, so it counts
    rest = RecordScanner(memoryview(data)[report.damage_offset:])
    report.records_after_damage = sum(1 for _ in rest) + rest.intact_records_after_damage()[0]
    return report


def _ledger_version(state) -> int | None:
    """The snapshot's version (its ledger state's); None when the state has none to show."""
    ledger = state.get("ledger") if isinstance(state, dict) else None
    return ledger.get("version") if isinstance(ledger, dict) else None


def verify(data_dir: Path) -> Report:
    """Scans every segment and snapshot of `data_dir`; changes nothing."""
    report = Report(data_dir)
    segments = list_segments(data_dir / "wal") if (data_dir / "wal").is_dir() else []
    expected = None
    for index, (first_seq, path) in enumerate(segments):
        if expected is not None and first_seq != expected:
            report.problems.append(f"{path} starts at record {first_seq} but the previous "
                                   f"segment ends before record {expected}")
        try:
            segment = _scan_segment(path, first_seq, expected, index == len(segments) - 1)
        except UnsupportedWalVersion as error:
            report.unreadable.append(str(error))
            expected = None
            continue
        report.segments.append(segment)
        expected = first_seq + segment.records if segment.damage is None else None
    snapshot_dir = data_dir / "snapshots"
    for seq, path in list_snapshots(snapshot_dir) if snapshot_dir.is_dir() else []:
        try:
            version = _ledger_version(read_snapshot(path)[1])
            if version is not None:
                check_readable(version)
            report.snapshots.append(SnapshotReport(path, seq, None, version))
        except SnapshotDamaged as damage:
            report.snapshots.append(SnapshotReport(path, seq, str(damage)))
        except UnsupportedSnapshotVersion as error:
            report.unreadable.append(f"{path}: {error}")
    intact_snapshots = [s.seq for s in report.snapshots if s.damage is None]
    newest = max(intact_snapshots, default=0)
    for segment, following in zip(report.segments, report.segments[1:]):
        if following.first_seq <= newest + 1:  # recovery starts at `following` or later
            segment.covered_by = newest
    if segments and segments[0][0] > 1 and not any(seq >= segments[0][0] - 1
                                                   for seq in intact_snapshots):
        report.problems.append(f"records 1..{segments[0][0] - 1} are in no segment and no intact "
                               f"snapshot covers them")
    return report


def format_report(report: Report) -> list[str]:
    lines = [f"data dir: {report.data_dir}"]
    if not report.segments:
        lines.append("wal: no segments")
    for s in report.segments:
        span = (f"records {s.first_record_seq}..{s.last_record_seq}" if s.records
                else "no intact records")
        line = (f"segment {s.path}: format version {s.version}: {span} ({s.records} records, "
                f"{s.size} bytes)")
        if s.damage is None:
            zeros = (f", then {s.zero_tail} bytes of zeros written ahead of the records (unused "
                     f"space, cut off at start)" if s.zero_tail else "")
            lines.append(line + ": intact" + zeros)
        elif s.torn_tail:
            lines.append(line + f": torn tail at offset {s.damage_offset} "
                                f"({s.size - s.damage_offset} bytes: {s.damage}); never "
                                f"acknowledged, the switch cuts it off at start")
        else:
            follows = (f"intact records follow ({s.records_after_damage} found after it)"
                       if s.intact_records_follow else "no intact record follows")
            effect = (f"covered by snapshot {s.covered_by}: the switch does not read this "
                      f"segment and starts (it would need it only if that snapshot were lost)"
                      if s.covered_by is not None else "the switch refuses to start")
            lines.append(line + f": DAMAGED at offset {s.damage_offset}: {s.damage}; {follows}; "
                                f"{effect}")
    for snapshot in report.snapshots:
        state = "intact" if snapshot.damage is None else \
            f"DAMAGED: {snapshot.damage} (recovery falls back to an older snapshot plus the log)"
        version = "" if snapshot.version is None else f", version {snapshot.version}"
        lines.append(f"snapshot {snapshot.path}: seq {snapshot.seq}{version}: {state}")
    lines += [f"problem: {problem}" for problem in report.problems]
    lines += [f"unreadable: {file}" for file in report.unreadable]
    lines.append("result: " + ("UNREADABLE by this build" if report.unreadable
                               else "DAMAGED" if report.damaged else "clean"))
    return lines


@dataclass
class RepairPlan:
    segment: Path  # the first damaged segment: cut at `offset`
    offset: int
    reason: str
    last_good_seq: int  # the last record kept
    records_lost: int  # intact records after the cut (in the segment and in later segments)
    bytes_lost: int
    later_segments: list[Path]
    snapshots: list[Path]  # newer than the cut: they hold state of records cut off
    refusal: str | None = None  # why cutting here would not leave a startable directory


def plan_repair(data_dir: Path) -> RepairPlan | None:
    """What `repair` would cut, or None when the part of the log that recovery reads has no
    damage (damage in a segment the newest intact snapshot covers is left alone: the switch
    starts without reading it, and it is pruned after the next snapshots). Raises
    UnsupportedWalVersion when a file is in a format newer than this build reads."""
    report = verify(data_dir)
    if report.unreadable:  # never cut a log this build cannot read (raised for snapshots too)
        raise UnsupportedWalVersion(report.unreadable[0])
    damaged = report.first_damage
    if damaged is None:
        return None
    index = report.segments.index(damaged)
    later = report.segments[index + 1:]
    if damaged.records:
        last_good = damaged.last_record_seq
    else:
        last_good = damaged.first_seq - 1
    snapshots = [s for s in report.snapshots if s.seq > last_good]
    plan = RepairPlan(
        damaged.path, damaged.damage_offset, damaged.damage, last_good,
        damaged.records_after_damage + sum(s.records + s.records_after_damage for s in later),
        damaged.size - damaged.damage_offset + sum(s.size for s in later),
        [s.path for s in later], [s.path for s in snapshots])
    # Recovery after the cut starts from the newest intact snapshot kept (or from nothing) and
    # needs every record after it up to the last good one in the segments kept.
    base = max((s.seq for s in report.snapshots if s.seq <= last_good and s.damage is None),
               default=0)
    segments_kept = index + (1 if damaged.damage_offset else 0)
    first_logged = report.segments[0].first_seq if segments_kept else last_good + 1
    if first_logged > base + 1:
        plan.refusal = (f"after the cut, records {base + 1}..{first_logged - 1} would be in no "
                        f"segment and no intact snapshot kept covers them; restore the data "
                        f"directory from a replica or backup instead")
    return plan


def format_plan(plan: RepairPlan) -> list[str]:
    lines = [f"damage: {plan.segment} at offset {plan.offset}: {plan.reason}",
             f"cut:    {plan.segment} to {plan.offset} bytes; the last good record is "
             f"{plan.last_good_seq}",
             f"lost:   {plan.records_lost} intact records and {plan.bytes_lost} bytes after the "
             f"damage (acknowledged transfers among them are lost unless a replica has them)"]
    lines += [f"move:   later segment {path}" for path in plan.later_segments]
    lines += [f"move:   snapshot {path} (newer than the cut)" for path in plan.snapshots]
    return lines


class DataDirLocked(Exception):
    pass


def lock_data_dir(data_dir: Path) -> int:
    """The switch's own lock (`DATA/LOCK`, flock): repair never runs beside a switch."""
    fd = os.open(data_dir / "LOCK", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DataDirLocked(f"{data_dir} is in use by a running switch ({data_dir / 'LOCK'} "
                            f"is held); stop it first") from None
    return fd


def apply_repair(data_dir: Path, plan: RepairPlan) -> Path:
    """Cuts the log as planned, durably; what is cut off goes to a new quarantine folder, which
    is returned."""
    wal_dir = data_dir / "wal"
    quarantine = wal_dir / QUARANTINE / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    while quarantine.exists():
        quarantine = quarantine.with_name(quarantine.name + "+")
    quarantine.mkdir(parents=True)
    fsync_dir(quarantine.parent)
    if plan.offset == 0:
        os.rename(plan.segment, quarantine / plan.segment.name)
    else:
        tail = quarantine / f"{plan.segment.name}.from-offset-{plan.offset}"
        with open(plan.segment, "r+b") as segment, open(tail, "wb") as out:
            segment.seek(plan.offset)
            shutil.copyfileobj(segment, out)
            out.flush()
            os.fsync(out.fileno())
            fsync_dir(quarantine)  # the copy is durable before the original goes
            segment.truncate(plan.offset)
            os.fsync(segment.fileno())
    for path in plan.later_segments + plan.snapshots:
        os.rename(path, quarantine / path.name)
    (quarantine / "REPAIR.txt").write_text("\n".join(format_plan(plan)) + "\n")
    for directory in (quarantine, wal_dir, data_dir / "snapshots"):
        if directory.is_dir():
            fsync_dir(directory)
    return quarantine


def run_verify(data_dir: Path, out=sys.stdout) -> int:
    if not data_dir.is_dir():
        print(f"no data directory at {data_dir}", file=out)
        return 1
    report = verify(data_dir)
    print("\n".join(format_report(report)), file=out)
    return 1 if report.damaged or report.unreadable else 0


def run_repair(data_dir: Path, yes: bool, stdin=sys.stdin, out=sys.stdout) -> int:
    if not data_dir.is_dir():
        print(f"no data directory at {data_dir}", file=out)
        return 1
    try:
        lock_fd = lock_data_dir(data_dir)
    except DataDirLocked as error:
        print(f"refusing to repair: {error}", file=out)
        return 1
    try:
        try:
            plan = plan_repair(data_dir)
        except UnsupportedWalVersion as error:
            print(f"refusing to repair: {error}", file=out)
            return 1
        if plan is None:
            print("the log that recovery reads has no damage; nothing to repair (`wal verify` "
                  "shows any damage in segments a snapshot covers)", file=out)
            return 0
        print("\n".join(format_plan(plan)), file=out)
        if plan.refusal:
            print(f"refusing to repair: {plan.refusal}", file=out)
            return 1
        if not yes:
            print("Type 'yes' to cut the log there (anything else leaves it as it is): ",
                  end="", file=out, flush=True)
            if stdin.readline().strip() != "yes":
                print("not confirmed; nothing changed", file=out)
                return 1
        quarantine = apply_repair(data_dir, plan)
        print(f"repaired: the log ends at record {plan.last_good_seq}; what was cut off is in "
              f"{quarantine}", file=out)
        return 0
    finally:
        os.close(lock_fd)
