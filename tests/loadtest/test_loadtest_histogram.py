"""The latency histogram against exact nearest-rank percentiles computed from sorted samples."""

import math
import pickle
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from payswitch.loadtest.histogram import BUCKETS, MAX_TRACKED_US, RELATIVE_ERROR, Histogram

PERCENTS = (0, 1, 50, 90, 99, 99.9, 100)


def exact_percentile(values: list[int], percent: float) -> int:
    """Nearest rank: the smallest value with at least percent% of the values at or below it."""
    ordered = sorted(values)
    if percent == 0:
        return ordered[0]
    rank = math.ceil(round(percent * len(ordered) / 100, 9))
    return ordered[max(1, rank) - 1]


def histogram_of(values) -> Histogram:
    histogram = Histogram()
    for value in values:
        histogram.record(value)
    return histogram


def test_small_values_are_exact():
    values = [5, 1, 200, 3, 3, 99, 255, 0, 17, 42]
    histogram = histogram_of(values)
    for percent in PERCENTS:
        assert histogram.percentile(percent) == exact_percentile(values, percent), percent
    assert (histogram.total, histogram.min_us, histogram.max_us) == (10, 0, 255)
    assert histogram.mean_us == sum(values) / len(values)


def test_nearest_rank_on_a_hundred_values():
    values = list(range(1, 101))
    percentiles = histogram_of(values).percentiles((50, 90, 99, 99.9, 100))
    assert percentiles == {50: 50, 90: 90, 99: 99, 99.9: 100, 100: 100}


def test_p999_of_a_thousand_values_is_the_999th():
    # 99.9 * 1000 / 100 is 999.0000000000001 in floating point; the rank must still be 999.
    values = list(range(1, 1001))
    assert histogram_of([v % 256 for v in values]).percentile(99.9) == \
        exact_percentile([v % 256 for v in values], 99.9)


def test_empty_histogram_reports_zeros():
    assert Histogram().percentiles(PERCENTS) == dict.fromkeys(PERCENTS, 0)


def test_negative_values_count_as_zero():
    histogram = histogram_of([-5, 3])
    assert (histogram.min_us, histogram.percentile(50), histogram.max_us) == (0, 0, 3)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 10**9), min_size=1, max_size=300))
def test_large_values_within_the_relative_error(values):
    histogram = histogram_of(values)
    for percent in PERCENTS:
        exact = exact_percentile(values, percent)
        reported = histogram.percentile(percent)
        assert exact <= reported <= exact * (1 + RELATIVE_ERROR), (percent, exact, reported)
    assert histogram.percentile(100) == max(values)
    assert histogram.percentile(0) == min(values)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 10**7), max_size=100), st.lists(st.integers(0, 10**7),
                                                              max_size=100))
def test_merge_equals_recording_everything_in_one(first, second):
    merged = histogram_of(first)
    merged.merge(histogram_of(second))
    together = histogram_of(first + second)
    assert merged.counts == together.counts
    assert (merged.total, merged.min_us, merged.max_us, merged.sum_us) == \
        (together.total, together.min_us, together.max_us, together.sum_us)


def test_merge_into_empty_takes_the_other_minimum():
    merged = Histogram()
    merged.merge(histogram_of([700, 900]))
    assert (merged.min_us, merged.max_us, merged.total) == (700, 900, 2)


def test_memory_is_fixed_whatever_the_values():
    histogram = histogram_of(random.Random(1).randrange(10**10) for _ in range(10_000))
    assert len(histogram.counts) == BUCKETS < 5000


def test_values_beyond_the_range_land_in_the_last_bucket_and_keep_the_exact_max():
    histogram = histogram_of([10, MAX_TRACKED_US * 4])
    assert histogram.counts[-1] == 1
    assert histogram.percentile(100) == MAX_TRACKED_US * 4


def test_pickles_sparsely_and_round_trips():
    histogram = histogram_of([1, 2, 2, 5000, 10**8])
    data = pickle.dumps(histogram)
    assert len(data) < 300
    copy = pickle.loads(data)
    assert copy.counts == histogram.counts
    assert copy.percentiles(PERCENTS) == histogram.percentiles(PERCENTS)


def test_a_value_recorded_n_times_at_once_counts_as_n_records():
    at_once, one_by_one = Histogram(), Histogram()
    for value, count in [(7, 3), (300, 16), (70_000, 1), (0, 2), (300, 5)]:
        at_once.record(value, count)
        for _ in range(count):
            one_by_one.record(value)
    assert at_once.counts == one_by_one.counts
    assert (at_once.total, at_once.min_us, at_once.max_us, at_once.sum_us) == \
        (one_by_one.total, one_by_one.min_us, one_by_one.max_us, one_by_one.sum_us)
