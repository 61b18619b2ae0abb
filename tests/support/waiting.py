"""Waiting for a condition with a generous deadline, never for a fixed time."""
import asyncio
import time


def wait_until(condition, what: str, timeout_s: float = 120.0, poll_s: float = 0.05):
    """Polls `condition()` until it returns something true, and returns that; fails naming
    `what` after `timeout_s` (generous: a busy machine may be slow, never wrong)."""
    deadline = time.monotonic() + timeout_s
    while not (result := condition()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s}s"
        time.sleep(poll_s)
    return result


async def eventually(condition, what: str, timeout_s: float = 60.0, poll_s: float = 0.01) -> None:
    """wait_until for a test running on an event loop: polls without blocking it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, f"{what}: not within {timeout_s}s"
        await asyncio.sleep(poll_s)
