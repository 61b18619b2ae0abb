"""The switch's CPU time, its child processes' included: the `process` section of `stats`, from
which a load generator works out the server's CPU per acknowledged transfer."""

import os
import resource
from pathlib import Path

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def process_cpu() -> dict:
    """CPU seconds (user + system) since start: this process; its children, both those that
    have exited (RUSAGE_CHILDREN counts only reaped ones: finished snapshot builders and batch
    parsers) and those still running (the decode worker, a builder at work), read from
    /proc/<pid>/stat. Without /proc a running child counts only once it has exited. At the
    moment a child exits its CPU may be missed by one reading."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    running = sum(filter(None, map(_cpu_of_pid, _running_children())))
    own_s = own.ru_utime + own.ru_stime
    children_s = reaped.ru_utime + reaped.ru_stime + running
    return {"cpu_s": round(own_s + children_s, 6), "own_cpu_s": round(own_s, 6),
            "children_cpu_s": round(children_s, 6)}


def _running_children() -> set[int]:
    children: set[int] = set()
    try:
        for task in Path("/proc/self/task").iterdir():
            children.update(int(pid) for pid in (task / "children").read_text().split())
    except OSError:  # no /proc, or no children files in it
        pass
    return children


def _cpu_of_pid(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:  # gone meanwhile
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S  # utime, stime
