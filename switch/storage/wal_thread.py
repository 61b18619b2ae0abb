"""The WAL's one thread: calls handed over through a SimpleQueue, results handed back through
the event loop's call_soon_threadsafe.

Not `loop.run_in_executor`: per call, concurrent.futures makes a Future and a work item, wraps
the Future in an asyncio one, and takes and releases Python-level locks (the Future's condition,
the executor's idle semaphore) on both threads. The WAL hands its thread a call per fsync, up to
several thousand a second, each on the event loop's path.
"""
import asyncio
import queue
import threading
from typing import Any, Callable

import structlog

log = structlog.get_logger("switch.wal")


class WalThread:
    def __init__(self, name: str):
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        # A daemon: a process that exits without closing its WAL does not wait for it; nothing
        # it had not fsynced was acknowledged.
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def run(self, loop: asyncio.AbstractEventLoop, function: Callable, *args) -> asyncio.Future:
        """`function(*args)` in the thread, after the calls handed over before; its result (or
        exception) in the returned future of `loop`."""
        future = loop.create_future()
        self._calls.put((loop, future, function, args))
        return future

    def call(self, function: Callable, *args) -> None:
        """`function(*args)` in the thread, after the calls handed over before; nobody waits
        for it (it reports back by itself)."""
        self._calls.put((None, None, function, args))

    def close(self) -> None:
        """Runs what was handed over, then ends the thread."""
        self._calls.put(None)
        self._thread.join()

    def _serve(self) -> None:
        while (handed := self._calls.get()) is not None:
            loop, future, function, args = handed
            result = error = None
            try:
                result = function(*args)
            except Exception as raised:  # the caller's future carries it
                error = raised
                if future is None:  # nobody to tell: say so, and go on with the next call
                    log.exception("wal_thread_call_failed", call=function.__qualname__)
            if future is not None:
                try:
                    loop.call_soon_threadsafe(_settle, future, result, error)
                except RuntimeError:  # the loop is closed: nobody waits for it any more
                    pass


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
