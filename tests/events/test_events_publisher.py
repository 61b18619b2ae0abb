"""The publisher's recovery from a failure (switch/events/jetstream.py), against a stand-in for
NATS that the test steers: what it resends, and that each resend gets its whole ack timeout."""
import asyncio
import json

from structlog.testing import capture_logs

from events.events_support import Log
from ledger.ledger_support import account, participant
from support.waiting import eventually
from payswitch.switch.config import Config
from payswitch.switch.events.backlog import EMPTY_STREAM, Backlog, StreamEnd
from payswitch.switch.events.jetstream import Publisher


class Message:
    def __init__(self, subject: str, data: bytes, headers=None):
        self.subject, self.data, self.headers = subject, data, headers


class StandInNats:
    """A connection and a JetStream context in one: stores what it is told to, and answers
    each publish (or stays silent) as the test says."""

    def __init__(self):
        self.is_connected = True
        self.stored: list[dict] = []
        self.published: list[int] = []
        self.answering = True
        self._ack = None

    def new_inbox(self) -> str:
        return "_INBOX.test"

    async def subscribe(self, subject: str, cb):
        self._ack = cb

    async def publish(self, subject, body, reply, headers):
        seq = int(headers["Nats-Msg-Id"])
        self.published.append(seq)
        if not self.answering:
            return
        if int(headers["Nats-Expected-Last-Sequence"]) != len(self.stored):
            answer = {"error": {"err_code": 10071, "description": "wrong last sequence"}}
        else:
            self.stored.append(json.loads(body))
            answer = {"stream": "PAYSWITCH_EVENTS", "seq": seq}
        asyncio.get_running_loop().call_soon(
            lambda: asyncio.ensure_future(self._ack(Message(reply, json.dumps(answer).encode()))))

    async def stream_info(self, stream):
        return type("Info", (), {"state": type("State", (), {"last_seq": len(self.stored)})})

    async def get_msg(self, stream, seq):
        return Message("", json.dumps(self.stored[seq - 1]).encode())

    async def close(self) -> None:
        self.is_connected = False


def backlog_of_three() -> Backlog:
    log = Log()
    backlog = Backlog("payswitch.events", EMPTY_STREAM)
    backlog.add(log.apply("create_participants", {"participants": [participant("bank-a")]}))
    backlog.add(log.apply("create_accounts", {"accounts": [account("a-1", "bank-a"),
                                                           account("a-2", "bank-a")]}))
    backlog.durable_wal_seq = log.seq
    return backlog


async def test_unacknowledged_events_are_resent_after_the_streams_end_each_with_a_whole_timeout():
    nats = StandInNats()
    nats.answering = False  # the first attempts go unanswered
    backlog = backlog_of_three()
    config = Config(events=("nats://stand-in",), events_ack_timeout_s=0.2, events_retry_s=0.01)
    publisher = Publisher(config, nats, nats, backlog, lambda: None)
    with capture_logs() as logged:
        publisher.start()
        await eventually(lambda: nats.published == [1, 2, 3], "the first attempts")
        nats.answering = True
        await eventually(lambda: len(backlog) == 0, "the resent events acknowledged")
        await publisher.close()
    assert nats.published == [1, 2, 3, 1, 2, 3]  # resent once, not timed out again at once
    assert [e["seq"] for e in nats.stored] == [1, 2, 3] and publisher.published_total == 3
    assert [entry["event"] for entry in logged] == ["events_publish_failed",
                                                    "events_publishing_resumed"]


async def test_what_the_stream_stored_without_an_ack_is_not_sent_again():
    nats = StandInNats()
    backlog = backlog_of_three()
    first = json.loads(backlog.unsent[0].body)
    nats.stored.append(first)  # event 1 arrived, its ack was lost
    backlog.stream_holds(StreamEnd(1, first["wal_seq"], first["wal_index"], first))
    config = Config(events=("nats://stand-in",), events_retry_s=0.01)
    publisher = Publisher(config, nats, nats, backlog, lambda: None)
    publisher.start()
    await eventually(lambda: len(backlog) == 0, "the rest acknowledged")
    await publisher.close()
    assert nats.published == [2, 3] and [e["seq"] for e in nats.stored] == [1, 2, 3]


async def test_a_refusal_reads_the_streams_end_and_goes_on_from_there():
    """Another publish got event 1's place (here: a message of ours whose ack never came)."""
    nats = StandInNats()
    backlog = backlog_of_three()
    nats.stored.append(json.loads(backlog.unsent[0].body))  # stored behind our back
    config = Config(events=("nats://stand-in",), events_retry_s=0.01)
    publisher = Publisher(config, nats, nats, backlog, lambda: None)
    with capture_logs() as logged:
        publisher.start()
        await eventually(lambda: len(backlog) == 0, "published after the refusal")
        await publisher.close()
    assert nats.published[0] == 1 and nats.published[-2:] == [2, 3]
    assert [e["seq"] for e in nats.stored] == [1, 2, 3] and backlog.diverged is None
    assert "wrong last sequence" in logged[0]["reason"]
