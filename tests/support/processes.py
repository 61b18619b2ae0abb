"""Every process a test starts must be gone when the test ends, passed or failed.

Helpers that start processes (SwitchProcess, LatencyProbe, ...) `track` them; the autouse
fixture `stop_processes_left_running` (tests/conftest.py) kills, after each test, every tracked
process started during it that is still running. A process a longer-lived fixture started
before the test (a module-scoped switch) is left to that fixture's own cleanup.
"""
import signal
import subprocess
import time
from pathlib import Path

_tracked: list[subprocess.Popen] = []


def track(process: subprocess.Popen) -> subprocess.Popen:
    _tracked.append(process)
    return process


def running() -> list[subprocess.Popen]:
    """Tracked processes not yet exited (and forgets the others)."""
    _tracked[:] = [process for process in _tracked if process.poll() is None]
    return list(_tracked)


def kill_all_except(keep: list[subprocess.Popen]) -> list[list[str]]:
    """SIGKILLs and reaps every tracked running process not in `keep`; returns their commands."""
    killed = []
    for process in running():
        if not any(process is kept for kept in keep):
            process.kill()
            process.wait()
            killed.append([str(arg) for arg in process.args])
    running()
    return killed


def suspend(process: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """SIGSTOPs `process` and returns once it is stopped: the signal is delivered asynchronously,
    and a process not yet stopped can still answer what a test sends right after the kill."""
    process.send_signal(signal.SIGSTOP)
    deadline = time.monotonic() + timeout_s
    while _state(process.pid) != "T":
        if time.monotonic() > deadline:
            raise TimeoutError(f"{process.args[0]} not stopped {timeout_s}s after SIGSTOP")
        time.sleep(0.001)


def _state(pid: int) -> str:
    """The process's state letter in /proc (T: stopped)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
