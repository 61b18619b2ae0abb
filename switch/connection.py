"""One client connection: the asyncio glue around its sans-IO session (switch/session.py).

The session does the work (frames, checks, execution, replies held for the log); this class
feeds it what the socket reads and what the loop's clock says, and after each step acts on what
the session wants: bytes to write, reading paused or resumed, a frame for the decode worker,
replies waiting for the log (then the service releases them, see Service.on_durable), a close.

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

from payswitch.protocol import FrameDecoder, codes
from payswitch.switch.session import CLOSE_STALL, IDLE, WRITE_STALL, Session


class Connection(asyncio.Protocol):
    def __init__(self, service):
        self.service = service
        self.config = service.config
        self.session: Session | None = None  # made once the socket is there
        self.transport = None
        self.reading = True
        self.in_line = False  # waiting for a turn (see switch/turns.py)
        self.close_started_s: float | None = None
        self._release_timer: asyncio.TimerHandle | None = None

    # asyncio.Protocol callbacks

    def connection_made(self, transport) -> None:
        self.transport = transport
        service = self.service
        transport.set_write_buffer_limits(high=self.config.max_write_buffer_bytes)
        peer = transport.get_extra_info("peername")
        self.session = Session(
            service, self.config, FrameDecoder(self.config.max_frame_bytes),
            service.held_replies, service.request_metrics,
            peer=_peer_text(peer), peer_ip=str(peer[0]) if isinstance(peer, tuple) and peer else None,
            cert_cn=_subject_cn(transport.get_extra_info("peercert")),
            now_s=service.loop.time())
        if not service.admit(self):
            self.session.send_error_and_close(codes.OVERLOADED,
                                              "too many connections; try again later")
            self.act_on_session()

    def connection_lost(self, exc) -> None:
        session = self.session
        session.closing = True
        if self._release_timer is not None:
            self._release_timer.cancel()
            self._release_timer = None
        session.forget_waiting()
        self.service.forget(self)

    def data_received(self, data: bytes) -> None:
        session = self.session
        if session.receive(data, self.service.loop.time()):
            if self.in_line:
                session.read_again_in_line()
            else:
                self.service.turns.ready(self)
        if session.paused and self.reading:
            self._sync_reading()

    def take_turn(self, deadline_s: float) -> bool:
        """One turn of the session's work (see switch/turns.py), until `deadline_s`
        (perf_counter); returns whether work is left for another turn."""
        more = self.session.handle(deadline_s, time.perf_counter)
        self.act_on_session()
        return more

    def take_verdict(self, verdict) -> None:
        """The decode worker's verdict on the frame this connection handed it."""
        if self.session.take_verdict(verdict):
            self._sync_reading()
            self.service.turns.enqueue(self)

    @property
    def closing(self) -> bool:
        return self.session.closing

    @property
    def busy(self) -> bool:
        """Whether requests of this connection are still to be answered."""
        return self.session.busy

    def eof_received(self) -> bool:
        """A half-close: answer everything already received, then close."""
        self.session.half_closed()
        self.act_on_session()
        return True  # keep the transport open for the replies still waiting for the WAL

    def pause_writing(self) -> None:
        self.session.writes_blocked(self.service.loop.time())
        self._sync_reading()

    def resume_writing(self) -> None:
        if self.session.writes_unblocked():
            self.service.turns.enqueue(self)
        self._sync_reading()

    # what the session wants

    def act_on_session(self) -> None:
        """Acts on what the session wants after a step of its work (also after a group took
        its transfers, see switch/turns.py)."""
        session = self.session
        if session.offloaded is not None:
            self.service.decode_worker.submit(self, session.take_offloaded())
        if session.waiting:  # replies held for the log (or for their time)
            self.service.waiting_connections.add(self)
            if session.delayed and self._release_timer is None:
                due_s = session.first_due_s()
                if due_s is not None:
                    self._arm_release_timer(due_s)
        if session.ready or session.paused:  # replies to send, or perhaps a close
            self.flush()
        if session.paused or not self.reading:
            self._sync_reading()

    def _sync_reading(self) -> None:
        transport = self.transport
        if self.session.paused:
            if self.reading:
                self.reading = False
                transport.pause_reading()
        elif not self.reading and not transport.is_closing():
            self.reading = True
            transport.resume_reading()
            self.session.reading_resumed(self.service.loop.time())

    def release(self, durable_seq: int) -> bool:
        """Sends the replies now durable (and due); returns whether some are still waiting."""
        session = self.session
        due_s = session.release(durable_seq, self.service.loop.time())
        if due_s is not None:
            self._arm_release_timer(due_s)
        self.flush()
        if session.paused or not self.reading:
            self._sync_reading()
        return bool(session.waiting)

    def _arm_release_timer(self, when_s: float) -> None:
        timer = self._release_timer
        if timer is not None:
            if timer.when() <= when_s:
                return
            timer.cancel()
        self._release_timer = self.service.loop.call_at(when_s, self._on_release_timer)

    def _on_release_timer(self) -> None:
        self._release_timer = None
        if self.transport is None or not self.session.holding:
            return
        if not self.release(self.service.durable_seq):
            self.service.waiting_connections.discard(self)

    def fail_waiting(self, code: str, message: str, durable_seq: int, **details) -> None:
        """Answers every waiting request now: those not yet durable with an error (their records
        will never be), the others with their reply."""
        self.session.fail_waiting(code, message, durable_seq, **details)
        if self._release_timer is not None:
            self._release_timer.cancel()
            self._release_timer = None
        self.flush()
        self._sync_reading()

    def flush(self) -> None:
        session = self.session
        data = session.take_output()
        if data and not self.transport.is_closing():
            self.transport.write(data)
        if session.paused and session.close_wanted:
            self._close_transport()

    def close(self) -> None:
        self.session.closing = True
        self._close_transport()

    def abort(self) -> None:
        """Drops the connection at once, with whatever it has not read."""
        self.session.closing = True
        self.transport.abort()

    def _close_transport(self) -> None:
        if self.close_started_s is None:
            self.close_started_s = self.service.loop.time()
        self.transport.close()  # waits until the write buffer is flushed

    # timers

    def sweep(self, now_s: float) -> str | None:
        """Enforces the connection's time limits; returns why it was closed, if it was."""
        if self.close_started_s is not None:
            # closing, but the peer does not take its last replies: drop them
            if now_s - self.close_started_s > self.config.write_stall_timeout_s:
                self.abort()
                return CLOSE_STALL
            return None
        reason = self.session.expired(now_s)
        if reason == WRITE_STALL:
            self.abort()
        elif reason == IDLE:
            self._close_transport()
        elif reason is not None:
            self.flush()
            self._sync_reading()
        return reason


def _peer_text(peer) -> str:
    """host:port of the peer's address, for logs."""
    return f"{peer[0]}:{peer[1]}" if peer and len(peer) >= 2 else str(peer)


def _subject_cn(peercert) -> str | None:
    """The commonName of a verified peer certificate's subject, if there is exactly one."""
    if not peercert:
        return None
    names = [value for rdn in peercert.get("subject", ()) for key, value in rdn
             if key == "commonName"]
    return names[0] if len(names) == 1 else None
