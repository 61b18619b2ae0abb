"""Every limit and setting of the server, named in one place."""
import re
from dataclasses import dataclass
from pathlib import Path

from payswitch.protocol.addresses import display_address
from payswitch.protocol.values import is_valid_currency
from payswitch.protocol.events import DEFAULT_STREAM, DEFAULT_SUBJECT_PREFIX
from payswitch.switch.storage.records import MAX_RECORD_BYTES

DURABILITY_MODES = ("fsync", "none")
# The default max_log_bytes_since_snapshot: this many snapshot intervals, and at least
# LOG_BOUND_MIN_BYTES (a few seconds of replay: pausing writes to spare a restart less buys
# nothing, and tiny test intervals would pause all the time while a builder starts).
LOG_BOUND_INTERVALS = 3
LOG_BOUND_MIN_BYTES = 64 << 20
LOG_LEVELS = ("debug", "info", "warning", "error")
# JetStream stream names and subject tokens: no dots, wildcards or spaces (the prefix has dots)
STREAM_NAME = re.compile(r"[A-Za-z0-9_-]+")
SUBJECT_PREFIX = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
MAX_EVENTS_REPLICAS = 5  # JetStream's own limit
# A few fsyncs' worth: any longer and the wait costs more latency than the sharing saves.
MAX_WAL_GROUP_WAIT_S = 0.01


@dataclass(frozen=True)
class Config:
    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = 7878
    # Durability: "fsync" acknowledges only what is fsynced; "none" (explicitly weaker) only
    # what is written to the operating system, which a power loss may take away.
    durability: str = "fsync"
    max_frame_bytes: int = 1 << 20
    # Before a successful hello only small frames are decoded (a hello is a few hundred bytes):
    # larger ones are refused `unauthenticated` unread, so no one without a token makes the
    # switch decode megabytes (as Redis limits unauthenticated clients' requests).
    max_unauthenticated_frame_bytes: int = 16 << 10
    # Larger frames are decoded and validated in the decode worker process, off the event loop
    # (a 1 MiB body takes 5-10 ms to decode); the connection waits for that frame alone.
    # Frames before hello are never this large (see above).
    max_inline_decode_bytes: int = 16 << 10
    # The decode worker runs this much nicer than the switch: on a busy machine, decoding large
    # frames takes what the real-time path leaves.
    decode_worker_nice: int = 10
    # Fairness (switch/turns.py): frames that arrive on a connection with none waiting get a
    # first turn of at most first_turn_s (a small request needs 20-50 us), ahead of the rest;
    # what is left is handled round robin in turns of at most turn_s. A request waits behind
    # about one or two turns.
    first_turn_s: float = 0.0001
    turn_s: float = 0.00025
    max_connections: int = 10_000
    # Requests read from one connection whose replies are not yet sent; past it the rest are
    # answered `overloaded` (not executed) and we stop reading from that connection until half
    # have been answered.
    max_inflight_per_connection: int = 4096
    # Bytes of replies queued in a connection's transport before we stop reading from it.
    max_write_buffer_bytes: int = 4 << 20
    idle_timeout_s: float = 300.0
    # A frame whose first byte has arrived must be complete within this (slowloris); otherwise
    # the connection gets a JSON `bad_frame` (id null) and is closed. Also the TLS handshake limit.
    frame_timeout_s: float = 10.0
    # A connection whose replies stay above max_write_buffer_bytes (it does not read them) this
    # long is dropped; so is one whose close cannot flush its last replies.
    write_stall_timeout_s: float = 30.0
    # Replies held for the WAL across all connections; past it new requests get `overloaded`.
    max_queued_replies: int = 100_000
    # Failed `hello`s from one peer address: the failed reply is held back 0.1 s, doubling per
    # consecutive failure up to the maximum (0 disables), serialized per address.
    hello_failure_delay_s: float = 0.1
    hello_failure_max_delay_s: float = 5.0
    # Optional TLS (1.2+): server certificate chain and key; with a client CA, every client must
    # present a certificate it signed, and `hello` must name the certificate's subject CN.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    wal_segment_bytes: int = 64 << 20
    # With fsync durability, records are written over zeros written (and fsynced) this many
    # bytes at a time ahead of them: an fdatasync that does not grow the file does not write its
    # inode too (about a third off each fsync on ext4). One fsync in this many bytes of log
    # carries the zeros (about 1.5 ms per MiB here). 0 appends instead (copy-on-write file
    # systems such as btrfs or ZFS gain nothing from it).
    wal_zero_ahead_bytes: int = 1 << 20
    # Group commit: once an fsync's replies are released, the next fsync waits at most this long
    # for as many records as were outstanding before the release (the clients just answered
    # send again), so they share it instead of queueing behind it; 0 writes at once.
    wal_group_wait_s: float = 0.001
    # A snapshot is built (by a separate process) after this many WAL bytes since the last one.
    snapshot_every_bytes: int = 256 << 20
    # The hard bound on the log a restart replays: once the log since the last published
    # snapshot reaches it, mutating requests are answered `overloaded` and batches wait until
    # the snapshot being built is published (reads go on). None: LOG_BOUND_INTERVALS x
    # snapshot_every_bytes, at least LOG_BOUND_MIN_BYTES (768 MiB by default), which leaves a
    # builder started on time two intervals of writes to finish in, and follows the interval.
    max_log_bytes_since_snapshot: int | None = None
    # The snapshot builder runs this much nicer than the switch: enough to keep it off the
    # switch's back, never so much that a busy machine starves it (it used to run SCHED_IDLE).
    snapshot_builder_nice: int = 5
    snapshots_kept: int = 2
    # After a write refused for want of space (fail-stop), writes resume by themselves once the
    # log's filesystem has this much free; a failed fsync always needs a restart.
    resume_min_free_bytes: int = 64 << 20
    # Batches: partial batches are applied in chunks of this many items (one WAL record each);
    # an atomic batch is one ledger step (one WAL record), so its size bounds how long it pauses
    # other traffic.
    batch_chunk_items: int = 100
    # A chunk of 100 takes about 0.5-0.8 ms, so a slice is about one chunk: a request waits
    # behind at most that, and shares its fsync with about one chunk's record (~15 KB).
    # A partial batch runs chunks for at most batch_slice_s, then leaves the event loop to
    # real-time requests until the WAL has made them durable, for at most batch_pause_s: a
    # request waits behind at most about one slice, and under heavy real-time load the batch
    # still gets slice / (slice + pause) of the loop.
    batch_slice_s: float = 0.0005
    batch_pause_s: float = 0.002
    # Batches are parsed in a child process this much nicer than the switch, so that on a busy
    # machine the parse takes what the real-time path leaves.
    batch_parse_nice: int = 10
    max_atomic_batch_items: int = 10_000
    expiry_check_interval_s: float = 0.05
    shutdown_timeout_s: float = 30.0
    log_format: str = "auto"  # auto (console on a terminal, else json), json, console
    # Currency codes accepted besides ISO 4217's active ones with minor units (for example the
    # test code XTS). Checked when a request or batch is admitted, never on replay.
    extra_currencies: tuple[str, ...] = ()
    # The committed-event stream (docs/events.md), off unless NATS servers are given: JetStream
    # stream `events_stream` (file storage, `events_replicas` copies: 1 for a single NATS
    # server, 3 recommended) on subjects `<events_subjects>.<type>`.
    events: tuple[str, ...] = ()
    events_stream: str = DEFAULT_STREAM
    events_subjects: str = DEFAULT_SUBJECT_PREFIX
    events_replicas: int = 1
    # Events derived but not yet acknowledged by the stream are kept in memory; at this many,
    # mutating requests are refused `unavailable` until half of them are published, so a stream
    # outage costs availability, never memory without bound.
    events_max_backlog: int = 100_000
    # Events sent and not yet acknowledged at once (pipelined; no round trip per event). Also
    # bounds the burst of sends and of acknowledgements the event loop handles in one go.
    events_max_in_flight: int = 256
    # An event not acknowledged within this is sent again after the stream's last event.
    events_ack_timeout_s: float = 5.0
    # Between attempts to reach the stream, and between reads of its end while paused.
    events_retry_s: float = 1.0
    # At start a NATS server must answer within this, else the switch refuses to start.
    events_connect_timeout_s: float = 10.0
    log_level: str = "info"  # debug, info, warning, error
    # The metrics listener (/metrics, /livez, /readyz), off unless a port is given (0 picks a
    # free one); on the switch's host unless metrics_host is given. Each HTTP request must be
    # read and answered within metrics_timeout_s (one at a time: an operator's port).
    metrics_port: int | None = None
    metrics_host: str | None = None
    metrics_timeout_s: float = 5.0
    # Replication (docs/replication.md): the NATS servers of a JetStream cluster; empty: a single
    # node. node_id names this node; advertise is the host:port clients are sent to.
    replication: tuple[str, ...] = ()
    node_id: str | None = None
    advertise: str | None = None
    replication_stream: str = "PAYSWITCH_LOG"
    replication_replicas: int = 3
    # The lease: the key expires lease_ttl_s after its last renewal (so a standby takes over
    # about that long after the primary dies); the primary renews every lease_renew_interval_s
    # and stops acknowledging lease_safety_margin_s before the TTL ends, by its own clock. A
    # standby looks for an expired lease every lease_poll_interval_s.
    lease_ttl_s: float = 2.0
    lease_renew_interval_s: float = 0.4
    lease_safety_margin_s: float = 0.5
    lease_poll_interval_s: float = 0.1
    # Stream messages in flight (pipelined appends) and how long one may wait for its
    # acknowledgement (also the limit on each JetStream API request). Groups committed while
    # that many are in flight travel together in the next message: the stream fsyncs per
    # message, so a few large messages beat many small ones (measured in docs/benchmarks.md).
    replication_max_inflight: int = 4
    replication_request_timeout_s: float = 2.0
    # Log bytes appended here but not yet acknowledged by the stream; past it writes are refused
    # `unavailable` (the stream is down or too slow) instead of queueing without bound.
    max_unreplicated_bytes: int = 64 << 20

    def __post_init__(self):
        if self.replicated and self.advertise is None and self.port != 0:
            object.__setattr__(self, "advertise", display_address(self.host, self.port))
        if self.max_log_bytes_since_snapshot is None:
            object.__setattr__(self, "max_log_bytes_since_snapshot", max(
                LOG_BOUND_INTERVALS * self.snapshot_every_bytes, LOG_BOUND_MIN_BYTES))

    @property
    def replicated(self) -> bool:
        return bool(self.replication)

    @property
    def wal_dir(self) -> Path:
        return self.data_dir / "wal"

    @property
    def snapshot_dir(self) -> Path:
        return self.data_dir / "snapshots"

    @property
    def admin_token_path(self) -> Path:
        return self.data_dir / "admin.token"

    @property
    def server_info_path(self) -> Path:
        return self.data_dir / "server.json"

    def _validate_events(self) -> None:
        if not STREAM_NAME.fullmatch(self.events_stream):
            raise ValueError(f"events_stream {self.events_stream!r} may hold only letters, "
                             f"digits, - and _")
        if not SUBJECT_PREFIX.fullmatch(self.events_subjects):
            raise ValueError(f"events_subjects {self.events_subjects!r} must be dot-separated "
                             f"tokens of letters, digits, - and _ (no wildcards)")
        if not 1 <= self.events_replicas <= MAX_EVENTS_REPLICAS:
            raise ValueError(f"events_replicas must be 1..{MAX_EVENTS_REPLICAS}")
        for name in ("events_max_backlog", "events_max_in_flight"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("events_ack_timeout_s", "events_retry_s", "events_connect_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")

    def validate(self) -> None:
        self._validate_events()
        if self.max_frame_bytes > MAX_RECORD_BYTES // 2:
            raise ValueError(f"max_frame_bytes may be at most {MAX_RECORD_BYTES // 2}: each "
                             f"request becomes one WAL record")
        if self.durability not in DURABILITY_MODES:
            raise ValueError(f"durability must be one of {DURABILITY_MODES}")
        for name in ("max_frame_bytes", "max_connections", "max_inflight_per_connection",
                     "max_write_buffer_bytes", "wal_segment_bytes", "snapshot_every_bytes",
                     "snapshots_kept", "max_queued_replies", "resume_min_free_bytes",
                     "max_unauthenticated_frame_bytes", "max_inline_decode_bytes",
                     "max_log_bytes_since_snapshot"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("idle_timeout_s", "frame_timeout_s", "write_stall_timeout_s",
                     "batch_slice_s", "turn_s", "first_turn_s", "metrics_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        if self.log_level not in LOG_LEVELS:
            raise ValueError(f"log_level must be one of {LOG_LEVELS}, not {self.log_level!r}")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ValueError(f"metrics_port must be 0..65535, not {self.metrics_port}")
        if not 0 <= self.decode_worker_nice <= 19:
            raise ValueError("decode_worker_nice must be 0..19")
        if not 0 <= self.snapshot_builder_nice <= 19:
            raise ValueError("snapshot_builder_nice must be 0..19")
        if self.max_log_bytes_since_snapshot <= self.snapshot_every_bytes:
            raise ValueError(f"max_log_bytes_since_snapshot ({self.max_log_bytes_since_snapshot})"
                             f" must be larger than snapshot_every_bytes "
                             f"({self.snapshot_every_bytes}): snapshots start at the one, "
                             f"writes pause at the other")
        if not self.wal_zero_ahead_bytes >= 0:
            raise ValueError("wal_zero_ahead_bytes must not be negative (0: append)")
        if not self.batch_pause_s >= 0:
            raise ValueError("batch_pause_s must not be negative")
        if not 0 <= self.wal_group_wait_s <= MAX_WAL_GROUP_WAIT_S:
            raise ValueError(f"wal_group_wait_s must be 0..{MAX_WAL_GROUP_WAIT_S} "
                             f"(not {self.wal_group_wait_s}): every write may wait this long")
        if not 0 <= self.hello_failure_delay_s <= self.hello_failure_max_delay_s:
            raise ValueError("need 0 <= hello_failure_delay_s <= hello_failure_max_delay_s")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("tls_client_ca needs tls_cert and tls_key")
        if self.replicated:
            self._validate_replication()
        for code in self.extra_currencies:
            if not is_valid_currency(code):
                raise ValueError(f"extra_currencies: {code!r} must be a currency code of 3 "
                                 f"uppercase letters")

    def _validate_replication(self) -> None:
        if not self.node_id:
            raise ValueError("--replication needs --node-id: a name for this node, unique in "
                             "the cluster")
        if self.advertise is None and self.port == 0:
            raise ValueError("--replication with --port 0 needs --advertise HOST:PORT: the "
                             "address clients are sent to must not change across restarts")
        for name in ("replication_replicas", "replication_max_inflight",
                     "max_unreplicated_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("lease_renew_interval_s", "lease_safety_margin_s", "lease_poll_interval_s",
                     "replication_request_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        if not self.lease_renew_interval_s < self.lease_ttl_s - self.lease_safety_margin_s:
            raise ValueError(f"need lease_renew_interval_s ({self.lease_renew_interval_s}) < "
                             f"lease_ttl_s ({self.lease_ttl_s}) - lease_safety_margin_s "
                             f"({self.lease_safety_margin_s}): the lease must be renewed "
                             f"before this node stops trusting it")
