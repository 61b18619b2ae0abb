"""Background snapshots, built by a process of its own (see snapshot_builder.py).

When enough log has been written since the last snapshot, a builder process is started for the
last durable record. It reads the newest snapshot and the log as a restart would, so the serving
process is never forked and never paused; the cost is the builder's CPU (mildly niced) and
memory. Once it has written and fsynced its file, the file is published (renamed into place) and
older snapshots beyond `snapshots_kept`, with the WAL segments only they needed, are deleted.

The log since the last published snapshot is what a restart replays, so it is bounded: once it
reaches `max_log_bytes_since_snapshot`, mutating requests are refused `overloaded` and batches
wait (see `log_full`, `wait_for_log_room`) until the builder publishes; reads go on.

With the committed-event stream on, a restart regenerates the events the stream lacks from the
log after the snapshot, so a snapshot is published only once the stream holds every event of
the records it covers (`service.events.covers`); until then the built file waits.
"""
import asyncio
import os
import subprocess
import sys
import time

import structlog

from payswitch.switch.storage.segments import prune_segments, snapshot_path
from payswitch.switch.storage.snapshots import (prune_snapshots, publish_snapshot, save_snapshot,
                                      temporary_snapshot_path)

log = structlog.get_logger("switch.snapshots")


class Snapshotter:
    def __init__(self, config, loop, service, last_snapshot_seq: int, log_bytes_replayed: int,
                 on_published=None):
        self.config = config
        self.loop = loop
        self.service = service  # its state (ledger and batches) is what save_now writes
        self._on_published = on_published  # (seq): a replicated primary uploads it
        self.wal = service.wal
        self.last_snapshot_seq = last_snapshot_seq
        # Log bytes (wal.appended_bytes) at the last published snapshot and at the last builder
        # start. The log replayed at start counts as written since the last snapshot: after a
        # long recovery the next snapshot comes soon, not after another snapshot_every_bytes.
        self._bytes_at_snapshot = self.wal.appended_bytes - log_bytes_replayed
        self._bytes_at_last_start = self._bytes_at_snapshot
        # process, pidfd, seq, and the log bytes up to seq
        self._builder: tuple[subprocess.Popen, int, int, int] | None = None
        # A snapshot built but waiting for the event stream to hold its records' events:
        # (seq, the log bytes up to seq)
        self._waiting_for_events: tuple[int, int] | None = None
        self._snapshot_published = asyncio.Event()  # set at each publication
        self.published_total = 0
        self.writes_refused_total = 0
        self._writes_paused = False  # for one log line per pause, not one per refusal
        # When the newest snapshot was written (wall clock); without one, this start.
        self.last_snapshot_at_s = time.time()
        if last_snapshot_seq:
            self.last_snapshot_at_s = snapshot_path(config.snapshot_dir,
                                                    last_snapshot_seq).stat().st_mtime

    @property
    def log_bytes_since_snapshot(self) -> int:
        """What a restart would replay after the newest snapshot (durable or not yet)."""
        return self.wal.appended_bytes - self._bytes_at_snapshot

    def log_full(self) -> bool:
        """Whether writes must wait for a snapshot (`max_log_bytes_since_snapshot` reached)."""
        full = self.log_bytes_since_snapshot >= self.config.max_log_bytes_since_snapshot
        if full != self._writes_paused:
            self._writes_paused = full
            if full:
                log.warning("writes_paused_for_snapshot",
                            log_bytes_since_snapshot=self.log_bytes_since_snapshot,
                            max_log_bytes_since_snapshot=self.config.max_log_bytes_since_snapshot,
                            building_seq=self._builder[2] if self._builder else None)
            else:
                log.warning("writes_resumed_after_snapshot", seq=self.last_snapshot_seq,
                            refused_total=self.writes_refused_total)
        return full

    def refuse_write(self) -> str:
        """Counts a mutating request refused while the log is full; its `overloaded` message."""
        self.writes_refused_total += 1
        return (f"writes are paused: {self.log_bytes_since_snapshot} bytes of log since the last "
                f"snapshot reach max_log_bytes_since_snapshot "
                f"({self.config.max_log_bytes_since_snapshot}); retry once the snapshot being "
                f"built is published (reads are answered meanwhile)")

    async def wait_for_log_room(self) -> None:
        """Returns once the log is below the bound (at once if it is): batches wait here."""
        while self.log_full():
            self._snapshot_published.clear()
            await self._snapshot_published.wait()

    def maybe_start(self) -> None:
        if self._waiting_for_events is not None and not self._publish_waiting():
            return  # one snapshot at a time: the built one still waits for the events
        every_bytes = self.config.snapshot_every_bytes
        backlog_bytes = self.wal.appended_bytes - self._bytes_at_last_start
        seq = self.service.durable_seq  # with replication: in the stream too
        if seq == self.wal.appended_seq == self.last_snapshot_seq:
            # Nothing follows the snapshot (the log replayed at start was counted whole, with
            # the records before the snapshot in its first segment): there is nothing to bound.
            self._bytes_at_snapshot = self.wal.appended_bytes
        full = self.log_full()
        # A builder replays the log since the last snapshot on the second core, which a running
        # batch is using too; while one runs, wait for its end (up to twice the interval, and
        # never once the log is full: then the batch itself waits for the snapshot).
        deferred = (self.service.batch_engine.tasks and backlog_bytes < 2 * every_bytes
                    and not full)
        # A full log starts a builder at once, even right after a failed one: writes wait for it.
        due = (backlog_bytes >= every_bytes and not deferred) or full
        if (due and self._builder is None and seq > self.last_snapshot_seq
                and self.wal.failure is None):
            self._start_builder(seq, self.wal.durable_bytes)

    def _start_builder(self, seq: int, log_bytes: int) -> None:
        config = self.config
        process = subprocess.Popen(
            [sys.executable, "-m", "payswitch.switch.snapshot_builder", str(config.wal_dir),
             str(config.snapshot_dir), str(seq), config.log_format, str(os.getpid()),
             str(config.snapshot_builder_nice)],
            stdin=subprocess.DEVNULL)
        pidfd = os.pidfd_open(process.pid)
        self._builder = (process, pidfd, seq, log_bytes)
        self._bytes_at_last_start = self.wal.appended_bytes
        self.loop.add_reader(pidfd, self._builder_exited)
        log.info("snapshot_started", seq=seq, pid=process.pid,
                 log_bytes_since_snapshot=self.log_bytes_since_snapshot)

    def _builder_exited(self) -> None:
        process, pidfd, seq, log_bytes = self._builder
        self.loop.remove_reader(pidfd)
        os.close(pidfd)
        self._builder = None
        if process.wait() != 0:
            log.error("snapshot_failed", seq=seq, status=process.returncode)
            return
        self._waiting_for_events = (seq, log_bytes)
        if not self._publish_waiting():
            log.info("snapshot_waits_for_events", seq=seq)

    def _publish_waiting(self) -> bool:
        """Publishes the built snapshot once the event stream covers it; whether it did."""
        seq, log_bytes = self._waiting_for_events
        if not self._events_cover(seq):
            return False
        self._waiting_for_events = None
        publish_snapshot(self.config.snapshot_dir, seq)  # seq was durable when it started
        self._published(seq, log_bytes)
        return True

    def _events_cover(self, seq: int) -> bool:
        events = self.service.events
        return events is None or events.covers(seq)

    def save_now(self) -> None:
        """A synchronous snapshot (at shutdown, when everything appended is durable)."""
        seq = self.service.durable_seq
        if seq > self.last_snapshot_seq and self.wal.failure is None:
            if not self._events_cover(seq):
                log.warning("shutdown_snapshot_skipped", seq=seq,
                            reason="the event stream does not hold every event of the log yet",
                            consequence="the next start replays more of the log and publishes "
                                        "the rest; nothing is lost")
                return
            save_snapshot(self.config.snapshot_dir, seq, self.service.state.snapshot_state())
            self._published(seq, self.wal.durable_bytes)

    def _published(self, seq: int, log_bytes: int) -> None:
        self.last_snapshot_seq = seq
        self._bytes_at_snapshot = log_bytes
        self.published_total += 1
        self._snapshot_published.set()
        self.last_snapshot_at_s = time.time()
        oldest_kept = prune_snapshots(self.config.snapshot_dir, self.config.snapshots_kept)
        deleted = prune_segments(self.config.wal_dir, oldest_kept)
        log.info("snapshot_published", seq=seq, segments_deleted=deleted,
                 log_bytes_since_snapshot=self.log_bytes_since_snapshot)
        if self._on_published is not None:
            self._on_published(seq)
        self.log_full()  # logs the end of a pause now, not at the next request

    def stats(self) -> dict:
        """The `snapshots` section of `stats`."""
        return {"last_seq": self.last_snapshot_seq, "published": self.published_total,
                "building_seq": self._builder[2] if self._builder else None,
                "waiting_for_events_seq": self._waiting_for_events[0]
                if self._waiting_for_events else None,
                "log_bytes_since_snapshot": self.log_bytes_since_snapshot,
                "max_log_bytes_since_snapshot": self.config.max_log_bytes_since_snapshot,
                "writes_paused": self._writes_paused,
                "writes_refused": self.writes_refused_total}

    def abandon(self) -> None:
        """At shutdown: stop a builder still at work; its temporary file is discarded."""
        if self._builder is not None:
            process, pidfd, seq, _ = self._builder
            self.loop.remove_reader(pidfd)
            os.close(pidfd)
            process.kill()
            process.wait()
            temporary_snapshot_path(self.config.snapshot_dir, seq).unlink(missing_ok=True)
            self._builder = None
        if self._waiting_for_events is not None:
            temporary_snapshot_path(self.config.snapshot_dir,
                                    self._waiting_for_events[0]).unlink(missing_ok=True)
            self._waiting_for_events = None
