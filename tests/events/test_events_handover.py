"""The interface replication uses for failover, over a real nats-server: a paused stream (a
standby) derives what a publishing one (the primary) publishes, trims its backlog by what the
stream holds, and, resumed after the primary is gone, publishes the rest: every event once."""
import asyncio

from events.events_support import Log
from ledger.ledger_support import account, participant, tr
from support.events_stream import assert_gap_free, read_events
from support.waiting import eventually
from payswitch.switch.config import Config
from payswitch.switch.events.stream import EventStream


def records() -> list:
    """Eleven records of committed changes, the same for both nodes."""
    log = Log()
    applied = [log.apply("create_participants", {"participants": [participant("bank-a"),
                                                                  participant("bank-b")]}),
               log.apply("create_accounts", {"accounts": [account("a-1", "bank-a", limit=None),
                                                          account("b-1", "bank-b")]})]
    applied += [log.apply("transfer", tr(f"t-{n}", "a-1", "b-1", n + 1)) for n in range(9)]
    return applied


async def test_a_paused_stream_takes_over_after_the_streams_last_event(nats_server):
    config = Config(events=tuple(nats_server.urls.split(",")), events_retry_s=0.1)
    log = records()
    primary = await EventStream.open(config)
    standby = await EventStream.open(config)
    try:
        primary.start(snapshot_seq=0, durable_seq=0)
        standby.pause()
        standby.start(snapshot_seq=0, durable_seq=0)
        for record in log[:6]:  # both apply; the primary publishes
            primary.record_executed(record)
            standby.record_executed(record)
            primary.durable(record.seq)
            standby.durable(record.seq)
        await eventually(lambda: len(primary.backlog) == 0, "the primary published")
        await eventually(lambda: len(standby.backlog) == 0, "the standby trimmed its backlog")
        assert standby.publisher.published_total == 0 and standby.covers(6)
        for record in log[6:]:  # the primary applies them too, but dies before publishing
            primary.record_executed(record)
            standby.record_executed(record)
            standby.durable(record.seq)
        await primary.close()
        assert len(standby.backlog) == 5 and standby.stats()["publishing"] is False
        standby.resume()
        await eventually(lambda: len(standby.backlog) == 0, "the promoted standby published")
        assert standby.publisher.published_total == 5 and standby.backlog.diverged is None
    finally:
        await primary.close()
        await standby.close()
    events = await asyncio.to_thread(read_events, nats_server.urls)
    assert_gap_free(events)
    assert [body.get("id") for _, _, body in events][-9:] == [f"t-{n}" for n in range(9)]
    assert len(events) == 2 + 2 + 9
