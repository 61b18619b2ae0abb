"""One client's request pipeline, sans-IO: bytes in, reply bytes out; no socket, clock or disk.

    receive(data, now_s)        bytes read from the client: split into frames, kept in order
    handle(deadline_s, clock)   answers frames in order until `deadline_s` (a turn, see
                                switch/turns.py): decode, the contract's checks, execution by
                                the dispatcher (switch/service.py), the reply; a run of plain
                                MessagePack transfers as one group (_transfer_group)
    release(durable_seq, now_s) the durability barrier: the log is durable up to durable_seq,
                                so replies of requests executed up to there may leave
    take_output()               reply bytes ready to send, in request order
    plain_transfer_bodies(most) the frames at the head of the backlog a group with other
    drop_taken(count)           sessions' may take, and taking them (switch/turns.py, run_group)

Each reply is held with the log position its request executed at, and leaves only once the log
is durable up to it, after every earlier reply. What the glue (switch/connection.py) must do is
read off the session after each call: `paused` (stop reading the socket while not 0),
`offloaded` (a frame to decode in the decode worker; its verdict comes back via
`take_verdict`), `waiting` (not empty: replies wait for the log; `holding`), `ready` (not empty:
replies for `take_output`), `close_wanted` (only while `paused`).

Backpressure: reading pauses while the client's replies are not being read (`writes_blocked`),
while it has too many requests unanswered, and while frames read are still to be handled (the
backlog), so neither a slow reader nor a fast pipeliner can make the server buffer without bound.
"""
from collections import deque
from itertools import islice
from operator import itemgetter
from typing import Any

from payswitch.protocol import (ProtocolError, codec_of, codes, decode_request, encode_body,
                      encode_body_in_steps, encode_created_frames, encode_frame,
                      encode_msgpack_bodies,
                      error_reply, ok_reply, parse_plain_head, parse_plain_transfers,
                      validate_args, JSON, MSGPACK, PLAIN_TRANSFER_FIRST_BYTE,
                      PlainTransfers)
from payswitch.switch.reply_steps import ReplyInSteps
from payswitch.switch.verdict import Verdict

PAUSED_FOR_WRITES, PAUSED_FOR_INFLIGHT, PAUSED_FOR_CLOSE, PAUSED_FOR_DELAY = 1, 2, 4, 8
PAUSED_FOR_BACKLOG, PAUSED_FOR_LOST, PAUSED_FOR_DECODE = 16, 32, 64
# While one of these holds, the backlog waits: for the client to read, or for a verdict.
HOLDS_BACKLOG = PAUSED_FOR_WRITES | PAUSED_FOR_DECODE
TIMER_SLACK_S = 0.001  # event-loop timers may fire this much early
# Frames split from the read buffer at a time (~0.15 ms for tiny ones; one read can hold 50,000).
MAX_FRAMES_PER_SPLIT = 512
# Plain transfers executed as one group at most, and so in one WAL record: about 0.25 ms of
# the loop, a turn's length (a turn, switch/turns.py, ends after the group that passes its end).
# Reads of 16 x 16 pipelined clients bring 16 at a time; a group takes those of up to four
# connections read in one poll, paying its fixed costs (about 30 µs) once for them.
MAX_TRANSFER_GROUP = 64
# Plain transfers read together are checked a column at a time from this many on: a run costs
# about 80,000 instructions, then 17,000 a transfer with its decoding, against 26,500 a transfer
# one by one (callgrind); 16 at a time, a fifth less.
COLUMNS_FROM_TRANSFERS = 8
# Plain transfers of several sessions, read in one poll, are checked a column at a time from
# this many on: against each parsed apart and their columns joined, 11.9 against 12.8 us for 4
# (7.6 us for one in columns, 2.5 apart; 16.2 against 23.6 us for 8).
COLUMNS_FROM_GROUPED_TRANSFERS = 4

# Why a session's time limits ended it (the keys of the `connections_closed` counters).
IDLE, FRAME_TIMEOUT, WRITE_STALL, CLOSE_STALL = "idle", "frame_timeout", "write_stall", \
    "close_stall"


class HeldReplies:
    """Replies held for the log over all sessions: one count the dispatcher limits by."""
    __slots__ = ("count",)

    def __init__(self):
        self.count = 0


class HeldReply:
    """Replies waiting for the log to be durable up to `seq` and, when `not_before_s` is not 0,
    for the loop clock to reach it: `frame` holds one reply frame per id of `request_ids` (more
    than one for a group of transfers, see Session._transfer_group)."""
    __slots__ = ("seq", "request_ids", "codec", "frame", "not_before_s")

    def __init__(self, seq: int, request_ids: list, codec: str, frame: bytes,
                 not_before_s: float):
        self.seq = seq
        self.request_ids = request_ids
        self.codec = codec
        self.frame = frame
        self.not_before_s = not_before_s


class HelloRefused(ProtocolError):
    """A failed hello: `unauthenticated`, answered no earlier than `not_before_s` (loop time)."""

    def __init__(self, not_before_s: float):
        super().__init__(codes.UNAUTHENTICATED, "unknown participant or wrong token")
        self.not_before_s = not_before_s


class Session:
    def __init__(self, dispatcher, config, decoder, held: HeldReplies, request_metrics,
                 peer: str = "", peer_ip: str | None = None, cert_cn: str | None = None,
                 now_s: float = 0.0):
        self.dispatcher = dispatcher  # admit_request, execute, reply_seq, error_reply, durable_seq
        self.config = config
        self.decoder = decoder
        self.held = held
        self.request_metrics = request_metrics
        self.participant: str | None = None  # set by a successful hello
        self.peer = peer  # host:port, for logs
        self.peer_ip = peer_ip
        self.cert_cn = cert_cn  # subject CN of a verified TLS client certificate
        self.waiting: deque[HeldReply] = deque()  # replies held, in request order
        self.waiting_replies = 0  # replies in `waiting` (the in-flight limit counts these)
        self.delayed = 0  # entries of `waiting` with a not_before_s
        self.ready: list[bytes] = []  # reply frames free to leave, in order
        self.backlog: deque[bytes] = deque()  # bodies read but not yet handled
        self.verdict = None  # the decode worker's verdict on the frame before the backlog
        self.offloaded: bytes | None = None  # a frame for the decode worker, not yet handed over
        self.reply_being_encoded: ReplyInSteps | None = None  # before the backlog
        self.framing_lost = False  # an oversized length: answer what came before, then close
        self.eof = False  # the peer half-closed: answer what came before, then close
        self.paused = 0
        self.closing = False
        self.last_activity_s = now_s
        self.partial_since_s: float | None = None  # first byte of the incomplete frame
        self.write_stalled_since_s: float | None = None

    # bytes in

    def receive(self, data: bytes, now_s: float) -> bool:
        """Takes bytes read; returns whether frames now wait for a turn."""
        if self.closing or self.framing_lost:  # refused, closing, or framing lost: read no more
            return False
        self.last_activity_s = now_s
        self._split(data, now_s)
        return self.has_frames() and not self.paused & HOLDS_BACKLOG

    def has_frames(self) -> bool:
        """Frames read and not yet handled (or framing lost, to be answered after them)."""
        return bool(self.backlog) or self.decoder.stopped_at_limit or self.framing_lost

    def _split(self, data: bytes, now_s: float) -> None:
        """Moves the frames of `data` (and of what the decoder holds) to the backlog, at most
        MAX_FRAMES_PER_SPLIT at a time: the rest wait in the decoder for a later turn."""
        decoder = self.decoder
        buffered_before = decoder.buffered_bytes
        self.backlog.extend(decoder.feed(data, MAX_FRAMES_PER_SPLIT))
        if decoder.too_large_length is not None:
            self.framing_lost = True
            self.paused |= PAUSED_FOR_LOST
        elif not decoder.has_partial_frame:
            self.partial_since_s = None
        elif self.partial_since_s is None or \
                decoder.buffered_bytes < buffered_before + len(data):
            self.partial_since_s = now_s  # a frame ended: a new one began

    def half_closed(self) -> None:
        """The peer sent EOF: everything already received is answered, then the session ends."""
        self.eof = True
        if not self.handling:
            self._close_after_replies()

    # a turn

    def handle(self, deadline_s: float, clock) -> bool:
        """Handles what waits, in order (the decode worker's verdict, a long reply being
        encoded, backlog frames), until clock() passes `deadline_s`; returns whether work is
        left for another turn. While the client does not read its replies no frame is handled
        until `writes_unblocked`; while a frame is in the decode worker, until its verdict."""
        backlog = self.backlog
        if self.closing:
            backlog.clear()
            return False
        if self.verdict is not None:
            verdict, self.verdict = self.verdict, None
            codec, decoded = decoded_from_verdict(verdict)
            self._answer(codec, clock, decoded)
        while not self.closing:
            if self.reply_being_encoded is not None:
                if self.reply_being_encoded.run_until(self, deadline_s, clock):
                    self.paused |= PAUSED_FOR_BACKLOG
                    return True
                self.reply_being_encoded = None
            if not backlog and (self.framing_lost or not self.decoder.stopped_at_limit):
                break
            if self.paused & HOLDS_BACKLOG or clock() > deadline_s:
                self.paused |= PAUSED_FOR_BACKLOG
                return not self.paused & HOLDS_BACKLOG
            if backlog:
                if self.participant is None or not self._transfer_group(clock):
                    self._frame(backlog.popleft(), clock)
            else:
                self._split(b"", self.last_activity_s)  # more frames of an earlier read
        if self.closing:
            backlog.clear()
            return False
        if self.paused & PAUSED_FOR_DECODE:  # the last frame went to the decode worker
            return False
        self.paused &= ~PAUSED_FOR_BACKLOG
        if self.eof:
            self._close_after_replies()
            return False
        if self.framing_lost:
            self.send_error_and_close(
                codes.FRAME_TOO_LARGE,
                f"frame of {self.decoder.too_large_length} bytes exceeds max_frame_bytes "
                f"{self.config.max_frame_bytes}")
        return False

    def _frame(self, body: bytes, clock) -> None:
        """One frame: answered here, or handed to the decode worker (then nothing more is handled
        until its verdict)."""
        self.request_metrics.frames_taken += 1
        if len(body) > self.config.max_inline_decode_bytes and self.participant is not None:
            self.offloaded = body
            self.paused |= PAUSED_FOR_DECODE
            return
        self._answer(codec_of(body), clock, body=body)

    def _transfer_group(self, clock) -> bool:
        """Answers the plain `transfer` frames at the head of the backlog as one group: run one
        after another at one time and logged as one record, so the per-request costs (clock,
        expiry, admission, WAL record, metrics) are paid once per group. Takes nothing and
        returns False when the first frame is not one, or would be refused: the one-by-one path
        then answers it. The replies are exactly those of the one-by-one path."""
        started_s = clock()
        taken = self.take_plain_transfers()
        if taken is None:
            return False
        run_transfer_group([(self, len(taken.request_ids))], taken, clock, started_s)
        return True

    def take_plain_transfers(self, most: int | None = None) -> PlainTransfers | None:
        """Takes the plain `transfer` frames at the head of the backlog (see
        plain_transfer_bodies for how many it looks at); None when the first is not one, or
        would be refused."""
        bodies = self.plain_transfer_bodies(most)
        if bodies is None:
            return None
        taken = parse_plain_bodies(bodies, self.config.max_inline_decode_bytes)
        if taken is not None:
            self.drop_taken(len(taken.request_ids))
        return taken

    def plain_transfer_bodies(self, most: int | None = None) -> list[bytes] | None:
        """The bodies at the head of the backlog a group may take, if they are plain `transfer`
        frames (the first is checked by its first byte alone): as many as the session's own
        in-flight limit admits and at most `most`, the switch's room for a group of several
        sessions, which their caller checked once (the dispatcher's transfer_room); None:
        this session's group alone, checked here. None when the first is not one, or would be
        refused. Nothing is taken until drop_taken."""
        backlog = self.backlog
        if (not backlog or backlog[0][:1] != PLAIN_TRANSFER_FIRST_BYTE
                or self.participant is None or self.closing or self.paused & HOLDS_BACKLOG
                or self.verdict is not None or self.reply_being_encoded is not None):
            return None
        if most is None:
            most = min(MAX_TRANSFER_GROUP, self.dispatcher.transfer_room(self))
        room = min(self.config.max_inflight_per_connection - self.waiting_replies, most)
        return list(islice(backlog, room)) if room > 0 else None

    def drop_taken(self, count: int) -> None:
        """The first `count` frames of the backlog were taken by a group."""
        backlog = self.backlog
        for _ in range(count):
            backlog.popleft()
        self.request_metrics.frames_taken += count

    def hold_group_replies(self, request_ids: list, frames: bytes, seq: int,
                           durable_seq: int) -> None:
        """Queues `frames`, the replies of the transfers taken (one frame per id of
        `request_ids`), held for the log up to `seq`."""
        if self.waiting or seq > durable_seq:
            self._hold(HeldReply(seq, request_ids, MSGPACK, frames, 0.0))
        else:
            self.ready.append(frames)

    def take_offloaded(self) -> bytes | None:
        body, self.offloaded = self.offloaded, None
        return body

    def take_verdict(self, verdict) -> bool:
        """The decode worker's verdict on the offloaded frame (see switch/decode_worker.py);
        returns whether the session wants a turn to answer it."""
        if self.closing:
            return False
        self.verdict = verdict
        self.paused &= ~PAUSED_FOR_DECODE
        return True

    def _answer(self, codec: str, clock, decoded=None, body: bytes | None = None) -> None:
        """Decodes `body` (or takes the decode worker's `decoded`), runs the contract's checks in
        order and the op, and queues the reply (in `codec` if decoding fails), held for the log.
        `decoded` is (request_id, op, args, validated) where validated is a bool or the decode
        worker's ProtocolError for the args."""
        started_s = clock()
        dispatcher = self.dispatcher
        request_id = op = None
        not_before_s = 0.0
        try:
            if decoded is None:
                request_id, op, args, codec, validated = self._decode(body)
            else:
                request_id, op, args, validated = decoded
                if op is None:  # not a request at all: the contract's first checks
                    raise validated
            spec = dispatcher.admit_request(self, op)
            if validated is not True:
                if validated is not False:
                    raise validated  # the decode worker's verdict on the args
                args = validate_args(op, args)
            reply = ok_reply(request_id, dispatcher.execute(self, op, spec.mutating, args))
        except HelloRefused as error:
            reply = error_reply(request_id, error.code, error.message)
            not_before_s = error.not_before_s
        except ProtocolError as error:
            request_id = request_id if error.request_id is None else error.request_id
            reply = error_reply(request_id, error.code, error.message, **error.details)
        except Exception as error:  # the dispatcher's own refusals, and bugs of ours
            reply = dispatcher.error_reply(self, request_id, error)
        self.request_metrics.record(op, reply["error"]["code"] if "error" in reply else "ok",
                                    clock() - started_s)
        seq = dispatcher.reply_seq(op)
        pieces = encode_body_in_steps(reply, codec)
        if pieces is not None:  # a long result: encoded in the session's next turns
            self.reply_being_encoded = ReplyInSteps(pieces, seq, request_id, codec)
            return
        self.queue_reply(seq, request_id, codec, encode_frame(encode_body(reply, codec)),
                         dispatcher.durable_seq, not_before_s)

    def _decode(self, body: bytes) -> tuple:
        limit = self.config.max_unauthenticated_frame_bytes
        if self.participant is None and len(body) > limit:
            raise ProtocolError(codes.UNAUTHENTICATED, f"send hello first; before it, frames "
                                f"may be at most {limit} bytes (this one was not read)")
        return decode_request(body)

    @property
    def handling(self) -> bool:
        """Whether requests read are still to be handled."""
        return bool(self.has_frames() or self.reply_being_encoded is not None
                    or self.verdict is not None or self.paused & PAUSED_FOR_DECODE)

    @property
    def busy(self) -> bool:
        """Whether requests read are still to be answered."""
        return bool(self.waiting) or self.handling

    # replies

    @property
    def holding(self) -> bool:
        """Whether replies wait for the log (or for their time)."""
        return bool(self.waiting)

    def queue_reply(self, seq: int, request_id, codec: str, frame: bytes, durable_seq: int,
                    not_before_s: float = 0.0) -> None:
        """Sends `frame` once the log is durable up to `seq` (and, if given, not before the loop
        time `not_before_s`), after every earlier reply."""
        if not self.waiting and seq <= durable_seq and not not_before_s:
            self.ready.append(frame)
            return
        self._hold(HeldReply(seq, [request_id], codec, frame, not_before_s))

    def _hold(self, held: HeldReply) -> None:
        self.waiting.append(held)
        count = len(held.request_ids)
        self.waiting_replies += count
        self.held.count += count
        if held.not_before_s:
            self.delayed += 1
            self.paused |= PAUSED_FOR_DELAY
        if self.waiting_replies >= self.config.max_inflight_per_connection:
            self.paused |= PAUSED_FOR_INFLIGHT

    def release(self, durable_seq: int, now_s: float) -> float | None:
        """Frees the replies now durable (and due), in order. Returns the loop time the first
        one still held is due at, if it waits for its time rather than for the log."""
        waiting = self.waiting
        released = 0
        due_s = None
        while waiting:
            head = waiting[0]
            if head.seq > durable_seq:
                break
            if head.not_before_s:
                if head.not_before_s > now_s + TIMER_SLACK_S:
                    due_s = head.not_before_s
                    break
                self.delayed -= 1
            self.ready.append(head.frame)
            waiting.popleft()
            released += len(head.request_ids)
        if released:
            self.held.count -= released
            self.waiting_replies -= released
            if self.paused & PAUSED_FOR_DELAY and not self.delayed:
                self.paused &= ~PAUSED_FOR_DELAY
            if self.paused & PAUSED_FOR_INFLIGHT and \
                    self.waiting_replies <= self.config.max_inflight_per_connection // 2:
                self.paused &= ~PAUSED_FOR_INFLIGHT
        return due_s

    def first_due_s(self) -> float | None:
        """The time the first held reply waits for, if it waits for one."""
        return self.waiting[0].not_before_s or None if self.waiting else None

    def fail_waiting(self, code: str, message: str, durable_seq: int, **details) -> None:
        """Answers every held request now: those not yet durable with an error (their records
        will never be), the others with their reply."""
        for held in self.waiting:
            frame = held.frame
            if held.seq > durable_seq:
                frame = b"".join([encode_frame(encode_body(error_reply(
                    request_id, code, message, **details), held.codec))
                    for request_id in held.request_ids])
            self.ready.append(frame)
        self.forget_waiting()
        self.paused &= ~(PAUSED_FOR_DELAY | PAUSED_FOR_INFLIGHT)

    def forget_waiting(self) -> None:
        """Drops every held reply (the connection is gone, or they were answered)."""
        self.held.count -= self.waiting_replies
        self.waiting.clear()
        self.waiting_replies = 0
        self.delayed = 0

    def take_output(self) -> bytes:
        """The reply bytes free to leave, in order (empty if none)."""
        ready = self.ready
        if not ready:
            return b""
        data = ready[0] if len(ready) == 1 else b"".join(ready)
        ready.clear()
        return data

    @property
    def close_wanted(self) -> bool:
        """Whether the session is over and every reply has left the session."""
        return bool(self.paused & PAUSED_FOR_CLOSE) and not self.waiting

    def _close_after_replies(self) -> None:
        self.closing = True
        self.paused |= PAUSED_FOR_CLOSE

    def send_error_and_close(self, code: str, message: str) -> None:
        """Answers in JSON with id null after every earlier reply, then closes: framing is lost."""
        frame = encode_frame(encode_body(error_reply(None, code, message), JSON))
        self._close_after_replies()
        if self.waiting:
            self._hold(HeldReply(self.waiting[-1].seq, [None], JSON, frame, 0.0))
        else:
            self.ready.append(frame)

    # the client's reading

    def read_again_in_line(self) -> None:
        """More frames came before the session's turn (switch/turns.py): reading pauses until a
        turn has handled the backlog, as after a turn that left work, so a flood waiting for its
        turn is not read on."""
        self.paused |= PAUSED_FOR_BACKLOG

    def writes_blocked(self, now_s: float) -> None:
        """The client does not read its replies fast enough: handle nothing more meanwhile."""
        self.write_stalled_since_s = now_s
        self.paused |= PAUSED_FOR_WRITES

    def writes_unblocked(self) -> bool:
        """Returns whether frames wait for a turn."""
        self.write_stalled_since_s = None
        self.paused &= ~PAUSED_FOR_WRITES
        return self.has_frames() and not self.paused & HOLDS_BACKLOG

    def reading_resumed(self, now_s: float) -> None:
        """The glue reads again: the rest of a frame may have waited in the kernel meanwhile."""
        if self.partial_since_s is not None:
            self.partial_since_s = now_s

    # time limits

    def expired(self, now_s: float) -> str | None:
        """Which of the session's time limits (see switch/connection.py) has run out, if one
        has: a frame begun and not completed, replies not read, or no traffic. A session closing
        only checks the write stall; a frame timeout is answered before the session ends."""
        config = self.config
        if self.write_stalled_since_s is not None and \
                now_s - self.write_stalled_since_s > config.write_stall_timeout_s:
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
            self.closing = True
            return IDLE
        return None


def decoded_from_verdict(verdict: Verdict) -> tuple:
    """(codec, (request_id, op, args, validated)) of a decode worker's verdict; validated is True
    or the ProtocolError to answer (with op None: the frame is not a request at all)."""
    problem = verdict.problem
    if problem is None:
        return verdict.codec, (verdict.request_id, verdict.op, verdict.args, True)
    return verdict.codec, (verdict.request_id, verdict.op, None,
                           ProtocolError(problem.code, problem.message, verdict.request_id))


def run_transfer_group(takers: list[tuple["Session", int]], taken: PlainTransfers, clock,
                       started_s: float) -> None:
    """Executes the plain transfers `taken` from one or more sessions of one participant (each
    taker a session and how many of them, in order, are its) as one group (one ledger step, one
    WAL record) and queues each session's replies; each request's time, for the metrics, is the
    group's since `started_s` (by `clock`), when the taking began."""
    session = takers[0][0]
    dispatcher = session.dispatcher
    request_ids, group = taken
    timestamps = None
    try:
        outcomes = dispatcher.execute_transfer_group(session, group)
    except Exception as error:  # none of them executed: each gets the one error reply
        refused = dispatcher.error_reply(session, None, error)
        replies = [{**refused, "id": request_id} for request_id in request_ids]
    else:  # each one's result, or its LedgerError
        timestamps = _created_timestamps(outcomes)
        replies = [] if timestamps is not None else [
            ok_reply(request_id, outcome) if type(outcome) is dict
            else error_reply(request_id, outcome.code, outcome.message)
            for request_id, outcome in zip(request_ids, outcomes)]
    seq = dispatcher.reply_seq("transfer")
    durable_seq = dispatcher.durable_seq
    failed = [reply["error"]["code"] for reply in replies if "error" in reply]
    session.request_metrics.record_group("transfer", len(request_ids), failed,
                                         clock() - started_s)
    frames = (encode_created_frames(request_ids, timestamps) if timestamps is not None
              else list(map(encode_frame, encode_msgpack_bodies(replies))))
    start = 0
    for each, count in takers:
        end = start + count
        each.hold_group_replies(request_ids[start:end], frames[start] if count == 1
                                else b"".join(frames[start:end]), seq, durable_seq)
        start = end


def parse_plain_bodies(bodies: list[bytes], max_body_bytes: int) -> PlainTransfers | None:
    """The plain transfers at the head of `bodies`: all of them checked a column at a time when
    there are enough and all are plain, else one by one up to the first that is not."""
    return (parse_plain_transfers(bodies) if len(bodies) >= COLUMNS_FROM_TRANSFERS
            else None) or parse_plain_head(bodies, max_body_bytes)


def join_plain_transfers(parts: list[PlainTransfers]) -> PlainTransfers:
    """Plain transfers taken apart, one after another, as one (ids one a line, as
    plain_columns makes them)."""
    if len(parts) == 1:
        return parts[0]
    columns: dict[str, Any] = {key: "\n".join([part.columns[key] for part in parts])
                               for key in _ID_COLUMNS}
    columns["amounts"] = [amount for part in parts for amount in part.columns["amounts"]]
    return PlainTransfers([request_id for part in parts for request_id in part.request_ids],
                          columns)


def _created_timestamps(outcomes: list) -> list[int] | None:
    """The timestamps of a group's outcomes when every one is a transfer created (a result of
    its two fields, status and timestamp: the replies encode_created_frames makes); None when
    any is not (another status, or a LedgerError)."""
    try:
        if set(map(_status, outcomes)) != _CREATED_ONLY or set(map(len, outcomes)) != _TWO_ONLY:
            return None
    except TypeError:  # a LedgerError is not a map
        return None
    return list(map(_timestamp, outcomes))


_status, _timestamp = itemgetter("status"), itemgetter("timestamp")
_CREATED_ONLY, _TWO_ONLY = frozenset((codes.CREATED,)), frozenset((2,))
_ID_COLUMNS = ("ids", "debit_accounts", "credit_accounts")
