"""What a cleanup is asked to do: :class:`CleanupConfig`, validated and completed by :func:`resolve_config`.

Ownership: an endpoint is this run's when it carries every ownership label, the run label
``vertex-loadtest-run=<sanitize_label_value(run name)>`` (when a run name is given) plus any
``--label KEY=VALUE``. Explicit endpoints (resource names or bare ids) are removed only when they
carry those labels too, unless ``force``. See docs/architecture.md for where this sits.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import StrEnum

from vertex_loadtest.errors import BadInput
from vertex_loadtest.labels import RUN_LABEL_KEY, label_problem, sanitize_label_value

PROJECT_ENVS = ("VERTEX_LOADTEST_PROJECT", "CLOUD_ML_PROJECT_ID", "GOOGLE_CLOUD_PROJECT")
LOCATION_ENVS = ("VERTEX_LOADTEST_LOCATION", "CLOUD_ML_REGION")
#: 45 minutes: a GPU deploy in flight when the run stopped can take 15-30 minutes to finish when
#: it cannot be cancelled, then undeploying takes minutes and deleting about one.
DEFAULT_DEADLINE_SECONDS = 2700.0
DEFAULT_OLDER_THAN_SECONDS = 6 * 3600.0


class InFlight(StrEnum):
    """What to do with a deploy still in flight on an endpoint to remove."""

    CANCEL = "cancel"  # ask the service to cancel it, then wait until it has stopped
    WAIT = "wait"  # only wait until it has finished


@dataclass
class CleanupConfig:
    """What to clean and how (the fields mirror the CLI flags and the component's parameters)."""

    project: str
    location: str
    run_name: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    endpoints: list[str] = field(default_factory=list)
    run_state: str = ""
    api_endpoint: str = ""
    dry_run: bool = False
    force: bool = False
    keep_on_success: bool = False
    delete_models: bool = False
    sweep: bool = False
    older_than_seconds: float = DEFAULT_OLDER_THAN_SECONDS
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS
    in_flight: str = InFlight.CANCEL
    max_workers: int = 8
    max_passes: int = 8
    poll_initial_seconds: float = 0.2
    poll_max_seconds: float = 10.0
    label_key: str = RUN_LABEL_KEY
    #: ``projects/P/locations/L/pipelineJobs/JOB`` (the exit task's final status): fills an empty
    #: project, location or run name.
    pipeline_job: str = ""

    def ownership_labels(self) -> dict[str, str]:
        """The labels an endpoint must carry to be this run's."""
        labels = dict(self.labels)
        if self.run_name:
            labels.setdefault(self.label_key, sanitize_label_value(self.run_name))
        return labels

    def sweep_labels(self) -> dict[str, str]:
        """The ``--label`` filter of a sweep, besides the run label's mere presence."""
        return {k: v for k, v in self.labels.items() if k != self.label_key}

    def current_run_label(self) -> str:
        """The run label value of the current run ("" without a run name): never swept."""
        return sanitize_label_value(self.run_name) if self.run_name else ""

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.location}"


def _unresolved(value: str) -> bool:
    return not value or value.startswith("{{$")


def resolve_config(config: CleanupConfig) -> CleanupConfig:
    """Validates ``config`` (raising :class:`BadInput`) and fills project/location from the environment.

    An empty (or unresolved ``{{$...}}``) project, location or run name comes from
    ``pipeline_job`` (``projects/P/locations/L/pipelineJobs/JOB``), else project and location from
    ``VERTEX_LOADTEST_PROJECT``/``CLOUD_ML_PROJECT_ID``/``GOOGLE_CLOUD_PROJECT`` and
    ``VERTEX_LOADTEST_LOCATION``/``CLOUD_ML_REGION``.

    Args:
        config: The configuration as given; completed in place.

    Returns:
        The same configuration, complete and checked.
    """
    job = config.pipeline_job.split("/")
    if len(job) == 6 and job[0] == "projects" and job[2] == "locations" and job[4] == "pipelineJobs":
        config.project = config.project if not _unresolved(config.project) else job[1]
        config.location = config.location if not _unresolved(config.location) else job[3]
        config.run_name = config.run_name if not _unresolved(config.run_name) else job[5]
    if _unresolved(config.project):
        config.project = next((os.environ[e] for e in PROJECT_ENVS if os.environ.get(e)), "")
    if _unresolved(config.location):
        config.location = next((os.environ[e] for e in LOCATION_ENVS if os.environ.get(e)), "")
    if not config.project:
        raise BadInput("project is missing: pass --project (or the component's project parameter)")
    if not config.location:
        raise BadInput("location is missing: pass --location, e.g. us-central1")
    if _unresolved(config.run_name):
        config.run_name = ""
    problem = label_problem(config.labels)
    if problem:
        raise BadInput(f"--label: {problem}")
    if config.in_flight not in tuple(InFlight):
        raise BadInput(f"in_flight {config.in_flight!r}: use 'cancel' or 'wait'")
    config.in_flight = InFlight(config.in_flight)
    if config.deadline_seconds <= 0:
        raise BadInput(f"deadline {config.deadline_seconds!r} must be positive")
    if config.keep_on_success and not config.run_state:
        raise BadInput("--keep-on-success needs the run's state: pass --run-state SUCCEEDED (or FAILED, ...)")
    if config.sweep and config.endpoints:
        raise BadInput("--sweep finds endpoints by label and age; do not combine it with --endpoint")
    if not config.sweep and not config.endpoints and not config.ownership_labels():
        raise BadInput(
            "nothing identifies this run's endpoints: pass --run-name, --label KEY=VALUE or --endpoint NAME "
            "(or --sweep)"
        )
    config.endpoints = [
        expand_endpoint_name(name, config.project, config.location) for name in config.endpoints
    ]
    config.run_state = config.run_state.upper()
    return config


def expand_endpoint_name(name: str, project: str, location: str) -> str:
    """``123`` -> ``projects/P/locations/L/endpoints/123``; full resource names are checked and kept."""
    name = name.strip().strip("/")
    if name.isdigit():
        return f"projects/{project}/locations/{location}/endpoints/{name}"
    parts = name.split("/")
    if len(parts) == 6 and parts[0] == "projects" and parts[2] == "locations" and parts[4] == "endpoints":
        return name
    raise BadInput(
        f"endpoint {name!r} is neither an endpoint id nor projects/PROJECT/locations/LOCATION/endpoints/ID"
    )
