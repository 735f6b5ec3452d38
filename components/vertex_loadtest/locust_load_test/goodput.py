"""Per-request SLOs for goodput: ``ttft<500ms,tpot<50ms``. Pure Python.

A request is *good* when it succeeded and met every SLO given (failures count against goodput).
Metrics: ``ttft``, ``tpot``, ``itl`` (every gap of the request), ``e2e`` (vLLM's ``e2el`` too).
Each SLO is ``METRIC<VALUE`` or ``METRIC<=VALUE`` with ``ms`` or ``s`` (a bare number is ms), or
vLLM's ``METRIC:VALUE`` (milliseconds, met when at or under the value).
"""

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from vertex_loadtest.errors import BadInput

METRICS = {"ttft": "ttft_ms", "tpot": "tpot_ms", "itl": "itl_max_ms", "e2e": "e2e_ms", "e2el": "e2e_ms"}
_SLO = re.compile(
    r"\s*(?P<metric>[a-z0-9]+)\s*(?P<op><=|<|:)\s*(?P<number>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>ms|s)?\s*\Z"
)
_UNITS = {"ms": 1.0, "s": 1000.0, None: 1.0}
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ":": operator.le,
}


@dataclass(frozen=True)
class RequestSlo:
    """One per-request SLO: ``field`` (a ``streaming.Generation`` attribute) compared to ``bound_ms``."""

    text: str
    field: str
    op: str
    bound_ms: float

    def met(self, value_ms: float) -> bool:
        return _OPERATORS[self.op](value_ms, self.bound_ms)


def parse(text: str) -> list[RequestSlo]:
    """Parses ``ttft<500ms,tpot<50ms`` (empty: no goodput).

    Raises:
        BadInput: an SLO is malformed or names an unknown metric.
    """
    slos = []
    for part in filter(str.strip, (text or "").split(",")):
        match = _SLO.match(part.lower())
        if not match:
            raise BadInput(
                f"goodput SLO {part.strip()!r} is not METRIC<VALUE: write e.g. 'ttft<500ms,tpot<50ms' "
                f"(metrics: ttft, tpot, itl, e2e; units ms or s)"
            )
        if match["metric"] not in METRICS:
            raise BadInput(
                f"goodput SLO {part.strip()!r}: unknown metric {match['metric']!r}: use ttft, tpot, itl, e2e"
            )
        bound = float(match["number"]) * _UNITS[match["unit"]]
        slos.append(RequestSlo(part.strip(), METRICS[match["metric"]], match["op"], bound))
    return slos


def met(slos: list[RequestSlo], values: dict[str, float]) -> bool:
    """Whether a successful request's ``values`` (``ttft_ms``, ``tpot_ms``, ``itl_max_ms``, ``e2e_ms``)
    meet every SLO."""
    return all(slo.met(values[slo.field]) for slo in slos)
