"""A log-linear (HDR-style) latency histogram in microseconds: fixed memory, mergeable.

Values below 2^SUB_BITS are counted exactly. Above, each power-of-two range is split into
2^(SUB_BITS-1) equal buckets, so a bucket's width is at most 1/2^(SUB_BITS-1) (0.79%) of its
values. Percentiles are nearest-rank: the smallest bucket holding the rank-th value, reported as
its highest value (never above the exact maximum), so they err upwards by at most that width.
"""

from fractions import Fraction
from math import ceil

__all__ = ["Histogram", "MAX_TRACKED_US", "RELATIVE_ERROR"]

SUB_BITS = 8
_EXACT = 1 << SUB_BITS  # values below are their own bucket
_HALF = _EXACT >> 1
MAX_TRACKED_US = (1 << 36) - 1  # about 19 hours; larger values land in the last bucket
RELATIVE_ERROR = 1 / _HALF


def bucket_index(value_us: int) -> int:
    if value_us < _EXACT:
        return value_us
    shift = value_us.bit_length() - SUB_BITS
    return (shift << (SUB_BITS - 1)) + (value_us >> shift)


def bucket_highest_us(index: int) -> int:
    """The largest value counted in bucket `index`."""
    if index < _EXACT:
        return index
    shift = (index >> (SUB_BITS - 1)) - 1
    sub = index - (shift << (SUB_BITS - 1))
    return ((sub + 1) << shift) - 1


BUCKETS = bucket_index(MAX_TRACKED_US) + 1


class Histogram:
    __slots__ = ("counts", "total", "min_us", "max_us", "sum_us")

    def __init__(self):
        self.counts = [0] * BUCKETS
        self.total = 0
        self.min_us = 0
        self.max_us = 0
        self.sum_us = 0

    def record(self, value_us: int, count: int = 1) -> None:
        """Count `value_us` `count` times."""
        if value_us < _EXACT:
            if value_us < 0:
                value_us = 0
            self.counts[value_us] += count
        else:  # bucket_index, inlined: this runs once per reply or so
            shift = value_us.bit_length() - SUB_BITS
            self.counts[min((shift << (SUB_BITS - 1)) + (value_us >> shift), BUCKETS - 1)] += count
        if self.total == 0 or value_us < self.min_us:
            self.min_us = value_us
        if value_us > self.max_us:
            self.max_us = value_us
        self.total += count
        self.sum_us += value_us * count

    def merge(self, other: "Histogram") -> None:
        if not other.total:
            return
        counts = self.counts
        for index, count in enumerate(other.counts):
            if count:
                counts[index] += count
        self.min_us = other.min_us if not self.total else min(self.min_us, other.min_us)
        self.max_us = max(self.max_us, other.max_us)
        self.total += other.total
        self.sum_us += other.sum_us

    def percentiles(self, percents) -> dict:
        """{percent: value_us} for each percent in 0..100 (0 is the minimum); all 0 when empty."""
        if not self.total:
            return {p: 0 for p in percents}
        ranks = sorted((max(1, ceil(Fraction(str(p)) * self.total / 100)), p) for p in percents)
        values = {}
        seen = 0
        wanted = iter(ranks)
        rank, percent = next(wanted)
        for index, count in enumerate(self.counts):
            seen += count
            while seen >= rank:
                values[percent] = min(bucket_highest_us(index), self.max_us)
                rank, percent = next(wanted, (None, None))
                if rank is None:
                    return self._exact_ends(values)
        raise AssertionError("histogram counts disagree with its total")

    def _exact_ends(self, values: dict) -> dict:
        for percent in values:
            if percent == 0:
                values[percent] = self.min_us
            elif percent == 100:
                values[percent] = self.max_us
        return values

    def percentile(self, percent: float) -> int:
        return self.percentiles((percent,))[percent]

    @property
    def mean_us(self) -> float:
        return self.sum_us / self.total if self.total else 0.0

    # Pickled sparsely: worker processes send one per second.
    def __getstate__(self):
        sparse = {i: c for i, c in enumerate(self.counts) if c}
        return sparse, self.total, self.min_us, self.max_us, self.sum_us

    def __setstate__(self, state) -> None:
        sparse, self.total, self.min_us, self.max_us, self.sum_us = state
        self.counts = [0] * BUCKETS
        for index, count in sparse.items():
            self.counts[index] = count
