"""WAL record framing: `u32 length | u32 crc32(length + payload) | payload`.

The checksum covers the length too, so a damaged length is detected as damage rather than read
as a (wrong) record boundary.
"""
import struct
import zlib

HEADER = struct.Struct(">II")
HEADER_BYTES = HEADER.size
# A request is at most one frame (default 1 MiB) re-encoded; anything far larger is damage.
MAX_RECORD_BYTES = 256 << 20


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
    """Iterates (offset, payload) over the intact records of one segment's bytes.

    Stops at the first damaged record; afterwards `good_end` is the offset where the intact prefix
    ends and `damage` says what was wrong (None when the whole segment is intact).
    """

    def __init__(self, data):
        self.data = memoryview(data)
        self.good_end = 0
        self.damage = None

    def __iter__(self):
        data, offset = self.data, 0
        while offset < len(data):
            found = _record_at(data, offset)
            if isinstance(found, str):
                self.damage = found
                return
            yield offset, found
            offset += HEADER_BYTES + len(found)
            self.good_end = offset

    def intact_record_follows(self) -> bool:
        """Whether any intact record starts after the damage: then it is not a torn tail.

        A torn append leaves only a prefix of the last write; an intact record further on means
        bytes in the middle of the log were damaged after being written.
        """
        data = self.data
        return any(
            not isinstance(_record_at(data, offset), str)
            for offset in range(self.good_end + 1, len(data) - HEADER_BYTES + 1)
        )
