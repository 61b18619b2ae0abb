"""Reading a switch's committed-event stream (--events) straight from JetStream, for tests."""
import asyncio
import json
import time

import nats
from nats.js.api import ConsumerConfig, DeliverPolicy

from payswitch.protocol import events as schema
from support.wire import WireClient

READ_TIMEOUT_S = 30.0
# Reconnecting to NATS quickly keeps the outage tests short; nothing else depends on it.
FAST_RETRY = ("--events-retry-s", "0.2")


def read_events(urls: str, from_seq: int = 1,
                stream: str = schema.DEFAULT_STREAM) -> list[tuple[int, str, dict]]:
    """(stream sequence, subject, body) of every message from `from_seq` to the stream's end."""
    return asyncio.run(_read(urls.split(","), from_seq, stream))


async def _read(servers: list[str], from_seq: int, stream: str) -> list[tuple[int, str, dict]]:
    connection = await nats.connect(servers)
    try:
        js = connection.jetstream()
        end = (await js.stream_info(stream)).state.last_seq
        found: list[tuple[int, str, dict]] = []
        if end < from_seq:
            return found
        subscription = await js.subscribe(
            schema.stream_subjects(schema.DEFAULT_SUBJECT_PREFIX), stream=stream,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                  opt_start_seq=from_seq))
        while not found or found[-1][0] < end:
            message = await subscription.next_msg(timeout=READ_TIMEOUT_S)
            found.append((message.metadata.sequence.stream, message.subject,
                          json.loads(message.data)))
        return found
    finally:
        await connection.close()


def wait_for_events_published(admin: WireClient, timeout_s: float = 120.0) -> dict:
    """Until the switch has nothing left to publish; its stats' `events` section then."""
    deadline = time.monotonic() + timeout_s
    while True:
        events = admin.call("stats")["events"]
        if events["backlog"] == 0 and events["connected"]:
            return events
        assert time.monotonic() < deadline, f"events still waiting after {timeout_s}s: {events}"
        time.sleep(0.05)


def assert_gap_free(events: list[tuple[int, str, dict]], from_seq: int = 1) -> None:
    """Numbered from `from_seq` without gaps, each at its own stream sequence and subject, in
    commit order (WAL record, then place in it)."""
    assert [body["seq"] for _, _, body in events] == \
        list(range(from_seq, from_seq + len(events)))
    for stream_seq, subject, body in events:
        assert stream_seq == body["seq"] and body["v"] == schema.VERSION
        assert subject == schema.subject(schema.DEFAULT_SUBJECT_PREFIX, body["type"])
    places = [(body["wal_seq"], body["wal_index"]) for _, _, body in events]
    assert places == sorted(places) and len(set(places)) == len(places)
    for (wal_seq, index), (next_wal_seq, next_index) in zip(places, places[1:]):
        assert next_index == (index + 1 if next_wal_seq == wal_seq else 0), (wal_seq, index)
