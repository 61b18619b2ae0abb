"""Every process a test starts must be gone when the test ends, passed or failed.

Helpers that start processes (SwitchProcess, LatencyProbe, ...) `track` them; the autouse
fixture `stop_processes_left_running` (tests/conftest.py) kills, after each test, every tracked
process started during it that is still running. A process a longer-lived fixture started
before the test (a module-scoped switch) is left to that fixture's own cleanup.
"""
import subprocess

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
