"""The write-ahead log writer: append in the event loop, write and fsync in one thread.

Group commit: while one batch is being written and fsynced, new records collect in memory; the
next write covers all of them with one fsync. So one fsync serves every request that arrived
during the previous one, and durability does not cap throughput at the disk's fsync rate.
"""
import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgpack

from switch.storage.records import MAX_RECORD_BYTES, encode_record
from switch.storage.segments import fsync_dir, list_segments, segment_path


class RecordTooLarge(ValueError):
    """A request too large to log as one record; nothing was appended."""


class WalFailed(Exception):
    """Writes are stopped because an earlier write or fsync failed (fail-stop)."""


class WalWriter:
    """Appends records with sequence numbers; reports each durable prefix via `on_durable(seq)`."""

    def __init__(self, wal_dir: Path, next_seq: int, segment_bytes: int, fsync: bool,
                 on_durable, on_failure):
        self.wal_dir = wal_dir
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self.appended_seq = next_seq - 1
        self.durable_seq = next_seq - 1
        self.bytes_since_start = 0
        self.fsync_count = 0
        self.failure: OSError | None = None
        self._on_durable = on_durable
        self._on_failure = on_failure
        self._pending: list[bytes] = []
        self._flushing = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wal")
        self._packer = msgpack.Packer(use_bin_type=True)
        self._fd, self._segment_size = self._open_last_segment(next_seq)

    def _open_last_segment(self, next_seq: int) -> tuple[int, int]:
        segments = list_segments(self.wal_dir)
        path = segments[-1][1] if segments else segment_path(self.wal_dir, next_seq)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if not segments:
            fsync_dir(self.wal_dir)
        return fd, os.fstat(fd).st_size

    def append(self, now_ns: int, caller: str, op: str, args) -> int:
        """Buffers one record and returns its sequence number; it is durable once on_durable
        reports a sequence number at least as high."""
        if self.failure is not None:
            raise WalFailed(str(self.failure))
        seq = self.appended_seq + 1
        payload = self._packer.pack([seq, now_ns, caller, op, args])
        if len(payload) > MAX_RECORD_BYTES:  # recovery would take it for damage
            raise RecordTooLarge(f"{op} would make a WAL record of {len(payload)} bytes; "
                                 f"the limit is {MAX_RECORD_BYTES}")
        record = encode_record(payload)
        self._pending.append(record)
        self.appended_seq = seq
        if not self._flushing:
            self._flushing = True
            self._idle.clear()
            asyncio.get_running_loop().create_task(self._flush_loop())
        return seq

    async def _flush_loop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                last_seq = self.appended_seq
                first_seq = last_seq - len(batch) + 1
                await loop.run_in_executor(self._thread, self._write_batch, batch, first_seq)
                self.durable_seq = last_seq
                self._on_durable(last_seq)
        except OSError as error:
            self.failure = error
            self._pending.clear()
            self._on_failure(error)
        finally:
            self._flushing = False
            self._idle.set()

    def _write_batch(self, batch: list[bytes], first_seq: int) -> None:
        """Runs in the WAL thread: rotate if due, write everything, fsync once."""
        if self._segment_size >= self.segment_bytes:
            self._rotate(first_seq)
        data = memoryview(b"".join(batch))
        while data:
            written = os.write(self._fd, data)
            data = data[written:]
            self._segment_size += written
            self.bytes_since_start += written
        if self.fsync:
            os.fdatasync(self._fd)
            self.fsync_count += 1

    def _rotate(self, first_seq: int) -> None:
        fd = os.open(segment_path(self.wal_dir, first_seq),
                     os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        fsync_dir(self.wal_dir)
        os.close(self._fd)
        self._fd, self._segment_size = fd, 0

    async def drain(self) -> None:
        """Waits until everything appended so far is durable (or the log has failed)."""
        await self._idle.wait()

    def close(self) -> None:
        self._thread.shutdown(wait=True)
        os.close(self._fd)
