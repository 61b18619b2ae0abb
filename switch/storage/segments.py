"""Naming and listing of WAL segment files and snapshot files in the data directory."""
import os
from pathlib import Path

from payswitch.protocol.atomic_file import fsync_dir

SEGMENT_PREFIX, SEGMENT_SUFFIX = "wal-", ".log"
SNAPSHOT_PREFIX, SNAPSHOT_SUFFIX = "snapshot-", ".msgpack"


def segment_path(wal_dir: Path, first_seq: int) -> Path:
    return wal_dir / f"{SEGMENT_PREFIX}{first_seq:020d}{SEGMENT_SUFFIX}"


def snapshot_path(snapshot_dir: Path, seq: int) -> Path:
    return snapshot_dir / f"{SNAPSHOT_PREFIX}{seq:020d}{SNAPSHOT_SUFFIX}"


def _numbered(directory: Path, prefix: str, suffix: str) -> list[tuple[int, Path]]:
    found = []
    for name in os.listdir(directory):
        if name.startswith(prefix) and name.endswith(suffix):
            number = name[len(prefix):-len(suffix)]
            if number.isdigit():
                found.append((int(number), directory / name))
    return sorted(found)


def list_segments(wal_dir: Path) -> list[tuple[int, Path]]:
    """(first_seq, path) of every segment, oldest first."""
    return _numbered(wal_dir, SEGMENT_PREFIX, SEGMENT_SUFFIX)


def list_snapshots(snapshot_dir: Path) -> list[tuple[int, Path]]:
    """(seq, path) of every complete snapshot, oldest first."""
    return _numbered(snapshot_dir, SNAPSHOT_PREFIX, SNAPSHOT_SUFFIX)


def prune_segments(wal_dir: Path, keep_after_seq: int) -> int:
    """Deletes segments whose every record is at most `keep_after_seq`; never the newest one.

    A segment's records end where the next segment begins, so segment i is covered once segment
    i+1 starts at or before keep_after_seq + 1. Returns how many were deleted.
    """
    segments = list_segments(wal_dir)
    deleted = 0
    for (_, path), (next_first_seq, _) in zip(segments, segments[1:]):
        if next_first_seq > keep_after_seq + 1:
            break
        os.unlink(path)
        deleted += 1
    if deleted:
        fsync_dir(wal_dir)
    return deleted
