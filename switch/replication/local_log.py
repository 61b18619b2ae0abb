"""What a node keeps on disk about the replicated log, and how it cuts its own log back to it.

`replicated.json` records how far this node's log is known to be in the stream (the primary:
acknowledged by it; a standby: applied from it), rewritten about once a second. Records after
that point may be a tail a deposed primary wrote but the stream never accepted (never
acknowledged to anyone): on start they are cut off and, if the stream has them, fetched again.
A lagging marker only means re-fetching a little more.
"""
import json
import os
import shutil
from pathlib import Path

import structlog

from payswitch.protocol.atomic_file import fsync_dir, write_atomically
from payswitch.switch.storage.records import RecordScanner
from payswitch.switch.storage.segments import list_segments, list_snapshots, snapshot_path

log = structlog.get_logger("switch.replication")
MARKER_NAME = "replicated.json"


def read_marker(data_dir: Path) -> int:
    """The last record known to be in the stream; 0 when unknown."""
    try:
        return int(json.loads((data_dir / MARKER_NAME).read_text())["seq"])
    except FileNotFoundError:
        return 0


def write_marker(data_dir: Path, seq: int) -> None:
    write_atomically(data_dir / MARKER_NAME, json.dumps({"seq": seq}).encode() + b"\n")


def keep_up_to(data_dir: Path, snapshot_dir: Path) -> int:
    """The last local record that is certainly in the stream: the marker, or the newest local
    snapshot (taken only of replicated records), whichever is later."""
    snapshots = list_snapshots(snapshot_dir)
    return max(read_marker(data_dir), snapshots[-1][0] if snapshots else 0)


def discard_after(wal_dir: Path, seq: int) -> int:
    """Cuts the local log after record `seq` (a tail the stream may not hold); returns how many
    records were dropped. Segments starting after it are deleted."""
    dropped = 0
    for first_seq, path in reversed(list_segments(wal_dir)):
        if first_seq > seq:
            dropped += sum(1 for _ in RecordScanner(path.read_bytes(), source=path))
            os.unlink(path)
            continue
        data = path.read_bytes()
        scanner = RecordScanner(data, source=path)
        cut_at, record_seq = len(data), first_seq - 1
        for offset, _ in scanner:
            record_seq += 1
            if record_seq > seq:
                cut_at = min(cut_at, offset)
                dropped += 1
        if cut_at < len(data) or scanner.damage is not None:
            with open(path, "r+b") as file:
                file.truncate(min(cut_at, scanner.good_end))
                os.fsync(file.fileno())
        break
    fsync_dir(wal_dir)
    return dropped


def install_snapshot(wal_dir: Path, snapshot_dir: Path, seq: int, data: bytes) -> None:
    """Replaces the whole local state with a snapshot fetched from the object store."""
    for directory in (wal_dir, snapshot_dir):
        shutil.rmtree(directory)
        directory.mkdir()
    write_atomically(snapshot_path(snapshot_dir, seq), data)
    fsync_dir(wal_dir)


def last_local_seq(wal_dir: Path, snapshot_dir: Path) -> int:
    """The last intact record of the local log (the newest snapshot's, if no record follows)."""
    snapshots = list_snapshots(snapshot_dir)
    last = snapshots[-1][0] if snapshots else 0
    segments = list_segments(wal_dir)
    if segments:
        first_seq, path = segments[-1]
        count = sum(1 for _ in RecordScanner(path.read_bytes(), source=path))
        last = max(last, first_seq + count - 1)
    return last
