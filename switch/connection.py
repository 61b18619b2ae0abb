"""One client connection: bytes in, frames out, replies held back until their record is durable.

Backpressure: we stop reading from a connection while its transport's write buffer is above the
limit (a client that does not read its replies) or while it has too many requests unanswered,
so neither a slow reader nor a fast pipeliner can make the server buffer without bound.

Fairness: the frames of one read are handled in turns (see switch/turns.py): a first turn of at
most `first_turn_s` as soon as they arrive, then turns of at most `turn_s` in round robin; the
rest wait in `backlog`, reading paused. So a client that sends thousands of frames, or expensive
ones, at once delays the others by one turn, not by all of its work. A frame larger than
`max_inline_decode_bytes` is decoded in the decode worker process (switch/decode_worker.py); the
connection waits for its verdict, reading paused, while the others are served.

Timers (checked by the server's housekeeping sweep, once a second, see `sweep`): a frame must be
complete within `frame_timeout_s` of its first byte (slowloris); a connection that keeps its
replies above the write-buffer limit for `write_stall_timeout_s` is dropped (it does not read);
one with no traffic for `idle_timeout_s` is closed.

A reply may also be held until a point in time (a failed `hello` is answered late, see
`Service._hello`); later replies on the connection wait behind it, so order is kept, and reading
pauses meanwhile.
"""
import asyncio
import time
from collections import deque

from protocol import FrameDecoder, encode_body, encode_frame, error_reply, JSON, codes

PAUSED_FOR_WRITES, PAUSED_FOR_INFLIGHT, PAUSED_FOR_CLOSE, PAUSED_FOR_DELAY = 1, 2, 4, 8
PAUSED_FOR_BACKLOG, PAUSED_FOR_LOST, PAUSED_FOR_DECODE = 16, 32, 64
# While one of these holds, the backlog waits: for the client to read, or for a verdict.
HOLDS_BACKLOG = PAUSED_FOR_WRITES | PAUSED_FOR_DECODE
TIMER_SLACK_S = 0.001  # event-loop timers may fire this much early
# Frames split from the read buffer at a time (~0.15 ms for tiny ones; one read can hold 50,000).
MAX_FRAMES_PER_SPLIT = 512

# Why the sweep closed a connection (the keys of the `connections_closed` counters).
IDLE, FRAME_TIMEOUT, WRITE_STALL, CLOSE_STALL = "idle", "frame_timeout", "write_stall", \
    "close_stall"


class Connection(asyncio.Protocol):
    def __init__(self, service):
        self.service = service
        self.config = service.config
        self.decoder = FrameDecoder(self.config.max_frame_bytes)
        self.participant: str | None = None
        self.transport = None
        self.peer_ip: str | None = None
        self.cert_cn: str | None = None  # subject CN of a verified TLS client certificate
        # (seq, request_id, codec, frame, not_before_s) of replies waiting for the WAL to reach
        # seq and, when not_before_s is not 0, for the loop clock to reach not_before_s.
        self.waiting: deque = deque()
        self.delayed = 0  # entries of `waiting` with a not_before_s
        self.ready: list[bytes] = []
        self.backlog: deque = deque()  # bodies read but not yet handled (see switch/turns.py)
        self.verdict = None  # the decode worker's verdict on the frame before the backlog
        self.reply_being_encoded = None  # a ReplyInSteps, before the backlog
        self.in_line = False  # waiting for a turn (see switch/turns.py)
        self.framing_lost = False  # an oversized length: answer what came before, then close
        self.eof = False  # the peer half-closed: answer what came before, then close
        self.paused = 0
        self.closing = False
        self.last_activity_s = 0.0
        self.partial_since_s: float | None = None  # first byte of the incomplete frame
        self.write_stalled_since_s: float | None = None
        self.close_started_s: float | None = None
        self._release_timer: asyncio.TimerHandle | None = None

    # asyncio.Protocol callbacks

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.last_activity_s = self.service.loop.time()
        transport.set_write_buffer_limits(high=self.config.max_write_buffer_bytes)
        peer = transport.get_extra_info("peername")
        self.peer_ip = str(peer[0]) if isinstance(peer, tuple) and peer else None
        self.cert_cn = _subject_cn(transport.get_extra_info("peercert"))
        if not self.service.admit(self):
            self.send_error_and_close(codes.OVERLOADED, "too many connections; try again later")

    def connection_lost(self, exc) -> None:
        self.closing = True
        if self._release_timer is not None:
            self._release_timer.cancel()
            self._release_timer = None
        self.service.queued_replies -= len(self.waiting)
        self.waiting.clear()
        self.delayed = 0
        self.service.forget(self)

    def data_received(self, data: bytes) -> None:
        if self.closing or self.framing_lost:  # refused, closing, or framing lost: read no more
            return
        self.last_activity_s = self.service.loop.time()
        self._split(data)
        if self._has_frames() and not self.paused & HOLDS_BACKLOG:
            self.service.turns.ready(self)

    def _has_frames(self) -> bool:
        """Frames read and not yet handled (or framing lost, to be answered after them)."""
        return bool(self.backlog) or self.decoder.stopped_at_limit or self.framing_lost

    def _split(self, data: bytes) -> None:
        """Moves the frames of `data` (and of what the decoder holds) to the backlog, at most
        MAX_FRAMES_PER_SPLIT at a time: the rest wait in the decoder for a later turn."""
        decoder = self.decoder
        buffered_before = decoder.buffered_bytes
        self.backlog.extend(decoder.feed(data, MAX_FRAMES_PER_SPLIT))
        if decoder.too_large_length is not None:
            self.framing_lost = True
            self._pause(PAUSED_FOR_LOST)
        elif not decoder.has_partial_frame:
            self.partial_since_s = None
        elif self.partial_since_s is None or \
                decoder.buffered_bytes < buffered_before + len(data):
            self.partial_since_s = self.service.loop.time()  # a frame ended: a new one began

    def take_turn(self, deadline_s: float) -> bool:
        """Handles what waits, in order (the decode worker's verdict, a long reply being
        encoded, backlog frames), until `deadline_s` (perf_counter); returns whether work is
        left for another turn. Reading is paused while anything is in the backlog. While the
        client does not read its replies (write buffer full) no frame is handled until
        resume_writing; while a frame is in the decode worker, until its verdict."""
        backlog = self.backlog
        if self.closing:
            backlog.clear()
            return False
        if self.verdict is not None:
            verdict, self.verdict = self.verdict, None
            self.service.handle_decoded(self, verdict)
        handle = self.service.handle_frame
        while not self.closing:
            if self.reply_being_encoded is not None:
                if self.reply_being_encoded.run_until(self, deadline_s):
                    self._pause(PAUSED_FOR_BACKLOG)
                    self.flush()
                    return True
                self.reply_being_encoded = None
            if not backlog and (self.framing_lost or not self.decoder.stopped_at_limit):
                break
            if self.paused & HOLDS_BACKLOG or time.perf_counter() > deadline_s:
                self._pause(PAUSED_FOR_BACKLOG)
                self.flush()
                return not self.paused & HOLDS_BACKLOG
            if backlog:
                handle(self, backlog.popleft())
            else:
                self._split(b"")  # the decoder holds more frames of an earlier read
        if self.closing:
            backlog.clear()
            return False
        if self.paused & PAUSED_FOR_DECODE:  # the last frame went to the decode worker
            self.flush()
            return False
        if self.paused & PAUSED_FOR_BACKLOG:
            self._resume(PAUSED_FOR_BACKLOG)
        if self.eof:
            self._half_close()
            return False
        if self.framing_lost:
            self.send_error_and_close(
                codes.FRAME_TOO_LARGE,
                f"frame of {self.decoder.too_large_length} bytes exceeds max_frame_bytes "
                f"{self.config.max_frame_bytes}")
            return False
        self.flush()
        return False

    def wait_for_verdict(self) -> None:
        """The frame just taken went to the decode worker: nothing more until its verdict."""
        self._pause(PAUSED_FOR_DECODE)

    def reply_in_steps(self, reply) -> None:
        """The request just handled has a long reply: it is encoded, in steps, before anything
        else of this connection is handled (see switch/reply_steps.py)."""
        self.reply_being_encoded = reply

    def take_verdict(self, verdict) -> None:
        if self.closing:
            return
        self.verdict = verdict
        self._resume(PAUSED_FOR_DECODE)
        self.service.turns.enqueue(self)

    @property
    def handling(self) -> bool:
        """Whether requests read from this connection are still to be handled."""
        return bool(self._has_frames() or self.reply_being_encoded is not None
                    or self.verdict is not None or self.paused & PAUSED_FOR_DECODE)

    @property
    def busy(self) -> bool:
        """Whether requests of this connection are still to be answered."""
        return bool(self.waiting) or self.handling

    def eof_received(self) -> bool:
        """A half-close: answer everything already received, then close."""
        self.eof = True
        if not self.handling:
            self._half_close()
        return True  # keep the transport open for the replies still waiting for the WAL

    def _half_close(self) -> None:
        self.closing = True
        self.paused |= PAUSED_FOR_CLOSE
        self.flush()

    def pause_writing(self) -> None:
        self.write_stalled_since_s = self.service.loop.time()
        self._pause(PAUSED_FOR_WRITES)

    def resume_writing(self) -> None:
        self.write_stalled_since_s = None
        self._resume(PAUSED_FOR_WRITES)
        if self._has_frames() and not self.paused & HOLDS_BACKLOG:
            self.service.turns.enqueue(self)

    # replies

    def queue_reply(self, seq: int, request_id, codec: str, frame: bytes, durable_seq: int,
                    not_before_s: float = 0.0) -> None:
        """Sends `frame` once the WAL is durable up to `seq` (and, if given, not before the loop
        time `not_before_s`), after every earlier reply."""
        waiting = self.waiting
        if not waiting and seq <= durable_seq and not not_before_s:
            self.ready.append(frame)
            return
        if not waiting:
            self.service.waiting_connections.add(self)
        waiting.append((seq, request_id, codec, frame, not_before_s))
        self.service.queued_replies += 1
        if not_before_s:
            self.delayed += 1
            self._pause(PAUSED_FOR_DELAY)
            if len(waiting) == 1:
                self._arm_release_timer(not_before_s)
        if len(waiting) >= self.config.max_inflight_per_connection:
            self._pause(PAUSED_FOR_INFLIGHT)

    def release(self, durable_seq: int) -> bool:
        """Sends the replies now durable (and due); returns whether some are still waiting."""
        waiting = self.waiting
        released = 0
        while waiting:
            head = waiting[0]
            if head[0] > durable_seq:
                break
            if head[4]:
                if head[4] > self.service.loop.time() + TIMER_SLACK_S:
                    self._arm_release_timer(head[4])
                    break
                self.delayed -= 1
            self.ready.append(waiting.popleft()[3])
            released += 1
        self.flush()
        if released:
            self.service.queued_replies -= released
            if self.paused & PAUSED_FOR_DELAY and not self.delayed:
                self._resume(PAUSED_FOR_DELAY)
            if self.paused & PAUSED_FOR_INFLIGHT and \
                    len(waiting) <= self.config.max_inflight_per_connection // 2:
                self._resume(PAUSED_FOR_INFLIGHT)
        return bool(waiting)

    def _arm_release_timer(self, when_s: float) -> None:
        timer = self._release_timer
        if timer is not None:
            if timer.when() <= when_s:
                return
            timer.cancel()
        self._release_timer = self.service.loop.call_at(when_s, self._on_release_timer)

    def _on_release_timer(self) -> None:
        self._release_timer = None
        if self.transport is None or not self.waiting:
            return
        if not self.release(self.service.durable_seq):
            self.service.waiting_connections.discard(self)

    def fail_waiting(self, code: str, message: str, durable_seq: int, **details) -> None:
        """Answers every waiting request now: those not yet durable with an error (their records
        will never be), the others with their reply."""
        for seq, request_id, codec, frame, _ in self.waiting:
            if seq > durable_seq:
                frame = encode_frame(encode_body(error_reply(request_id, code, message,
                                                             **details), codec))
            self.ready.append(frame)
        self.service.queued_replies -= len(self.waiting)
        self.waiting.clear()
        self.delayed = 0
        if self._release_timer is not None:
            self._release_timer.cancel()
            self._release_timer = None
        self.flush()
        self._resume(PAUSED_FOR_DELAY | PAUSED_FOR_INFLIGHT)

    def flush(self) -> None:
        if self.ready and not self.transport.is_closing():
            self.transport.write(b"".join(self.ready))
        self.ready.clear()
        if self.paused & PAUSED_FOR_CLOSE and not self.waiting:
            self._close_transport()

    def send_error_and_close(self, code: str, message: str) -> None:
        """Answers in JSON with id null after every earlier reply, then closes: framing is lost."""
        frame = encode_frame(encode_body(error_reply(None, code, message), JSON))
        self.closing = True
        self._pause(PAUSED_FOR_CLOSE)
        if self.waiting:
            self.waiting.append((self.waiting[-1][0], None, JSON, frame, 0.0))
            self.service.queued_replies += 1
        else:
            self.ready.append(frame)
        self.flush()

    def close(self) -> None:
        self.closing = True
        self._close_transport()

    def abort(self) -> None:
        """Drops the connection at once, with whatever it has not read."""
        self.closing = True
        self.transport.abort()

    def _close_transport(self) -> None:
        if self.close_started_s is None:
            self.close_started_s = self.service.loop.time()
        self.transport.close()  # waits until the write buffer is flushed

    # timers

    def sweep(self, now_s: float) -> str | None:
        """Enforces the connection's time limits; returns why it was closed, if it was."""
        config = self.config
        if self.close_started_s is not None:
            # closing, but the peer does not take its last replies: drop them
            if now_s - self.close_started_s > config.write_stall_timeout_s:
                self.abort()
                return CLOSE_STALL
            return None
        if self.write_stalled_since_s is not None and \
                now_s - self.write_stalled_since_s > config.write_stall_timeout_s:
            self.abort()
            return WRITE_STALL
        if self.closing:
            return None
        if self.partial_since_s is not None and not self.paused and \
                now_s - self.partial_since_s > config.frame_timeout_s:
            self.send_error_and_close(
                codes.BAD_FRAME, f"frame not completed within frame_timeout_s "
                                 f"{config.frame_timeout_s:g}s of its first byte")
            return FRAME_TIMEOUT
        if not self.waiting and now_s - self.last_activity_s > config.idle_timeout_s:
            self.close()
            return IDLE
        return None

    # reading

    def _pause(self, reason: int) -> None:
        if not self.paused:
            self.transport.pause_reading()
        self.paused |= reason

    def _resume(self, reason: int) -> None:
        was_paused = self.paused
        self.paused &= ~reason
        if was_paused and not self.paused and not self.transport.is_closing():
            self.transport.resume_reading()
            if self.partial_since_s is not None:
                # the rest of the frame may have waited in the kernel while we did not read
                self.partial_since_s = self.service.loop.time()


def _subject_cn(peercert) -> str | None:
    """The commonName of a verified peer certificate's subject, if there is exactly one."""
    if not peercert:
        return None
    names = [value for rdn in peercert.get("subject", ()) for key, value in rdn
             if key == "commonName"]
    return names[0] if len(names) == 1 else None
