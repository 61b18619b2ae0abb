"""Runs submitted batches in the background: parse in a child process, then apply in slices.

Parsing a large file takes seconds of CPU; in the switch's interpreter it held the GIL and a
million item dicts. So a lower-priority child process parses it into a memory file (see
`parse_worker.py`), and the event loop streams the parsed items from there. Applying goes
through the event loop in chunks of `batch_chunk_items`, each one WAL record (see `book.py` for
why that makes a crash in the middle safe), for at most `batch_slice_s` at a time; after each
slice the loop is left to real-time requests until the log has made them durable (at most
`batch_pause_s`), so that their latency stays close to what it is without a batch.
"""
import asyncio
import contextlib
import gc
import itertools
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

import msgpack
import structlog

from payswitch.switch.batches.book import PROCESSING, RECEIVED
from payswitch.switch.child_process import currencies_argument

log = structlog.get_logger("switch.batches")
PROGRESS_INTERVAL_S = 2.0
ITEMS_READ_BYTES = 256 << 10  # read-ahead of the parsed items: about 1,700 items


class ParseFailed(Exception):
    """The parse worker failed (its traceback is in the switch's output): the batch stays as it
    was until the switch restarts."""


class BatchEngine:
    def __init__(self, service):
        config = service.config
        self.service = service
        self.chunk_items = config.batch_chunk_items
        self.max_atomic_items = config.max_atomic_batch_items
        self.slice_s, self.pause_s = config.batch_slice_s, config.batch_pause_s
        self.parse_nice = config.batch_parse_nice
        self.tasks: dict[str, asyncio.Task] = {}
        # Copying a batch's content for the parse worker and reaping a killed one are the only
        # blocking steps of a batch; they run here, off the event loop.
        self._files = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-files")

    def start(self, batch_id: str) -> None:
        if batch_id not in self.tasks:
            task = asyncio.get_running_loop().create_task(self._run(batch_id))
            self.tasks[batch_id] = task
            task.add_done_callback(lambda _: self.tasks.pop(batch_id, None))

    def resume_unfinished(self) -> None:
        """After recovery: a partial batch resumes at the first item it had not applied."""
        for batch_id in self.service.state.batches.unfinished():
            self.start(batch_id)

    async def cancel_running(self) -> None:
        """Stops every batch being processed; `resume_unfinished` starts them again."""
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def stop(self) -> None:
        await self.cancel_running()
        self._files.shutdown(wait=False, cancel_futures=True)

    async def _run(self, batch_id: str) -> None:
        batch = self.service.state.batches.batches[batch_id]
        started_s = time.monotonic()
        try:
            kind = "content" if batch.content is not None else "items"
            # A batch validated before a restart is read as it was accepted (any currency).
            outcome, items = await self._parse(batch.format, kind, batch.content, batch.items,
                                               batch.applied, any_currency=batch.state != RECEIVED)
            with items:
                await self._wait_for_room()
                if batch.state == RECEIVED:
                    problems = self._problems(batch, outcome)
                    self.service.execute_internal("batch_validated", {
                        "batch_id": batch_id, "problems": problems, "total": outcome["count"],
                        "digest": outcome["digest"]})
                    if problems:
                        log.info("batch_rejected", batch_id=batch_id, problems=len(problems))
                        return
                await self._apply(batch, items)
            log.info("batch_completed", batch_id=batch_id, total=batch.total,
                     created=batch.created, failed=batch.failed,
                     elapsed_s=round(time.monotonic() - started_s, 3))
        except Exception:
            log.exception("batch_failed", batch_id=batch_id)

    async def summarize(self, fmt: str, content: bytes) -> dict:
        """The parse outcome of a file ({"problems", "count", "sum", "meta"}) from the same
        lower-priority child process, without its items: what the drop folder submits with."""
        outcome, items = await self._parse(fmt, "summary", content, None, 0)
        items.close()
        return outcome

    async def _parse(self, fmt: str, kind: str, content: bytes | None, items: list | None,
                     start: int, any_currency: bool = False) -> tuple[dict, BinaryIO]:
        """The parse outcome ({"problems", "count", "sum", "meta"}) and a file of the parsed
        items from `start` on (a resumed batch has applied the ones before)."""
        loop = asyncio.get_running_loop()
        source = await loop.run_in_executor(self._files, _input_file, content, items)
        items_fd = os.memfd_create("batch-items")
        outcome_fd = os.memfd_create("batch-outcome")
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "payswitch.switch.batches.parse_worker", fmt, kind,
                 str(source), str(items_fd), str(outcome_fd), str(start),
                 str(self.parse_nice), str(os.getpid()), currencies_argument(any_currency)],
                stdin=subprocess.DEVNULL, pass_fds=(source, items_fd, outcome_fd))
            os.close(source)
            source = None
            returncode = await self._exit_status(process)
            if returncode != 0:
                raise ParseFailed(f"parse worker exited with status {returncode}")
            outcome = msgpack.unpackb(os.pread(outcome_fd, os.fstat(outcome_fd).st_size, 0))
        except BaseException:
            os.close(items_fd)
            raise
        finally:
            os.close(outcome_fd)
            if source is not None:
                os.close(source)
        items_file = open(items_fd, "rb")
        items_file.seek(0)  # the worker's writes moved the offset it shares with us
        return outcome, items_file

    async def _exit_status(self, process: subprocess.Popen) -> int:
        """Waits for the parse worker on the event loop (its pidfd becomes readable when it
        exits); kills it when cancelled."""
        loop = asyncio.get_running_loop()
        pidfd = os.pidfd_open(process.pid)
        exited = loop.create_future()

        def on_exit() -> None:
            if not exited.done():
                exited.set_result(None)

        loop.add_reader(pidfd, on_exit)
        try:
            await exited
        finally:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            if process.poll() is None:  # cancelled: the parse is not needed any more
                process.kill()
                # Reaped in a thread: a killed worker may take a while to free its memory.
                await loop.run_in_executor(self._files, process.wait)
        return process.returncode

    def _problems(self, batch, outcome: dict) -> list[list[str]]:
        problems = outcome["problems"]
        count, total = outcome["count"], outcome["sum"]
        if batch.control_count != count:
            problems.append(["control", f"control_count is {batch.control_count} but the batch "
                                        f"has {count} items"])
        if batch.control_sum != total:
            problems.append(["control", f"control_sum is {batch.control_sum} but the items "
                                        f"add up to {total}"])
        if batch.mode == "atomic" and count > self.max_atomic_items:
            problems.append(["mode", f"an atomic batch is applied in one step and may hold at "
                                     f"most {self.max_atomic_items} items; use partial mode"])
        return problems

    async def _apply(self, batch, items_file: BinaryIO) -> None:
        items = msgpack.Unpacker(items_file, read_size=ITEMS_READ_BYTES)
        await self._wait_for_room()
        if batch.mode == "atomic":
            self.service.execute_internal("batch_apply", {
                "batch_id": batch.batch_id, "start": 0, "items": list(items)})
            return
        next_progress_s = time.monotonic() + PROGRESS_INTERVAL_S
        while batch.state == PROCESSING and batch.applied < batch.total:
            if not self._apply_slice(batch, items):
                return  # resumed from the log after a restart
            # What a slice made (ledger records, results) lives for ever. Unfrozen, it makes the
            # collector's full collections, which follow every few hundred thousand new objects,
            # walk all of it: 10-45 ms pauses, two or three a second while a batch runs. The
            # housekeeping freezes once a second; a batch allocates too fast for that.
            gc.freeze()
            if time.monotonic() >= next_progress_s:
                next_progress_s = time.monotonic() + PROGRESS_INTERVAL_S
                log.info("batch_progress", batch_id=batch.batch_id, applied=batch.applied,
                         total=batch.total)
            await self._yield_to_real_time()
            await self._wait_for_room()

    def _apply_slice(self, batch, items: msgpack.Unpacker) -> bool:
        """Applies chunks for up to `slice_s`, or until the log since the last snapshot reaches its
        bound; False when writes have stopped."""
        slice_end_s = time.monotonic() + self.slice_s
        snapshotter = self.service.snapshotter
        while batch.applied < batch.total and time.monotonic() < slice_end_s:
            if not self.service.accepting_writes():
                return False
            if snapshotter.log_full() or self._events_full():
                return True  # the caller waits for the next snapshot, or for the events
            chunk = list(itertools.islice(items, min(self.chunk_items,
                                                     batch.total - batch.applied)))
            if not chunk:
                raise ParseFailed(f"parsed items end at {batch.applied} of {batch.total}")
            self.service.execute_internal("batch_apply", {
                "batch_id": batch.batch_id, "start": batch.applied, "items": chunk})
        return True

    def _events_full(self) -> bool:
        events = self.service.events
        return events is not None and events.refuses_writes()

    async def _wait_for_room(self) -> None:
        """Until the log since the last snapshot (the restart-time bound) and the event
        backlog are both below their bounds."""
        snapshotter = self.service.snapshotter
        while snapshotter.log_full() or self._events_full():
            await snapshotter.wait_for_log_room()
            if self._events_full():
                await self.service.events.wait_for_room()

    async def _yield_to_real_time(self) -> None:
        """Leaves the loop to real-time requests until the log has made durable everything
        appended so far, at most `pause_s`. A request needs several loop turns (read, fsync
        completion, reply); yielding one turn would make it wait behind a slice at each of
        them, while waiting for the log lets its reply leave before the next slice starts (and
        keeps each group commit down to about one slice of chunks)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.service.wal.drain(), self.pause_s)


def _input_file(content: bytes | list[bytes] | None, items: list | None) -> int:
    """A memory file holding what the parse worker reads, at offset 0 (content uploaded in
    parts is written part by part: never joined in the switch)."""
    fd = os.memfd_create("batch-input")
    with open(fd, "wb", closefd=False) as file:
        if content is None:
            file.write(msgpack.packb(items, use_bin_type=True))
        else:
            file.writelines(content if isinstance(content, list) else [content])
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
