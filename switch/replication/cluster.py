"""The JetStream resources replication uses: connecting, creating them, and finding records.

- the log stream (file storage, `replication_replicas` copies): WAL records, see wire.py;
- a key-value bucket holding the primary's lease, see lease.py;
- an object store of snapshots, from which an empty node starts (see snapshots.py).
"""
import asyncio

import nats
import structlog
from nats.errors import Error as NatsError
from nats.errors import NoServersError
from nats.js.api import (KeyValueConfig, ObjectStoreConfig, RetentionPolicy, StorageType,
                         StreamConfig)
from nats.js.errors import NotFoundError

from payswitch.switch.replication.errors import ReplicationUnusable
from payswitch.switch.replication.wire import FIRST_SEQ, HEADROOM_BYTES, LAST_SEQ

log = structlog.get_logger("switch.replication")
CONNECT_RETRY_S = 1.0
DUPLICATE_WINDOW_S = 120.0


class Cluster:
    def __init__(self, config):
        self.config = config
        self.nc = None
        self.js = None
        self.kv = None
        self.snapshots = None
        self.stream = config.replication_stream
        self.subject = f"{config.replication_stream.lower()}.records"

    @property
    def max_message_bytes(self) -> int:
        return self.nc.max_payload - HEADROOM_BYTES

    async def connect(self) -> None:
        """Connects (retrying until a server answers: a switch started before NATS waits for
        it) and creates the stream, bucket and object store if they do not exist yet."""
        servers = list(self.config.replication)
        while True:
            try:
                self.nc = await nats.connect(
                    servers, name=f"payswitch-{self.config.node_id}", max_reconnect_attempts=-1,
                    reconnect_time_wait=0.25, connect_timeout=2, allow_reconnect=True,
                    error_cb=_log_error, disconnected_cb=_log_disconnected,
                    reconnected_cb=_log_reconnected)
                break
            except (NoServersError, NatsError, OSError, asyncio.TimeoutError) as error:
                log.warning("replication_connect_failed", servers=servers, error=repr(error),
                            retry_s=CONNECT_RETRY_S)
                await asyncio.sleep(CONNECT_RETRY_S)
        needed = 2 * self.config.max_frame_bytes + HEADROOM_BYTES
        if self.nc.max_payload < needed:
            raise ReplicationUnusable(
                f"the NATS servers take messages of at most {self.nc.max_payload} bytes "
                f"(max_payload); the switch's largest WAL record needs {needed} (twice "
                f"--max-frame-bytes, {self.config.max_frame_bytes}, plus headers): set "
                f"max_payload: 8MB in every nats-server's configuration")
        self.js = self.nc.jetstream(timeout=self.config.replication_request_timeout_s)
        while True:
            try:
                await self._ensure_resources()
                return
            except (NatsError, asyncio.TimeoutError) as error:
                log.warning("replication_setup_waiting", error=repr(error),
                            retry_s=CONNECT_RETRY_S)
                await asyncio.sleep(CONNECT_RETRY_S)

    async def _ensure_resources(self) -> None:
        config = self.config
        try:
            await self.js.stream_info(self.stream)
        except NotFoundError:
            await self.js.add_stream(StreamConfig(
                name=self.stream, subjects=[self.subject], storage=StorageType.FILE,
                num_replicas=config.replication_replicas, retention=RetentionPolicy.LIMITS,
                duplicate_window=DUPLICATE_WINDOW_S, max_msg_size=self.nc.max_payload))
        self.kv = await self.js.create_key_value(KeyValueConfig(
            bucket=f"{self.stream}_lease", history=1, ttl=config.lease_ttl_s,
            storage=StorageType.FILE, replicas=config.replication_replicas))
        self.snapshots = await self.js.create_object_store(
            f"{self.stream}_snapshots", ObjectStoreConfig(storage=StorageType.FILE,
            replicas=config.replication_replicas))

    async def stream_bounds(self) -> tuple[int, int]:
        """(first, last) stream sequence numbers held; (0, 0) when empty."""
        state = (await self.js.stream_info(self.stream)).state
        return (state.first_seq, state.last_seq) if state.messages else (0, state.last_seq)

    async def records_in(self, stream_seq: int) -> tuple[int, int]:
        """(first, last) record sequence numbers of one message (last = first - 1: a fence)."""
        headers = (await self.js.get_msg(self.stream, stream_seq)).headers
        return int(headers[FIRST_SEQ]), int(headers[LAST_SEQ])

    async def message_holding(self, record_seq: int) -> int | None:
        """The stream sequence of the first message whose records reach `record_seq` (binary
        search over the headers), or None when every message ends before it."""
        first, last = await self.stream_bounds()
        if not first:
            return None
        low, high, found = first, last, None
        while low <= high:
            middle = (low + high) // 2
            if (await self.records_in(middle))[1] >= record_seq:
                found, high = middle, middle - 1
            else:
                low = middle + 1
        return found

    async def close(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            try:
                await asyncio.wait_for(self.nc.close(), 5)
            except (NatsError, asyncio.TimeoutError):
                pass


async def _log_error(error: Exception) -> None:
    log.warning("nats_error", error=repr(error))


async def _log_disconnected() -> None:
    log.warning("nats_disconnected")


async def _log_reconnected() -> None:
    log.warning("nats_reconnected")
