"""The WAL's format version, carried once per segment in a header, never per record.

Each segment begins with `MAGIC | u32 version | u64 first_seq | u32 crc32(the bytes before)`.
A segment without it is format version 1 (written before segments were versioned): a version 1
segment starts with a record's u32 length, and MAGIC read as one (b"PSWW") is far above
MAX_RECORD_BYTES, so the two never look alike, and a build older than versioning takes a
headed segment for damage and refuses to start rather than misreading it.

Version 2 records are byte for byte those of version 1: only the segment says which format its
records have. Version 3 adds records of the op `transfer_group` (a run of plain transfers read
together, see switch/session.py) and `create_transfers` records of plain transfers in columns
(`{ids, debit_accounts, credit_accounts, amounts}`, the ids one a line in one string per
column: see protocol.plain_columns), which a build reading only up to version 2 cannot apply: so
the switch begins a new segment rather than append to one of an older version, and an older
build refuses a version 3 segment by its header instead of failing on the record. Records in
the replicated stream carry the version in a message header (see switch/replication/wire.py).
A version that changes the records must write records of an older version only into segments
of that version.
"""
import struct
import zlib
from typing import NamedTuple

MAGIC = b"PSWWAL\r\n"
SEGMENT_HEADER = struct.Struct(">8sIQI")
WAL_VERSION = 3  # what this build writes, and the newest it reads
OLDEST_READABLE_VERSION = 1


class UnsupportedWalVersion(Exception):
    """A segment or stream message in a format this build cannot read; the message names it,
    its version and the newest this build reads."""


def segment_header(first_seq: int) -> bytes:
    fields = SEGMENT_HEADER.pack(MAGIC, WAL_VERSION, first_seq, 0)[:-4]
    return fields + zlib.crc32(fields).to_bytes(4, "big")


def check_readable(version: int, source) -> None:
    """Raises UnsupportedWalVersion unless this build reads `version` (of `source`, for the
    message)."""
    if not OLDEST_READABLE_VERSION <= version <= WAL_VERSION:
        raise UnsupportedWalVersion(
            f"{source}: WAL format version {version}; this switch reads versions "
            f"{OLDEST_READABLE_VERSION} to {WAL_VERSION}: start a build that reads it")


class SegmentStart(NamedTuple):
    version: int | None  # None when the header is damaged
    records_offset: int
    first_seq: int | None  # as the header says (version 1: no header, None)
    damage: str | None


def read_segment_header(data, source) -> SegmentStart:
    """Where a segment's records begin, and in which format; raises UnsupportedWalVersion.

    No header: version 1, records from offset 0. A header cut short or failing its checksum is
    damage at offset 0: the same rules as for a damaged record then decide whether it is a torn
    tail (a crash while the segment was being begun) or refuses to start."""
    if bytes(data[:len(MAGIC)]) != MAGIC:
        return SegmentStart(1, 0, None, None)
    if len(data) < SEGMENT_HEADER.size:
        return SegmentStart(None, 0, None, "incomplete segment header")
    _, version, first_seq, crc = SEGMENT_HEADER.unpack_from(data)
    if zlib.crc32(data[:SEGMENT_HEADER.size - 4]) != crc:
        return SegmentStart(None, 0, None, "segment header checksum mismatch")
    check_readable(version, source)
    return SegmentStart(version, SEGMENT_HEADER.size, first_seq, None)
