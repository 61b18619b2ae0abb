"""Runs submitted batches in the background: parse off the event loop, then apply in chunks.

Parsing a large file takes seconds, so it runs in a worker thread. Applying goes through the
event loop in small chunks, yielding between them, so that real-time transfers keep flowing while
a million-row batch runs. Each chunk is one WAL record; see `book.py` for why that makes a crash
in the middle safe.
"""
import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import structlog

from switch.batches.book import PROCESSING, RECEIVED
from switch.batches.formats import parse_batch

log = structlog.get_logger("switch.batches")
PROGRESS_INTERVAL_S = 2.0


class BatchEngine:
    def __init__(self, service, chunk_items: int, max_atomic_items: int):
        self.service = service
        self.chunk_items = chunk_items
        self.max_atomic_items = max_atomic_items
        self.tasks: dict[str, asyncio.Task] = {}
        self._parser = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-parse")

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
        self._parser.shutdown(wait=False, cancel_futures=True)

    async def _run(self, batch_id: str) -> None:
        batch = self.service.state.batches.batches[batch_id]
        started_s = time.monotonic()
        try:
            parsed = await asyncio.get_running_loop().run_in_executor(
                self._parser, parse_batch, batch.format, batch.content, batch.items)
            if batch.state == RECEIVED:
                problems = self._problems(batch, parsed)
                self.service.execute_internal("batch_validated", {
                    "batch_id": batch_id, "problems": problems, "total": len(parsed.items)})
                if problems:
                    log.info("batch_rejected", batch_id=batch_id, problems=len(problems))
                    return
            await self._apply(batch, parsed.items)
            log.info("batch_completed", batch_id=batch_id, total=batch.total,
                     created=batch.created, failed=batch.failed,
                     elapsed_s=round(time.monotonic() - started_s, 3))
        except Exception:
            log.exception("batch_failed", batch_id=batch_id)

    def _problems(self, batch, parsed) -> list[list[str]]:
        problems = [[p.where, p.reason] for p in parsed.errors]
        count, total = parsed.control["count"], parsed.control["sum"]
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

    async def _apply(self, batch, items: list[dict]) -> None:
        if batch.mode == "atomic":
            self.service.execute_internal("batch_apply", {
                "batch_id": batch.batch_id, "start": 0, "items": items})
            return
        next_progress_s = time.monotonic() + PROGRESS_INTERVAL_S
        while batch.state == PROCESSING and batch.applied < batch.total:
            if not self.service.accepting_writes():
                return  # resumed from the log after a restart
            start = batch.applied
            self.service.execute_internal("batch_apply", {
                "batch_id": batch.batch_id, "start": start,
                "items": items[start:start + self.chunk_items]})
            if time.monotonic() >= next_progress_s:
                next_progress_s = time.monotonic() + PROGRESS_INTERVAL_S
                log.info("batch_progress", batch_id=batch.batch_id, applied=batch.applied,
                         total=batch.total)
            await asyncio.sleep(0)  # let real-time requests in between chunks
