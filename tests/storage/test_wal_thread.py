"""The WAL's thread (switch/storage/wal_thread.py): calls run in order in one thread, results
and exceptions come back through the loop, and a failing call does not end the thread."""
import asyncio
import threading

import pytest

from payswitch.switch.storage.wal_thread import WalThread


async def test_calls_run_in_order_in_one_thread_and_report_back_through_the_loop():
    thread = WalThread("wal-test")
    try:
        loop = asyncio.get_running_loop()
        ran = []
        futures = [thread.run(loop, lambda n=n: ran.append((n, threading.current_thread().name))
                              or n * 10) for n in range(5)]
        assert await asyncio.gather(*futures) == [0, 10, 20, 30, 40]
        assert ran == [(n, "wal-test") for n in range(5)]
    finally:
        thread.close()


async def test_an_exception_reaches_the_caller_and_a_failing_call_does_not_end_the_thread():
    thread = WalThread("wal-test")
    try:
        loop = asyncio.get_running_loop()
        with pytest.raises(OSError, match="disk on fire"):
            await thread.run(loop, _raise, OSError("disk on fire"))
        thread.call(_raise, ValueError("nobody waits for this one"))
        assert await thread.run(loop, lambda: "still here") == "still here"
    finally:
        thread.close()


def _raise(error: Exception) -> None:
    raise error
