"""The measured hot path: lean pipelined connections driven in a closed or an open loop.

Each connection keeps `pipeline` requests encoded ahead, so a reply is answered by a write of
bytes that are already there; encoding the next ones happens after the write, while the switch
works. Replies come back in request order, so the head of the in-flight queue is the request a
reply answers; anything else (wrong id, undecodable or malformed reply) closes the connection.

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
from typing import Protocol

import msgpack

from protocol import FrameDecoder, ProtocolError, codes, decode_body, encode_request

from .stats import TRANSPORT_PREFIX, Tick
from .verify import Evidence, Reservoir, Tally
from .workload import AccountPicker, Workload

MAX_REPLY_BYTES = 256 << 20
HELLO_TIMEOUT_S = 10.0
MIN_WAKE_S = 0.001  # the event loop's timers have millisecond resolution
EARLY_SEND_S = 0.001
ITEM_SIZE_MARGIN_BYTES = 16  # ids and amounts grow a little as a run goes on
CONNECTION_LOST = TRANSPORT_PREFIX + "connection_lost"
PROTOCOL_VIOLATION = TRANSPORT_PREFIX + "protocol_violation"
DRAIN_TIMEOUT = TRANSPORT_PREFIX + "drain_timeout"

_SUCCESS = codes.SUCCESS
_ENVELOPE = codes.ENVELOPE
_INTERNAL = codes.INTERNAL
_now_s = time.monotonic  # system-wide on Linux, so processes agree on t0
_unpackb = msgpack.unpackb


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

    def admit(self, start_s: float) -> bool:
        """Whether a request starting at `start_s` may be sent (and counts it)."""
        if not self.sending:
            return False
        if start_s >= self.stop_at_s:
            self.stop()
            return False
        if self.budget is not None and start_s >= self.measure_from_s:
            if self.budget == 0:
                self.stop()
                return False
            self.budget -= 1
        return True

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
            if connection.failure is None:
                connection.send_due(now_s)
                next_due_s = min(next_due_s, connection.next_due_s())
        if self.sending:
            delay_s = next_due_s - EARLY_SEND_S / 2 - _now_s()
            self.loop.call_later(max(MIN_WAKE_S, delay_s), self._wake)


class LoadConnection(asyncio.Protocol):
    def __init__(self, run: Run, workload: Workload, index: int):
        self.run = run
        self.workload = workload
        self.index = index  # among all connections of the run, every process's
        self.decoder = FrameDecoder(MAX_REPLY_BYTES)
        self.transport: asyncio.Transport | None = None
        self.inflight: deque = deque()  # (start_s, Request), oldest first
        self.ready: deque = deque()  # encoded, not yet sent
        self.sent = 0  # open loop: requests sent, the index into the schedule
        self.failure: str | None = None  # an error code once the connection is unusable
        self.max_frame_bytes = 0
        self.lost = run.loop.create_future()
        self._greeting: asyncio.Future | None = None

    @classmethod
    async def open(cls, run: Run, target, workload: Workload, index: int) -> "LoadConnection":
        try:
            _, connection = await run.loop.create_connection(
                lambda: cls(run, workload, index), target.host, target.port)
        except OSError as exc:
            raise LoadError(f"cannot connect to {target.host}:{target.port}: {exc}") from None
        await connection._hello(target.token)
        connection._refill()
        return connection

    async def _hello(self, token: str) -> None:
        self._greeting = self.run.loop.create_future()
        args = {"participant": "admin", "token": token}
        self.transport.write(encode_request(0, "hello", args, self.workload.codec))
        try:
            reply = await asyncio.wait_for(self._greeting, HELLO_TIMEOUT_S)
        except TimeoutError:
            self.close()
            raise LoadError(f"no answer to hello within {HELLO_TIMEOUT_S}s") from None
        if not reply.get("ok"):
            self.close()
            raise LoadError(f"hello refused: {reply.get('error')}")
        self.max_frame_bytes = reply["result"]["max_frame_bytes"]

    def _refill(self) -> None:
        ready, next_request = self.ready, self.workload.next_request
        while len(ready) < self.run.pipeline:
            ready.append(next_request())

    # Sending

    def send_closed(self) -> None:
        """Closed loop: fill every free slot now."""
        free = self.run.pipeline - len(self.inflight)
        if free <= 0 or self.failure is not None:
            return
        run, ready, inflight = self.run, self.ready, self.inflight
        start_s = _now_s()
        frames = []
        while free and run.admit(start_s):
            request = ready.popleft()
            inflight.append((start_s, request))
            frames.append(request.frame)
            free -= 1
        self._write(frames)

    def send_due(self, now_s: float) -> None:
        """Open loop: send every request whose time has come, as far as slots are free."""
        free = self.run.pipeline - len(self.inflight)
        if free <= 0 or self.failure is not None:
            return
        run, ready, inflight = self.run, self.ready, self.inflight
        # The last schedule index due: index * connections + self.index <= elapsed * rate
        elapsed_s = now_s + EARLY_SEND_S - run.t0_s
        last_due = int((elapsed_s * run.rate_per_s - self.index) // run.connections_total)
        frames = []
        lag = run.tick.send_lag
        while free and self.sent <= last_due:
            intended_s = self.next_due_s()
            if not run.admit(intended_s):
                break
            request = ready.popleft()
            start_s = intended_s if now_s > intended_s else now_s  # late: from the schedule
            inflight.append((start_s, request))
            if intended_s >= run.measure_from_s:
                lag.record(int((now_s - intended_s) * 1e6))  # early sends count as 0
            frames.append(request.frame)
            self.sent += 1
            free -= 1
        self._write(frames)

    def next_due_s(self) -> float:
        run = self.run
        return run.t0_s + (self.index + self.sent * run.connections_total) / run.rate_per_s

    def _write(self, frames: list) -> None:
        if frames:
            self.transport.write(frames[0] if len(frames) == 1 else b"".join(frames))
            self._refill()

    # Replies

    def data_received(self, data: bytes) -> None:
        if self.failure is not None:
            return
        if self._greeting is not None and not self._greeting.done():
            return self._greeted(data)
        now_s = _now_s()
        inflight = self.inflight
        for body in self.decoder.feed(data):
            if not inflight:
                return self._violation("a reply to no request")
            start_s, request = inflight.popleft()
            try:
                reply = decode_reply(body)
                if reply.get("id") != request.request_id:
                    raise ValueError(f"reply id {reply.get('id')!r}, expected "
                                     f"{request.request_id}: {reply.get('error')}")
                self._settle(reply, request, start_s, now_s)
            except (ProtocolError, ValueError, LookupError, TypeError) as exc:
                inflight.appendleft((start_s, request))
                return self._violation(f"unusable reply: {exc!r}")
        if self.decoder.too_large_length is not None:
            return self._violation(f"reply of {self.decoder.too_large_length} bytes")
        run = self.run
        if run.sending:
            if run.rate_per_s is None:
                self.send_closed()
            else:
                self.send_due(_now_s())
        elif not inflight:
            run.check_finished()

    def _greeted(self, data: bytes) -> None:
        bodies = self.decoder.feed(data)
        if bodies:
            try:
                self._greeting.set_result(decode_body(bodies[0])[0])
            except ProtocolError as exc:
                self._greeting.set_exception(LoadError(f"undecodable hello reply: {exc}"))

    def _settle(self, reply: dict, request, start_s: float, now_s: float) -> None:
        """Count one reply: money moved and sampled ids for verification, always; latency,
        requests and errors only for requests sent after the warm-up."""
        run = self.run
        tick = run.tick
        tick.replies += 1
        recorded = start_s >= run.measure_from_s
        errors = tick.errors if recorded else None
        items = request.items
        if reply["ok"] is True:
            result = reply["result"]
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
        acknowledged = 0
        evidence = run.evidence
        for item, status in zip(items, statuses):
            if status in _SUCCESS:
                acknowledged += 1
                evidence.tally.acknowledged(item[2], item[1])
                evidence.sample.offer(item)
            elif errors is not None:
                errors[status] = errors.get(status, 0) + 1
        if recorded:
            tick.latency[request.kind].record(int((now_s - start_s) * 1e6))
            tick.requests += 1
            tick.transfers_acknowledged += acknowledged
            tick.measured_s = now_s - run.measure_from_s

    def _uncertain(self, items: tuple) -> None:
        tally = self.run.evidence.tally
        for item in items:
            tally.uncertain(item[2], item[1])

    # Failures and closing

    def _violation(self, message: str) -> None:
        self.fail(PROTOCOL_VIOLATION, message)

    def fail(self, code: str, message: str) -> None:
        """Give up on the connection: what is in flight has an unknown outcome."""
        if self.failure is None:
            self.failure = code
            self._warn(message)
        self.transport.abort()

    def _warn(self, message: str) -> None:
        print(f"\nloadtest: connection {self.index}: {self.failure}: {message} "
              f"({len(self.inflight)} requests in flight)", file=sys.stderr)

    def close(self) -> None:
        self.failure = self.failure or "closed"
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.failure is None:
            self.failure = CONNECTION_LOST
            self._warn(str(exc or "closed by the switch"))
        if self._greeting is not None and not self._greeting.done():
            self._greeting.set_exception(LoadError(f"connection lost during hello: {exc}"))
        run = self.run
        errors = run.tick.errors
        for _, request in self.inflight:
            self._uncertain(request.items)
            errors[self.failure] = errors.get(self.failure, 0) + 1
        self.inflight.clear()
        if not self.lost.done():
            self.lost.set_result(None)
        run.connection_failed()


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


def decode_reply(body: bytes) -> dict:
    """One reply as a map. MessagePack is decoded without decode_body's strictness hooks: they
    cost more than the rest of the decoding, on the cores the generator shares with the switch,
    and the switch's tests already hold its replies to the contract."""
    if body[:1] == b"{":
        return decode_body(body)[0]
    reply = _unpackb(body)
    if type(reply) is not dict:
        raise ValueError("reply is not a map")
    return reply


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
