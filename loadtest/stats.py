"""Measurements in one-second ticks: what a process recorded each second, merged across
processes into run totals and a live line per second."""

from .histogram import Histogram
from .live import LiveLine
from .workload import KINDS

TRANSPORT_PREFIX = "transport:"  # error codes of failures that are not answers from the switch


class Tick:
    """What one process measured in one second (`seq`, counted from the start), or since its
    last tick when `final`. Only requests sent after the warm-up are recorded; `replies`
    counts every reply, for the live rate during the warm-up."""

    __slots__ = ("seq", "final", "replies", "requests", "transfers_acknowledged", "errors",
                 "retries", "latency", "send_lag", "measured_s")

    def __init__(self, seq: int = 0, final: bool = False):
        self.seq = seq
        self.final = final
        self.replies = 0
        self.requests = 0
        self.transfers_acknowledged = 0
        self.errors: dict[str, int] = {}  # code -> failed requests or items
        self.retries: dict[str, int] = {}  # why -> requests resent on reconnecting (warm-up too)
        self.latency = [Histogram() for _ in KINDS]  # per request kind, microseconds
        self.send_lag = Histogram()  # open loop: actual minus intended send time
        self.measured_s = 0.0  # the last recorded reply, in seconds after measuring began

    def merge(self, other: "Tick") -> None:
        self.replies += other.replies
        self.requests += other.requests
        self.transfers_acknowledged += other.transfers_acknowledged
        for code, count in other.errors.items():
            self.errors[code] = self.errors.get(code, 0) + count
        for reason, count in other.retries.items():
            self.retries[reason] = self.retries.get(reason, 0) + count
        for mine, theirs in zip(self.latency, other.latency):
            mine.merge(theirs)
        self.send_lag.merge(other.send_lag)
        self.measured_s = max(self.measured_s, other.measured_s)

    def all_latency(self) -> Histogram:
        merged = Histogram()
        for histogram in self.latency:
            merged.merge(histogram)
        return merged

    def transport_failures(self) -> int:
        return sum(n for code, n in self.errors.items() if code.startswith(TRANSPORT_PREFIX))


class Stats:
    """Run totals, and the live line of each second once every running process reported it."""

    def __init__(self, workers: int, warmup_s: float, live: LiveLine):
        self.total = Tick()
        self._warmup_s = warmup_s
        self._live = live
        self._running = set(range(workers))
        self._seconds: dict[int, tuple[set, Tick]] = {}  # seq -> (workers reported, merged)

    def add(self, worker: int, tick: Tick) -> None:
        self.total.merge(tick)
        if tick.final:
            self._running.discard(worker)
        else:
            reported, merged = self._seconds.setdefault(tick.seq, (set(), Tick(tick.seq)))
            reported.add(worker)
            merged.merge(tick)
        while self._seconds:
            seq = min(self._seconds)
            reported, merged = self._seconds[seq]
            if not self._running <= reported:
                break
            del self._seconds[seq]
            self._live.show(self._line(merged))

    def _line(self, tick: Tick) -> str:
        errors = sum(self.total.errors.values())
        if tick.seq <= self._warmup_s:
            return f"{tick.seq:>5d}s  warm-up  {tick.replies:>9,d} req/s  errors {errors:,d}"
        p = tick.all_latency().percentiles((50, 99))
        return (f"{tick.seq:>5d}s  {tick.requests:>9,d} req/s  "
                f"{tick.transfers_acknowledged:>10,d} transfers/s  "
                f"p50 {p[50] / 1000:8.3f} ms  p99 {p[99] / 1000:8.3f} ms  errors {errors:,d}")
