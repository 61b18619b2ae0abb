"""The switch process: recover, listen, run the timers, shut down cleanly on SIGTERM/SIGINT."""
import asyncio
import fcntl
import gc
import json
import os
import resource
import signal
import sys
import ssl
import time
from pathlib import Path

import structlog

from payswitch.protocol.addresses import display_address
from payswitch.protocol.atomic_file import write_atomically
from payswitch.protocol.currencies import accept_currencies
from payswitch.switch.auth import ADMIN_TOKEN_ENV, load_or_create_admin_token
from payswitch.switch.batches.inbox import Inbox
from payswitch.switch.connection import Connection
from payswitch.switch.events.stream import EventStream
from payswitch.switch.health import Readiness
from payswitch.switch.listen import listening_sockets
from payswitch.switch.metrics_server import MetricsServer
from payswitch.switch.replication.errors import ReplicationUnusable
from payswitch.switch.service import VERSION, Service
from payswitch.switch.snapshotter import Snapshotter
from payswitch.switch.storage.recovery import recover
from payswitch.switch.storage.wal_writer import WalWriter

log = structlog.get_logger("switch.server")
HOUSEKEEPING_INTERVAL_S = 1.0
GIL_SWITCH_INTERVAL_S = 0.0005
# Collections of the middle generation per full collection (Python's default: 10). Everything
# alive is frozen once a second (see _housekeeping), so a full collection walks only what the
# last second stored: at 100,000 transfers/s, hundreds of thousands of objects several times a
# second, for garbage the young generations have already collected. 16 x 16: ~10% less CPU.
MIDDLE_COLLECTIONS_PER_FULL = 1000
LISTEN_BACKLOG = 1024


class DataDirLocked(Exception):
    pass


class TlsSetupError(Exception):
    pass


def raise_fd_limit() -> int:
    """Lifts the soft limit on open files to the hard limit (every connection is a file);
    returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def tls_context(config) -> ssl.SSLContext | None:
    """The server's TLS context (TLS 1.2 or later), or None without --tls-cert."""
    if config.tls_cert is None:
        return None
    try:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(config.tls_cert, config.tls_key)
        if config.tls_client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cafile=config.tls_client_ca)
    except (OSError, ssl.SSLError) as error:
        raise TlsSetupError(f"TLS set-up failed: {error}") from error
    return context


def lock_data_dir(config) -> int:
    """One switch per data directory: a second one would interleave two logs."""
    for directory in (config.data_dir, config.wal_dir, config.snapshot_dir):
        directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(config.data_dir / "LOCK", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DataDirLocked(f"{config.data_dir} is in use by another switch process") from None
    return fd


class SwitchServer:
    def __init__(self, config):
        self.config = config
        self.stopping = asyncio.Event()
        self.readiness = Readiness()
        self.metrics: MetricsServer | None = None
        self.node = None  # the ReplicationNode with --replication
        self.restart_reason: str | None = None  # set when a deposed primary must start afresh
        self.stop_signalled = False  # SIGTERM or SIGINT came: stop, even in a restart's shutdown

    async def run(self, announce=print) -> None:
        config, loop = self.config, asyncio.get_running_loop()
        tls = tls_context(config)
        # Listen before touching the data directory: a failed start creates nothing there.
        sockets = listening_sockets(config.host, config.port, LISTEN_BACKLOG)
        self._start_metrics()  # up before recovery: /readyz reports its progress
        # The stream's last event, before recovery regenerates what follows it
        events = await EventStream.open(config) if config.events else None
        lock_data_dir(config)  # held (its descriptor open) for the life of the process
        accept_currencies(config.extra_currencies)  # before the helpers start: they are told these
        fd_limit = raise_fd_limit()
        admin_token_from_env = os.environ.get(ADMIN_TOKEN_ENV)
        admin_token = load_or_create_admin_token(config.admin_token_path, admin_token_from_env)
        # The WAL thread needs the GIL back after each fsync to release replies, and the drop
        # folder's parse thread must not hold it for 5 ms at a time; 0.5 ms serves both (0.1 ms
        # measured slower: more switching than the hand-back saves).
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        cluster = await self._join_cluster() if config.replicated else None
        gc.disable()  # recovery builds millions of long-lived objects: nothing to collect
        try:
            recovered = recover(config.wal_dir, config.snapshot_dir,
                                progress=self.readiness.recovery,
                                on_applied=None if events is None else events.record_executed)
        finally:
            gc.enable()
        gc.freeze()
        young_threshold, middle_threshold, _ = gc.get_threshold()
        gc.set_threshold(young_threshold, middle_threshold, MIDDLE_COLLECTIONS_PER_FULL)
        self.readiness.recovered = True

        # No hold without fsyncs to share, nor replicated, where replies wait for the stream too:
        # nothing comes back right after a local fsync to hold it for. Nor a write in the loop
        # when replicated: the stream's publishing, in the loop, overlaps the local fsync.
        local_fsyncs = config.durability == "fsync" and not cluster

        def wal_factory(on_durable, on_failure, loop_has_work):
            return WalWriter(config.wal_dir, recovered.next_seq, config.wal_segment_bytes,
                             config.durability == "fsync", on_durable, on_failure,
                             on_batch=self._replicate_batch if cluster else None,
                             group_wait_s=config.wal_group_wait_s if local_fsyncs else 0.0,
                             loop_has_work=loop_has_work if local_fsyncs else None,
                             zero_ahead_bytes=config.wal_zero_ahead_bytes)

        service = Service(config, loop, recovered.state, wal_factory, admin_token,
                          admin_token_from_env=bool(admin_token_from_env))
        if events is not None:
            service.events = events
            events.start(recovered.snapshot_seq, recovered.next_seq - 1)
        if cluster is not None:
            from payswitch.switch.replication.node import ReplicationNode
            self.node = service.replication = ReplicationNode(config, cluster, service,
                                                              self._restart)
        await service.decode_worker.start()
        service.snapshotter = Snapshotter(
            config, loop, service, recovered.snapshot_seq, recovered.log_bytes_read,
            on_published=None if self.node is None else self.node.snapshot_published)
        if self.node is None:  # a replicated node does these once it is the primary
            service.open_first_window()
            service.batch_engine.resume_unfinished()
        inbox = Inbox(service, config.data_dir)
        # A TLS handshake must finish within frame_timeout_s, like any frame.
        tls_options = {} if tls is None else {"ssl": tls,
                                              "ssl_handshake_timeout": config.frame_timeout_s}
        servers = [await loop.create_server(lambda: Connection(service), sock=sock,
                                            backlog=LISTEN_BACKLOG, **tls_options)
                   for sock in sockets]
        host, port = sockets[0].getsockname()[:2]
        self.readiness.service = service
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_stop_signal)
        log.info("listening", host=host, port=port, durability=config.durability,
                 data_dir=str(config.data_dir), fd_limit=fd_limit,
                 tls="off" if tls is None else
                 "server" if config.tls_client_ca is None else "server+client-certificates")
        if fd_limit < config.max_connections + 64:
            log.warning("fd_limit_below_max_connections", fd_limit=fd_limit,
                        max_connections=config.max_connections,
                        action="raise the hard RLIMIT_NOFILE or lower --max-connections")
        announce(self._announcement(host, port))
        # Last: whoever waits for server.json (scripts, tests) then finds the start announced
        self._write_server_info(host, port)
        if self.node is not None:
            self.node.start()
        housekeeping = loop.create_task(self._housekeeping(service, inbox))
        await self.stopping.wait()
        housekeeping.cancel()
        inbox.close()
        await self._shutdown(servers, service)

    async def _join_cluster(self):
        """Connects to the replication cluster and makes the local log one the stream can
        continue (see switch/replication/node.py), before recovery reads it."""
        try:
            from payswitch.switch.replication.cluster import Cluster
            from payswitch.switch.replication.node import prepare_local_log
        except ImportError as error:
            raise ReplicationUnusable(f"--replication needs nats-py: pip install "
                                      f"'payswitch[replication]' ({error})") from error
        cluster = Cluster(self.config)
        await cluster.connect()
        await prepare_local_log(self.config, cluster)
        log.info("replication_joined", stream=cluster.stream, node_id=self.config.node_id,
                 advertise=self.config.advertise)
        return cluster

    def _replicate_batch(self, records: list[bytes], first_seq: int) -> None:
        self.node.on_wal_batch(records, first_seq)

    def _on_stop_signal(self) -> None:
        self.stop_signalled = True
        self.stopping.set()

    @property
    def restart_wanted(self) -> bool:
        """Whether the process should start afresh (a deposed primary, a standby that cannot
        follow) once run() returns: not if it was told to stop meanwhile, say during the
        restart's own shutdown, when the signal finds `stopping` already set."""
        return self.restart_reason is not None and not self.stop_signalled

    def _restart(self, reason: str) -> None:
        """A deposed primary (or a standby that cannot follow) starts its process afresh."""
        if self.restart_reason is None:
            self.restart_reason = reason
            self.stopping.set()

    def _start_metrics(self) -> None:
        config = self.config
        if config.metrics_port is None:
            return
        self.metrics = MetricsServer(config.metrics_host or config.host, config.metrics_port,
                                     config.metrics_timeout_s, self.readiness, VERSION)
        self.metrics.start()
        log.info("metrics_listening", host=self.metrics.host, port=self.metrics.port)

    def _announcement(self, host: str, port: int) -> str:
        """What to run to reach the switch, as it works from any directory: this very Python
        (the venv's, under ./scripts/serve) and absolute paths."""
        config = self.config
        lines = [f"payswitch listening on {host}:{port} "
                 f"(durability: {config.durability}, version {VERSION})",
                 f"  operator: participant 'admin', token in {config.admin_token_path.resolve()}",
                 f"  try:      {_operator_cli()} --data-dir {config.data_dir.resolve()} stats"]
        if self.metrics is not None:
            base = f"http://{display_address(self.metrics.host, self.metrics.port)}"
            lines.append(f"  metrics:  {base}/metrics  (health: {base}/livez, {base}/readyz)")
        return "\n".join(lines)

    def _write_server_info(self, host: str, port: int) -> None:
        info = {"host": host, "port": port, "pid": os.getpid()}
        if self.metrics is not None:
            info["metrics_port"] = self.metrics.port
        write_atomically(self.config.server_info_path, json.dumps(info).encode() + b"\n")

    async def _housekeeping(self, service: Service, inbox: Inbox) -> None:
        """Timers kept off the request path: pending expiry, idle connections, snapshots,
        resuming writes after a full disk, the batch drop folder.

        Once a second, everything alive is moved out of the cyclic garbage collector's reach
        (gc.freeze): ledger records live for ever, and without this each full collection walks
        all of them, costing more as history grows. Short-lived cycles are still collected by
        the young generations long before a second passes.
        """
        loop, config = service.loop, self.config
        next_sweep_s = loop.time() + HOUSEKEEPING_INTERVAL_S
        shed_logged = dict(service.shed)
        while True:
            await asyncio.sleep(config.expiry_check_interval_s)
            service.expire_due(time.time_ns())
            if loop.time() >= next_sweep_s:
                next_sweep_s = loop.time() + HOUSEKEEPING_INTERVAL_S
                shed_logged = self._sweep_connections(service, shed_logged)
                service.snapshotter.maybe_start()
                service.try_resume_writes()
                if self.node is not None:
                    self.node.write_marker()
                if service.accepting_writes() and not service.snapshotter.log_full():
                    inbox.scan()
                gc.freeze()  # see below

    def _sweep_connections(self, service: Service, shed_logged: dict) -> dict:
        """Closes idle, slow and stalled connections; logs at most one line per kind a second
        (an attack must not flood the log), with counts rather than a line per connection."""
        closed = service.sweep_connections(service.loop.time())
        if closed.get("idle"):
            log.info("connections_closed_idle", count=closed["idle"])
        slow = {reason: count for reason, count in closed.items() if reason != "idle"}
        if slow:
            log.warning("connections_dropped", **slow, connections=len(service.connections))
        shed = {name: total - shed_logged[name] for name, total in service.shed.items()
                if name != "hello_failures" and total != shed_logged[name]}
        if shed:
            log.warning("load_shed", **shed, connections=len(service.connections),
                        queued_replies=service.queued_replies)
        return dict(service.shed)

    async def _shutdown(self, servers: list, service: Service) -> None:
        log.info("shutting_down", connections=len(service.connections))
        service.shutting_down = True
        if self.node is not None:
            self.node.begin_shutdown()
        for server in servers:
            server.close()
        await service.batch_engine.stop()
        deadline_s = service.loop.time() + self.config.shutdown_timeout_s
        await service.wal.drain()
        if self.node is not None:
            await self.node.drain(deadline_s)
        while (any(c.busy or c.transport.get_write_buffer_size()
                   for c in service.connections) and service.loop.time() < deadline_s):
            await asyncio.sleep(0.01)
        service.decode_worker.close()
        if service.events is not None:  # so that the snapshot below may cover the whole log
            await service.events.flush(max(0.0, deadline_s - service.loop.time()))
        service.snapshotter.abandon()
        try:
            if self.restart_reason is None:  # a deposed primary's memory may be ahead of the stream
                service.snapshotter.save_now()
        except OSError as error:  # e.g. a full disk: the log holds everything, restart replays it
            log.error("shutdown_snapshot_failed", reason=str(error),
                      consequence="the next start replays more of the log; nothing is lost")
        for connection in list(service.connections):
            connection.close()
        if service.events is not None:
            await service.events.close()
        service.wal.close()
        if self.node is not None:
            await self.node.stop()
        Path(self.config.server_info_path).unlink(missing_ok=True)
        if self.metrics is not None:
            self.metrics.close()
        log.info("stopped", durable_seq=service.wal.durable_seq)


def _operator_cli() -> str:
    """The operator CLI as it runs from any directory: the installed script beside this Python,
    else this Python with the module."""
    script = Path(sys.executable).with_name("payswitch-cli")
    return str(script) if script.exists() else f"{sys.executable} -m payswitch.client"
