"""Events derived but not yet in the stream, numbered to continue the stream's own sequence.

The stream's newest event (`StreamEnd`: its seq, the WAL record it came from and its index among
that record's events) anchors the numbering: the events of that record are numbered from it,
every later record's after them, so every node deriving from the same log numbers alike. Events
the stream already holds are dropped as they are derived (a restart replays records the stream
has; a standby trims by what the primary published). Nothing here does I/O.
"""
import json
from collections import deque
from typing import NamedTuple

import structlog

from payswitch.protocol import JSON, encode_body
from payswitch.protocol import events as schema
from payswitch.switch.events.derive import derive, envelope

log = structlog.get_logger("switch.events")


class Event(NamedTuple):
    seq: int
    wal_seq: int
    subject: str
    body: bytes


class StreamEnd(NamedTuple):
    """The newest event a stream holds; `event` is its body (None when not read)."""
    seq: int
    wal_seq: int
    wal_index: int
    event: dict | None


EMPTY_STREAM = StreamEnd(0, 0, -1, None)


class Backlog:
    def __init__(self, subject_prefix: str, end: StreamEnd):
        self._subject_prefix = subject_prefix
        self.end = end  # the newest event the stream is known to hold
        self.acknowledged_seq = end.seq  # the newest the stream confirmed to this node
        self._next_seq: int | None = None  # known once this node reaches the record of `end`
        self.unsent: deque[Event] = deque()
        self.in_flight: deque[Event] = deque()  # sent, waiting for the stream's ack, in order
        self.last_wal_seq = 0  # the newest record derived
        self.durable_wal_seq = 0
        self.diverged: str | None = None  # why this node's events are not the stream's

    def __len__(self) -> int:
        return len(self.unsent) + len(self.in_flight)

    def add(self, applied) -> None:
        """Derives, numbers and queues the events of one executed record (the next one)."""
        self.last_wal_seq = applied.seq
        if self.diverged is not None:
            return
        derived = derive(applied)
        first = self._first_seq(applied, len(derived))
        if first is None:
            return
        self._next_seq = first + len(derived)
        end = self.end
        prefix = self._subject_prefix
        for index, (event_type, fields) in enumerate(derived):
            seq = first + index
            if seq > end.seq:
                self.unsent.append(Event(seq, applied.seq, schema.subject(prefix, event_type),
                                         encode_body(envelope(applied, index, seq,
                                                              event_type, fields), JSON)))
            elif seq == end.seq:
                self._check_same(encode_body(envelope(applied, index, seq, event_type, fields),
                                             JSON), end)

    def _first_seq(self, applied, count: int) -> int | None:
        """The seq of the record's first event; None while the stream holds all of them."""
        if self._next_seq is not None:
            return self._next_seq
        end = self.end
        if applied.seq < end.wal_seq:
            return None  # this node is behind the stream: it catches up quietly
        if applied.seq == end.wal_seq:
            if count <= end.wal_index:
                self.diverge(f"record {applied.seq} has {count} events here, but the stream "
                              f"holds its event {end.wal_index} (seq {end.seq})")
                return None
            return end.seq - end.wal_index
        if applied.seq > end.wal_seq + 1:
            self._gap(applied.seq)
        return end.seq + 1

    def recovered(self, snapshot_seq: int) -> None:
        """Recovery loaded a snapshot of `snapshot_seq` and replayed the log after it: when the
        stream ends before the snapshot, say so now rather than at the next write."""
        if self._next_seq is None and snapshot_seq > self.end.wal_seq:
            self._gap(snapshot_seq + 1)
            self._next_seq = self.end.seq + 1

    def _gap(self, first_wal_seq: int) -> None:
        end = self.end
        log.warning("events_stream_gap", stream_last_seq=end.seq, stream_last_wal_seq=end.wal_seq,
                    first_wal_seq=first_wal_seq,
                    reason="this node's log starts after the stream's last event (its snapshot "
                           "is newer, e.g. events switched on for a ledger with history): the "
                           "records between are not in the stream",
                    consequence=f"the stream continues at event {end.seq + 1} with WAL record "
                                f"{first_wal_seq}")

    def next_sendable(self) -> Event | None:
        """The next event whose record is durable, moved to `in_flight`; None when there is none."""
        unsent = self.unsent
        if unsent and unsent[0].wal_seq <= self.durable_wal_seq and self.diverged is None:
            event = unsent.popleft()
            self.in_flight.append(event)
            return event
        return None

    def acknowledged(self, seq: int) -> Event:
        """The stream stored the oldest event in flight at `seq`."""
        event = self.in_flight.popleft()
        if seq != event.seq:
            self.diverge(f"the stream stored event {event.seq} at seq {seq}")
        self.acknowledged_seq = seq
        return event

    def requeue(self) -> None:
        """The events in flight are unconfirmed again (a failure): they are sent again, first."""
        self.unsent.extendleft(reversed(self.in_flight))
        self.in_flight.clear()

    def stream_holds(self, end: StreamEnd) -> None:
        """The stream's newest event is `end` (read after a failure, or by a standby): what it
        holds leaves the backlog, the rest is sent again."""
        self.requeue()
        if end.seq < self.acknowledged_seq:
            self.diverge(f"the stream's last event is {end.seq}, but it had acknowledged "
                          f"{self.acknowledged_seq}: it lost acknowledged events")
            return
        unsent = self.unsent
        while unsent and unsent[0].seq <= end.seq:
            event = unsent.popleft()
            if event.seq == end.seq:
                self._check_same(event.body, end)
        self.acknowledged_seq = end.seq
        if end.seq >= self.end.seq:
            self.end = end  # a node behind numbers from the newest end it has seen

    def check_stored(self, seq: int, stored: dict) -> None:
        """The stream answered our event `seq` as a duplicate and holds `stored` there: it must
        be our event (another writer's of that seq has the same Nats-Msg-Id). Call after
        requeue, while the event is still queued."""
        for event in self.unsent:
            if event.seq == seq:
                if json.loads(event.body) != stored:
                    self.diverge(f"event {seq} in the stream differs from the one derived here "
                                 f"from WAL record {event.wal_seq} (another writer's)")
                return

    def discard_after(self, wal_seq: int) -> None:
        """Records after `wal_seq` are gone (writes stopped before they were durable): their
        events were never sent, and the next records take their numbers."""
        unsent = self.unsent
        while unsent and unsent[-1].wal_seq > wal_seq:
            self._next_seq = unsent.pop().seq
        self.last_wal_seq = min(self.last_wal_seq, wal_seq)

    def covers(self, wal_seq: int) -> bool:
        """Whether the stream holds every event of the records up to `wal_seq` (so a snapshot
        at `wal_seq` loses no event a restart would have to regenerate)."""
        if self.diverged is not None:
            return False
        queued = self.in_flight or self.unsent
        if queued:
            return wal_seq < queued[0].wal_seq
        if self._next_seq is None:
            return wal_seq < self.end.wal_seq
        return wal_seq <= self.last_wal_seq

    def _check_same(self, body: bytes, end: StreamEnd) -> None:
        """The event this node derived for the stream's end is the stream's."""
        if end.event is not None and json.loads(body) != end.event:
            self.diverge(f"event {end.seq} in the stream differs from the one derived here "
                          f"from WAL record {end.wal_seq}")

    def diverge(self, reason: str) -> None:
        if self.diverged is None:
            self.diverged = reason
            log.critical("events_diverged", reason=reason,
                         action="publishing stopped and writes refused: the stream holds "
                                "another history than this node's log (another writer, or a "
                                "lost or restored log or stream); see docs/events.md")
