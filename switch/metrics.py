"""Counters kept on the hot path as plain integers and fixed-bucket arrays.

The event loop and the WAL thread only add to these; nothing here touches prometheus_client.
The metrics listener (switch/metrics_server.py) reads them when scraped, and `stats` reads
their percentiles. Each histogram has one writer (the event loop or the WAL thread); readers
copy the bucket list in one step, so a scrape never needs a lock.
"""
import bisect

from payswitch.protocol import OPS

# Upper bounds, Prometheus `le` semantics (a value equal to a bound is in that bucket).
REQUEST_SECONDS_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                           0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
FSYNC_SECONDS_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1,
                         0.25, 0.5, 1.0, 2.5)
GROUP_RECORDS_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
# Requests whose op is not in the contract (or unreadable) share one label value, so a client
# cannot grow the label set.
UNKNOWN_OP = "unknown"
PERCENTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99))


class Histogram:
    __slots__ = ("bounds", "counts", "sum", "max")

    def __init__(self, bounds: tuple):
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum: float = 0
        self.max: float = 0

    def observe(self, value, count: int = 1) -> None:
        """`count` observations of `value`."""
        self.counts[bisect.bisect_left(self.bounds, value)] += count
        self.sum += value * count
        if value > self.max:
            self.max = value

    def merged(self, other: "Histogram") -> "Histogram":
        merged = Histogram(self.bounds)
        merged.counts = [a + b for a, b in zip(self.counts, other.counts)]
        merged.sum = self.sum + other.sum
        merged.max = max(self.max, other.max)
        return merged

    def percentiles(self) -> dict[str, float | None]:
        """count, p50/p90/p99 (the upper bound of the bucket holding that rank, never more than
        the maximum seen) and max; None when nothing was observed."""
        counts = list(self.counts)
        total = sum(counts)
        summary: dict[str, float | None] = {"count": total}
        for name, quantile in PERCENTILES:
            summary[name] = None if total == 0 else self._bound_at(counts, quantile * total)
        summary["max"] = None if total == 0 else self.max
        return summary

    def _bound_at(self, counts: list, rank: float):
        seen = 0
        for index, count in enumerate(counts):
            seen += count
            if seen >= rank and count:
                return min(self.bounds[index], self.max) if index < len(self.bounds) \
                    else self.max
        return self.max


class RequestMetrics:
    """Requests answered, by op and code, and how long each op took on the event loop: from
    taking the frame to queuing its reply (the wait for the fsync is the WAL's histogram).
    record() runs once per request, so it is written out flat (no calls but one bisect)."""

    def __init__(self):
        self.by_op: dict[str, tuple[dict[str, int], Histogram]] = {}  # op -> (code -> n, times)
        self.frames_taken = 0  # frames taken to answer, the one still being answered included

    def record(self, op, code: str, seconds: float) -> None:
        entry = self.by_op.get(op)
        if entry is None:
            entry = self._entry(op)
        answered, histogram = entry
        answered[code] = answered.get(code, 0) + 1
        histogram.counts[bisect.bisect_left(histogram.bounds, seconds)] += 1
        histogram.sum += seconds
        if seconds > histogram.max:
            histogram.max = seconds

    def record_group(self, op: str, count: int, error_codes: list[str], seconds: float) -> None:
        """`count` requests answered together in `seconds` (each took that long): those whose
        code is in `error_codes` failed with it, the others were answered ok."""
        entry = self.by_op.get(op)
        if entry is None:
            entry = self._entry(op)
        answered, histogram = entry
        ok = count - len(error_codes)
        if ok:
            answered["ok"] = answered.get("ok", 0) + ok
        for code in error_codes:
            answered[code] = answered.get(code, 0) + 1
        histogram.observe(seconds, count)

    def _entry(self, op) -> tuple[dict[str, int], Histogram]:
        if op not in OPS:
            op = UNKNOWN_OP
        entry = self.by_op.get(op)
        if entry is None:
            entry = self.by_op[op] = ({}, Histogram(REQUEST_SECONDS_BUCKETS))
        return entry

    def answered(self) -> dict[tuple[str, str], int]:
        """(op, code) -> requests answered."""
        return {(op, code): count for op, (answered, _) in list(self.by_op.items())
                for code, count in dict(answered).items()}

    def seconds(self) -> dict[str, Histogram]:
        return {op: histogram for op, (_, histogram) in list(self.by_op.items())}

    def errors_by_code(self) -> dict[str, int]:
        errors: dict[str, int] = {}
        for (_, code), count in self.answered().items():
            if code != "ok":
                errors[code] = errors.get(code, 0) + count
        return errors

    def all_ops(self) -> Histogram:
        total = Histogram(REQUEST_SECONDS_BUCKETS)
        for histogram in self.seconds().values():
            total = total.merged(histogram)
        return total
