"""Background snapshots in a forked child, as Redis does with BGSAVE.

The child gets a copy-on-write image of the switch state at one WAL sequence number and serializes it
while the parent keeps serving. The file is published (renamed into place) only once the WAL is
durable up to that sequence number, so a snapshot never holds state that was not acknowledged-safe.
Old snapshots beyond `snapshots_kept` and the WAL segments that only they needed are then deleted.
"""
import os
import signal
import time

import structlog

from switch.storage.segments import prune_segments
from switch.storage.snapshots import (prune_snapshots, publish_snapshot, save_snapshot,
                                      temporary_snapshot_path, write_snapshot_file)

log = structlog.get_logger("switch.snapshots")


class Snapshotter:
    def __init__(self, config, loop, service, last_snapshot_seq: int, log_bytes_replayed: int):
        self.config = config
        self.loop = loop
        self.service = service  # its state (ledger and batches) is what a snapshot holds
        self.wal = service.wal
        self.last_snapshot_seq = last_snapshot_seq
        # The log replayed at start counts as written since the last snapshot: after a long
        # recovery the next snapshot comes soon, not after another snapshot_every_bytes.
        self._bytes_at_last = self.wal.bytes_since_start - log_bytes_replayed
        self._child: tuple[int, int, int] | None = None  # pid, pidfd, seq
        self._ready_seq: int | None = None

    def maybe_start(self) -> None:
        every_bytes = self.config.snapshot_every_bytes
        backlog_bytes = self.wal.bytes_since_start - self._bytes_at_last
        # The fork's pause and the copy-on-write faults after it land on the requests that
        # share the event loop; while a batch runs, wait for its end (up to twice the interval).
        deferred = self.service.batch_engine.tasks and backlog_bytes < 2 * every_bytes
        if (backlog_bytes >= every_bytes and not deferred and self._child is None
                and self._ready_seq is None and self.wal.failure is None):
            self._fork(self.wal.appended_seq)

    def _fork(self, seq: int) -> None:
        path = temporary_snapshot_path(self.config.snapshot_dir, seq)
        forked_s = time.monotonic()
        pid = os.fork()
        if pid == 0:  # child: serialize, write, leave without running any parent cleanup
            code = 1
            try:
                # Inherited descriptors (the data-dir lock, client sockets) must not outlive
                # the parent: a restart after a crash would find the directory still locked.
                os.closerange(3, os.sysconf("SC_OPEN_MAX"))
                # Serializing takes seconds of CPU; on a small machine a child at normal
                # priority takes a core from the event loop and its WAL thread. Idle priority
                # runs it only on CPU time nothing else wants.
                os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
                write_snapshot_file(path, seq, self.service.state.snapshot_state())
                code = 0
            finally:
                os._exit(code)
        pidfd = os.pidfd_open(pid)
        self._child = (pid, pidfd, seq)
        self._bytes_at_last = self.wal.bytes_since_start
        self.loop.add_reader(pidfd, self._child_exited)
        # fork copies the page tables while the event loop waits: this is that pause.
        log.info("snapshot_started", seq=seq, pid=pid,
                 fork_ms=round((time.monotonic() - forked_s) * 1000, 1))

    def _child_exited(self) -> None:
        pid, pidfd, seq = self._child
        self.loop.remove_reader(pidfd)
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        self._child = None
        if os.waitstatus_to_exitcode(status) != 0:
            log.error("snapshot_failed", seq=seq, status=status)
            return
        self._ready_seq = seq
        self.on_durable(self.wal.durable_seq)

    def on_durable(self, durable_seq: int) -> None:
        if self._ready_seq is not None and self._ready_seq <= durable_seq:
            seq, self._ready_seq = self._ready_seq, None
            publish_snapshot(self.config.snapshot_dir, seq)
            self._published(seq)

    def save_now(self) -> None:
        """A synchronous snapshot (at shutdown, when everything appended is durable)."""
        seq = self.wal.durable_seq
        if seq > self.last_snapshot_seq and self.wal.failure is None:
            save_snapshot(self.config.snapshot_dir, seq, self.service.state.snapshot_state())
            self._published(seq)

    def _published(self, seq: int) -> None:
        self.last_snapshot_seq = seq
        oldest_kept = prune_snapshots(self.config.snapshot_dir, self.config.snapshots_kept)
        deleted = prune_segments(self.config.wal_dir, oldest_kept)
        log.info("snapshot_published", seq=seq, segments_deleted=deleted)

    def discard_beyond(self, durable_seq: int) -> None:
        """After a WAL failure: a snapshot of state past the durable log must never be published,
        since those sequence numbers go to other records once writes resume."""
        if self._ready_seq is not None and self._ready_seq > durable_seq:
            temporary_snapshot_path(self.config.snapshot_dir, self._ready_seq).unlink(
                missing_ok=True)
            self._ready_seq = None
        if self._child is not None and self._child[2] > durable_seq:
            os.kill(self._child[0], signal.SIGKILL)
            seq = self._child[2]
            self.abandon()
            temporary_snapshot_path(self.config.snapshot_dir, seq).unlink(missing_ok=True)

    def abandon(self) -> None:
        """At shutdown: stop waiting for a child still writing (its temp file is discarded)."""
        if self._child is not None:
            pid, pidfd, _ = self._child
            self.loop.remove_reader(pidfd)
            os.close(pidfd)
            os.waitpid(pid, 0)
            self._child = None
