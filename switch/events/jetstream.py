"""The NATS JetStream side of the event stream: the connection, the stream, its last event, and
the publisher task. Imported only with --events: nats-py is the optional extra
`payswitch[replication]`.

Events are published pipelined (up to `events_max_in_flight` unacknowledged, their acks coming
back to an inbox of our own), each with Nats-Msg-Id = its seq and Nats-Expected-Last-Sequence =
seq - 1: the stream holds only our events (no other stream may take its subjects), so its
sequence is the event seq, and it refuses a gap, a duplicate or a second writer. After any
failure (no ack in time, a refusal, a lost connection) the publisher reads the stream's last
event and sends again what follows it.
"""
import asyncio
import json

import nats
import structlog
from nats.errors import Error as NatsError
from nats.js.api import Header, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from payswitch.protocol import events as schema
from payswitch.switch.events import EventsSetupError
from payswitch.switch.events.backlog import EMPTY_STREAM, Backlog, StreamEnd

log = structlog.get_logger("switch.events")
FAILURES = (NatsError, asyncio.TimeoutError, OSError)
# The stream refused an event because it holds another last event: read its end at once.
WRONG_LAST_SEQUENCE = 10071
# Our code for an ack saying the stream already had an event of that Nats-Msg-Id: that event is
# read at once and compared with ours, since another writer's event of that seq has the same id
# (and our later events, pipelined, would be stored after it).
DUPLICATE = -1
CLOSE_TIMEOUT_S = 5.0
MSG_ID, EXPECTED_LAST_SEQUENCE = Header.MSG_ID.value, Header.EXPECTED_LAST_SEQUENCE.value


class NotConnected(NatsError):
    def __str__(self) -> str:
        return "not connected to NATS"


async def connect(config):
    """A connection that reconnects for ever once made; EventsSetupError if no server answers
    within events_connect_timeout_s."""
    last_error: list[BaseException] = []

    async def failed(error: BaseException) -> None:  # each failed attempt: kept, not logged
        last_error[:] = [error]

    async def disconnected() -> None:
        if not connection.is_closed:  # closing it ourselves is no news
            log.warning("events_nats_disconnected",
                        reason=repr(last_error[0]) if last_error else None)

    async def reconnected() -> None:
        log.info("events_nats_reconnected", server=str(connection.connected_url.netloc)
                 if connection.connected_url else None)

    connection = nats.NATS()
    servers = list(config.events)
    try:
        await asyncio.wait_for(connection.connect(
            servers=servers, name="payswitch-events", error_cb=failed,
            disconnected_cb=disconnected, reconnected_cb=reconnected,
            max_reconnect_attempts=-1, reconnect_time_wait=config.events_retry_s,
            skip_subject_validation=True,  # ours are checked once, in Config.validate
            connect_timeout=max(1, round(config.events_connect_timeout_s))),
            config.events_connect_timeout_s)
    except FAILURES as error:
        await close_quietly(connection)
        reason = last_error[0] if last_error else error
        raise EventsSetupError(f"events: no NATS server reachable at {','.join(servers)} within "
                               f"{config.events_connect_timeout_s:g} s ({reason!r})") from None
    return connection


async def close_quietly(connection) -> None:
    try:
        await asyncio.wait_for(connection.close(), CLOSE_TIMEOUT_S)
    except FAILURES:
        pass


async def ensure_stream(js, config) -> None:
    """Creates the events stream (file storage, `events_replicas`) unless it exists; ValueError
    for one of that name that takes other subjects."""
    name = config.events_stream
    subjects = [schema.stream_subjects(config.events_subjects)]
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(StreamConfig(
            name=name, subjects=subjects, storage=StorageType.FILE,
            num_replicas=config.events_replicas,
            description="payswitch committed events, see docs/events.md"))
        log.info("events_stream_created", stream=name, subjects=subjects,
                 replicas=config.events_replicas)
        return
    if list(info.config.subjects or ()) != subjects:
        raise ValueError(f"stream {name} exists with subjects {info.config.subjects}, not "
                         f"{subjects}: choose another --events-stream or --events-subjects")
    if info.config.num_replicas != config.events_replicas:
        log.warning("events_stream_replicas_differ", stream=name,
                    replicas=info.config.num_replicas, configured=config.events_replicas,
                    action="the stream keeps its own; change it with `nats stream edit` if meant")


async def read_end(js, stream: str) -> StreamEnd:
    """The stream's newest event; ValueError when it is not one of ours."""
    last_seq = (await js.stream_info(stream)).state.last_seq
    if not last_seq:
        return EMPTY_STREAM
    try:
        data = (await js.get_msg(stream, last_seq)).data
    except NotFoundError:
        raise ValueError(f"the last event of stream {stream} (seq {last_seq}) cannot be read: "
                         f"it was deleted or purged") from None
    try:
        event = json.loads(data)
        if event["v"] != schema.VERSION or event["seq"] != last_seq:
            raise ValueError
        return StreamEnd(last_seq, int(event["wal_seq"]), int(event["wal_index"]), event)
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"message {last_seq} of stream {stream} is not a payswitch event of "
                         f"version {schema.VERSION} numbered {last_seq}") from None


async def open_stream(config) -> tuple:
    """(connection, JetStream context, the stream's newest event), the stream created if new."""
    connection = await connect(config)
    js = connection.jetstream(timeout=config.events_ack_timeout_s)
    try:
        await ensure_stream(js, config)
        end = await read_end(js, config.events_stream)
    except FAILURES as error:
        await close_quietly(connection)
        raise EventsSetupError(f"events: stream {config.events_stream}: {error!r}") from None
    except ValueError as error:
        await close_quietly(connection)
        raise EventsSetupError(f"events: {error}") from None
    return connection, js, end


class StreamRefused(NatsError):
    """The stream answered an event with an error (for example a wrong last sequence), or as a
    duplicate: either way the publisher reads the stream's end before it goes on."""

    def __init__(self, seq: int, error: dict):
        super().__init__()
        self.seq, self.err_code = seq, error.get("err_code")
        self.description = error.get("description")

    def __str__(self) -> str:
        return f"the stream refused event {self.seq}: {self.description} ({self.err_code})"


class Publisher:
    """The task that sends the backlog's durable events and reads the stream's end after a
    failure; paused, it only reads that end now and then to trim the backlog (a standby).

    Events are plain publishes, pipelined, whose acknowledgements come back to an inbox of our
    own, one reply subject per event seq: nats-py's publish_async costs about twice as much CPU
    per event (a future, a semaphore and a token each)."""

    def __init__(self, config, connection, js, backlog: Backlog, on_progress):
        self._connection = connection
        self._js = js
        self.backlog = backlog
        self._on_progress = on_progress  # called after acknowledgements and trims
        self._stream = config.events_stream
        self._window = config.events_max_in_flight
        self._ack_timeout_s = config.events_ack_timeout_s
        self._retry_s = config.events_retry_s
        self._inbox = connection.new_inbox() + "."  # + the event seq: where its ack comes
        self._subscription = None
        self._refusal: StreamRefused | None = None  # an error ack not yet acted upon
        self._waiting_for = (0, 0.0)  # the oldest event in flight, and since when (loop time)
        self._wake = asyncio.Event()  # durable events to send, or acks
        self._mode_changed = asyncio.Event()
        self.paused = False
        self._resync = False  # read the stream's end before sending again
        self._duplicate_seq: int | None = None  # an event answered as a duplicate: compare it
        self._failure: str | None = None  # the failure being retried, logged once
        self._task: asyncio.Task | None = None
        self.published_total = 0

    @property
    def connected(self) -> bool:
        return self._connection.is_connected

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def wake(self) -> None:
        self._wake.set()

    def pause(self) -> None:
        self.paused = True
        self._drop_in_flight()
        self._mode_changed.set()
        self._wake.set()  # out of a wait for acks that will not be counted

    def resume(self) -> None:
        self.paused = False
        self._resync = True
        self._mode_changed.set()
        self._wake.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._drop_in_flight()
        await close_quietly(self._connection)

    async def _run(self) -> None:
        while self.backlog.diverged is None:
            try:
                if self._subscription is None:
                    self._subscription = await self._connection.subscribe(
                        self._inbox + "*", cb=self._acknowledged)
                if self.paused:
                    await self._follow()
                elif self._resync:
                    await self._catch_up()
                else:
                    await self._send_and_confirm()
            except FAILURES as error:
                self._failed(error)
                if getattr(error, "err_code", None) not in (WRONG_LAST_SEQUENCE, DUPLICATE):
                    await asyncio.sleep(self._retry_s)
            except ValueError as error:  # the stream's end is not one of our events
                self.backlog.diverge(str(error))
        self._drop_in_flight()  # diverged: nothing more is published by this process

    async def _send_and_confirm(self) -> None:
        self._wake.clear()
        if self._refusal is not None:
            raise self._refusal
        if not self._connection.is_connected:
            raise NotConnected
        backlog, publish, inbox = self.backlog, self._connection.publish, self._inbox
        in_flight = backlog.in_flight
        while len(in_flight) < self._window:
            event = backlog.next_sendable()
            if event is None:
                break
            seq = str(event.seq)
            await publish(event.subject, event.body, reply=inbox + seq,
                          headers={MSG_ID: seq, EXPECTED_LAST_SEQUENCE: str(event.seq - 1)})
        if in_flight:
            self._watch_oldest(in_flight[0].seq)
        await self._wake.wait()
        self._on_progress()

    def _watch_oldest(self, seq: int) -> None:
        """Raises TimeoutError once the oldest event in flight has waited events_ack_timeout_s:
        a timer wakes the loop then (a timer per oldest event, not a task per wait)."""
        loop = asyncio.get_running_loop()
        if self._waiting_for[0] != seq:
            self._waiting_for = (seq, loop.time())
            loop.call_later(self._ack_timeout_s, self._wake.set)
        elif loop.time() - self._waiting_for[1] >= self._ack_timeout_s:
            raise asyncio.TimeoutError(f"event {seq} not acknowledged within "
                                       f"{self._ack_timeout_s:g} s")

    async def _acknowledged(self, message) -> None:
        """The stream's answer to one event (nats-py calls this in order of arrival)."""
        seq = int(message.subject[len(self._inbox):])
        in_flight = self.backlog.in_flight
        if not in_flight or in_flight[0].seq != seq:
            return  # the answer to an attempt given up on: the stream's end was read since
        try:
            answer = json.loads(message.data)
        except ValueError:  # a status without a body, such as 503: no JetStream responded
            status = (message.headers or {}).get("Status")
            answer = {"error": {"description": f"no answer from JetStream (status {status})"}}
        if "error" in answer:
            self._refusal = StreamRefused(seq, answer["error"])
        elif answer.get("duplicate"):
            self._refusal = StreamRefused(seq, {"err_code": DUPLICATE, "description":
                                                "a duplicate of an event the stream holds"})
        else:
            self.backlog.acknowledged(answer.get("seq"))  # where the stream stored it
            self.published_total += 1
        self._wake.set()

    async def _catch_up(self) -> None:
        if not self._connection.is_connected:
            raise NotConnected
        if self._duplicate_seq is not None:
            stored = await self._js.get_msg(self._stream, self._duplicate_seq)
            self.backlog.check_stored(self._duplicate_seq, json.loads(stored.data))
            self._duplicate_seq = None
        end = await read_end(self._js, self._stream)
        self.backlog.stream_holds(end)
        self._resync = False
        if self._failure is not None:
            log.info("events_publishing_resumed", stream_last_seq=end.seq,
                     backlog=len(self.backlog), after=self._failure)
            self._failure = None
        self._on_progress()

    async def _follow(self) -> None:
        """Paused: trims the backlog by the stream's end every events_retry_s, until resumed."""
        self._mode_changed.clear()
        if self._connection.is_connected:
            self.backlog.stream_holds(await read_end(self._js, self._stream))
            self._on_progress()
        try:
            await asyncio.wait_for(self._mode_changed.wait(), self._retry_s)
        except asyncio.TimeoutError:
            pass

    def _failed(self, error: BaseException) -> None:
        self._drop_in_flight()
        self._resync = True
        if getattr(error, "err_code", None) == DUPLICATE:
            self._duplicate_seq = error.seq  # type: ignore[attr-defined]  # nats' APIError
        if self._failure is None:
            self._failure = repr(error) if not isinstance(error, StreamRefused) else str(error)
            log.warning("events_publish_failed", reason=self._failure, backlog=len(self.backlog),
                        action=f"retrying every {self._retry_s:g} s from the stream's last event")

    def _drop_in_flight(self) -> None:
        """Events sent but not acknowledged are sent again after the stream's end is read (and
        each gets the whole ack timeout again)."""
        self._refusal = None
        self._waiting_for = (0, 0.0)
        self.backlog.requeue()
