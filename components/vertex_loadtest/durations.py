"""Durations as Locust writes run times (also ``--older-than``): ``30s``, ``5m``, ``1h30m`` or seconds."""

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
