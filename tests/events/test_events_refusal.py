"""The bound on the event backlog (switch/events/stream.py): at events_max_backlog mutating
requests are refused, with a message saying why, until half of the backlog is published."""
import asyncio

from structlog.testing import capture_logs

from events.events_support import Log
from ledger.ledger_support import account, participant, tr
from payswitch.switch.config import Config
from payswitch.switch.events.backlog import EMPTY_STREAM, Backlog
from payswitch.switch.events.stream import EventStream


class StandInPublisher:
    """What EventStream asks of its publisher, without NATS."""
    connected = False
    paused = False
    published_total = 0

    def __init__(self, on_progress):
        self.on_progress = on_progress  # the publisher calls it after acknowledgements

    def wake(self) -> None:
        pass


def stream_with_backlog(limit: int) -> tuple[EventStream, Log]:
    config = Config(events=("nats://127.0.0.1:4222",), events_max_backlog=limit)
    events = EventStream(config, Backlog(config.events_subjects, EMPTY_STREAM),
                         StandInPublisher)
    log = Log()
    events.record_executed(log.apply("create_participants", {"participants": [
        participant("bank-a"), participant("bank-b")]}))
    events.record_executed(log.apply("create_accounts", {"accounts": [
        account("a-1", "bank-a", limit=None), account("b-1", "bank-b")]}))
    return events, log


def test_writes_are_refused_at_the_bound_and_taken_again_at_half():
    events, log = stream_with_backlog(limit=8)
    assert not events.refuses_writes()  # 4 events
    for n in range(4):
        events.record_executed(log.apply("transfer", tr(f"t-{n}", "a-1", "b-1", 1)))
    assert events.refuses_writes()
    message = events.refuse_write()
    assert "unreachable" in message and "8 events wait" in message and \
        "events_max_backlog 8" in message
    backlog = events.backlog
    backlog.durable_wal_seq = log.seq
    for _ in range(3):  # down to 5: still above half
        backlog.acknowledged(backlog.next_sendable().seq)
    assert events.refuses_writes()
    backlog.acknowledged(backlog.next_sendable().seq)
    assert not events.refuses_writes() and events.stats()["writes_refused"] == 1


async def test_a_waiting_batch_goes_on_once_the_backlog_drains():
    events, log = stream_with_backlog(limit=4)
    assert events.refuses_writes()
    waiting = asyncio.ensure_future(events.wait_for_room())
    await asyncio.sleep(0)
    assert not waiting.done()
    backlog = events.backlog
    backlog.durable_wal_seq = log.seq
    for _ in range(2):
        backlog.acknowledged(backlog.next_sendable().seq)
    events.publisher.on_progress()
    await asyncio.wait_for(waiting, 5)


def test_divergence_refuses_writes_with_its_reason():
    events, _ = stream_with_backlog(limit=100)
    events.backlog.diverge("event 3 in the stream differs")
    assert events.refuses_writes()
    assert "event 3 in the stream differs" in events.refuse_write()


def test_a_record_whose_events_cannot_be_derived_stops_the_stream_not_the_switch():
    """A bug in the derivation must not leave a silent gap: publishing stops, writes are
    refused, and the reason is logged."""
    events, log = stream_with_backlog(limit=100)
    broken = log.apply("transfer", tr("t-1", "a-1", "b-1", 1))._replace(commits=object())
    with capture_logs() as logged:
        events.record_executed(broken)
    assert events.refuses_writes() and "deriving the events of WAL record" in \
        events.refuse_write()
    assert [entry["event"] for entry in logged] == ["events_derivation_failed", "events_diverged"]


async def test_a_batch_waiting_on_a_diverged_stream_waits_without_spinning():
    events, _ = stream_with_backlog(limit=100)
    events.backlog.diverge("another history")
    waiting = asyncio.ensure_future(events.wait_for_room())
    for _ in range(100):  # loop turns: a spinning wait would have returned by now
        await asyncio.sleep(0)
    assert not waiting.done()
    waiting.cancel()
