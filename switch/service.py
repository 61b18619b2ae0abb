"""The request pipeline: frame -> decode -> envelope -> validate -> ledger -> WAL -> reply.

Everything here runs on the event loop thread, in arrival order, so the ledger needs no locks and
its results are exactly what replay from the WAL reproduces. A reply is queued with the WAL
sequence number current when its request executed and leaves only when that prefix is durable,
so no client, reader or writer, ever sees state that a crash could take away.
"""
import errno
import importlib.metadata
import shutil
import time
from typing import TYPE_CHECKING

import structlog

from payswitch.protocol import OPS, ProtocolError, codes, error_reply
from payswitch.protocol.ops import NO_SESSION_OPS, SERVICE, STANDBY_OPS, answered_by
from payswitch.switch.batches.engine import BatchEngine
from payswitch.switch.auth import (ADMIN, ADMIN_TOKEN_ENV, HelloThrottle, hash_token, new_token,
                         token_matches, write_token_file)
from payswitch.switch.decode_worker import DecodeWorker
from payswitch.switch.metrics import RequestMetrics
from payswitch.switch.process_cpu import process_cpu
from payswitch.switch.ledger import LedgerError
from payswitch.switch.ledger.handlers import bind, handler_table, handles
from payswitch.switch.storage.recovery import AppliedRecord, recover_up_to
from payswitch.switch.storage.wal_writer import RecordTooLarge, WalFailed
from payswitch.switch.session import HeldReplies, HelloRefused
from payswitch.switch.turns import Turns

if TYPE_CHECKING:
    from payswitch.switch.events.stream import EventStream
    from payswitch.switch.replication.node import ReplicationNode
    from payswitch.switch.snapshotter import Snapshotter

log = structlog.get_logger("switch.service")
VERSION = importlib.metadata.version("payswitch")
SERVER_NAME = f"payswitch/{VERSION}"


class Service:
    def __init__(self, config, loop, state, wal_factory, admin_token: str,
                 admin_token_from_env: bool = False):
        self.config = config
        self.loop = loop
        self.state = state  # the ledger and the batch book, replayed from the WAL
        self.turns = Turns(loop, config.turn_s, config.first_turn_s)
        # (a WAL write in the loop only while no connection waits for a turn)
        self.wal = wal_factory(self.on_durable, self.on_wal_failure, self.turns.waiting)
        self.admin_token_hash = hash_token(admin_token)
        self.admin_token_from_env = admin_token_from_env  # then rotate_token refuses "admin"
        self.connections: set = set()
        self.waiting_connections: set = set()
        self.held_replies = HeldReplies()  # replies held for the WAL, over all connections
        self.hello_throttle = HelloThrottle(config.hello_failure_delay_s,
                                            config.hello_failure_max_delay_s)
        # Totals since start (in `stats`); the housekeeping logs what changed once a second.
        self.shed = {"connections_refused": 0, "requests_overloaded": 0, "hello_failures": 0}
        self.closed = {"idle": 0, "frame_timeout": 0, "write_stall": 0, "close_stall": 0}
        self.shutting_down = False
        # After writes stop, memory may be ahead of the log; reads wait for the durable state.
        self.reloading_durable_state = False
        # the last reason writes could not resume, logged once
        self._resume_refusal: str | None = None
        self.started_s = time.monotonic()
        self._released_seq = 0  # the highest durable_seq replies were released at
        self.request_metrics = RequestMetrics()
        self.snapshotter: Snapshotter | None = None  # set by the server once it exists
        # the committed-event stream (switch/events/stream.py) when on
        self.events: EventStream | None = None
        self.batch_engine = BatchEngine(self)
        self.decode_worker = DecodeWorker(config, loop)
        self.local_ops = bind(self, _LOCAL_HANDLERS, caller_at=1)  # the ops answered here
        # the ReplicationNode when --replication is on (set by the server)
        self.replication: ReplicationNode | None = None

    # connections

    def admit(self, connection) -> bool:
        if len(self.connections) >= self.config.max_connections:
            self.shed["connections_refused"] += 1
            return False
        self.connections.add(connection)
        return True

    def forget(self, connection) -> None:
        self.connections.discard(connection)
        self.waiting_connections.discard(connection)

    def sweep_connections(self, now_s: float) -> dict[str, int]:
        """Applies every connection's time limits; returns how many were closed, by reason."""
        closed: dict[str, int] = {}
        for connection in list(self.connections):
            reason = connection.sweep(now_s)
            if reason is not None:
                closed[reason] = closed.get(reason, 0) + 1
                self.closed[reason] += 1
        self.hello_throttle.forget_quiet(now_s)
        return closed

    # requests

    @property
    def queued_replies(self) -> int:
        return self.held_replies.count

    def reply_seq(self, op: str) -> int:
        """The log position a reply to `op`, just executed, waits for. Answers about the node
        itself (ping, hello, stats, state_digest) need no log: they leave at once (behind
        earlier replies), also while the replicated log is unreachable."""
        if op in STANDBY_OPS:
            return 0
        wal = self.wal
        return wal.durable_seq if wal.failure else wal.appended_seq

    def error_reply(self, session, request_id, error: Exception) -> dict:
        """The reply to a request that failed with something other than a ProtocolError."""
        if isinstance(error, LedgerError):
            return error_reply(request_id, error.code, error.message)
        if isinstance(error, WalFailed):
            return error_reply(request_id, codes.INTERNAL, f"writes are stopped: {error}")
        # a bug of ours: answer it, keep the connection and the switch up
        log.exception("request_failed", peer=session.peer)
        return error_reply(request_id, codes.INTERNAL, "internal error")

    def admit_request(self, session, op: str):
        """The op's spec, once the switch may take the request at all; raises the refusal
        otherwise, checked in the contract's order (see docs/protocol.md)."""
        spec = OPS.get(op)
        refusal = self._refusal(session, op, spec)
        if refusal is not None:
            if refusal.code == codes.OVERLOADED:
                self.shed["requests_overloaded"] += 1
            raise refusal
        return spec

    def _refusal(self, session, op: str, spec, answering: bool = True) -> ProtocolError | None:
        """Why the switch cannot take a request for `op` (`spec` its declaration, None if
        unknown) now, if it cannot: the contract's checks, in its order. Only a refusal that
        is answered (`answering`) is counted by the snapshotter and the event stream, and
        worded."""
        if self.shutting_down:
            return ProtocolError(codes.SHUTTING_DOWN, "the switch is shutting down")
        if session.waiting_replies >= self.config.max_inflight_per_connection:
            return ProtocolError(codes.OVERLOADED, "too many requests in flight on this "
                                 "connection; wait for replies before sending more")
        if self.held_replies.count >= self.config.max_queued_replies:
            return ProtocolError(codes.OVERLOADED, "the switch is saturated; retry later")
        if spec is None:
            return ProtocolError(codes.UNKNOWN_OP, f"unknown op {op!r}")
        if session.participant is None and op not in NO_SESSION_OPS:
            return ProtocolError(codes.UNAUTHENTICATED, "send hello first")
        node = self.replication
        if node is not None and op not in STANDBY_OPS:
            refusal = node.refusal(spec.mutating)
            if refusal is not None:
                code, message = refusal
                details = {"primary": node.primary_address()} if code == codes.NOT_PRIMARY else {}
                return ProtocolError(code, message, details=details)
        if spec.mutating and self.snapshotter.log_full():  # the restart-time bound
            return ProtocolError(codes.OVERLOADED,
                                 self.snapshotter.refuse_write() if answering else "")
        if spec.mutating and self.events is not None and self.events.refuses_writes():
            return ProtocolError(codes.UNAVAILABLE,
                                 self.events.refuse_write() if answering else "")
        return None

    def transfer_room(self, session) -> int:
        """How many `transfer` requests of the session may be executed now as one group
        (execute_transfer_group): 0 when the first would be refused or could not be executed,
        which the one-by-one path then answers."""
        if self.wal.failure is not None or \
                self._refusal(session, "transfer", _TRANSFER_SPEC, answering=False) is not None:
            return 0
        config = self.config
        return min(config.max_inflight_per_connection - session.waiting_replies,
                   config.max_queued_replies - self.held_replies.count)

    def execute_transfer_group(self, session, group: dict) -> list:
        """Executes plain transfers of the session's participant as one logged group (the
        ledger's `transfer_group`: `group` holds its columns); each one's result, or the
        LedgerError that is its reply, in order."""
        return self.execute_mutation(session.participant, "transfer_group", group,
                                     len(group["amounts"]))["results"]

    def execute(self, session, op: str, mutating: bool, args):
        """Runs a request's op for the session's participant; its result."""
        caller = session.participant
        local = self.local_ops.get(op)
        if local is not None:
            return local(session, caller, args)
        if not mutating:
            if self.reloading_durable_state:
                raise ProtocolError(codes.OVERLOADED, "writes stopped after a storage fault; "
                                    "reads resume once the durable state is reloaded")
            executed = self.state.execute(caller, op, args, time.time_ns())
            if executed.error is not None:
                raise executed.error
            return executed.result
        tokens = self._issue_tokens(args) if op == "create_participants" else None
        result = self.execute_mutation(caller, op, args)
        if tokens:
            for item, token in zip(result["results"], tokens):
                if item["status"] == codes.CREATED:
                    item["token"] = token
        return result

    def execute_mutation(self, caller, op: str, args, requests: int = 1):
        """Executes one state change at the current time and appends it to the WAL if it changed
        anything (a failed request too, when expiry ran before it: replay must see it); the one
        path for requests, the switch's own steps and inbox files. Raises the LedgerError of a
        failed request."""
        if self.wal.failure is not None:
            raise WalFailed(str(self.wal.failure))
        now_ns = time.time_ns()
        self.expire_due(now_ns)
        try:
            executed = self.state.execute(caller, op, args, now_ns)
        except Exception as error:  # a ledger bug mid-mutation: memory may now differ from the log
            log.exception("ledger_fault", op=op)
            self.stop_writes(f"ledger fault in {op}: {error!r}")
            raise WalFailed("internal ledger fault; writes are stopped") from error
        if executed.changed:
            try:
                self.wal.append(now_ns, caller, op, args, requests)
            except RecordTooLarge as error:  # inputs are bounded so this cannot happen; if it
                self.stop_writes(str(error))  # does, memory is ahead of the log: fail-stop
                raise WalFailed(str(error)) from error
            self._record_events(now_ns, caller, op, args, executed.result)
            if op == "submit_batch" and executed.error is None:
                self.batch_engine.start(args["batch_id"])
        if executed.error is not None:
            raise executed.error
        return executed.result

    def _issue_tokens(self, args) -> list[str]:
        """Tokens are random, so they are made here, outside the deterministic ledger; only
        their salted hashes reach the ledger and the WAL."""
        tokens = [new_token() for _ in args["participants"]]
        for item, token in zip(args["participants"], tokens):
            item["token_hash"] = hash_token(token)
        return tokens

    def accepting_writes(self) -> bool:
        return self.wal.failure is None and not self.shutting_down and self.writable()

    def writable(self) -> bool:
        """Whether this node makes state changes: a single node, or the primary."""
        return self.replication is None or self.replication.writable()

    @property
    def role(self) -> str:
        return "single" if self.replication is None else self.replication.role

    @property
    def durable_seq(self) -> int:
        """The log prefix replies may show: fsynced here and, with replication, acknowledged by
        the stream (while this node is the primary by its lease)."""
        durable_seq = self.wal.durable_seq
        if self.replication is None:
            return durable_seq
        acknowledgeable = self.replication.acknowledgeable_seq(durable_seq)
        if acknowledgeable is None:  # not the primary any more: nothing further leaves
            return self._released_seq
        self._released_seq = acknowledgeable
        return acknowledgeable

    def become_primary(self) -> None:
        """A promoted standby: the steps only the writer takes."""
        self.open_first_window()
        self.batch_engine.resume_unfinished()

    def execute_internal(self, op: str, args) -> None:
        """A state change the switch makes itself (window opening, batch steps)."""
        self.execute_mutation(ADMIN, op, args)

    def submit_as(self, participant: str, args, content: bytes) -> None:
        """Submits a batch for a participant (the drop folder), as if it had sent it: the
        content in parts no larger than a frame, then the submission."""
        if participant != ADMIN and self.state.participant_token_hash(participant) is None:
            raise ValueError(f"unknown participant {participant!r}")
        part_bytes = self.config.max_frame_bytes // 2
        try:
            for seq, start in enumerate(range(0, len(content), part_bytes)):
                self.execute_mutation(participant, "upload_batch_part", {
                    "batch_id": args["batch_id"], "seq": seq,
                    "data": content[start:start + part_bytes]})
            self.execute_mutation(participant, "submit_batch", {**args, "content": None})
        except LedgerError as error:
            raise ValueError(f"batch refused: {error.code}: {error.message}") from error

    def open_first_window(self) -> None:
        """A fresh ledger has no settlement window yet; open window 1 now, durably."""
        self.execute_internal("open_window", {})

    def expire_due(self, now_ns: int) -> None:
        """Expires due pending transfers as a logged step of its own, so that the request that
        follows either fails without changing anything or changes only what it says."""
        next_expiry_ns = self.state.next_expiry_ns()
        if (next_expiry_ns is None or next_expiry_ns > now_ns or self.wal.failure is not None
                or not self.writable()):
            return
        executed = self.state.execute(ADMIN, "expire_pending", {}, now_ns)
        if executed.changed:
            self.wal.append(now_ns, ADMIN, "expire_pending", {})
            self._record_events(now_ns, ADMIN, "expire_pending", {}, executed.result)

    def _record_events(self, now_ns: int, caller, op: str, args, result) -> None:
        """Hands the record just appended, with what the ledger committed, to the event stream."""
        if self.events is not None:
            self.events.record_executed(AppliedRecord(
                self.wal.appended_seq, now_ns, caller, op, args, result,
                self.state.take_commits()))

    # ops served outside the ledger

    @handles("ping")
    def _ping(self, session, caller, args):
        return {}

    @handles("hello")
    def _hello(self, session, caller, args):
        """Token (constant-time, against a salted hash) and, when client certificates are
        required, the certificate's subject CN must both name the participant. A failure is
        logged (never the token) and answered late, see HelloThrottle."""
        participant, token = args["participant"], args["token"]
        expected = (self.admin_token_hash if participant == ADMIN
                    else self.state.participant_token_hash(participant))
        token_ok = token_matches(token, expected)
        certificate_ok = self.config.tls_client_ca is None or session.cert_cn == participant
        if not (token_ok and certificate_ok):
            now_s = self.loop.time()
            failures, not_before_s = self.hello_throttle.failed(session.peer_ip, now_s)
            self.shed["hello_failures"] += 1
            log.warning("hello_failed", participant=participant, peer=session.peer,
                        failures=failures, delay_s=round(max(0.0, not_before_s - now_s), 3),
                        reason="token" if not token_ok else "certificate",
                        certificate_cn=session.cert_cn)
            raise HelloRefused(not_before_s if not_before_s > now_s else 0.0)
        self.hello_throttle.succeeded(session.peer_ip)
        session.participant = participant
        return {"participant": participant, "server": SERVER_NAME,
                "max_frame_bytes": self.config.max_frame_bytes}

    @handles("rotate_token")
    def _rotate_token(self, session, caller, args):
        """A new token for a participant (in the WAL as a salted hash) or for the operator (in
        the data directory's token file, written atomically and fsynced), made before the reply;
        the old token is refused from then on, and every session opened with it ends: its
        connection stays open, but needs a `hello` with the new token before anything else."""
        participant = args["participant"]
        token = new_token()
        if participant == ADMIN:
            if self.admin_token_from_env:
                raise ProtocolError(codes.FORBIDDEN, f"the admin token is managed by the "
                                    f"environment ({ADMIN_TOKEN_ENV}): change it there and "
                                    f"restart the switch")
            try:
                write_token_file(self.config.admin_token_path, token)
            except OSError as error:  # e.g. a full disk: the old token stays in force
                raise ProtocolError(codes.INTERNAL, f"the admin token was not rotated: "
                                    f"writing {self.config.admin_token_path} failed: "
                                    f"{error}") from error
            self.admin_token_hash = hash_token(token)
        else:
            self.execute_mutation(caller, "rotate_token", {"participant": participant,
                                                           "token_hash": hash_token(token)})
        ended = 0
        for connection in self.connections:
            if connection.session.participant == participant:
                connection.session.participant = None
                ended += 1
        log.info("token_rotated", participant=participant, sessions_ended=ended,
                 peer=session.peer)
        return {"participant": participant, "token": token}

    @handles("state_digest")
    def _state_digest(self, session, caller, args):
        """A hash of the whole state at the applied sequence: equal on every node at the same
        seq. It serializes the whole ledger on the event loop (an operator's check, not a
        request to poll: about a second per million transfers)."""
        return {"seq": self.wal.appended_seq, "digest": self.state.digest()}

    @handles("stats")
    def _stats(self, session, caller, args):
        wal = self.wal
        return {
            "server": SERVER_NAME,
            "uptime_s": round(time.monotonic() - self.started_s, 3),
            "connections": len(self.connections),
            "requests_total": self.request_metrics.frames_taken,
            "queued_replies": self.queued_replies,
            "shed": dict(self.shed),
            "connections_closed": dict(self.closed),
            "durability": self.config.durability,
            "wal": {"appended_seq": wal.appended_seq, "durable_seq": wal.durable_seq,
                    "fsyncs": wal.fsync_count, "bytes_written": wal.bytes_since_start,
                    "failed": None if wal.failure is None else str(wal.failure)},
            "ledger": self.state.counts(),
            "decode_worker": {"frames": self.decode_worker.frames,
                              "pending": self.decode_worker.pending,
                              "restarts": self.decode_worker.restarts},
            "snapshots": self.snapshotter.stats(),
            "events": None if self.events is None else self.events.stats(),
            "version": VERSION,
            "latency_ms": _milliseconds(self.request_metrics.all_ops().percentiles()),
            "fsync_ms": _milliseconds(wal.fsync_seconds.percentiles()),
            "errors_by_code": self.request_metrics.errors_by_code(),
            "role": self.role,
            "process": process_cpu(),
            **({} if self.replication is None else {"replication": self.replication.stats()}),
        }

    # durability events from the WAL

    def on_durable(self, _seq: int) -> None:
        """The WAL fsynced, or the stream acknowledged, a further part of the log."""
        durable_seq = self.durable_seq
        still_waiting = {c for c in self.waiting_connections if c.release(durable_seq)}
        self.waiting_connections = still_waiting
        if self.events is not None:
            self.events.durable(durable_seq)

    def fail_unacknowledged(self, code: str, message: str, **details) -> None:
        """Answers every reply still waiting for the log (writes stopped, or a primary deposed):
        those past the durable prefix with the error, their records never to be durable."""
        durable_seq = self.durable_seq
        for connection in self.waiting_connections:
            connection.fail_waiting(code, message, durable_seq, **details)
        self.waiting_connections = set()

    def on_wal_failure(self, error: OSError) -> None:
        self.stop_writes(f"WAL write or fsync failed: {error!r}")

    def stop_writes(self, reason: str) -> None:
        """Fail-stop: nothing not yet durable is acknowledged, no further write is taken, and
        reads are answered from the durable state only (reloaded from disk)."""
        wal = self.wal
        if wal.failure is None:
            wal.failure = OSError(reason)
        log.critical("writes_stopped", reason=reason, durable_seq=wal.durable_seq,
                     action="writes resume by themselves once disk space returns" if
                     wal.can_resume() else "restart the switch once the cause is fixed; "
                     "it recovers from the log")
        self.fail_unacknowledged(codes.INTERNAL, f"not durable, writes are stopped: {reason}")
        if not self.reloading_durable_state:
            self.reloading_durable_state = True
            self.loop.create_task(self._reload_durable_state())

    async def _reload_durable_state(self) -> None:
        """Replays snapshot and log up to durable_seq (in a thread) and serves from that state:
        the one a restart would recover, so no reply shows what a crash could take away."""
        durable_seq = self.wal.durable_seq
        await self.batch_engine.cancel_running()
        try:
            state = await self.loop.run_in_executor(None, recover_up_to, self.config.wal_dir,
                                                    self.config.snapshot_dir, durable_seq)
        except Exception:
            log.exception("durable_state_reload_failed", durable_seq=durable_seq,
                          action="reads stay refused; restart the switch")
            return
        self.state = state
        if self.events is not None:  # the records after durable_seq are gone with that state
            self.events.discard_after(durable_seq)
        self.reloading_durable_state = False
        log.warning("serving_durable_state", durable_seq=durable_seq)

    def try_resume_writes(self) -> None:
        """After a write refused for want of space: once the durable state serves and the disk
        has room again, the log is cut back to its durable end and writes go on."""
        wal = self.wal
        if self.reloading_durable_state or not wal.can_resume():
            return
        free_bytes = shutil.disk_usage(self.config.wal_dir).free
        try:
            if free_bytes < self.config.resume_min_free_bytes:
                raise OSError(errno.ENOSPC, f"{free_bytes} bytes free, resuming needs "
                                            f"{self.config.resume_min_free_bytes}")
            wal.resume()
        except OSError as error:
            if str(error) != self._resume_refusal:
                self._resume_refusal = str(error)
                log.warning("writes_not_resumed", reason=str(error))
            return
        self._resume_refusal = None
        log.warning("writes_resumed", durable_seq=wal.durable_seq, free_bytes=free_bytes)
        self.batch_engine.resume_unfinished()


_LOCAL_HANDLERS = handler_table(Service, answered_by(SERVICE))  # checked once, at import
_TRANSFER_SPEC = OPS["transfer"]


def _milliseconds(percentiles: dict) -> dict:
    """A histogram's percentiles (seconds) in milliseconds, for people reading `stats`."""
    return {name: value if name == "count" or value is None else round(value * 1000, 3)
            for name, value in percentiles.items()}

