"""The run configuration handed from the load-test runtime to the Locust processes it starts.

The runtime writes it as JSON and names the file in ``VERTEX_LOADTEST_RUN_CONFIG``; our Locust plugin
and ``VertexEndpointUser`` read it. Pure Python (no locust import).
"""

import json
import os
from pathlib import Path
from typing import Any

ENV = "VERTEX_LOADTEST_RUN_CONFIG"


def load() -> dict[str, Any]:
    """Returns the configuration of this run, or {} when Locust was started by hand."""
    path = os.environ.get(ENV)
    return json.loads(Path(path).read_text(encoding="utf-8")) if path else {}


def write(config: dict[str, Any], path: Path) -> dict[str, str]:
    """Writes ``config`` to ``path``; returns the environment entry that points the child at it."""
    path.write_text(json.dumps(config), encoding="utf-8")
    return {ENV: str(path)}
