"""`service.events`: this node's committed-event stream (docs/events.md); None when off.

Every WAL record that changed the state is handed to `record_executed` (by the primary as it
executes, by recovery's replay, by a standby's follower): its events are derived, numbered and
queued (backlog.py). `durable(seq)` releases the events of records up to `seq`, which the
publisher (jetstream.py) then sends. `pause()` stops publishing: a standby derives, queues and
trims its queue by what the stream holds; `resume()` publishes again after the stream's last
event (a standby promoted). The queue is bounded: at `events_max_backlog` mutating requests are
refused `unavailable` until half of it is published.
"""
import asyncio
import time

import structlog

from payswitch.switch.events import EventsSetupError
from payswitch.switch.events.backlog import Backlog

log = structlog.get_logger("switch.events")
FLUSH_POLL_S = 0.01


class EventStream:
    def __init__(self, config, backlog: Backlog, publisher_factory):
        """publisher_factory(on_progress) -> the publisher (jetstream.Publisher)."""
        self.name = config.events_stream
        self.max_backlog = config.events_max_backlog
        self.backlog = backlog
        self.publisher = publisher_factory(self._progressed)
        self.writes_refused_total = 0
        self._refusing = False
        self._room = asyncio.Event()  # set while writes are taken
        self._room.set()

    @classmethod
    async def open(cls, config) -> "EventStream":
        """Connects, creates the stream if new and reads its last event: the anchor of this
        node's numbering. Raises EventsSetupError (one line) when that cannot be done."""
        try:
            from payswitch.switch.events import jetstream
        except ImportError as error:
            if (error.name or "").partition(".")[0] != "nats":
                raise
            raise EventsSetupError("--events needs nats-py: pip install "
                                   "'payswitch[replication]'") from None
        connection, js, end = await jetstream.open_stream(config)
        log.info("events_stream_opened", stream=config.events_stream, last_seq=end.seq,
                 last_wal_seq=end.wal_seq)
        backlog = Backlog(config.events_subjects, end)
        return cls(config, backlog, lambda on_progress: jetstream.Publisher(
            config, connection, js, backlog, on_progress))

    # the interface of the primary, recovery and a standby

    def record_executed(self, applied) -> None:
        """One WAL record executed here (any record that changed the state, in log order)."""
        try:
            self.backlog.add(applied)
        except Exception as error:  # a bug of ours: stop rather than leave a gap in the stream
            log.exception("events_derivation_failed", wal_seq=applied.seq, op=applied.op)
            self.backlog.diverge(f"deriving the events of WAL record {applied.seq} "
                                 f"({applied.op}) failed: {error!r}")

    def durable(self, wal_seq: int) -> None:
        """Records up to `wal_seq` are durable: their events may be published."""
        self.backlog.durable_wal_seq = wal_seq
        self.publisher.wake()

    def pause(self) -> None:
        self.publisher.pause()

    def resume(self) -> None:
        self.publisher.resume()

    def start(self, snapshot_seq: int, durable_seq: int) -> None:
        """Starts publishing, once recovery has regenerated what the stream lacks from the
        snapshot of `snapshot_seq` and the log after it, up to `durable_seq`."""
        self.backlog.recovered(snapshot_seq)
        self.durable(durable_seq)
        self.publisher.start()

    # what the rest of the switch asks

    def refuses_writes(self) -> bool:
        """Whether mutating requests are refused: the backlog reached events_max_backlog (until
        it is down to half), or this node's events diverged from the stream's."""
        size = len(self.backlog)
        if self._refusing:
            if size <= self.max_backlog // 2:
                self._refusing = False
                log.warning("writes_resumed_after_events", backlog=size,
                            refused_total=self.writes_refused_total)
        elif size >= self.max_backlog:
            self._refusing = True
            log.warning("writes_paused_for_events", backlog=size, max_backlog=self.max_backlog,
                        nats_connected=self.publisher.connected)
        refused = self._refusing or self.backlog.diverged is not None
        if refused:
            self._room.clear()  # diverged: for good, so waiting batches wait for good
        else:
            self._room.set()
        return refused

    def refuse_write(self) -> str:
        """Counts a refused mutating request; its `unavailable` message."""
        self.writes_refused_total += 1
        if self.backlog.diverged is not None:
            return (f"writes are refused: the committed-event stream {self.name} holds another "
                    f"history than this node ({self.backlog.diverged}); an operator must "
                    f"resolve it (docs/events.md)")
        why = ("is unreachable" if not self.publisher.connected else "is behind")
        return (f"writes are paused: the committed-event stream {self.name} {why} and "
                f"{len(self.backlog)} events wait to be published (events_max_backlog "
                f"{self.max_backlog}); retry once it catches up (reads are answered meanwhile)")

    async def wait_for_room(self) -> None:
        """Returns once writes are taken (at once if they are): batches wait here."""
        while self.refuses_writes():
            await self._room.wait()

    def covers(self, wal_seq: int) -> bool:
        """Whether the stream holds every event of the records up to `wal_seq`: a snapshot at
        `wal_seq` may be published only then (a restart regenerates events from the log)."""
        return self.backlog.covers(wal_seq)

    def discard_after(self, wal_seq: int) -> None:
        """Writes stopped: records after `wal_seq` never became durable and are gone."""
        self.backlog.discard_after(wal_seq)

    async def flush(self, timeout_s: float) -> bool:
        """Waits (at most timeout_s) until every queued event is published, while publishing is
        possible at all; whether the backlog is empty."""
        deadline_s = time.monotonic() + timeout_s
        publisher, backlog = self.publisher, self.backlog
        while (backlog and time.monotonic() < deadline_s and publisher.connected
               and not publisher.paused and backlog.diverged is None):
            await asyncio.sleep(FLUSH_POLL_S)
        return not backlog

    async def close(self) -> None:
        await self.publisher.close()

    def stats(self) -> dict:
        """The `events` section of `stats`."""
        backlog, publisher = self.backlog, self.publisher
        return {"stream": self.name, "connected": publisher.connected,
                "publishing": not publisher.paused, "published": publisher.published_total,
                "last_published_seq": backlog.acknowledged_seq, "backlog": len(backlog),
                "max_backlog": self.max_backlog, "writes_paused": self._refusing,
                "writes_refused": self.writes_refused_total, "diverged": backlog.diverged}

    def _progressed(self) -> None:
        """Events were published or trimmed: writes may be taken again."""
        if self._refusing:
            self.refuses_writes()
