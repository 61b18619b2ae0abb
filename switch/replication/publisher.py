"""The primary's side of the stream: every group commit appended, pipelined, in log order.

The WAL writer hands each batch to `publish` as it hands it to its own thread, so the stream's
acknowledgement and the local fsync overlap. Messages go out back to back (many in flight), each
carrying the stream sequence it must follow (`Nats-Expected-Last-Sequence`): the stream itself
refuses an append from a primary that was deposed, and a gap. Acknowledgements are taken in
order; `on_replicated(seq)` reports each replicated prefix of the log.

After any failure (a timeout, a lost connection, a refusal) the publisher stops, waits for what
is in flight, reads the stream's last message and carries on after it: what it holds of ours is
replicated, the rest is sent again (same message ids, so a retry is never stored twice). If that
last message is another node's, this node has been fenced.
"""
import asyncio
from collections import deque

import structlog
from nats.errors import Error as NatsError
from nats.js.errors import APIError

from payswitch.switch.replication.wire import (LAST_SEQ, NODE, LogMessage, message_headers,
                                     split_records)

log = structlog.get_logger("switch.replication")
RETRY_INTERVAL_S = 0.25


class Fenced(Exception):
    """Another node appended to the stream: this one must stop acknowledging writes."""


class LogPublisher:
    def __init__(self, js, stream: str, subject: str, node_id: str, max_message_bytes: int,
                 max_inflight: int, ack_timeout_s: float, max_unreplicated_bytes: int,
                 on_replicated, on_fenced):
        self.js = js
        self.stream = stream
        self.subject = subject
        self.node_id = node_id
        self.max_message_bytes = max_message_bytes
        self.max_inflight = max_inflight
        self.ack_timeout_s = ack_timeout_s
        self.max_unreplicated_bytes = max_unreplicated_bytes
        self._on_replicated = on_replicated
        self._on_fenced = on_fenced
        self.replicated_seq = 0
        self.last_stream_seq = 0  # of our last acknowledged message
        self.unreplicated_bytes = 0
        self.failing_since_s: float | None = None  # loop time of the first failure, until healed
        self.published_total = 0
        self._expected = 0  # the stream sequence the next message must follow
        self._term = 0  # the stream sequence of this primary's fence (see message_headers)
        self._unsent: deque[LogMessage] = deque()
        self._inflight: deque[tuple[LogMessage, asyncio.Future]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self, replicated_seq: int, stream_last_seq: int) -> None:
        """Begins after the fence this node appended at `stream_last_seq` as new primary."""
        self.replicated_seq = replicated_seq
        self._expected = self.last_stream_seq = self._term = stream_last_seq
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def healthy(self) -> bool:
        """False while appends fail or too much of the log awaits the stream: new writes are
        then refused `unavailable` rather than queued without bound."""
        return self.failing_since_s is None and \
            self.unreplicated_bytes < self.max_unreplicated_bytes

    def publish(self, records: list[bytes], first_seq: int) -> None:
        """Queues a batch of encoded records (called from the WAL writer, in log order)."""
        for message in split_records(records, first_seq, self.max_message_bytes):
            self._unsent.append(message)
            self.unreplicated_bytes += len(message.records)
        self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self._send_and_confirm()
            except asyncio.CancelledError:
                raise
            except Fenced as error:
                self._on_fenced(str(error))
                return
            except (NatsError, APIError, asyncio.TimeoutError, OSError) as error:
                if self.failing_since_s is None:
                    self.failing_since_s = loop.time()
                    log.warning("replication_append_failed", error=repr(error),
                                replicated_seq=self.replicated_seq,
                                unreplicated_bytes=self.unreplicated_bytes)
                self._abandon_inflight()
                await asyncio.sleep(RETRY_INTERVAL_S)
                try:
                    await self._resync()
                except Fenced as fenced:
                    self._on_fenced(str(fenced))
                    return
                except (NatsError, APIError, asyncio.TimeoutError, OSError):
                    continue

    async def _send_and_confirm(self) -> None:
        while True:
            while self._unsent and len(self._inflight) < self.max_inflight:
                message = self._next_message()
                headers = message_headers(message, self.node_id, self._term, self._expected)
                future = await self.js.publish_async(self.subject, message.records,
                                                     headers=headers)
                self._expected += 1
                self._inflight.append((message, future))
            if not self._inflight:
                self._wake.clear()
                await self._wake.wait()
                continue
            message, future = self._inflight[0]
            # A refusal (wrong last sequence) is resolved like any failure, by _resync: only the
            # stream's last message tells whether another node appended.
            ack = await asyncio.wait_for(asyncio.shield(future), self.ack_timeout_s)
            self._inflight.popleft()
            self._confirmed(message, ack.seq)

    def _next_message(self) -> LogMessage:
        """The unsent groups at the front, joined into one message up to the size limit: while
        earlier messages are in flight, later groups pile up and travel together (the stream
        stores and fsyncs per message, so fewer, larger messages go faster)."""
        message = self._unsent.popleft()
        unsent, limit = self._unsent, self.max_message_bytes
        if not unsent or len(message.records) + len(unsent[0].records) > limit:
            return message
        parts, size, last_seq = [message.records], len(message.records), message.last_seq
        while unsent and size + len(unsent[0].records) <= limit:
            joined = unsent.popleft()
            parts.append(joined.records)
            size += len(joined.records)
            last_seq = joined.last_seq
        return LogMessage(message.first_seq, last_seq, b"".join(parts))

    def _confirmed(self, message: LogMessage, stream_seq: int) -> None:
        self.last_stream_seq = stream_seq
        self.unreplicated_bytes -= len(message.records)
        self.published_total += 1
        if self.failing_since_s is not None:
            self.failing_since_s = None
            log.warning("replication_append_recovered", replicated_seq=message.last_seq)
        if message.last_seq > self.replicated_seq:
            self.replicated_seq = message.last_seq
            self._on_replicated(message.last_seq)

    def _abandon_inflight(self) -> None:
        """Puts every message in flight back in front of the unsent ones, to be resent."""
        for _, future in self._inflight:
            future.cancel()
        self._unsent.extendleft(message for message, _ in reversed(self._inflight))
        self._inflight.clear()

    async def _resync(self) -> None:
        """Reads the stream's end: our messages it holds are replicated; if its last message is
        another node's (and not one we already confirmed), we are fenced."""
        info = await self.js.stream_info(self.stream)
        last = info.state.last_seq
        if last == self.last_stream_seq:
            self._expected = last
            return
        message = await self.js.get_msg(self.stream, last)
        headers = message.headers or {}
        if headers.get(NODE) != self.node_id:
            raise Fenced(f"the stream's last message ({last}) is from node {headers.get(NODE)!r}")
        held_up_to = int(headers[LAST_SEQ])
        while self._unsent and self._unsent[0].last_seq <= held_up_to:
            self._confirmed(self._unsent.popleft(), last)
        self.last_stream_seq = self._expected = last
