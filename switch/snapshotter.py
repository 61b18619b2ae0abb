"""Background snapshots, built by a process of its own (see snapshot_builder.py).

When enough log has been written since the last snapshot, a builder process is started for the
last durable record. It reads the newest snapshot and the log as a restart would, so the serving
process is never forked and never paused; the cost is the builder's CPU (at idle priority) and
memory. Once it has written and fsynced its file, the file is published (renamed into place) and
older snapshots beyond `snapshots_kept`, with the WAL segments only they needed, are deleted.
"""
import os
import subprocess
import sys
import time

import structlog

from switch.storage.segments import prune_segments, snapshot_path
from switch.storage.snapshots import (prune_snapshots, publish_snapshot, save_snapshot,
                                      temporary_snapshot_path)

log = structlog.get_logger("switch.snapshots")


class Snapshotter:
    def __init__(self, config, loop, service, last_snapshot_seq: int, log_bytes_replayed: int):
        self.config = config
        self.loop = loop
        self.service = service  # its state (ledger and batches) is what save_now writes
        self.wal = service.wal
        self.last_snapshot_seq = last_snapshot_seq
        # The log replayed at start counts as written since the last snapshot: after a long
        # recovery the next snapshot comes soon, not after another snapshot_every_bytes.
        self._bytes_at_last = self.wal.bytes_since_start - log_bytes_replayed
        self._builder: tuple[subprocess.Popen, int, int] | None = None  # process, pidfd, seq
        # When the newest snapshot was written (wall clock); without one, this start.
        self.last_snapshot_at_s = time.time()
        if last_snapshot_seq:
            self.last_snapshot_at_s = snapshot_path(config.snapshot_dir,
                                                    last_snapshot_seq).stat().st_mtime

    @property
    def bytes_since_snapshot(self) -> int:
        """Log written since the last snapshot began (counting what was replayed at start)."""
        return self.wal.bytes_since_start - self._bytes_at_last

    def maybe_start(self) -> None:
        every_bytes = self.config.snapshot_every_bytes
        backlog_bytes = self.bytes_since_snapshot
        # A builder replays the log since the last snapshot on the second core, which a running
        # batch is using too; while one runs, wait for its end (up to twice the interval).
        deferred = self.service.batch_engine.tasks and backlog_bytes < 2 * every_bytes
        seq = self.wal.durable_seq
        if (backlog_bytes >= every_bytes and not deferred and self._builder is None
                and seq > self.last_snapshot_seq and self.wal.failure is None):
            self._start_builder(seq)

    def _start_builder(self, seq: int) -> None:
        config = self.config
        process = subprocess.Popen(
            [sys.executable, "-m", "switch.snapshot_builder", str(config.wal_dir),
             str(config.snapshot_dir), str(seq), config.log_format, str(os.getpid())],
            stdin=subprocess.DEVNULL)
        pidfd = os.pidfd_open(process.pid)
        self._builder = (process, pidfd, seq)
        self._bytes_at_last = self.wal.bytes_since_start
        self.loop.add_reader(pidfd, self._builder_exited)
        log.info("snapshot_started", seq=seq, pid=process.pid)

    def _builder_exited(self) -> None:
        process, pidfd, seq = self._builder
        self.loop.remove_reader(pidfd)
        os.close(pidfd)
        self._builder = None
        if process.wait() != 0:
            log.error("snapshot_failed", seq=seq, status=process.returncode)
            return
        publish_snapshot(self.config.snapshot_dir, seq)  # seq was durable when it started
        self._published(seq)

    def save_now(self) -> None:
        """A synchronous snapshot (at shutdown, when everything appended is durable)."""
        seq = self.wal.durable_seq
        if seq > self.last_snapshot_seq and self.wal.failure is None:
            save_snapshot(self.config.snapshot_dir, seq, self.service.state.snapshot_state())
            self._published(seq)

    def _published(self, seq: int) -> None:
        self.last_snapshot_seq = seq
        self.last_snapshot_at_s = time.time()
        oldest_kept = prune_snapshots(self.config.snapshot_dir, self.config.snapshots_kept)
        deleted = prune_segments(self.config.wal_dir, oldest_kept)
        log.info("snapshot_published", seq=seq, segments_deleted=deleted)

    def abandon(self) -> None:
        """At shutdown: stop a builder still at work; its temporary file is discarded."""
        if self._builder is not None:
            process, pidfd, seq = self._builder
            self.loop.remove_reader(pidfd)
            os.close(pidfd)
            process.kill()
            process.wait()
            temporary_snapshot_path(self.config.snapshot_dir, seq).unlink(missing_ok=True)
            self._builder = None
