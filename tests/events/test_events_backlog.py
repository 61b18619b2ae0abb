"""Numbering and queueing events (switch/events/backlog.py), without NATS: the stream's last
event anchors the numbers, what the stream holds is dropped, only durable records are sent,
and snapshots are allowed only for records whose events the stream holds."""
import json

from structlog.testing import capture_logs

from events.events_support import Log, replayed
from ledger.ledger_support import account, participant, tr
from payswitch.switch.events.backlog import EMPTY_STREAM, Backlog, StreamEnd

PREFIX = "payswitch.events"


def history() -> list:
    """Five records: participants (2 events), accounts (3), a transfer, a batch of 2, one more."""
    log = Log()
    log.apply("create_participants", {"participants": [participant("bank-a"),
                                                       participant("bank-b")]})
    log.apply("create_accounts", {"accounts": [account("a-1", "bank-a", limit=None),
                                               account("b-1", "bank-b"),
                                               account("b-2", "bank-b")]})
    log.apply("transfer", tr("t-1", "a-1", "b-1", 5))
    log.apply("create_transfers", {"transfers": [tr("t-2", "a-1", "b-1", 6),
                                                 tr("t-3", "a-1", "b-2", 7)]})
    log.apply("transfer", tr("t-4", "a-1", "b-2", 8))
    return replayed(log.payloads)


def fed(backlog: Backlog, records) -> Backlog:
    for record in records:
        backlog.add(record)
    return backlog


def bodies(events) -> list[dict]:
    return [json.loads(event.body) for event in events]


def published(backlog: Backlog, count: int) -> list[dict]:
    """Sends and acknowledges `count` events, as the stream would; their bodies."""
    sent = [backlog.next_sendable() for _ in range(count)]
    for event in sent:
        backlog.acknowledged(event.seq)
    return bodies(sent)


def end_of(body: dict) -> StreamEnd:
    return StreamEnd(body["seq"], body["wal_seq"], body["wal_index"], body)


def test_an_empty_stream_numbers_from_one_over_every_record():
    backlog = fed(Backlog(PREFIX, EMPTY_STREAM), history())
    events = bodies(backlog.unsent)
    assert [e["seq"] for e in events] == list(range(1, 10))
    assert [(e["wal_seq"], e["wal_index"]) for e in events] == [
        (1, 0), (1, 1), (2, 0), (2, 1), (2, 2), (3, 0), (4, 0), (4, 1), (5, 0)]
    assert [event.subject for event in backlog.unsent][:3] == [
        "payswitch.events.participant.created", "payswitch.events.participant.created",
        "payswitch.events.account.created"]


def test_only_durable_records_are_sent_and_acks_make_snapshots_safe():
    backlog = fed(Backlog(PREFIX, EMPTY_STREAM), history())
    assert backlog.next_sendable() is None  # nothing durable yet
    backlog.durable_wal_seq = 2
    assert [e["seq"] for e in published(backlog, 5)] == [1, 2, 3, 4, 5]
    assert backlog.next_sendable() is None
    assert backlog.covers(2) and not backlog.covers(3)
    backlog.durable_wal_seq = 5
    published(backlog, 4)
    assert len(backlog) == 0 and backlog.covers(5) and not backlog.covers(6)


def test_a_restart_continues_after_the_streams_last_event_mid_record():
    """The stream holds events 1..4 (record 2 only up to its index 1): a replay from the start
    regenerates from event 5, and checks event 4 against the stream's."""
    records = history()
    first = fed(Backlog(PREFIX, EMPTY_STREAM), records)
    stream = bodies(first.unsent)[:4]
    with capture_logs() as logged:
        restarted = fed(Backlog(PREFIX, end_of(stream[-1])), records)
    assert not [entry for entry in logged if entry["event"] == "events_stream_gap"]
    assert restarted.diverged is None
    assert [e["seq"] for e in bodies(restarted.unsent)] == [5, 6, 7, 8, 9]
    assert bodies(restarted.unsent) == bodies(first.unsent)[4:]
    # a snapshot at record 1 leaves record 2 to replay: the same result from there
    from_snapshot = fed(Backlog(PREFIX, end_of(stream[-1])), records[1:])
    assert bodies(from_snapshot.unsent) == bodies(first.unsent)[4:]


def test_a_record_after_the_streams_last_whole_record_continues_the_numbers():
    records = history()
    stream = bodies(fed(Backlog(PREFIX, EMPTY_STREAM), records).unsent)
    backlog = fed(Backlog(PREFIX, end_of(stream[4])), records[2:])  # snapshot at record 2
    assert [e["seq"] for e in bodies(backlog.unsent)] == [6, 7, 8, 9]


def test_a_node_behind_the_stream_catches_up_quietly():
    records = history()
    stream = bodies(fed(Backlog(PREFIX, EMPTY_STREAM), records).unsent)
    behind = Backlog(PREFIX, end_of(stream[7]))
    fed(behind, records[:3])
    assert len(behind) == 0 and behind.covers(2) and not behind.covers(4)
    fed(behind, records[3:])
    assert [e["seq"] for e in bodies(behind.unsent)] == [9] and behind.diverged is None


def test_a_different_event_at_the_streams_end_is_divergence():
    records = history()
    stream = bodies(fed(Backlog(PREFIX, EMPTY_STREAM), records).unsent)
    other = dict(stream[5], amount=999)
    backlog = fed(Backlog(PREFIX, end_of(other)), records)
    assert backlog.diverged and "differs" in backlog.diverged
    assert not backlog.covers(1) and backlog.next_sendable() is None


def test_a_stream_ending_after_this_nodes_snapshot_starts_after_a_gap():
    """Events switched on for a ledger with history: the stream (empty here) continues with
    the first record this node still has, and says so in the log."""
    records = history()
    with capture_logs() as logged:
        backlog = fed(Backlog(PREFIX, EMPTY_STREAM), records[3:])
    assert [(e["seq"], e["wal_seq"]) for e in bodies(backlog.unsent)] == [(1, 4), (2, 4), (3, 5)]
    [gap] = [entry for entry in logged if entry["event"] == "events_stream_gap"]
    assert (gap["log_level"], gap["first_wal_seq"], gap["stream_last_seq"]) == ("warning", 4, 0)


def test_after_a_failure_the_stream_end_trims_what_it_holds_and_the_rest_is_resent():
    backlog = fed(Backlog(PREFIX, EMPTY_STREAM), history())
    backlog.durable_wal_seq = 5
    sent = [backlog.next_sendable() for _ in range(6)]
    backlog.acknowledged(sent[0].seq)
    # events 2..4 reached the stream but their acks were lost; 5 and 6 did not
    backlog.stream_holds(end_of(json.loads(sent[3].body)))
    assert [event.seq for event in backlog.unsent][:2] == [5, 6] and not backlog.in_flight
    assert backlog.acknowledged_seq == 4 and backlog.diverged is None


def test_a_stream_that_lost_acknowledged_events_is_divergence():
    backlog = fed(Backlog(PREFIX, EMPTY_STREAM), history())
    backlog.durable_wal_seq = 5
    acked = published(backlog, 3)
    backlog.stream_holds(end_of(acked[1]))
    assert backlog.diverged and "lost" in backlog.diverged


def test_a_paused_node_trims_by_the_stream_also_ahead_of_it():
    """A standby derives as it follows the log; the primary has published further."""
    records = history()
    stream = bodies(fed(Backlog(PREFIX, EMPTY_STREAM), records).unsent)
    standby = fed(Backlog(PREFIX, EMPTY_STREAM), records[:2])
    standby.stream_holds(end_of(stream[6]))
    assert len(standby) == 0
    fed(standby, records[2:])
    assert [e["seq"] for e in bodies(standby.unsent)] == [8, 9]


def test_records_lost_when_writes_stopped_give_their_numbers_to_the_next_ones():
    records = history()
    backlog = fed(Backlog(PREFIX, EMPTY_STREAM), records[:4])
    backlog.durable_wal_seq = 2
    backlog.discard_after(2)
    assert [event.seq for event in backlog.unsent] == [1, 2, 3, 4, 5]
    backlog.add(records[2])  # the next record is numbered where the lost ones were
    assert [event.seq for event in backlog.unsent][-1] == 6


def test_a_snapshot_newer_than_the_stream_is_a_gap_said_at_start():
    """Nothing was replayed after the snapshot: the warning comes at start, and the next
    record continues the stream's numbers."""
    records = history()
    with capture_logs() as logged:
        backlog = Backlog(PREFIX, EMPTY_STREAM)
        backlog.recovered(snapshot_seq=4)
    assert [entry["first_wal_seq"] for entry in logged
            if entry["event"] == "events_stream_gap"] == [5]
    fed(backlog, records[4:])
    assert [(e["seq"], e["wal_seq"]) for e in bodies(backlog.unsent)] == [(1, 5)]
    assert backlog.covers(4) and not backlog.covers(5)  # 4 is before the stream began


def test_a_snapshot_at_the_streams_last_record_is_no_gap():
    records = history()
    stream = bodies(fed(Backlog(PREFIX, EMPTY_STREAM), records).unsent)
    with capture_logs() as logged:
        backlog = Backlog(PREFIX, end_of(stream[6]))  # the last event of record 4
        backlog.recovered(snapshot_seq=4)
        fed(backlog, records[4:])
    assert not logged
    assert [e["seq"] for e in bodies(backlog.unsent)] == [8]


def test_a_duplicate_answer_is_checked_against_what_the_stream_holds():
    """Another writer's event of the same seq has the same Nats-Msg-Id, so the stream answers
    ours as a duplicate: the event it holds there must be ours."""
    backlog = fed(Backlog(PREFIX, EMPTY_STREAM), history())
    ours = json.loads(backlog.unsent[2].body)
    backlog.check_stored(3, ours)
    assert backlog.diverged is None
    backlog.check_stored(3, dict(ours, committed_at=ours["committed_at"] + 1))
    assert backlog.diverged and "another writer" in backlog.diverged
