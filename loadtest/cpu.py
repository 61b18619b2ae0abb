"""CPU used during the load, by the generator and by the switch (its own counters, the `process`
section of `stats`, children included): on a small box they share the cores, so either may be
what limits throughput; and what each spends per acknowledged transfer."""

import os
import resource
import time
from collections.abc import Callable


def generator_cpu_s() -> float:
    """This process and its reaped children (the worker processes), user + system."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class CpuMeter:
    """`with CpuMeter(switch_cpu_s) as meter: ...`, then `meter.usage(transfers)`;
    `switch_cpu_s()` reads the switch's CPU seconds, None when it cannot."""

    def __init__(self, switch_cpu_s: Callable[[], float | None]):
        self._switch_cpu_s = switch_cpu_s
        self._start = self._end = (0.0, 0.0, None)

    def __enter__(self) -> "CpuMeter":
        switch_s = self._switch_cpu_s()
        self._start = (time.monotonic(), generator_cpu_s(), switch_s)
        return self

    def __exit__(self, exc_type, *exc_info) -> None:
        wall_s, generator_s = time.monotonic(), generator_cpu_s()
        self._end = (wall_s, generator_s, None if exc_type else self._switch_cpu_s())

    def usage(self, transfers_acknowledged: int) -> dict:
        """CPU seconds, cores kept busy (1.0 = one core) and µs per acknowledged transfer over
        the load (warm-up and drain included: `transfers_acknowledged` counts the same span);
        the switch's None if unknown."""
        (start_s, generator_0, switch_0), (end_s, generator_1, switch_1) = self._start, self._end
        wall_s = max(end_s - start_s, 1e-9)
        generator_s = generator_1 - generator_0
        switch_s = None if switch_0 is None or switch_1 is None else switch_1 - switch_0

        def per_transfer_us(cpu_s: float | None) -> float | None:
            if cpu_s is None or not transfers_acknowledged:
                return None
            return round(cpu_s / transfers_acknowledged * 1e6, 2)

        return {
            "wall_s": round(wall_s, 3),
            "generator_s": round(generator_s, 3),
            "generator_cores": round(generator_s / wall_s, 3),
            "switch_s": None if switch_s is None else round(switch_s, 3),
            "switch_cores": None if switch_s is None else round(switch_s / wall_s, 3),
            "cores_available": os.cpu_count(),
            "transfers_acknowledged": transfers_acknowledged,
            "generator_cpu_us_per_transfer": per_transfer_us(generator_s),
            "server_cpu_us_per_transfer": per_transfer_us(switch_s),
        }
