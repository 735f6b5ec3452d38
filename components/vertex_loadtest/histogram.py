"""Latency histograms fine enough to gate on, and the one percentile definition the project uses.

Locust rounds response times to about two significant digits (147 ms is logged as 150 ms), so its
percentiles can be ~5% off. Here a sample falls in a logarithmic bucket ``RATIO**i <= x < RATIO**(i+1)``
and is represented by the bucket's lower bound, so a reported value is at most 0.2% below the truth
and never above the largest sample. Memory is bounded by the number of buckets (about 5,500 from
1 ms to 60 s), whatever the run length, and histograms merge by adding counts.

Percentiles are *nearest rank* on the recorded distribution: the p-th percentile of N samples is the
bucket value of the ceil(p * N)-th smallest sample. The Locust HTML report, ``stats.json``, KFP
Metrics and the gate all use this function. Pure Python; safe to import anywhere.
"""

import bisect
import itertools
import math
from collections.abc import Iterable, Mapping

RATIO = 1.002
_INVERSE_LOG_RATIO = 1 / math.log(RATIO)
_BOUNDS: dict[int, float] = {}  # bucket index -> lower bound, filled as buckets are first seen

#: Percentiles reported in stats.json, by key.
PERCENTILES = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99, "p99.9": 0.999}


def bucket(value_ms: float) -> float:
    """Returns the lower bound of the bucket holding ``value_ms`` (0 for non-positive values)."""
    if value_ms <= 0:
        return 0.0
    index = math.floor(math.log(value_ms) * _INVERSE_LOG_RATIO)
    bound = _BOUNDS.get(index)
    if bound is None:
        exact = RATIO**index
        # Six significant digits keep the JSON readable; rounding must never lift a bound above the
        # samples it holds.
        bound = _BOUNDS[index] = min(float(f"{exact:.6g}"), exact)
    return bound


def rank(count: int, quantile: float) -> int:
    """Returns the 1-based nearest rank of ``quantile`` (0..1] among ``count`` samples."""
    # The epsilon keeps 0.95 * 100 == 95.00000000000001 from rounding up to rank 96.
    return max(1, math.ceil(quantile * count - 1e-9))


def percentile(histogram: Mapping[float, int], count: int, quantile: float) -> float:
    """Returns the nearest-rank ``quantile`` of a bucket histogram holding ``count`` samples (0 if empty)."""
    if count <= 0:
        return 0
    wanted = rank(count, quantile)
    seen = 0
    value = 0.0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= wanted:
            return value
    return value


def merge(histograms: Iterable[Mapping[float, int]]) -> dict[float, int]:
    """Returns the sum of bucket histograms (as recorded by different processes or workers)."""
    merged: dict[float, int] = {}
    for histogram in histograms:
        for value, count in histogram.items():
            merged[float(value)] = merged.get(float(value), 0) + count
    return merged


def readable(value_ms: float) -> float:
    """Rounds a latency to 3 significant digits (6.52816 -> 6.53, 1234.5 -> 1230): what a number read by
    people can mean. Reports, summaries and KFP Metrics show these; ``stats.json`` keeps full precision."""
    return float(f"{value_ms:.3g}")


def summarize(
    histogram: Mapping[float, int], count: int, total_ms: float, min_ms: float, max_ms: float
) -> dict[str, float | None]:
    """Returns min/mean/p50/p90/p95/p99/p99.9/max in ms; every value is None when there are no samples.

    Min, mean and max are exact; percentiles are bucket values, as in the HTML report.
    """
    if count <= 0:
        return {"min": None, "mean": None, **dict.fromkeys(PERCENTILES), "max": None}
    summary: dict[str, float | None] = {"min": min_ms, "mean": round(total_ms / count, 3)}
    for key, quantile in PERCENTILES.items():
        summary[key] = percentile(histogram, count, quantile)
    summary["max"] = max_ms
    return summary


class PercentileCache:
    """``percentile`` for callers that ask one histogram for many percentiles in a row.

    Locust's CSV writer and HTML report ask each request's histogram for a dozen percentiles every
    second, one call each; sorting a few thousand buckets per call blocks the generator's event
    loop for milliseconds while responses wait. This sorts and sums once per histogram state (the
    same object, bucket count and sample count) and answers each percentile by bisection.
    Histograms must only grow between calls (Locust's and ours do).
    """

    def __init__(self) -> None:
        self._key: tuple[Mapping[float, int], int, int] | None = None
        self._values: list[float] = []
        self._cumulative: list[int] = []

    def __call__(self, histogram: Mapping[float, int], count: int, quantile: float) -> float:
        if count <= 0:
            return 0
        key = (histogram, len(histogram), count)
        if self._key is None or self._key[0] is not histogram or self._key[1:] != key[1:]:
            self._values = sorted(histogram)
            self._cumulative = list(itertools.accumulate(histogram[value] for value in self._values))
            self._key = key
        if not self._values:
            return 0
        index = bisect.bisect_left(self._cumulative, rank(count, quantile))
        return self._values[min(index, len(self._values) - 1)]
