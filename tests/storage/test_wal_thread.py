"""The WAL's thread (switch/storage/wal_thread.py): calls run in order in one thread, results
and exceptions come back through the loop, a failing call does not end the thread, and after a
call the thread reports to the loop when no other came within its linger time."""
import asyncio
import threading

import pytest

from payswitch.switch.storage.wal_thread import WalThread

TEST_TIMEOUT_S = 30.0


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
        assert await thread.run(loop, lambda: "still here") == "still here"
    finally:
        thread.close()


async def test_after_a_call_the_loop_hears_when_no_other_came_within_the_linger_time():
    loop = asyncio.get_running_loop()
    reports: asyncio.Queue = asyncio.Queue()
    thread = WalThread("wal-test", 0.001,
                       lambda calls_run: reports.put_nowait((calls_run, threading.get_ident())))
    try:
        await thread.run(loop, lambda: None)
        await thread.run(loop, lambda: None)
        calls_run, reported_in = await asyncio.wait_for(reports.get(), TEST_TIMEOUT_S)
        # each call ends a linger or begins one; the last one's is reported, in the loop
        assert reported_in == threading.get_ident()
        while calls_run < 2:
            calls_run, _ = await asyncio.wait_for(reports.get(), TEST_TIMEOUT_S)
        assert calls_run == 2
        await asyncio.sleep(0.05)  # lingering is over until the next call: no further report
        assert reports.empty()
    finally:
        thread.close()


async def test_a_call_within_the_linger_time_ends_it_unreported():
    loop = asyncio.get_running_loop()
    reports: list[int] = []
    thread = WalThread("wal-test", TEST_TIMEOUT_S * 2, reports.append)
    try:
        for _ in range(3):
            await thread.run(loop, lambda: None)
        await asyncio.wait_for(asyncio.to_thread(thread.close), TEST_TIMEOUT_S)
        assert reports == []
    finally:
        thread.close()


def _raise(error: Exception) -> None:
    raise error
