"""The write-ahead log writer: append in the event loop, write and fsync in one thread.

Group commit: while one batch is being written and fsynced, new records collect in memory; the
next write covers all of them with one fsync. So one fsync serves every request that arrived
during the previous one, and durability does not cap throughput at the disk's fsync rate. After
an fsync the next write is held, briefly, for the requests its released replies bring, so that
connections with a request each share one fsync rather than taking turns in two (see _hold); the
WAL thread, lingering after the fsync, times the hold.

A small write is made in the event loop itself, as Redis's `appendfsync always` does, when it
follows a hold that filled or finds the writer idle, and no connection waits for a turn: every
request outstanding is in it, so the loop has nothing to overlap with its fsync but what arrives
meanwhile (whose replies would wait for the next fsync anyway), and handing it to the WAL thread
and back cost two thread wake-ups and GIL hand-overs on the critical path (about 100 µs of a 700
µs cycle at 16 connections x 1, of a 330 µs one at 1 x 1). After an fsync slower than
IN_LOOP_WRITE_MAX_FSYNC_S, writes go to the thread until one is fast again: a disk gone slow
stalls the loop once, not for every write.

Records are written into space already written with zeros (`zero_ahead_bytes` at a time, made
durable by the fsync of the batch that reached the end of the previous zeros): an fdatasync
after writing into a file whose size changed writes the inode too, a second I/O; one after
writing over zeros already on disk writes the data alone. So the last segment ends in zeros
after its records, which readers take for the log's unused end (RecordScanner.zeroed_to_end),
and recovery cuts off; a segment is cut back to its records before the next one is begun.
"""
import asyncio
import errno
import os
import time
from pathlib import Path
from typing import Callable

import msgpack

from payswitch.protocol.atomic_file import fsync_dir
from payswitch.switch.metrics import FSYNC_SECONDS_BUCKETS, GROUP_RECORDS_BUCKETS, Histogram
from payswitch.switch.storage.records import MAX_RECORD_BYTES, encode_record
from payswitch.switch.storage.segments import list_segments, segment_path
from payswitch.switch.storage.wal_thread import WalThread
from payswitch.switch.storage.wal_format import (SEGMENT_HEADER, WAL_VERSION, read_segment_header,
                                                 segment_header)


def _format_version(segment: Path) -> int:
    """The format version of an existing segment whose header, if it has one, is intact (as
    recovery leaves the last one)."""
    with open(segment, "rb") as file:
        return read_segment_header(file.read(SEGMENT_HEADER.size), segment).version or 1


def _write_at(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _fdatasync(fd: int) -> None:
    try:
        os.fdatasync(fd)
    except OSError as error:
        raise FsyncFailed(error.errno, error.strerror) from error


class RecordTooLarge(ValueError):
    """A request too large to log as one record; nothing was appended."""


class WalFailed(Exception):
    """Writes are stopped because an earlier write or fsync failed (fail-stop)."""


class FsyncFailed(OSError):
    """fsync failed: the kernel may have dropped the dirty pages, so what the file holds after the
    last good fsync is unknown and must never be fsynced and trusted again (PostgreSQL's lesson)."""


# After holds that run out of time in a row, at most this many groups in a row go unheld: with
# clients that do not answer at once, about one group in this many waits group_wait_s.
MAX_HOLDS_SKIPPED = 64

# A write is made in the event loop (see the module's docstring) only if it carries at most this
# many requests (the hand-over it saves costs each of them 100 µs / requests, and a larger group
# has clients that pipeline, whose next requests the loop would read during the fsync; a batch
# counts as one), and only after an fsync at most this slow.
IN_LOOP_WRITE_MAX_REQUESTS = 64
IN_LOOP_WRITE_MAX_FSYNC_S = 0.002

# A write refused for want of space wrote nothing durable past the last fsync: once space
# returns, the log can be cut back to that point and continue.
RESUMABLE_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class WalWriter:
    """Appends records with sequence numbers; reports each durable prefix via `on_durable(seq)`."""

    def __init__(self, wal_dir: Path, next_seq: int, segment_bytes: int, fsync: bool,
                 on_durable, on_failure, on_batch=None, group_wait_s: float = 0.0,
                 loop_has_work: Callable[[], bool] | None = None, zero_ahead_bytes: int = 0):
        self.wal_dir = wal_dir
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        # Zeros spare only fsyncs: without them they would just double the bytes written
        self.zero_ahead_bytes = zero_ahead_bytes if fsync else 0
        self.appended_seq = next_seq - 1
        self.durable_seq = next_seq - 1
        self.bytes_since_start = 0  # written to the segments (by the WAL thread)
        # Bytes of the records appended since start, and of those up to durable_seq: what the
        # snapshotter measures the log since a snapshot by (switch/snapshotter.py).
        self.appended_bytes = 0
        self.durable_bytes = 0
        self.fsync_count = 0
        # Whether the event loop has other work now (connections waiting for a turn); None: no
        # write is made in the loop (see the module's docstring). Writes since start made by it,
        # and handed to the WAL thread.
        self._loop_has_work = loop_has_work
        self.writes_in_loop = 0
        self.writes_handed = 0
        # The last write's fsync: how long it took, and when the write ended (time.perf_counter).
        self.last_fsync_s = 0.0
        self._written_at_s = 0.0
        # Written by the thread making the write (see switch/metrics.py): how long each fsync
        # took, and how many records each write-and-fsync carried (group commit).
        self.fsync_seconds = Histogram(FSYNC_SECONDS_BUCKETS)
        self.group_records = Histogram(GROUP_RECORDS_BUCKETS)
        self.failure: OSError | None = None
        self._on_durable = on_durable
        self._on_failure = on_failure
        # With replication: each batch handed to the WAL thread is also handed, at the same
        # moment, to the stream publisher (on_batch(records, first_seq)), so the local fsync and
        # the stream's acknowledgement overlap.
        self._on_batch = on_batch
        self._pending: list[bytes] = []
        # Requests the records stand for (a group of transfers is one record): appended, durable,
        # and in _pending. The hold (see _hold) counts requests, not records.
        self.appended_requests = 0
        self.durable_requests = 0
        self._pending_requests = 0
        self._flushing = False
        # The hold before the next write (see _hold): until _wanted requests are pending, or
        # until the WAL thread, lingering for group_wait_s after the write just durable, reports
        # that none came (or, after a write in the loop, a timer of the loop's, _hold_timer);
        # _gathered is its future while it lasts. The last write handed to the thread that the
        # thread has lingered after. Holds taken, and those that ran out of time, since start.
        self.group_wait_s = group_wait_s
        self.holds = 0
        self.holds_run_out = 0
        self._holds_to_skip = 0
        self._skip_after_run_out = 1
        self._wanted = 0
        self._gathered: asyncio.Future | None = None
        self._lingered_after = 0
        self._last_write_in_loop = False
        self._hold_timer: asyncio.TimerHandle | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._thread = WalThread("wal", group_wait_s, self._on_linger_over)
        self._packer = msgpack.Packer(use_bin_type=True)
        # The current segment's records end at _segment_size (where the next write goes) and
        # its zeros written ahead of them at _zeroed_end (its size).
        self._fd, self._segment_size = self._open_last_segment(next_seq)
        self._zeroed_end = self._segment_size
        # Where the log ends as far as anything durable goes: (segment path, its records' end).
        self._durable_end = (self._segment_path, self._segment_size)

    def _open_last_segment(self, next_seq: int) -> tuple[int, int]:
        """The log goes on in the last segment if it is of this build's format. After a segment
        of an older format it goes on in a new one: an older build reading that segment would
        take a record only this format has for damage. A segment with no records (new, its
        header cut off as a torn tail, or an older header alone) is begun with this header.
        Recovery has cut off any zeros after the records: the segment's size is their end."""
        segments = list_segments(self.wal_dir)
        first_seq, path = segments[-1] if segments else (next_seq, segment_path(self.wal_dir,
                                                                                next_seq))
        if first_seq < next_seq and _format_version(path) < WAL_VERSION:
            first_seq, path = next_seq, segment_path(self.wal_dir, next_seq)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        if first_seq == next_seq and os.fstat(fd).st_size and _format_version(path) < WAL_VERSION:
            os.ftruncate(fd, 0)  # an older header and no record
        if os.fstat(fd).st_size == 0:
            _write_at(fd, segment_header(first_seq), 0)
        if not segments or segments[-1][1] != path:
            fsync_dir(self.wal_dir)
        self._segment_path = path
        return fd, os.fstat(fd).st_size

    def append(self, now_ns: int, caller: str, op: str, args, requests: int = 1) -> int:
        """Buffers one record, of `requests` requests, and returns its sequence number; it is
        durable once on_durable reports a sequence number at least as high."""
        if self.failure is not None:
            raise WalFailed(str(self.failure))
        seq = self.appended_seq + 1
        payload = self._packer.pack([seq, now_ns, caller, op, args])
        if len(payload) > MAX_RECORD_BYTES:  # recovery would take it for damage
            raise RecordTooLarge(f"{op} would make a WAL record of {len(payload)} bytes; "
                                 f"the limit is {MAX_RECORD_BYTES}")
        self._add(encode_record(payload), requests)
        return seq

    def append_encoded(self, record: bytes) -> int:
        """Appends a record already encoded, as it came from the primary's stream (a standby);
        returns its sequence number, the next one."""
        if self.failure is not None:
            raise WalFailed(str(self.failure))
        self._add(record, 1)
        return self.appended_seq

    def _add(self, record: bytes, requests: int) -> None:
        self._pending.append(record)
        self._pending_requests += requests
        self.appended_requests += requests
        self.appended_seq += 1
        self.appended_bytes += len(record)
        self._idle.clear()
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush_loop())
        elif self._gathered is not None and self._pending_requests >= self._wanted:
            self._end_hold(self._gathered)

    async def _flush_loop(self) -> None:
        """One batch at a time, the first written in the loop if small. When a batch is durable,
        either the next one is handed to the WAL thread before its replies are released, so its
        fsync overlaps their writes; or the replies go first and the next batch waits for the
        requests they bring (see _hold), then is written in the loop if they all came."""
        try:
            writing = self._write_pending(in_loop=self._may_write_in_loop())
            while writing is not None:
                future, last_seq, last_bytes, last_requests = writing
                await future
                outstanding = self.appended_requests - self.durable_requests
                hold = self._should_hold(outstanding)
                writing = self._write_pending(in_loop=False) \
                    if self._pending and not hold else None
                self.durable_seq, self.durable_bytes = last_seq, last_bytes
                self.durable_requests = last_requests
                self._on_durable(last_seq)
                filled = hold and await self._hold(outstanding)
                if writing is None and self._pending:  # appended by what on_durable woke
                    writing = self._write_pending(in_loop=filled and self._may_write_in_loop())
        except OSError as error:
            self.failure = error
            self._pending.clear()
            self._pending_requests = 0
            self._on_failure(error)
        finally:
            self._flushing = False
            self._idle.set()

    def _may_write_in_loop(self) -> bool:
        """Whether what is pending is small enough, the disk fast enough and the loop free enough
        to write it in the loop (see _flush_loop for when it is asked)."""
        loop_has_work = self._loop_has_work
        return (loop_has_work is not None and self._pending_requests <= IN_LOOP_WRITE_MAX_REQUESTS
                and self.last_fsync_s <= IN_LOOP_WRITE_MAX_FSYNC_S and not loop_has_work())

    def _should_hold(self, outstanding: int) -> bool:
        """Not for a lone request (one client, one request: nobody to wait for), nor while backing
        off after holds that ran out (clients that do not answer our replies at once: an open
        loop, or reads in between): each that runs out doubles the groups to go unheld after the
        next, each that fills halves them, so holds that fill now and then by chance (an open
        loop's arrivals) do not keep them going."""
        if outstanding < 2 or self.group_wait_s <= 0:
            return False
        if self._holds_to_skip:
            self._holds_to_skip -= 1
            return False
        return True

    async def _hold(self, wanted: int) -> bool:
        """Holds the next write until `wanted` requests are pending (as many as were outstanding
        before the release: the clients just answered send again) or group_wait_s has passed
        since the fsync; returns whether they came. Without it, requests answered by one fsync
        arrive during the next and wait behind it: two half-size groups taking turns, each
        request waiting for two fsyncs."""
        self.holds += 1
        in_loop = self._last_write_in_loop
        if self._pending_requests < wanted and (in_loop or
                                                self._lingered_after < self.writes_handed):
            if not self._pending:
                self._idle.set()
            gathered = self._gathered = asyncio.get_running_loop().create_future()
            self._wanted = wanted
            if in_loop:  # no thread lingers after it
                self._time_hold(gathered, self._written_at_s + self.group_wait_s)
            try:
                await gathered
            finally:
                self._gathered = None
                if self._hold_timer is not None:
                    self._hold_timer.cancel()
                    self._hold_timer = None
        if self._pending_requests >= wanted:
            self._skip_after_run_out = max(1, self._skip_after_run_out // 2)
            return True
        self.holds_run_out += 1
        self._holds_to_skip = self._skip_after_run_out
        self._skip_after_run_out = min(2 * self._skip_after_run_out, MAX_HOLDS_SKIPPED)
        return False

    def _time_hold(self, gathered: asyncio.Future, deadline_s: float) -> None:
        """Ends the hold at deadline_s (time.perf_counter). The loop's timers count whole
        milliseconds from a clock read once per turn, so one may fire early: it is set again."""
        left_s = deadline_s - time.perf_counter()
        if left_s > 0:
            self._hold_timer = asyncio.get_running_loop().call_later(
                left_s, self._time_hold, gathered, deadline_s)
        else:
            self._hold_timer = None
            self._end_hold(gathered)

    def _on_linger_over(self, writes_run: int) -> None:
        """In the loop: the WAL thread waited group_wait_s after its writes_run-th write and no
        write came. If a hold follows that write, its time is up."""
        self._lingered_after = writes_run
        if writes_run == self.writes_handed and self._gathered is not None:
            self._end_hold(self._gathered)

    @staticmethod
    def _end_hold(gathered: asyncio.Future) -> None:
        if not gathered.done():
            gathered.set_result(None)

    def _write_pending(self, in_loop: bool) -> tuple[asyncio.Future, int, int, int]:
        """Starts writing everything appended so far, in the WAL thread, or here and now
        (in_loop); (its future, its last sequence number, appended_bytes and appended_requests up
        to it)."""
        batch, self._pending = self._pending, []
        self._pending_requests = 0
        written = (self.appended_seq, self.appended_bytes, self.appended_requests)
        first_seq = written[0] - len(batch) + 1
        loop = asyncio.get_running_loop()
        self._last_write_in_loop = in_loop
        if in_loop:
            self._write_batch(batch, first_seq)
            self.writes_in_loop += 1
            future = loop.create_future()
            future.set_result(None)
        else:
            self.writes_handed += 1
            future = self._thread.run(loop, self._write_batch, batch, first_seq)
        if self._on_batch is not None:  # (which may append: not part of this batch)
            self._on_batch(batch, first_seq)
        return future, *written

    def _write_batch(self, batch: list[bytes], first_seq: int) -> None:
        """Runs in the WAL thread or the loop: rotate if due, write everything, zero ahead if the
        records reached the end of the zeros, fsync once."""
        # A segment holding only its header (first_seq's own) is never full, whatever its size
        if self._segment_size >= self.segment_bytes and \
                segment_path(self.wal_dir, first_seq) != self._segment_path:
            self._rotate(first_seq)
        data = b"".join(batch)
        _write_at(self._fd, data, self._segment_size)
        self._segment_size += len(data)
        self.bytes_since_start += len(data)
        if self.zero_ahead_bytes and self._segment_size >= self._zeroed_end:
            self._zero_ahead()
        self.group_records.observe(len(batch))
        if self.fsync:
            started_s = time.perf_counter()
            _fdatasync(self._fd)
            ended_s = time.perf_counter()
            self.last_fsync_s = ended_s - started_s
            self.fsync_seconds.observe(self.last_fsync_s)
            self.fsync_count += 1
        else:
            ended_s = time.perf_counter()
        self._written_at_s = ended_s
        self._durable_end = (self._segment_path, self._segment_size)

    def _zero_ahead(self) -> None:
        """Writes zero_ahead_bytes of zeros after the records, for the batches to come; the
        batch's fsync makes them durable before any record is written over them. A disk too
        full for them refuses nothing: the zeros written so far serve, and records go on past
        them as appends (each such batch trying again) until the disk refuses those."""
        try:
            _write_at(self._fd, bytes(self.zero_ahead_bytes), self._segment_size)
        except OSError as error:
            if error.errno not in RESUMABLE_WRITE_ERRNOS:
                raise
        self._zeroed_end = os.fstat(self._fd).st_size  # as far as they went

    def _rotate(self, first_seq: int) -> None:
        """Begins the segment of `first_seq`. The current one is cut back to its records first,
        durably, so that zeros are only ever at the end of the last segment (where a build of
        the same format version without zeroing ahead takes them for a torn tail and cuts them
        off, rather than for damage before the tail)."""
        if self._zeroed_end > self._segment_size:
            os.ftruncate(self._fd, self._segment_size)
            _fdatasync(self._fd)
        path = segment_path(self.wal_dir, first_seq)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        header = segment_header(first_seq)  # made durable by the batch's fsync
        _write_at(fd, header, 0)
        fsync_dir(self.wal_dir)
        os.close(self._fd)
        self._fd, self._segment_path = fd, path
        self._segment_size = self._zeroed_end = len(header)
        self.bytes_since_start += len(header)

    def can_resume(self) -> bool:
        """Whether the failure was a write refused for want of space (see RESUMABLE_WRITE_ERRNOS),
        after which `resume` may continue the log; never after a failed fsync."""
        failure = self.failure
        return (failure is not None and not isinstance(failure, FsyncFailed)
                and failure.errno in RESUMABLE_WRITE_ERRNOS and not self._flushing)

    def resume(self) -> None:
        """Cuts the log back to its durable end (dropping segments begun after it, and any zeros
        written ahead) and takes appends again from durable_seq + 1. Raises OSError, changing
        nothing, if the disk still refuses; the caller must have replaced any state built on
        records past durable_seq."""
        path, size = self._durable_end
        fd = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(fd, size)
            os.fdatasync(fd)
            for _, later in list_segments(self.wal_dir):
                if later.name > path.name:
                    os.unlink(later)
            fsync_dir(self.wal_dir)
        except OSError:
            os.close(fd)
            raise
        os.close(self._fd)
        self._fd, self._segment_size, self._segment_path = fd, size, path
        self._zeroed_end = size
        self.appended_seq, self.appended_bytes = self.durable_seq, self.durable_bytes
        self.appended_requests = self.durable_requests
        self.failure = None

    async def drain(self) -> None:
        """Waits until everything appended so far is durable (or the log has failed)."""
        await self._idle.wait()

    def close(self) -> None:
        """Ends the WAL thread and closes the segment. Once everything written is durable, the
        segment is cut back to its records: a log stopped cleanly ends as if appended (a build
        of the same format version without zeroing reads it without a warning)."""
        gathered = self._gathered
        if gathered is not None:  # a hold for records that will not come now
            self._end_hold(gathered)
        self._thread.close()
        if self._zeroed_end > self._segment_size and self.failure is None and \
                self._durable_end == (self._segment_path, self._segment_size):
            try:
                os.ftruncate(self._fd, self._segment_size)
                os.fdatasync(self._fd)
            except OSError:
                pass  # recovery cuts the zeros off as well
        os.close(self._fd)
