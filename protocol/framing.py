"""Length-prefixed frames: a 4-byte big-endian length, then that many bytes."""

import struct

__all__ = ["FrameDecoder", "encode_frame", "pack_header", "HEADER_BYTES"]

_HEADER = struct.Struct(">I")
_unpack_header = _HEADER.unpack_from
pack_header = _HEADER.pack  # the header of a body of this many bytes
HEADER_BYTES = _HEADER.size


def encode_frame(body: bytes) -> bytes:
    """Prefix `body` with its length."""
    return pack_header(len(body)) + body


class FrameDecoder:
    """Incremental frame splitter: feed it bytes as they arrive, in any chunks.

    After a header announcing more than `max_frame_bytes` the stream can no
    longer be split (the body is never read), so the decoder records the
    length in `too_large_length` and refuses further input.
    """

    __slots__ = ("max_frame_bytes", "too_large_length", "stopped_at_limit", "_pending")

    def __init__(self, max_frame_bytes: int):
        self.max_frame_bytes = max_frame_bytes
        self.too_large_length: int | None = None
        # The last feed returned `max_frames` frames: more may be buffered, feed(b"") gives them.
        self.stopped_at_limit = False
        self._pending = bytearray()  # bytes carried to the next feed

    @property
    def has_partial_frame(self) -> bool:
        """Whether bytes of an incomplete frame (header or body) are buffered: the peer started
        a frame and has not finished it. Servers use it to time out slow senders."""
        return bool(self._pending)

    @property
    def buffered_bytes(self) -> int:
        """Bytes of the incomplete frame held until the rest arrives."""
        return len(self._pending)

    def feed(self, data: bytes | bytearray, max_frames: int | None = None) -> list[bytes]:
        """Return the bodies of every frame completed by `data` (keep-alives dropped), or of the
        first `max_frames` frames (keep-alives counted): then the rest stays buffered,
        `stopped_at_limit` is set, and feed(b"") goes on. (One read of 256 KiB can hold 50,000
        tiny frames; splitting them all takes 15-40 ms.)"""
        if self.too_large_length is not None:
            raise RuntimeError("frame decoder is dead: framing was lost")
        pending = self._pending
        if pending:
            pending += data
            data = pending
        elif self._is_one_frame(data):  # a read of one whole frame, as unpipelined peers send
            self.stopped_at_limit = False
            return [bytes(data[HEADER_BYTES:])]
        bodies: list[bytes] = []
        if type(data) is bytes:  # slices of bytes are bytes: one copy per body
            offset = self._split(data, bodies, max_frames)
        else:
            with memoryview(data) as view:
                offset = self._split(view, bodies, max_frames)
        if self.too_large_length is not None:
            self._pending = bytearray()
        elif data is pending:
            del pending[:offset]  # one compaction per feed, not per frame
        else:
            pending += data[offset:]
        return bodies

    def _is_one_frame(self, data: bytes | bytearray) -> bool:
        """Whether `data` is exactly one frame with a body, within the size limit."""
        end = len(data)
        return end > HEADER_BYTES and \
            _unpack_header(data)[0] + HEADER_BYTES == end <= self.max_frame_bytes + HEADER_BYTES

    def _split(self, view: bytes | memoryview, bodies: list[bytes],
               max_frames: int | None) -> int:
        """Append complete bodies in `view` to `bodies`; return the bytes consumed."""
        end = len(view)
        offset = 0
        limit = self.max_frame_bytes
        frames_left = -1 if max_frames is None else max_frames
        self.stopped_at_limit = False
        while end - offset >= HEADER_BYTES:
            if not frames_left:
                self.stopped_at_limit = True
                break
            frames_left -= 1
            (length,) = _unpack_header(view, offset)
            if length > limit:
                self.too_large_length = length
                break
            stop = offset + HEADER_BYTES + length
            if stop > end:
                break
            if length:
                body = view[offset + HEADER_BYTES:stop]
                bodies.append(body if type(body) is bytes else bytes(body))
            offset = stop
        return offset
