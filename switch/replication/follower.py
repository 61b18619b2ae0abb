"""A standby's side of the stream: every message applied in order, through recovery's replay.

Records are written to the local log as they came (same bytes) and executed with
`apply_record`, exactly as a restart replays them, so the standby's state is the primary's.
"""
import asyncio
from typing import Any

import structlog
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import ConsumerConfig, DeliverPolicy

from payswitch.switch.replication.wire import encoded_records, parse_message
from payswitch.switch.storage.recovery import apply_record

log = structlog.get_logger("switch.replication")
YIELD_EVERY_RECORDS = 256
UNSUBSCRIBE_TIMEOUT_S = 5.0  # let ping, hello and stats in during a long catch-up


class Follower:
    def __init__(self, js, stream: str, subject: str, service, on_applied=None):
        self.js = js
        self.stream = stream
        self.subject = subject
        self.service = service
        self._on_applied = on_applied  # if given, called with each AppliedRecord
        self.applied_stream_seq = 0
        self.stream_last_record_seq = 0  # the highest record seen in the stream
        self._subscription: Any = None  # a nats-py subscription while following
        self._task: asyncio.Task | None = None
        self.failure: Exception | None = None
        self._stopped = False

    def start(self, from_stream_seq: int) -> None:
        self.applied_stream_seq = from_stream_seq - 1
        self._task = asyncio.get_running_loop().create_task(self._run(from_stream_seq))

    def stop(self) -> None:
        """Stops applying at once (a cancelled nats-py call may not end at once, so nothing is
        applied after this whatever it does); the consumer is deleted in the background."""
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            self._task = None
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            asyncio.get_running_loop().create_task(_unsubscribe(subscription))

    async def _run(self, from_stream_seq: int) -> None:
        try:
            await self._follow(from_stream_seq)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a gap, damage, divergence, NATS: never serve such a state
            self.failure = error
            log.critical("replication_follow_failed", error=repr(error),
                         applied_stream_seq=self.applied_stream_seq)

    async def _follow(self, from_stream_seq: int) -> None:
        self._subscription = await self.js.subscribe(
            self.subject, stream=self.stream, ordered_consumer=True,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            config=ConsumerConfig(opt_start_seq=from_stream_seq))
        while True:
            try:
                message = await self._subscription.next_msg(timeout=1.0)
            except NatsTimeout:
                continue
            if self._stopped:
                return
            await self._apply(message)

    async def _apply(self, message) -> None:
        log_message, payloads = parse_message(message.headers, message.data)
        records = encoded_records(log_message.records)
        service = self.service
        wal = service.wal
        for index, payload in enumerate(payloads):
            if self._stopped:
                return
            seq = log_message.first_seq + index
            if seq <= wal.appended_seq:
                continue  # already here (a message overlapping what the local log holds)
            applied = apply_record(service.state, payload, wal.appended_seq,
                                   f"stream message {message.metadata.sequence.stream}")
            wal.append_encoded(records[index])
            if self._on_applied is not None:
                self._on_applied(applied)
            if index % YIELD_EVERY_RECORDS == YIELD_EVERY_RECORDS - 1:
                await asyncio.sleep(0)
        self.stream_last_record_seq = max(self.stream_last_record_seq, log_message.last_seq)
        self.applied_stream_seq = message.metadata.sequence.stream


async def _unsubscribe(subscription) -> None:
    try:
        await asyncio.wait_for(subscription.unsubscribe(), UNSUBSCRIBE_TIMEOUT_S)
    except (NatsError, asyncio.TimeoutError):  # gone with the connection, or the server
        pass  # deletes the ephemeral consumer itself once it is inactive
