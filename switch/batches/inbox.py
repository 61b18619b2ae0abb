"""The drop folder, as banks use over SFTP: files in `inbox/<participant>/`, results out.

A file is picked up only under its final name: write it as `.name` or `name.tmp` (or `.part`),
then rename it. Its format comes from its extension (`.csv`, `.json`, `.xml` = pain.001), its mode
is partial unless the name contains `.atomic.`, and its batch id is derived from its content, so
dropping the same file twice (or a crash between submitting and archiving it) never pays twice.
When the batch ends, `outbox/<participant>/<name>.results.csv` (and `<name>.pain002.xml` for
pain.001, or `<name>.rejected.txt`) appears and the original moves to `archive/<participant>/`.
"""
import asyncio
import datetime
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import structlog

from payswitch.protocol.atomic_file import write_atomically
from payswitch.protocol.batch_files import pain002, results_csv
from payswitch.switch.batches.book import COMPLETED, REJECTED

log = structlog.get_logger("switch.inbox")
FORMATS = {".csv": "csv", ".json": "json", ".xml": "pain.001"}
IN_PROGRESS_SUFFIXES = (".tmp", ".part")
POLL_INTERVAL_S = 0.2


def is_ready(name: str) -> bool:
    return (not name.startswith(".") and not name.endswith(IN_PROGRESS_SUFFIXES)
            and Path(name).suffix.lower() in FORMATS)


class Inbox:
    def __init__(self, service, data_dir: Path):
        self.service = service
        self.inbox, self.outbox, self.archive = (data_dir / n for n in ("inbox", "outbox", "archive"))
        self.active: set[Path] = set()
        self._files = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inbox")

    def scan(self) -> None:
        """Starts a task for each ready file not already being handled (called every second)."""
        if not self.inbox.is_dir():
            return
        for participant_dir in self.inbox.iterdir():
            if not participant_dir.is_dir():
                continue
            for path in participant_dir.iterdir():
                if path not in self.active and path.is_file() and is_ready(path.name):
                    self.active.add(path)
                    asyncio.get_running_loop().create_task(self._handle(participant_dir.name, path))

    async def _handle(self, participant: str, path: Path) -> None:
        loop = asyncio.get_running_loop()
        try:
            content = await loop.run_in_executor(self._files, path.read_bytes)
            fmt = FORMATS[path.suffix.lower()]
            # Parsed by the batch engine's child process: in a thread here it would hold the
            # GIL for seconds on a large file while real-time requests wait.
            summary = await self.service.batch_engine.summarize(fmt, content)
            batch_id = "inbox-" + hashlib.sha256(content).hexdigest()[:40]
            batches = self.service.state.batches.batches
            if batch_id not in batches:  # else: dropped again, or a crash before archiving
                mode = "atomic" if ".atomic." in path.name else "partial"
                args = {"batch_id": batch_id, "format": fmt, "items": None, "mode": mode,
                        "control_count": summary["count"], "control_sum": summary["sum"]}
                try:
                    self.service.submit_as(participant, args, content)
                except ValueError as refused:
                    await loop.run_in_executor(self._files, self._write_refusal, participant,
                                               path, str(refused))
                    log.warning("inbox_file_refused", file=str(path), reason=str(refused))
                    return
            batch = batches[batch_id]
            while batch.state not in (COMPLETED, REJECTED):
                await asyncio.sleep(POLL_INTERVAL_S)
                # Looked up again: after a WAL failure the state is replaced by the durable one.
                batch = self.service.state.batches.batches[batch_id]
            await loop.run_in_executor(self._files, self._write_outcome, participant, path,
                                       batch, summary["meta"])
            log.info("inbox_file_done", file=str(path), batch_id=batch_id, state=batch.state)
        except Exception as error:
            log.error("inbox_file_failed", file=str(path), reason=repr(error))
        finally:
            self.active.discard(path)

    def _write_refusal(self, participant: str, path: Path, reason: str) -> None:
        """A file the switch would not take at all still gets an outcome and leaves the inbox."""
        outbox, archive = self._folders(participant)
        write_atomically(outbox / f"{path.name}.rejected.txt", reason.encode() + b"\n")
        os.replace(path, archive / path.name)

    def _folders(self, participant: str) -> tuple[Path, Path]:
        outbox, archive = self.outbox / participant, self.archive / participant
        outbox.mkdir(parents=True, exist_ok=True)
        archive.mkdir(parents=True, exist_ok=True)
        return outbox, archive

    def _write_outcome(self, participant: str, path: Path, batch, meta: dict) -> None:
        """Runs in the file thread: outbox files written atomically, then the original archived."""
        outbox, archive = self._folders(participant)
        if batch.state == REJECTED:
            lines = [f"{where}: {reason}" for where, reason in batch.problems]
            write_atomically(outbox / f"{path.name}.rejected.txt", "\n".join(lines).encode() + b"\n")
        else:
            rows = list(zip(range(len(batch.ids)), batch.ids, batch.statuses))
            write_atomically(outbox / f"{path.name}.results.csv", results_csv(rows))
            if batch.format == "pain.001":
                now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
                report = pain002(meta, rows, now, batch.batch_id[:35])
                write_atomically(outbox / f"{path.name}.pain002.xml", report)
        os.replace(path, archive / path.name)

    def close(self) -> None:
        self._files.shutdown(wait=False, cancel_futures=True)
