"""What our Locust plugin records besides Locust's own stats: latency of successful and of failed
requests kept apart (fast 429/503s must not pull p95 down), and failures by kind.

Pure Python, no locust import: Locust processes record and serialize it, the master merges the
workers' snapshots, and the runtime turns the final one into ``stats.json``.
"""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from vertex_loadtest import histogram
from vertex_loadtest.stats import ErrorKind


@dataclass
class Latencies:
    """A latency histogram with exact count, sum, min and max (ms)."""

    histogram: Counter[float] = field(default_factory=Counter)
    count: int = 0
    total_ms: float = 0.0
    min_ms: float | None = None
    max_ms: float = 0.0

    def add(self, value_ms: float) -> None:
        self.histogram[histogram.bucket(value_ms)] += 1
        self.count += 1
        self.total_ms += value_ms
        self.min_ms = value_ms if self.min_ms is None else min(self.min_ms, value_ms)
        self.max_ms = max(self.max_ms, value_ms)

    def merge(self, data: dict[str, Any]) -> None:
        for value, count in data["histogram"]:
            self.histogram[float(value)] += count
        self.count += data["count"]
        self.total_ms += data["total_ms"]
        if data["min_ms"] is not None:
            self.min_ms = data["min_ms"] if self.min_ms is None else min(self.min_ms, data["min_ms"])
        self.max_ms = max(self.max_ms, data["max_ms"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "histogram": sorted(self.histogram.items()),
            "count": self.count,
            "total_ms": self.total_ms,
            "min_ms": self.min_ms,
            "max_ms": self.max_ms,
        }

    def summary(self) -> dict[str, float | None]:
        return histogram.summarize(self.histogram, self.count, self.total_ms, self.min_ms or 0.0, self.max_ms)


@dataclass
class Entry:
    success: Latencies = field(default_factory=Latencies)
    failure: Latencies = field(default_factory=Latencies)
    errors: Counter[str] = field(default_factory=Counter)


class Recorder:
    """Per request name ("POST :predict"): success and failure latencies, failures by kind."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}

    def record(self, name: str, response_time_ms: float | None, error_kind: str | None) -> None:
        entry = self.entries.get(name)
        if entry is None:
            entry = self.entries[name] = Entry()
        if error_kind is not None:
            entry.errors[error_kind] += 1
        if response_time_ms is not None:
            (entry.success if error_kind is None else entry.failure).add(response_time_ms)

    def to_dict(self) -> dict[str, Any]:
        return {
            name: {"success": e.success.to_dict(), "failure": e.failure.to_dict(), "errors": dict(e.errors)}
            for name, e in self.entries.items()
        }

    def take(self) -> dict[str, Any]:
        """Returns what was recorded since the last call and starts afresh (a worker's report)."""
        snapshot = self.to_dict()
        self.entries = {}
        return snapshot

    def merge(self, snapshot: dict[str, Any]) -> None:
        for name, data in snapshot.items():
            entry = self.entries.setdefault(name, Entry())
            entry.success.merge(data["success"])
            entry.failure.merge(data["failure"])
            entry.errors.update(data["errors"])


def classify(status: int | None, exception: BaseException | str | None) -> ErrorKind:
    """Returns the kind of a failed request."""
    if status in (401, 403):
        return ErrorKind.AUTH
    if status == 429:
        return ErrorKind.THROTTLED
    if status and 500 <= status < 600:
        return ErrorKind.SERVER
    if status and 400 <= status < 500:
        return ErrorKind.CLIENT
    name, text = type(exception).__name__.lower(), str(exception).lower()
    if "malformed" in name:
        return ErrorKind.MALFORMED
    if "timeout" in name or "timed out" in text:
        return ErrorKind.TIMEOUT
    if isinstance(exception, ConnectionError | OSError) or any(
        word in text for word in ("connection", "refused", "reset", "broken pipe", "unreachable")
    ):
        return ErrorKind.CONNECTION
    return ErrorKind.OTHER
