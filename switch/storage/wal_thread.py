"""The WAL's one thread: calls handed over through a SimpleQueue, results handed back through
the event loop's call_soon_threadsafe.

Not `loop.run_in_executor`: per call, concurrent.futures makes a Future and a work item, wraps
the Future in an asyncio one, and takes and releases Python-level locks (the Future's condition,
the executor's idle semaphore) on both threads. The WAL hands its thread a call per fsync, up to
several thousand a second, each on the event loop's path.

After a call the thread lingers: it waits up to `linger_s` for the next and, if none comes, says
so to the loop. So the group commit's hold (switch/storage/wal_writer.py) is timed by a thread
that is awake already, at the one moment it holds the GIL anyway: waking it for a timer of its
own, and again to end it, cost the loop two GIL hand-overs per fsync while it was busiest.
"""
import asyncio
import queue
import threading
from typing import Any, Callable


class WalThread:
    def __init__(self, name: str, linger_s: float = 0.0,
                 on_linger_over: Callable[[int], None] | None = None):
        """`on_linger_over(calls_run)` runs in the loop of the last call when no call came
        within `linger_s` of that one's end (0: no lingering), `calls_run` counting it."""
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._linger_s = linger_s if linger_s > 0 and on_linger_over is not None else None
        self._on_linger_over = on_linger_over
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

    def close(self) -> None:
        """Runs what was handed over, then ends the thread."""
        self._calls.put(None)
        self._thread.join()

    def _serve(self) -> None:
        calls_run = 0
        wait_s: float | None = None  # None: until a call comes
        loop: asyncio.AbstractEventLoop | None = None
        while True:
            try:
                handed = self._calls.get(timeout=wait_s)
            except queue.Empty:
                wait_s = None
                if loop is not None:  # always: lingering follows a call
                    _report(loop, self._on_linger_over, calls_run)
                continue
            if handed is None:
                return
            loop, future, function, args = handed
            result = error = None
            try:
                result = function(*args)
            except Exception as raised:  # the caller's future carries it
                error = raised
            calls_run += 1
            _report(loop, _settle, future, result, error)
            wait_s = self._linger_s


def _report(loop: asyncio.AbstractEventLoop, callback: Callable, *args) -> None:
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:  # the loop is closed: nobody waits for it any more
        pass


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
