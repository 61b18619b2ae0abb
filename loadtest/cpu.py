"""CPU used during the load, by the generator and by the switch (its own counters, the `process`
section of `stats`, children included): on a small box they share the cores, so either may be
what limits throughput; and what each spends per acknowledged transfer."""

import os
import resource
import time
from dataclasses import dataclass


def generator_cpu_s() -> float:
    """This process and its reaped children (the worker processes), user + system."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


SAME_PROCESS_SLACK_S = 0.5  # uptime and our clock advance alike between readings of one process


@dataclass(frozen=True)
class SwitchCpuReading:
    node: str  # the address the operator client was on
    uptime_s: float  # the switch's
    read_at_s: float  # our monotonic clock
    cpu_s: float


async def read_switch_cpu(client) -> SwitchCpuReading | None:
    """The switch's CPU seconds, children included, from its `stats`; None from a switch
    without the `process` section."""
    stats = await client.stats()
    if "process" not in stats:
        return None
    return SwitchCpuReading(client.address, stats["uptime_s"], time.monotonic(),
                            stats["process"]["cpu_s"])


@dataclass
class SwitchCpu:
    """The switch's CPU read just before and just after the load (on the operator connections
    set-up and verification open anyway)."""
    before: SwitchCpuReading | None = None
    after: SwitchCpuReading | None = None

    def used_s(self) -> float | None:
        """CPU seconds between the readings; None unless both come from one switch process
        (a failover or a restart in between starts another count)."""
        before, after = self.before, self.after
        if before is None or after is None or before.node != after.node:
            return None
        drift_s = (after.uptime_s - before.uptime_s) - (after.read_at_s - before.read_at_s)
        return after.cpu_s - before.cpu_s if abs(drift_s) < SAME_PROCESS_SLACK_S else None


class CpuMeter:
    """`with CpuMeter() as meter: ...` around the load, then `meter.usage(transfers, switch)`."""

    def __init__(self):
        self._start = self._end = (0.0, 0.0)

    def __enter__(self) -> "CpuMeter":
        self._start = (time.monotonic(), generator_cpu_s())
        return self

    def __exit__(self, *exc_info) -> None:
        self._end = (time.monotonic(), generator_cpu_s())

    def usage(self, transfers_acknowledged: int, switch: SwitchCpu) -> dict:
        """CPU seconds, cores kept busy (1.0 = one core) and µs per acknowledged transfer over
        the load (warm-up and drain included: `transfers_acknowledged` counts the same span);
        the switch's None if unknown."""
        (start_s, generator_0), (end_s, generator_1) = self._start, self._end
        wall_s = max(end_s - start_s, 1e-9)
        generator_s = generator_1 - generator_0
        switch_s = switch.used_s()

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
