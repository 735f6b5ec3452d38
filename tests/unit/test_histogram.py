"""Percentile semantics (nearest rank on the recorded distribution) and bucket accuracy."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vertex_loadtest import histogram


def exact_nearest_rank(samples, quantile):
    ordered = sorted(samples)
    return ordered[math.ceil(quantile * len(ordered) - 1e-9) - 1]


@pytest.mark.parametrize(
    ("samples", "quantile", "expected"),
    [
        ([10, 20, 30, 40], 0.5, 20),  # rank ceil(2) = 2
        ([10, 20, 30, 40], 0.75, 30),
        ([10, 20, 30, 40], 0.76, 40),
        (list(range(1, 101)), 0.95, 95),  # 0.95 * 100 must not round up to rank 96
        (list(range(1, 101)), 0.99, 99),
        (list(range(1, 101)), 1.0, 100),
        ([5], 0.5, 5),
        ([5, 500], 0.95, 500),  # small samples: p95 is the max, never above it
    ],
)
def test_golden_percentiles(samples, quantile, expected):
    counts = histogram.merge([{histogram.bucket(s): 1} for s in samples])
    value = histogram.percentile(counts, len(samples), quantile)
    assert value == pytest.approx(expected, rel=0.002)
    assert value <= expected


def test_empty_histogram_has_no_percentiles():
    assert histogram.percentile({}, 0, 0.95) == 0
    assert set(histogram.summarize({}, 0, 0.0, 0.0, 0.0).values()) == {None}


@given(st.floats(min_value=0.01, max_value=3_600_000, allow_nan=False))
def test_bucket_is_at_most_point_two_percent_below_the_value(value):
    assert value * (1 - 0.002) - 1e-9 <= histogram.bucket(value) <= value * (1 + 1e-9)


@given(
    st.lists(st.floats(min_value=1, max_value=60_000), min_size=1, max_size=400),
    st.sampled_from(list(histogram.PERCENTILES.values())),
)
def test_percentiles_within_half_a_percent_from_1ms_to_60s(samples, quantile):
    counts = histogram.merge([{histogram.bucket(s): 1} for s in samples])
    truth = exact_nearest_rank(samples, quantile)
    assert histogram.percentile(counts, len(samples), quantile) == pytest.approx(truth, rel=0.005)


@given(st.lists(st.floats(min_value=1, max_value=60_000), min_size=2, max_size=200), st.integers(1, 5))
def test_merging_split_histograms_equals_one_histogram(samples, parts):
    whole = histogram.merge([{histogram.bucket(s): 1} for s in samples])
    shards = [histogram.merge([{histogram.bucket(s): 1} for s in samples[i::parts]]) for i in range(parts)]
    assert histogram.merge(shards) == whole


def test_memory_is_bounded_by_buckets_not_samples():
    counts = histogram.merge([{histogram.bucket(1 + i * 0.37): 1} for i in range(200_000)])
    assert len(counts) < math.log(60_000) / math.log(histogram.RATIO) + 10


@given(
    st.lists(st.lists(st.floats(min_value=0.5, max_value=60_000), min_size=1, max_size=60), min_size=1),
    st.lists(st.sampled_from([0.5, 0.66, 0.9, 0.95, 0.99, 0.999, 1.0]), min_size=1, max_size=8),
)
def test_cached_percentiles_equal_percentile_as_a_histogram_grows(batches, quantiles):
    cached = histogram.PercentileCache()
    recorded: dict[float, int] = {}
    count = 0
    for batch in batches:  # the same dict object, growing between rounds of questions
        for value in batch:
            recorded[histogram.bucket(value)] = recorded.get(histogram.bucket(value), 0) + 1
        count += len(batch)
        for quantile in quantiles:
            assert cached(recorded, count, quantile) == histogram.percentile(recorded, count, quantile)
    other = {1.0: 3}  # another histogram with the same shape is not answered from the cache
    assert cached(other, 3, 0.5) == 1.0
    assert cached({}, 0, 0.5) == 0


@pytest.mark.parametrize(
    ("value", "shown"), [(6.52816, 6.53), (27.2403, 27.2), (1234.5, 1230.0), (0.04567, 0.0457), (0, 0.0)]
)
def test_readable_latencies_have_three_significant_digits(value, shown):
    assert histogram.readable(value) == shown
