"""The run configuration handed from the load-test runtime to the Locust processes it starts.

The runtime writes a :class:`RunConfig` as JSON and names the file in ``VERTEX_LOADTEST_RUN_CONFIG``;
our Locust plugin and ``VertexEndpointUser`` read it. Its defaults are the one place for these
numbers: a Locust started by hand (no file) runs with them too. Pure Python (no locust import).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vertex_loadtest.durations import parse_duration

ENV = "VERTEX_LOADTEST_RUN_CONFIG"
#: Seconds a request may take before it counts as a ``timeout`` failure.
DEFAULT_REQUEST_TIMEOUT_S = 60.0
#: Seconds between progress lines in the log.
DEFAULT_PROGRESS_INTERVAL_S = 5.0
#: How long a Locust master waits for its workers (Locust's own default, 0, waits forever).
DEFAULT_EXPECT_WORKERS_MAX_WAIT_S = 30
#: How long a run goes before an ``abort_on_breach`` SLO may stop it.
DEFAULT_ABORT_GRACE = "30s"


@dataclass(frozen=True)
class RunConfig:
    """What every Locust process of one run needs to know.

    Attributes:
        predict_path: The ``:predict`` path on the host; empty: ``VERTEX_AI_ENDPOINT_PATH`` or ``/predict``.
        anonymous: Send no bearer token (loopback hosts, ``auth=none``).
        payloads: Request bodies or instances, round robin; None: the built-in instance.
        request_timeout_s: Per-request timeout.
        target_rps: Open-model target rate over all users; None: closed model.
        progress_interval_s: Seconds between progress lines.
        dump_path: Where the master writes everything ``stats.json`` needs at quit; empty: nowhere.
        expect_workers: Locust worker processes the master waits for.
        worker_replicas: The worker replicas' addresses (for error messages).
        abort_on_breach: SLO expressions that stop the run early once breached.
        abort_grace_s: No early abort before this many seconds.
        expect_workers_max_wait_s: How long the master waits for its workers.
        script: How the HTML report names the locustfile (the team's, not our plugin).
    """

    predict_path: str = ""
    anonymous: bool = False
    payloads: list[Any] | None = None
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    target_rps: float | None = None
    progress_interval_s: float = DEFAULT_PROGRESS_INTERVAL_S
    dump_path: str = ""
    expect_workers: int = 0
    worker_replicas: tuple[str, ...] = ()
    abort_on_breach: tuple[str, ...] = ()
    abort_grace_s: float = parse_duration(DEFAULT_ABORT_GRACE, "abort grace")
    expect_workers_max_wait_s: int = DEFAULT_EXPECT_WORKERS_MAX_WAIT_S
    script: str = ""

    def write(self, path: Path) -> dict[str, str]:
        """Writes this configuration to ``path``; returns the environment entry that points a child at it."""
        path.write_text(json.dumps(dataclasses.asdict(self)), encoding="utf-8")
        return {ENV: str(path)}

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        """Reads a configuration :meth:`write` wrote."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        data["worker_replicas"] = tuple(data.get("worker_replicas", ()))
        data["abort_on_breach"] = tuple(data.get("abort_on_breach", ()))
        return cls(**data)

    @classmethod
    def from_environment(cls) -> RunConfig:
        """Returns the configuration of this run, or the defaults when Locust was started by hand."""
        path = os.environ.get(ENV)
        return cls.load(path) if path else cls()
