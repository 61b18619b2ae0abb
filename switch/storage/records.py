"""WAL record framing: `u32 length | u32 crc32(length + payload) | payload`.

A segment's records follow its header (switch/storage/wal_format.py), if it has one.

The checksum covers the length too, so a damaged length is detected as damage rather than read
as a (wrong) record boundary. No record begins with eight zero bytes (a length of 0 has a checksum
that is not 0), so zeros after the last record of a segment, all the way to its end, are space
the writer zeroed ahead of its records (switch/storage/wal_writer.py), not a record cut short.
"""
import re
import struct
import zlib

from payswitch.switch.storage.wal_format import read_segment_header

HEADER = struct.Struct(">II")
HEADER_BYTES = HEADER.size
# A request is at most one frame (default 1 MiB) re-encoded, and batch content larger than a
# frame arrives in parts: a record longer than this is refused on append and damage on reading.
MAX_RECORD_BYTES = 64 << 20
# Looking for intact records after damage checksums candidate records at every offset; past this
# many checksummed bytes we stop and assume one may follow (refusing to start is the safe side).
SEARCH_BUDGET_BYTES = 1 << 30
_NOT_ZERO = re.compile(rb"[^\x00]")


def encode_record(payload: bytes) -> bytes:
    length = len(payload)
    crc = zlib.crc32(payload, zlib.crc32(length.to_bytes(4, "big")))
    return HEADER.pack(length, crc) + payload


def _record_at(data, offset: int):
    """The payload of an intact record at `offset`, or a string saying what is wrong there."""
    if len(data) - offset < HEADER_BYTES:
        return "incomplete header"
    length, crc = HEADER.unpack_from(data, offset)
    if length > MAX_RECORD_BYTES:
        return f"implausible length {length}"
    end = offset + HEADER_BYTES + length
    if end > len(data):
        return "record runs past the end of the file"
    payload = data[offset + HEADER_BYTES:end]
    if zlib.crc32(payload, zlib.crc32(length.to_bytes(4, "big"))) != crc:
        return "checksum mismatch"
    return payload


class RecordScanner:
    """Iterates (offset, payload) over the intact records of one segment's bytes (or of a stream
    message's, which have no segment header); offsets count from the start of `data`.

    Stops at the first damaged record; afterwards `good_end` is the offset where the intact prefix
    ends and `damage` says what was wrong (None when the whole segment is intact). `version` and
    `first_seq` are the segment header's (see wal_format.SegmentStart); raises
    UnsupportedWalVersion, naming `source`, for a format this build does not read.
    """

    def __init__(self, data, source="WAL segment"):
        self.data = memoryview(data)
        self.version, self.good_end, self.first_seq, self.damage = \
            read_segment_header(self.data, source)

    def __iter__(self):
        data, offset = self.data, self.good_end
        if self.damage is not None:
            return
        while offset < len(data):
            found = _record_at(data, offset)
            if isinstance(found, str):
                self.damage = found
                return
            yield offset, found
            offset += HEADER_BYTES + len(found)
            self.good_end = offset

    def zeroed_to_end(self) -> bool:
        """Whether what stopped the scan is zeros to the end of the data: a segment's unused
        end, not damage (never so for a stream message, which the writer does not zero)."""
        return self.damage is not None and _NOT_ZERO.search(self.data, self.good_end) is None

    def intact_record_follows(self) -> bool:
        """Whether any intact record starts after the damage: then it is not a torn tail.

        A torn append leaves only a prefix of the last write; an intact record further on means
        bytes in the middle of the log were damaged after being written.
        """
        return self.next_intact_offset(self.good_end + 1) is not None

    def next_intact_offset(self, start: int) -> int | None:
        """The first offset at or after `start` where an intact record begins, or None."""
        data, budget = self.data, SEARCH_BUDGET_BYTES
        offset = start
        while offset <= len(data) - HEADER_BYTES:
            found = _record_at(data, offset)
            if not isinstance(found, str):
                return offset
            if found == "checksum mismatch":
                length, crc = HEADER.unpack_from(data, offset)
                if length == crc == 0:  # no header begins among zeros: on to the next byte not 0
                    not_zero = _NOT_ZERO.search(data, offset)
                    if not_zero is None:
                        return None
                    offset = max(offset, not_zero.start() - HEADER_BYTES)
                budget -= length
                if budget < 0:
                    return offset  # cannot rule it out cheaply: treat as an intact record
            offset += 1
        return None

    def intact_records_after_damage(self) -> tuple[int, int | None]:
        """(records, first offset) of the intact records found after the damage by resynchronizing
        on the next intact header each time; (0, None) when none. For reports: which of these
        really are records and not payload bytes that look like one cannot be known."""
        count, first, offset = 0, None, self.good_end + 1
        while (offset := self.next_intact_offset(offset)) is not None:
            first = offset if first is None else first
            while not isinstance(found := _record_at(self.data, offset), str):
                count += 1
                offset += HEADER_BYTES + len(found)
            offset += 1
        return count, first
