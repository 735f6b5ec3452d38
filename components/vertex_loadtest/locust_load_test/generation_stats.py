"""What a generative run records per request name besides latency: TTFT, TPOT and ITL histograms
(0.2% buckets, like latency), exact token counts, where they came from, and good requests; and over
time, per window of the run, TTFT, TPOT and output tokens for the HTML report's charts. Pure Python:
Locust processes record it, the master merges the workers' snapshots, the runtime turns it into the
``generation`` object of a stats entry (``vertex_loadtest.stats``) and the report's section.
"""

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from vertex_loadtest import histogram
from vertex_loadtest.locust_load_test import goodput
from vertex_loadtest.locust_load_test.recorder import Latencies
from vertex_loadtest.locust_load_test.streaming import Generation

_LATENCIES = ("ttft", "tpot", "itl")
_COUNTERS = ("input_tokens", "output_tokens", "sources")


@dataclass
class GenerationRecord:
    """Generation numbers of one request name (or of a whole run, once merged)."""

    ttft: Latencies = field(default_factory=Latencies)
    tpot: Latencies = field(default_factory=Latencies)  # requests with more than one output token
    itl: Latencies = field(default_factory=Latencies)
    input_tokens: Counter[int] = field(default_factory=Counter)
    output_tokens: Counter[int] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)  # token_count_source -> requests
    good: int = 0  # successful requests that met every goodput SLO
    goodput_slos: list[str] = field(default_factory=list)

    def add(self, generation: Generation, good: bool) -> None:
        self.ttft.add(generation.ttft_ms)
        if generation.output_tokens > 1:
            self.tpot.add(generation.tpot_ms)
        for gap in generation.itl_ms:
            self.itl.add(gap)
        if generation.input_tokens is not None:
            self.input_tokens[generation.input_tokens] += 1
        self.output_tokens[generation.output_tokens] += 1
        self.sources[generation.token_count_source] += 1
        self.good += good

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {name: getattr(self, name).to_dict() for name in _LATENCIES}
        data.update({name: sorted(getattr(self, name).items()) for name in _COUNTERS})
        return {**data, "good": self.good, "goodput_slos": self.goodput_slos}

    def merge(self, data: dict[str, Any]) -> None:
        for name in _LATENCIES:
            getattr(self, name).merge(data[name])
        for name in _COUNTERS:
            counter = getattr(self, name)
            for key, count in data[name]:
                counter[key if name == "sources" else int(key)] += count
        self.good += data["good"]
        self.goodput_slos = self.goodput_slos or list(data["goodput_slos"])


@dataclass
class Window:
    """All requests that finished within one window of the run (the charts' points)."""

    ttft: Counter[float] = field(default_factory=Counter)  # bucket -> requests
    tpot: Counter[float] = field(default_factory=Counter)
    output_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ttft": sorted(self.ttft.items()),
            "tpot": sorted(self.tpot.items()),
            "tokens": self.output_tokens,
        }

    def merge(self, data: dict[str, Any]) -> None:
        for name in ("ttft", "tpot"):
            for bucket, count in data[name]:
                getattr(self, name)[float(bucket)] += count
        self.output_tokens += data["tokens"]


class GenerationRecorder:
    """Per request name ("POST chat"): a :class:`GenerationRecord`, goodput against ``slos``; and
    the run's :class:`Window` of every ``window_s`` seconds."""

    def __init__(self, slos: list[goodput.RequestSlo] | None = None, window_s: int = 1) -> None:
        self.slos = slos or []
        self.window_s = max(1, int(window_s))
        self.entries: dict[str, GenerationRecord] = {}
        self.series: dict[int, Window] = {}

    def record(self, name: str, generation: Generation, at: float | None = None) -> None:
        """Records one successful streamed request that ended ``at`` (Unix time; default now)."""
        entry = self.entries.get(name)
        if entry is None:
            entry = self.entries[name] = GenerationRecord(goodput_slos=[slo.text for slo in self.slos])
        values = {
            "ttft_ms": generation.ttft_ms,
            "tpot_ms": generation.tpot_ms,
            "itl_max_ms": max(generation.itl_ms, default=0.0),
            "e2e_ms": generation.e2e_ms,
        }
        entry.add(generation, good=goodput.met(self.slos, values))
        start = int((time.time() if at is None else at) // self.window_s * self.window_s)
        window = self.series.get(start)
        if window is None:
            window = self.series[start] = Window()
        window.ttft[histogram.bucket(generation.ttft_ms)] += 1
        if generation.output_tokens > 1:
            window.tpot[histogram.bucket(generation.tpot_ms)] += 1
        window.output_tokens += generation.output_tokens

    def to_dict(self) -> dict[str, Any]:
        return {
            "entries": {name: entry.to_dict() for name, entry in self.entries.items()},
            "window_s": self.window_s,
            "series": {str(start): window.to_dict() for start, window in sorted(self.series.items())},
        }

    def take(self) -> dict[str, Any]:
        """Returns what was recorded since the last call and starts afresh (a worker's report)."""
        snapshot = self.to_dict()
        self.entries, self.series = {}, {}
        return snapshot

    def merge(self, snapshot: dict[str, Any]) -> None:
        for name, data in snapshot.get("entries", {}).items():
            self.entries.setdefault(name, GenerationRecord()).merge(data)
        for start, data in snapshot.get("series", {}).items():
            self.series.setdefault(int(start), Window()).merge(data)


def merge_all(snapshots: Any) -> dict[str, Any] | None:
    """Merges the records of several request names (a run's totals); None when there is none."""
    merged = None
    for data in snapshots:
        merged = merged or GenerationRecord()
        merged.merge(data)
    return merged.to_dict() if merged else None


def summary(data: dict[str, Any] | None, requests: int, duration_s: float) -> dict[str, Any] | None:
    """Returns the ``generation`` object of a stats entry, or None when nothing was generated.

    Args:
        data: A merged :class:`GenerationRecord` as a dict (None: not a generative entry).
        requests: All requests of the entry, failures included (goodput's denominator).
        duration_s: The measured duration of the run.
    """
    if data is None:
        return None
    record = GenerationRecord()
    record.merge(data)
    output = _tokens(record.output_tokens)
    sources = sorted(record.sources)
    goodput = None
    if record.goodput_slos:
        goodput = {
            "slos": record.goodput_slos,
            "requests": record.good,
            "per_s": round(record.good / duration_s, 3),
            "fraction": round(record.good / requests, 6) if requests else 0.0,
        }
    return {
        "ttft_ms": record.ttft.summary(),
        "tpot_ms": record.tpot.summary(),
        "itl_ms": record.itl.summary(),
        "input_tokens": _tokens(record.input_tokens),
        "output_tokens": output,
        "output_tokens_per_s": round(output["sum"] / duration_s, 3),
        "token_count_source": sources[0] if len(sources) == 1 else ("mixed" if sources else None),
        "goodput": goodput,
    }


def _tokens(counts: Counter[int]) -> dict[str, Any]:
    """Sum, mean, min, nearest-rank percentiles and max of exact token counts (null without any)."""
    count = sum(counts.values())
    total = sum(tokens * n for tokens, n in counts.items())
    if not count:
        return {"sum": 0, "mean": None, "min": None, **dict.fromkeys(histogram.PERCENTILES), "max": None}
    summary: dict[str, Any] = {"sum": total, "mean": round(total / count, 3), "min": min(counts)}
    as_floats = {float(tokens): n for tokens, n in counts.items()}
    for key, quantile in histogram.PERCENTILES.items():
        summary[key] = int(histogram.percentile(as_floats, count, quantile))
    return {**summary, "max": max(counts)}
