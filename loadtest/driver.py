"""The measured hot path: lean pipelined connections driven in a closed or an open loop.

Each connection keeps `pipeline` requests encoded ahead, so a reply is answered by a write of
bytes that are already there; encoding the next ones happens after the write, while the switch
works. Replies are matched to requests in order (`protocol.replies`); a reply that does not
answer the oldest request in flight, or a malformed one, closes the connection.
A connection whose node is lost, or answers `not_primary`, `shutting_down` or `unavailable`,
reconnects and resends what it has in flight (`LoadConnection`).

Closed loop: each reply frees a slot that is refilled at once; latency is from the write.
Open loop: request i of connection g is due at t0 + (g + i * connections) / rate, whatever the
replies do; latency is from that intended time (coordinated omission corrected, as in wrk2),
so waiting for a free slot or for a late timer counts against the switch's latency too. The
event loop's timers have millisecond resolution, so a request may leave up to EARLY_SEND_S
before its time (its latency then counts from the actual send) rather than always late. The
send lag (how late requests left) shows whether the generator kept up.
"""

import asyncio
import math
import sys
import time
from collections import deque
from typing import Any, Callable, Protocol, Sequence, cast

import msgpack

from payswitch.protocol import MSGPACK, codes, encode_request
from payswitch.protocol.addresses import display_address
from payswitch.protocol.replies import InOrderReplies, ReplyMismatch, decode_reply

from .failover import RECONNECT_CODES, Failover, Move
from .stats import TRANSPORT_PREFIX, Tick
from .verify import Evidence, Reservoir, Tally
from .workload import AccountPicker, Workload

MAX_REPLY_BYTES = 256 << 20
HELLO_TIMEOUT_S = 10.0
MIN_WAKE_S = 0.001  # the event loop's timers have millisecond resolution
IDLE_WAKE_S = 0.01  # open loop with every connection reconnecting: look again this soon
EARLY_SEND_S = 0.001
ENCODE_AHEAD_TRANSFERS = 16  # made at a time at least: one by one costs more per request
ITEM_SIZE_MARGIN_BYTES = 16  # ids and amounts grow a little as a run goes on
PROTOCOL_VIOLATION = TRANSPORT_PREFIX + "protocol_violation"
DRAIN_TIMEOUT = TRANSPORT_PREFIX + "drain_timeout"

_SUCCESS = codes.SUCCESS
_ENVELOPE = codes.ENVELOPE
_INTERNAL = codes.INTERNAL
_RECONNECT_CODES = RECONNECT_CODES
_now_s = time.monotonic  # system-wide on Linux, so processes agree on t0
_unpackb = msgpack.unpackb
_HELLO = "hello"  # what stands for the hello request among those in flight


class LoadError(Exception):
    """The load could not start (connection, authentication, request size)."""


class Run:
    """What every connection of one process shares: schedule, stop rules, measurements."""

    def __init__(self, config, count: int | None, sample_seed: int):
        self.config = config
        self.loop = asyncio.get_running_loop()
        self.pipeline = config.pipeline
        self.rate_per_s = config.rate_per_s
        self.connections_total = config.connections
        self.connections: list[LoadConnection] = []
        self.budget = count  # measured requests still to send; None: until stop_at_s
        self.t0_s = self.measure_from_s = self.stop_at_s = math.inf
        self.sending = False
        self.tick = Tick()
        self.evidence = Evidence(Tally(), Reservoir(config.verify_sample, sample_seed))
        self.stopped = self.loop.create_future()
        self.finished = self.loop.create_future()
        self._seq = 0
        self._control: Control | None = None

    def start(self, t0_s: float, control) -> None:
        config = self.config
        self.t0_s = t0_s
        self.measure_from_s = t0_s + config.warmup_s
        if config.duration_s is not None:
            self.stop_at_s = self.measure_from_s + config.duration_s
            self.loop.call_later(self.stop_at_s - _now_s(), self.stop)
        self.sending = True
        self._control = control
        self.loop.call_later(t0_s + 1 - _now_s(), self._on_second)
        if self.rate_per_s is None:
            for connection in self.connections:
                connection.send_closed()
        else:
            self._wake()

    def admit(self, start_s: float, wanted: int = 1) -> int:
        """How many of `wanted` requests starting at `start_s` may be sent (and counts them)."""
        if not self.sending:
            return 0
        if start_s >= self.stop_at_s:
            self.stop()
            return 0
        if self.budget is not None and start_s >= self.measure_from_s:
            granted = min(wanted, self.budget)
            self.budget -= granted
            if granted < wanted:
                self.stop()
            return granted
        return wanted

    def stop(self) -> None:
        self.sending = False
        if not self.stopped.done():
            self.stopped.set_result(None)
        self.check_finished()

    def check_finished(self) -> None:
        if not self.sending and not self.finished.done() and \
                all(c.failure is not None or not c.inflight for c in self.connections):
            self.finished.set_result(None)

    def connection_failed(self) -> None:
        if all(c.failure is not None for c in self.connections):
            self.stop()
        self.check_finished()

    def take_tick(self, final: bool) -> Tick:
        tick, self.tick = self.tick, Tick()
        tick.seq, tick.final = self._seq, final
        return tick

    def _on_second(self) -> None:
        if self.finished.done():
            return
        self._seq += 1
        self._control.tick(self.take_tick(final=False))
        if self._control.stop_requested():
            self.stop()
        self.loop.call_later(self.t0_s + self._seq + 1 - _now_s(), self._on_second)

    def _wake(self) -> None:
        """Open loop: send what is due on every connection, then sleep until the next is."""
        if not self.sending:
            return
        now_s = _now_s()
        next_due_s = math.inf
        for connection in self.connections:
            if connection.sending:
                connection.send_due(now_s)
                next_due_s = min(next_due_s, connection.next_due_s())
        if self.sending:
            delay_s = next_due_s - EARLY_SEND_S / 2 - _now_s()
            if delay_s == math.inf:
                delay_s = IDLE_WAKE_S
            self.loop.call_later(max(MIN_WAKE_S, delay_s), self._wake)


class LoadConnection(asyncio.Protocol):
    """One connection's stream of requests, on one transport at a time. When its node is lost,
    or answers `not_primary`, `shutting_down` or `unavailable`, the stream leaves it (replies
    behind that one are not read), reconnects (to the primary named, else the next address; the
    same one after `unavailable`), and resends what is in flight, in order, with the same ids,
    until the retry deadline (`Failover`). A new transport is opened only after the previous
    one's connection_lost: callbacks never mix."""

    def __init__(self, run: Run, workload: Workload, index: int, target):
        self.run = run
        self.workload = workload
        self.index = index  # among all connections of the run, every process's
        self.token = target.token
        self.failover = Failover(target.addresses, run.config.retry_deadline_s)
        self.replies = InOrderReplies(MAX_REPLY_BYTES, decode=reply_decoder(workload.codec))
        self.transport: asyncio.Transport | None = None
        self.sending = False  # connected and greeted
        self._said_hello = False  # the current transport answered hello
        self.inflight: deque = self.replies.outstanding  # (request id, Request), oldest first
        self.ready: list = []  # encoded, not yet sent
        self.sent = 0  # open loop: requests sent, the index into the schedule
        self.failure: str | None = None  # an error code once the stream has ended
        self.max_frame_bytes = 0
        self.lost = run.loop.create_future()  # done when the stream has ended
        self._greeting: asyncio.Future | None = None
        self._transport_gone: asyncio.Future | None = None
        self._leaving: Move | None = None  # why the open transport is being dropped

    @classmethod
    async def open(cls, run: Run, target, workload: Workload, index: int) -> "LoadConnection":
        connection = cls(run, workload, index, target)
        await connection._connect(skip_current=False)
        connection._refill()
        return connection

    async def _connect(self, skip_current: bool) -> None:
        """Connect and say hello to the first address that answers, each tried once; the
        LoadError names every address tried."""
        failures = []
        for address in self.failover.nodes.round(skip_current):
            if self.failure is not None:
                raise LoadError("closed")
            try:
                await self._open_transport(address)
            except LoadError as error:
                failures.append(str(error))
                continue
            self.failover.nodes.use(address)
            self._said_hello = self.sending = True
            return
        raise LoadError("; ".join(failures))

    async def _open_transport(self, address) -> None:
        where = display_address(*address)
        try:
            await self.run.loop.create_connection(lambda: self, *address)
        except OSError as exc:
            raise LoadError(f"cannot connect to {where}: {exc}") from None
        try:
            if self.failure is not None:
                raise LoadError("closed")
            await self._hello()
        except LoadError as error:
            if self.inflight and self.inflight[0][1] is _HELLO:
                self.inflight.popleft()  # unanswered: the next transport says hello again
            gone = self._transport_gone
            if self.transport is not None:
                self.transport.abort()
            await gone
            raise LoadError(f"{where}: {error}") from None

    async def _hello(self) -> None:
        if self.transport is None:
            raise LoadError("connection lost before hello")
        self._greeting = self.run.loop.create_future()
        args = {"participant": "admin", "token": self.token}
        self.inflight.appendleft((0, _HELLO))  # answered first: the resends follow it
        self.transport.write(encode_request(0, "hello", args, self.workload.codec))
        try:
            reply = await asyncio.wait_for(self._greeting, HELLO_TIMEOUT_S)
        except TimeoutError:
            raise LoadError(f"no answer to hello within {HELLO_TIMEOUT_S}s") from None
        if not reply.get("ok"):
            raise LoadError(f"hello refused: {reply.get('error')}")
        self.max_frame_bytes = reply["result"]["max_frame_bytes"]

    def _refill(self) -> None:
        missing = self.run.pipeline - len(self.ready)
        if missing > 0:
            ahead = ENCODE_AHEAD_TRANSFERS // self.workload.batch_size
            self.ready += self.workload.next_requests(max(missing, ahead))

    # Sending

    def send_closed(self) -> None:
        """Closed loop: fill every free slot now, in one write sent at one time."""
        free = self.run.pipeline - len(self.inflight)
        if free <= 0 or not self.sending:
            return
        start_s = _now_s()
        count = self.run.admit(start_s, free)
        if not count:
            return
        ready = self.ready
        sending = ready[:count]
        del ready[:count]
        for request in sending:
            request.start_s = start_s
        self.replies.sent_many([(request.request_id, request) for request in sending])
        self._write([request.frame for request in sending])

    def send_due(self, now_s: float) -> None:
        """Open loop: send every request whose time has come, as far as slots are free."""
        free = self.run.pipeline - len(self.inflight)
        if free <= 0 or not self.sending:
            return
        run, ready, sent = self.run, self.ready, self.replies.sent
        # The last schedule index due: index * connections + self.index <= elapsed * rate
        elapsed_s = now_s + EARLY_SEND_S - run.t0_s
        last_due = int((elapsed_s * run.rate_per_s - self.index) // run.connections_total)
        frames = []
        lag = run.tick.send_lag
        taken = 0
        while free and self.sent <= last_due:
            intended_s = self.next_due_s()
            if not run.admit(intended_s):
                break
            request = ready[taken]
            taken += 1
            # late: from the schedule
            request.start_s = intended_s if now_s > intended_s else now_s
            sent(request.request_id, request)
            if intended_s >= run.measure_from_s:
                lag.record(int((now_s - intended_s) * 1e6))  # early sends count as 0
            frames.append(request.frame)
            self.sent += 1
            free -= 1
        del ready[:taken]
        self._write(frames)

    def next_due_s(self) -> float:
        run = self.run
        return run.t0_s + (self.index + self.sent * run.connections_total) / run.rate_per_s

    def _write(self, frames: list) -> None:
        if frames:
            self.transport.write(frames[0] if len(frames) == 1 else b"".join(frames))
            self._refill()

    def _send_more(self) -> None:
        """After replies or a reconnect: send what may go now, or tell the run when drained."""
        run = self.run
        if run.sending:
            if run.rate_per_s is None:
                self.send_closed()
            else:
                self.send_due(_now_s())
        elif not self.inflight:
            run.check_finished()

    # Replies

    def data_received(self, data: bytes) -> None:
        """Settle the replies of one read, all received at this read's time; what they did is
        gathered reply by reply and counted once per read (`_count`)."""
        if self._greeting is not None and not self._greeting.done():
            return self._greeted(data)
        if not self.sending:
            return
        now_s = _now_s()
        measure_from_s = self.run.measure_from_s
        acknowledged: list = []  # the transfer items acknowledged, in reply order
        recorded: list = []  # the requests answered that were sent after the warm-up
        transfers = 0  # acknowledged transfers among those
        settled = 0
        request = leaving = problem = None
        try:
            for request, reply in self.replies.feed(data):
                if reply["ok"] is True:
                    if request.single and reply["result"]["status"] in _SUCCESS:
                        acknowledged.append(request.items[0])  # the common case, kept lean
                        if request.start_s >= measure_from_s:
                            recorded.append(request)
                            transfers += 1
                        settled += 1
                        continue
                elif reply["error"]["code"] in _RECONNECT_CODES:
                    self.inflight.appendleft((request.request_id, request))  # resent elsewhere
                    leaving = reply["error"]
                    break
                transfers += self._settle(reply, request, acknowledged, recorded)
                settled += 1
        except ReplyMismatch as exc:
            problem = f"unusable reply: {exc}"
        except (ValueError, LookupError, TypeError) as exc:  # a malformed reply
            self.inflight.appendleft((request.request_id, request))  # its outcome is unknown
            problem = f"unusable reply: {exc!r}"
        self._count(now_s, settled, acknowledged, recorded, transfers)
        if problem is not None:
            return self._violation(problem)
        if leaving is not None:
            return self._leave(self.failover.answered(leaving), leaving.get("message"))
        if request is not None:
            self.failover.answering()
        self._send_more()

    def _greeted(self, data: bytes) -> None:
        try:
            for _, reply in self.replies.feed(data):
                return self._greeting.set_result(reply)
        except ReplyMismatch as exc:
            self._greeting.set_exception(LoadError(f"unusable hello reply: {exc}"))

    def _settle(self, reply: dict, request, acknowledged: list, recorded: list) -> int:
        """Settle one reply (any but a single transfer's success, which data_received settles
        itself): its acknowledged items go to `acknowledged` and, if sent after the warm-up,
        the request to `recorded` and its errors to the tick. Returns its acknowledged
        transfers if recorded, else 0."""
        run = self.run
        start_s = request.start_s
        measured = start_s >= run.measure_from_s
        errors = run.tick.errors if measured else None
        items = request.items
        if reply["ok"] is True:
            result = reply["result"]
            statuses: Sequence[str]
            if request.single:
                statuses = (result["status"],)
            elif items:
                statuses = [r["status"] for r in result["results"]]
                if len(statuses) != len(items):
                    raise ValueError(f"{len(statuses)} results for {len(items)} transfers")
            else:
                statuses = ()
        else:
            code = reply["error"]["code"]
            if request.single and code not in _ENVELOPE:
                statuses = (code,)  # the single transfer's own status
            else:
                statuses = ()  # the request as a whole failed: nothing was applied ...
                if code == _INTERNAL:  # ... unless the switch failed mid-way
                    self._uncertain(items)
                if errors is not None:
                    errors[code] = errors.get(code, 0) + 1
        before = len(acknowledged)
        acknowledged += [item for item, status in zip(items, statuses) if status in _SUCCESS]
        transfers = len(acknowledged) - before
        if errors is not None and transfers < len(statuses):
            for status in statuses:
                if status not in _SUCCESS:
                    errors[status] = errors.get(status, 0) + 1
        if not measured:
            return 0
        recorded.append(request)
        return transfers

    def _count(self, now_s: float, settled: int, acknowledged: list, recorded: list,
               transfers: int) -> None:
        """Count the replies of one read: money moved and sampled ids for verification,
        always; latency, requests and acknowledged transfers only for the requests sent after
        the warm-up (`recorded`). Requests of one kind written together share their latency:
        it is recorded once for them all."""
        run = self.run
        tick = run.tick
        tick.replies += settled
        if acknowledged:
            evidence = run.evidence
            evidence.tally.acknowledged_items(acknowledged)
            evidence.sample.offer_many(acknowledged)
        if not recorded:
            return
        latency = tick.latency
        kind, start_s, count = recorded[0].kind, recorded[0].start_s, 0
        for request in recorded:
            if request.start_s != start_s or request.kind != kind:
                latency[kind].record(int((now_s - start_s) * 1e6), count)
                kind, start_s, count = request.kind, request.start_s, 0
            count += 1
        latency[kind].record(int((now_s - start_s) * 1e6), count)
        tick.requests += len(recorded)
        tick.transfers_acknowledged += transfers
        tick.measured_s = now_s - run.measure_from_s

    def _uncertain(self, items: tuple) -> None:
        tally = self.run.evidence.tally
        for item in items:
            tally.uncertain(item[2], item[1])

    # Leaving a node

    def _leave(self, move: Move, message: str | None) -> None:
        """Drop the open transport; connection_lost then reconnects as `move` says."""
        self._leaving = move
        self._warn_once(move.reason, message or "no message")
        self.sending = False
        self.transport.abort()

    async def _reconnect(self, move: Move) -> None:
        """Reconnect and resend what is in flight, in order, with the same ids; at the retry
        deadline the stream ends and what was in flight has an unknown outcome."""
        failover = self.failover
        deadline_s = failover.deadline_s(_now_s())
        delay_s = failover.backoff_s() if move.wait else 0.0
        while True:
            if self.failure is None and _now_s() + delay_s > deadline_s:
                self.failure = TRANSPORT_PREFIX + move.reason
                self._warn(self.failure, "no node took the requests within the retry "
                           f"deadline of {self.run.config.retry_deadline_s:g} s")
            if self.failure is not None:
                return self._give_up()
            await asyncio.sleep(delay_s)
            try:
                await self._connect(move.skip_current)
            except LoadError:
                delay_s = failover.backoff_s()
                continue
            break
        retries = self.run.tick.retries
        retries[move.reason] = retries.get(move.reason, 0) + len(self.inflight)
        if self.inflight:
            self.transport.write(b"".join(request.frame for _, request in self.inflight))
        self._send_more()

    # Failures and closing

    def _violation(self, message: str) -> None:
        self.fail(PROTOCOL_VIOLATION, message)

    def fail(self, code: str, message: str) -> None:
        """End the stream: what is in flight has an unknown outcome."""
        if self.failure is None:
            self.failure = code
            self._warn(code, message)
        self._end(graceful=False)

    def close(self) -> None:
        self.failure = self.failure or "closed"
        self._end(graceful=True)

    def _end(self, graceful: bool) -> None:
        self.sending = False
        if self.transport is None:  # between transports: nothing to wait for
            self._give_up()
        elif graceful:
            self.transport.close()  # connection_lost (or the reconnect under way) gives up
        else:
            self.transport.abort()

    def _give_up(self) -> None:
        if self.lost.done():
            return
        run = self.run
        errors = run.tick.errors
        for _, request in self.inflight:
            self._uncertain(request.items)
            errors[self.failure] = errors.get(self.failure, 0) + 1
        self.inflight.clear()
        self.lost.set_result(None)
        run.connection_failed()

    def _warn_once(self, code: str, message: str) -> None:
        """Say why the connection reconnects, once a streak: a failover may take many tries."""
        if not self.failover.retrying:
            self._warn(code, f"{message}; reconnecting")

    def _warn(self, code: str, message: str) -> None:
        print(f"\nloadtest: connection {self.index}: {code}: {message} "
              f"({len(self.inflight)} requests in flight)", file=sys.stderr)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # a stream connection's
        self._said_hello = False
        self.replies.restart_framing()  # nothing carries over from the last one
        self._transport_gone = self.run.loop.create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._transport_gone.set_result(None)
        if not self._said_hello:  # before or during hello: the round of attempts goes on
            if self._greeting is not None and not self._greeting.done():
                self._greeting.set_exception(LoadError(f"connection lost during hello: {exc}"))
            return
        self._said_hello = self.sending = False
        if self.failure is not None:
            return self._give_up()
        move, self._leaving = self._leaving, None
        if move is None:
            move = self.failover.lost()
            self._warn_once(move.reason, str(exc or "closed by the switch"))
        self.run.loop.create_task(self._reconnect(move))


class Control(Protocol):
    """How a process's run meets the outside: when to start, where ticks go, when to stop."""

    async def ready(self) -> float:
        """Wait until every process is connected; returns the common start time t0."""

    def tick(self, tick: Tick) -> None:
        """Take one second's measurements (the last one marked final)."""

    def stop_requested(self) -> bool:
        """Whether to stop sending now (Ctrl-C)."""


async def run_worker(config, target, accounts: list[list[str]], run_id: str, worker: int,
                     connection_indexes: list[int], count: int | None,
                     control: Control) -> Evidence:
    """Run this process's share of the connections to the end; returns what verification
    needs. Ticks (measurements) go to `control`, the last one marked final."""
    run = Run(config, count, sample_seed=config.seed * 7919 + worker)
    picker = AccountPicker(accounts, config.skew, config.zipf_exponent, config.interbank,
                           config.seed)
    opening = [LoadConnection.open(run, target, _workload(config, picker, run_id, g), g)
               for g in connection_indexes]
    results = await asyncio.gather(*opening, return_exceptions=True)
    run.connections = [r for r in results if isinstance(r, LoadConnection)]
    try:
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]
        check_request_sizes(run.connections)
        t0_s = await control.ready()
        await asyncio.sleep(max(0.0, t0_s - _now_s()))
        run.start(t0_s, control)
        await run.stopped
        try:
            await asyncio.wait_for(asyncio.shield(run.finished), config.drain_timeout_s)
        except TimeoutError:
            for connection in run.connections:
                if connection.inflight:
                    connection.fail(DRAIN_TIMEOUT, "no reply in time after sending stopped")
    finally:
        for connection in run.connections:
            connection.close()
        await asyncio.gather(*(c.lost for c in run.connections))
    control.tick(run.take_tick(final=True))
    return run.evidence


def reply_decoder(codec: str) -> Callable[[bytes], Any]:
    """How the replies to requests in `codec` are decoded. MessagePack without decode_body's
    strictness hooks, by msgpack itself (no Python call around it): the hooks cost more than
    the rest of the decoding, on the cores the generator shares with the switch, and the
    switch's tests already hold its replies to the contract. JSON strictly: it is not the
    codec to measure the generator's CPU with."""
    return _unpackb if codec == MSGPACK else decode_reply


def check_request_sizes(connections: list[LoadConnection]) -> None:
    """Refuse to start when requests would come near the switch's frame limit: it would answer
    `frame_too_large` and close the connection."""
    for connection in connections:
        for request in connection.ready:
            estimate = len(request.frame) - 4 + ITEM_SIZE_MARGIN_BYTES * len(request.items)
            if estimate > connection.max_frame_bytes:
                raise LoadError(
                    f"a request of {len(request.items)} transfers takes about {estimate} bytes, "
                    f"over the switch's max_frame_bytes of {connection.max_frame_bytes}; use a "
                    "smaller --batch-size or --codec msgpack")


def _workload(config, picker: AccountPicker, run_id: str, connection: int) -> Workload:
    return Workload(picker, seed=config.seed, connection=connection, run_id=run_id,
                    mix=config.mix, batch_size=config.batch_size, amount_min=config.amount_min,
                    amount_max=config.amount_max, codec=config.codec)
