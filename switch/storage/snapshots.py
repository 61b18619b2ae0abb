"""Snapshot files: the ledger's whole state as of one WAL sequence number, written atomically.

Layout: MAGIC | u64 seq | u64 payload length | u32 crc32(payload) | msgpack(state).
Written to a temporary name, fsynced, renamed, and the directory fsynced, so a crash leaves
either the old set of snapshots or the new one, never a half-written file under a final name.
"""
import os
import struct
import zlib
from pathlib import Path

import msgpack

from payswitch.protocol.atomic_file import publish_durably
from payswitch.switch.storage.segments import list_snapshots, snapshot_path

MAGIC = b"PSWSNAP1"
HEADER = struct.Struct(">8sQQI")
FLUSH_BYTES = 4 << 20


class SnapshotDamaged(Exception):
    pass


def write_snapshot_file(path: Path, seq: int, state) -> None:
    """Writes and fsyncs `path` (a temporary name; see `publish_snapshot`).

    Flushed every FLUSH_BYTES: one fsync of hundreds of MB at the end fills the disk's queue,
    and the WAL's fdatasync, on the same disk, waits behind it (tens of ms at p99)."""
    payload = memoryview(msgpack.packb(state, use_bin_type=True))
    with open(path, "wb", buffering=0) as file:
        file.write(HEADER.pack(MAGIC, seq, len(payload), zlib.crc32(payload)))
        for start in range(0, len(payload), FLUSH_BYTES):
            file.write(payload[start:start + FLUSH_BYTES])
            os.fdatasync(file.fileno())
        os.fsync(file.fileno())


def temporary_snapshot_path(snapshot_dir: Path, seq: int) -> Path:
    return snapshot_dir / f".{snapshot_path(snapshot_dir, seq).name}.tmp"


def publish_snapshot(snapshot_dir: Path, seq: int) -> None:
    """Renames the fsynced temporary file to its final name, durably."""
    publish_durably(temporary_snapshot_path(snapshot_dir, seq), snapshot_path(snapshot_dir, seq))


def save_snapshot(snapshot_dir: Path, seq: int, state) -> None:
    write_snapshot_file(temporary_snapshot_path(snapshot_dir, seq), seq, state)
    publish_snapshot(snapshot_dir, seq)


def read_snapshot(path: Path):
    """(seq, state) of one snapshot file; raises SnapshotDamaged naming what is wrong."""
    data = path.read_bytes()
    if len(data) < HEADER.size:
        raise SnapshotDamaged(f"{path}: shorter than its header")
    magic, seq, length, crc = HEADER.unpack_from(data)
    payload = memoryview(data)[HEADER.size:]
    if magic != MAGIC or len(payload) != length or zlib.crc32(payload) != crc:
        raise SnapshotDamaged(f"{path}: bad magic, length or checksum")
    return seq, msgpack.unpackb(payload, raw=False, strict_map_key=False)


def prune_snapshots(snapshot_dir: Path, keep: int) -> int:
    """Deletes all but the newest `keep` snapshots (and stray temporary files).

    Returns the seq of the oldest snapshot kept: WAL records after it must be kept so that
    recovery can fall back to that snapshot if a newer one is damaged.
    """
    for name in os.listdir(snapshot_dir):
        if name.endswith(".tmp"):
            os.unlink(snapshot_dir / name)
    snapshots = list_snapshots(snapshot_dir)
    for _, path in snapshots[:-keep]:
        os.unlink(path)
    kept = snapshots[-keep:]
    return kept[0][0] if kept else 0
