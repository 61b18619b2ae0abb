"""CPU used during the load, by the generator and (when it runs on this machine) the switch:
on a small box they share the cores, so either may be what limits throughput."""

import json
import os
import resource
import time

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def generator_cpu_s() -> float:
    """This process and its reaped children (the worker processes), user + system."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def local_switch_pid(data_dir, ports: set[int]) -> int | None:
    """The switch's pid from DATA_DIR/server.json, if that file describes a switch we load (one
    listening on one of `ports`)."""
    try:
        info = json.loads((data_dir / "server.json").read_text())
        pid = int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pid if info.get("port") in ports and process_cpu_s(pid) is not None else None


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU of another process (Linux /proc), None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S  # utime, stime


class CpuMeter:
    """`with CpuMeter(switch_pid) as meter: ...`, then `meter.usage()`."""

    def __init__(self, switch_pid: int | None):
        self._pid = switch_pid
        self._start = self._end = (0.0, 0.0, None)

    def _sample(self) -> tuple:
        return time.monotonic(), generator_cpu_s(), self._pid and process_cpu_s(self._pid)

    def __enter__(self) -> "CpuMeter":
        self._start = self._sample()
        return self

    def __exit__(self, *exc_info) -> None:
        self._end = self._sample()

    def usage(self) -> dict:
        """CPU seconds and cores kept busy (1.0 = one core); the switch's None if unknown."""
        (start_s, generator_0, switch_0), (end_s, generator_1, switch_1) = self._start, self._end
        wall_s = max(end_s - start_s, 1e-9)
        switch_s = None if switch_0 is None or switch_1 is None else switch_1 - switch_0
        return {
            "wall_s": round(wall_s, 3),
            "generator_s": round(generator_1 - generator_0, 3),
            "generator_cores": round((generator_1 - generator_0) / wall_s, 3),
            "switch_s": None if switch_s is None else round(switch_s, 3),
            "switch_cores": None if switch_s is None else round(switch_s / wall_s, 3),
            "cores_available": os.cpu_count(),
        }
