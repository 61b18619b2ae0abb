"""One client connection: bytes in, frames out, replies held back until their record is durable.

Backpressure: we stop reading from a connection while its transport's write buffer is above the
limit (a client that does not read its replies) or while it has too many requests unanswered,
so neither a slow reader nor a fast pipeliner can make the server buffer without bound.
"""
import asyncio
from collections import deque

from protocol import FrameDecoder, encode_body, encode_frame, error_reply, JSON, codes

PAUSED_FOR_WRITES, PAUSED_FOR_INFLIGHT, PAUSED_FOR_CLOSE = 1, 2, 4


class Connection(asyncio.Protocol):
    def __init__(self, service):
        self.service = service
        self.config = service.config
        self.decoder = FrameDecoder(self.config.max_frame_bytes)
        self.participant: str | None = None
        self.transport = None
        # (seq, request_id, codec, frame) of replies waiting for the WAL to reach seq.
        self.waiting: deque = deque()
        self.ready: list[bytes] = []
        self.paused = 0
        self.closing = False
        self.last_activity_s = 0.0

    # asyncio.Protocol callbacks

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.last_activity_s = self.service.loop.time()
        transport.set_write_buffer_limits(high=self.config.max_write_buffer_bytes)
        if not self.service.admit(self):
            self.send_error_and_close(codes.OVERLOADED, "too many connections; try again later")

    def connection_lost(self, exc) -> None:
        self.closing = True
        self.waiting.clear()
        self.service.forget(self)

    def data_received(self, data: bytes) -> None:
        if self.closing:  # framing was lost or the connection refused: read nothing more
            return
        self.last_activity_s = self.service.loop.time()
        handle = self.service.handle_frame
        for body in self.decoder.feed(data):
            handle(self, body)
            if self.closing:
                return
        if self.decoder.too_large_length is not None:
            self.send_error_and_close(
                codes.FRAME_TOO_LARGE,
                f"frame of {self.decoder.too_large_length} bytes exceeds max_frame_bytes "
                f"{self.config.max_frame_bytes}")
        self.flush()

    def eof_received(self) -> bool:
        """A half-close: answer everything already received, then close."""
        self.closing = True
        self.paused |= PAUSED_FOR_CLOSE
        self.flush()
        return True  # keep the transport open for the replies still waiting for the WAL

    def pause_writing(self) -> None:
        self._pause(PAUSED_FOR_WRITES)

    def resume_writing(self) -> None:
        self._resume(PAUSED_FOR_WRITES)

    # replies

    def queue_reply(self, seq: int, request_id, codec: str, frame: bytes, durable_seq: int) -> None:
        """Sends `frame` once the WAL is durable up to `seq`, after every earlier reply."""
        if not self.waiting and seq <= durable_seq:
            self.ready.append(frame)
            return
        if not self.waiting:
            self.service.waiting_connections.add(self)
        self.waiting.append((seq, request_id, codec, frame))
        if len(self.waiting) >= self.config.max_inflight_per_connection:
            self._pause(PAUSED_FOR_INFLIGHT)

    def release(self, durable_seq: int) -> bool:
        """Sends the replies now durable; returns whether some are still waiting."""
        waiting = self.waiting
        while waiting and waiting[0][0] <= durable_seq:
            self.ready.append(waiting.popleft()[3])
        self.flush()
        if self.paused & PAUSED_FOR_INFLIGHT and \
                len(waiting) <= self.config.max_inflight_per_connection // 2:
            self._resume(PAUSED_FOR_INFLIGHT)
        return bool(waiting)

    def fail_waiting(self, code: str, message: str) -> None:
        """Answers every waiting request with an error: their records will never be durable."""
        for _, request_id, codec, _ in self.waiting:
            self.ready.append(encode_frame(encode_body(error_reply(request_id, code, message),
                                                       codec)))
        self.waiting.clear()
        self.flush()

    def flush(self) -> None:
        if self.ready and not self.transport.is_closing():
            self.transport.write(b"".join(self.ready))
        self.ready.clear()
        if self.paused & PAUSED_FOR_CLOSE and not self.waiting:
            self.transport.close()

    def send_error_and_close(self, code: str, message: str) -> None:
        """Answers in JSON with id null after every earlier reply, then closes: framing is lost."""
        frame = encode_frame(encode_body(error_reply(None, code, message), JSON))
        self.closing = True
        self._pause(PAUSED_FOR_CLOSE)
        if self.waiting:
            self.waiting.append((self.waiting[-1][0], None, JSON, frame))
        else:
            self.ready.append(frame)
        self.flush()

    def close(self) -> None:
        self.closing = True
        self.transport.close()

    def _pause(self, reason: int) -> None:
        if not self.paused:
            self.transport.pause_reading()
        self.paused |= reason

    def _resume(self, reason: int) -> None:
        self.paused &= ~reason
        if not self.paused and not self.transport.is_closing():
            self.transport.resume_reading()
