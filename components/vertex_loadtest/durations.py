"""Durations as Locust writes run times (``30s``, ``5m``, ``1h30m`` or seconds), parsed and printed."""

import re

from vertex_loadtest.errors import BadInput

_RUN_TIME = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")


def parse_duration(text: str, what: str = "run time") -> int:
    """Returns whole seconds for a duration such as ``30s``, ``5m``, ``1h30m`` or ``90``."""
    cleaned = str(text).strip().lower().replace(" ", "")
    if cleaned.isdigit():
        seconds = int(cleaned)
    else:
        match = _RUN_TIME.match(cleaned)
        if not cleaned or not match:
            raise BadInput(f"{what} {text!r} is not a duration: write it like 30s, 5m, 1h or 1h30m")
        seconds = int(match["h"] or 0) * 3600 + int(match["m"] or 0) * 60 + int(match["s"] or 0)
    if seconds <= 0:
        raise BadInput(f"{what} {text!r} must be longer than zero")
    return seconds


def format_seconds(seconds: float) -> str:
    """``3.2s``, ``42s``, ``3m05s``, ``6h02m``: a duration for people to read."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
