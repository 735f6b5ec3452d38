"""Find every endpoint a run created, undeploy every model on it, delete it; report; fail on leftovers.

The runtime of ``EndpointCleanupOp`` (the ``dsl.ExitHandler`` exit task) and of ``vertex-loadtest
cleanup``: both call :func:`run_cleanup`.

Discovery and ownership
    An endpoint is *owned* when it carries every ownership label: the run label
    ``vertex-loadtest-run=<sanitize_label_value(run name)>`` (when a run name is given) plus any
    ``--label KEY=VALUE``. Discovery lists endpoints by those labels (server-side ``filter``, checked
    again client-side) and/or takes explicit resource names (or bare ids). An explicit endpoint that
    is not owned is refused (never touched) unless ``force``; a refusal is bad input (exit 2) after
    everything else has been cleaned. Foreign endpoints -- same display name, another run's label,
    no label -- are never listed, so never touched.

Per endpoint (endpoints run in parallel threads), until it is gone or the deadline passes
    1. wait out in-flight operations on the endpoint (``in_flight="cancel"``, the default, first
       cancels in-flight deploys: a deploy in flight is not yet in ``deployed_models`` and makes the
       delete fail);
    2. undeploy every deployed model (from ``deployed_models``, not the traffic split: a model can be
       deployed with no traffic entry), models without traffic first; undeploying a model that
       carries traffic while others remain passes a traffic split naming every remaining model,
       summing to 100 (traffic moved proportionally);
    3. delete the endpoint. A FAILED_PRECONDITION (something was deployed meanwhile) starts a new
       pass. NotFound anywhere means "already gone" (idempotent: a re-run after a crash finishes the
       job). Every finished operation's ``error`` is checked.
    Calls are retried on 429 / 503 / 504 / connection errors with exponential backoff (api-core
    ``Retry``), each bounded by the overall deadline.

Optionally (``delete_models``) models carrying the ownership labels are deleted afterwards.

Sweeper (``sweep=True``, ``vertex-loadtest cleanup --sweep --older-than 6h``), for the day an exit
handler could not run. An endpoint is swept when all hold:
    * it carries the ``vertex-loadtest-run`` label (and any ``--label`` given);
    * it was created more than ``older_than`` ago (its ``create_time``);
    * its run is no longer running: the pipeline job ``projects/P/locations/L/pipelineJobs/<label
      value>`` is not QUEUED/PENDING/RUNNING/CANCELLING/PAUSED. A job that cannot be found (label values
      are sanitized job names and may differ from the job id) or read counts as not running: then
      the age alone decides, which is why the default age (6 h) is well above any test run.
    * it is not the current run's (``run_name``).

``keep_on_success`` with ``run_state == "SUCCEEDED"`` keeps every owned endpoint (promotion) and says
so. ``dry_run`` lists what would be done and changes nothing (exit 0).

Client wiring: ``aiplatform_v1`` clients at ``api_endpoint`` (parameter, else the environment
variable ``VERTEX_LOADTEST_API_ENDPOINT``, else ``{location}-aiplatform.googleapis.com``). An
``http://127.0.0.1:PORT`` endpoint (the rehearsal emulator) uses REST with anonymous credentials;
anything else uses Application Default Credentials.
"""

from __future__ import annotations

import concurrent.futures
import datetime as _dt
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vertex_loadtest.errors import BadInput, CleanupIncomplete, DeadlineReached, OperationFailed
from vertex_loadtest.labels import (
    RUN_LABEL_KEY,
    is_valid_label_key,
    is_valid_label_value,
    sanitize_label_value,
)
from vertex_loadtest.vertex_clients import VertexClients, vertex_clients

log = logging.getLogger(__name__)

PROJECT_ENVS = ("VERTEX_LOADTEST_PROJECT", "CLOUD_ML_PROJECT_ID", "GOOGLE_CLOUD_PROJECT")
LOCATION_ENVS = ("VERTEX_LOADTEST_LOCATION", "CLOUD_ML_REGION")
DEFAULT_DEADLINE_SECONDS = 1800.0
DEFAULT_OLDER_THAN_SECONDS = 6 * 3600
RUNNING_PIPELINE_STATES = frozenset(
    {
        "PIPELINE_STATE_QUEUED",
        "PIPELINE_STATE_PENDING",
        "PIPELINE_STATE_RUNNING",
        "PIPELINE_STATE_CANCELLING",
        "PIPELINE_STATE_PAUSED",
    }
)
#: google.rpc codes of a failed operation that another pass will not fix.
_PERMANENT_OPERATION_CODES = frozenset({3, 7, 16})  # INVALID_ARGUMENT, PERMISSION_DENIED, UNAUTHENTICATED

EXIT_OK = 0
EXIT_REMAINING = 1
EXIT_BAD_INPUT = 2


# --------------------------------------------------------------------------------------- configuration
@dataclass
class CleanupConfig:
    """What to clean and how. See the module docstring for the semantics."""

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
    in_flight: str = "cancel"
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
    for key, value in config.labels.items():
        if not is_valid_label_key(key) or not is_valid_label_value(value):
            raise BadInput(
                f"label {key}={value!r} is not a valid Google Cloud label: keys [a-z][a-z0-9_-]{{0,62}}, "
                "values [a-z0-9_-]{0,63}"
            )
    if config.in_flight not in ("cancel", "wait"):
        raise BadInput(f"in_flight {config.in_flight!r}: use 'cancel' or 'wait'")
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


# ------------------------------------------------------------------------------------------ pure logic
def undeploy_plan(
    deployed_ids: Sequence[str], traffic_split: dict[str, int]
) -> list[tuple[str, dict[str, int] | None]]:
    """The order to undeploy models in, with the traffic split to pass at each step.

    Models without traffic go first (in deployment order), then the others by increasing traffic.
    A step passes ``None`` when the model carries no traffic (nothing to move) or is the last one;
    otherwise a split naming every remaining model, summing to 100, traffic moved proportionally.

    Args:
        deployed_ids: ``Endpoint.deployed_models[].id`` in order.
        traffic_split: ``Endpoint.traffic_split`` (ids missing from it carry no traffic).

    Returns:
        ``[(deployed_model_id, traffic_split_or_None), ...]`` covering every deployed model.
    """
    position = {deployed_id: index for index, deployed_id in enumerate(deployed_ids)}
    current = {i: max(0, int(traffic_split.get(i, 0))) for i in deployed_ids}
    order = sorted(deployed_ids, key=lambda i: (current[i], position[i]))
    steps: list[tuple[str, dict[str, int] | None]] = []
    for index, deployed_id in enumerate(order):
        remaining = order[index + 1 :]
        if not remaining or current[deployed_id] == 0:
            steps.append((deployed_id, None))
            current.pop(deployed_id)
            continue
        current = redistribute({i: current[i] for i in remaining})
        steps.append((deployed_id, dict(current)))
    return steps


def redistribute(weights: dict[str, int]) -> dict[str, int]:
    """Scales ``weights`` to integers summing to exactly 100 (largest remainder; equal when all zero)."""
    if not weights:
        return {}
    total = sum(weights.values())
    keys = list(weights)
    raw = {k: (weights[k] * 100 / total if total else 100 / len(keys)) for k in keys}
    result = {k: int(raw[k]) for k in keys}
    short = 100 - sum(result.values())
    for k in sorted(keys, key=lambda k: (-(raw[k] - result[k]), keys.index(k)))[:short]:
        result[k] += 1
    return result


def is_owned(labels: dict[str, str], ownership: dict[str, str]) -> bool:
    """True when ``labels`` carry every ownership label (an empty ownership owns nothing)."""
    return bool(ownership) and all(labels.get(k) == v for k, v in ownership.items())


def label_filter(labels: dict[str, str], exists: Iterable[str] = ()) -> str:
    """Vertex list filter: ``labels.k="v" AND labels.k2:*``."""
    terms = [f'labels.{k}="{v}"' for k, v in sorted(labels.items())] + [f"labels.{k}:*" for k in exists]
    return " AND ".join(terms)


def sweep_verdict(
    labels: dict[str, str],
    created: _dt.datetime | None,
    now: _dt.datetime,
    older_than_seconds: float,
    pipeline_state: str | None,
    current_run_label: str = "",
    label_key: str = RUN_LABEL_KEY,
) -> tuple[bool, str]:
    """Whether the sweeper removes an endpoint, and why (see the module docstring for the rule)."""
    run = labels.get(label_key)
    if run is None:
        return False, f"no {label_key} label"
    if current_run_label and run == current_run_label:
        return False, "belongs to the current run"
    if created is None:
        return False, "creation time unknown"
    age = (now - created).total_seconds()
    if age < older_than_seconds:
        return False, f"only {format_seconds(age)} old (threshold {format_seconds(older_than_seconds)})"
    if pipeline_state in RUNNING_PIPELINE_STATES:
        return False, f"its run is still {pipeline_state.removeprefix('PIPELINE_STATE_').lower()}"
    why = (
        f"run {pipeline_state.removeprefix('PIPELINE_STATE_').lower()}" if pipeline_state else "run not found"
    )
    return True, f"{format_seconds(age)} old, {why}"


def format_seconds(seconds: float) -> str:
    """``42s``, ``3m05s``, ``6h02m``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


# --------------------------------------------------------------------------------------------- results
@dataclass
class DeployedModelInfo:
    id: str
    model: str
    display_name: str
    machine_type: str
    accelerator_type: str
    accelerator_count: int
    replicas: str
    traffic: int = 0


@dataclass
class EndpointResult:
    name: str
    display_name: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    explicit: bool = False
    #: deleted | already_gone | kept | would_delete | refused | skipped | remaining | failed
    action: str = "remaining"
    reason: str = ""
    created: str = ""
    lifetime_seconds: float | None = None
    seconds: float = 0.0
    deployed_models: list[DeployedModelInfo] = field(default_factory=list)
    models_undeployed: list[str] = field(default_factory=list)
    cancelled_operations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)

    @property
    def remains(self) -> bool:
        return self.action in ("remaining", "failed")

    @property
    def still_deployed(self) -> list[DeployedModelInfo]:
        """Deployed models last seen on the endpoint that the cleanup did not undeploy."""
        return [d for d in self.deployed_models if d.id not in self.models_undeployed]


@dataclass
class ModelResult:
    name: str
    display_name: str = ""
    action: str = "remaining"  # deleted | already_gone | kept | would_delete | remaining | failed
    reason: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def remains(self) -> bool:
        return self.action in ("remaining", "failed")


@dataclass
class CleanupReport:
    project: str
    location: str
    run_name: str
    run_state: str
    mode: str
    dry_run: bool
    ownership_labels: dict[str, str]
    api_endpoint: str
    started: str
    seconds: float = 0.0
    endpoints: list[EndpointResult] = field(default_factory=list)
    models: list[ModelResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def remaining(self) -> list[str]:
        return [e.name for e in self.endpoints if e.remains] + [m.name for m in self.models if m.remains]

    @property
    def refused(self) -> list[str]:
        return [e.name for e in self.endpoints if e.action == "refused"]

    @property
    def exit_code(self) -> int:
        if self.remaining:
            return EXIT_REMAINING
        if self.refused:
            return EXIT_BAD_INPUT
        return EXIT_OK

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["remaining"] = self.remaining
        data["refused"] = self.refused
        data["exit_code"] = self.exit_code
        data["ok"] = not self.remaining
        for endpoint, result in zip(data["endpoints"], self.endpoints, strict=True):
            endpoint["console_url"] = console_url(result.name)
            endpoint["remove_commands"] = (
                remove_commands(result.name, result.still_deployed) if result.remains else []
            )
        return data


def console_url(endpoint_name: str) -> str:
    parts = endpoint_name.split("/")
    project, location, endpoint_id = parts[1], parts[3], parts[5]
    return f"https://console.cloud.google.com/vertex-ai/locations/{location}/endpoints/{endpoint_id}?project={project}"


def remove_commands(endpoint_name: str, deployed_models: Iterable[Any]) -> list[str]:
    parts = endpoint_name.split("/")
    project, location, endpoint_id = parts[1], parts[3], parts[5]
    where = f"--project={project} --region={location}"
    commands = []
    for deployed in deployed_models:
        deployed_id = deployed["id"] if isinstance(deployed, dict) else deployed.id
        commands.append(
            f"gcloud ai endpoints undeploy-model {endpoint_id} --deployed-model-id={deployed_id} {where}"
        )
    commands.append(f"gcloud ai endpoints delete {endpoint_id} {where} --quiet")
    return commands


# ------------------------------------------------------------------------------------------ the runtime
def _utc_now() -> _dt.datetime:
    return _dt.datetime.now(tz=_dt.UTC)


def _timestamp(value: Any) -> _dt.datetime | None:
    """A proto-plus DatetimeWithNanoseconds (or None when unset)."""
    if value is None:
        return None
    try:
        if not value.timestamp():
            return None
    except (AttributeError, OSError, ValueError):
        return None
    return value if value.tzinfo else value.replace(tzinfo=_dt.UTC)


def _enum_name(value: Any) -> str:
    name = getattr(value, "name", str(value))
    return "" if name.endswith("UNSPECIFIED") else name


def describe_deployed_model(deployed: Any, traffic: int) -> DeployedModelInfo:
    dedicated = deployed.dedicated_resources
    if dedicated and dedicated.machine_spec.machine_type:
        spec = dedicated.machine_spec
        low = dedicated.min_replica_count
        return DeployedModelInfo(
            id=deployed.id,
            model=deployed.model,
            display_name=deployed.display_name,
            machine_type=spec.machine_type,
            accelerator_type=_enum_name(spec.accelerator_type),
            accelerator_count=int(spec.accelerator_count),
            replicas=f"{low}-{max(dedicated.max_replica_count, low)}",
            traffic=traffic,
        )
    automatic = deployed.automatic_resources
    return DeployedModelInfo(
        id=deployed.id,
        model=deployed.model,
        display_name=deployed.display_name,
        machine_type="automatic" if automatic else "shared",
        accelerator_type="",
        accelerator_count=0,
        replicas=f"{automatic.min_replica_count}-{automatic.max_replica_count}" if automatic else "",
        traffic=traffic,
    )


class _Cleaner:
    def __init__(self, config: CleanupConfig, clients: VertexClients) -> None:
        from google.api_core import exceptions, retry

        self.config = config
        self.exceptions = exceptions
        self.endpoints_client = clients.endpoints
        self.models_client = clients.models
        self.pipelines_client = clients.pipelines
        self.deadline = time.monotonic() + config.deadline_seconds
        self.ownership = config.ownership_labels()
        transient: tuple[type[BaseException], ...] = (
            exceptions.TooManyRequests,
            exceptions.ServiceUnavailable,
            exceptions.DeadlineExceeded,
            exceptions.GatewayTimeout,
        )
        try:
            import requests

            transient += (requests.exceptions.ConnectionError, requests.exceptions.Timeout)
        except ImportError:  # pragma: no cover - requests ships with google-auth's REST transport
            pass
        self._retry_predicate = retry.if_exception_type(*transient)  # type: ignore[arg-type]
        self._retry_cls = retry.Retry
        self._log_lock = threading.Lock()

    # ------------------------------------------------------------------------------- primitives
    def remaining_seconds(self) -> float:
        return self.deadline - time.monotonic()

    def call(self, method: Callable[..., Any], **kwargs: Any) -> Any:
        """One API call with api-core retries on transient errors, bounded by the overall deadline."""
        remaining = self.remaining_seconds()
        if remaining <= 0:
            raise DeadlineReached("the cleanup deadline passed")
        policy = self._retry_cls(
            predicate=self._retry_predicate, initial=0.2, maximum=5.0, multiplier=2.0, timeout=remaining
        )
        try:
            return method(retry=policy, timeout=min(60.0, max(1.0, remaining)), **kwargs)
        except self.exceptions.RetryError as error:
            raise DeadlineReached(f"retries exhausted at the deadline: {error.cause or error}") from error

    def wait(self, client: Any, operation_name: str) -> None:
        """Polls an operation until done; raises :class:`OperationFailed` when it ended with an error."""
        delay = self.config.poll_initial_seconds
        while True:
            operation = self.call(client.get_operation, request={"name": operation_name})
            if operation.done:
                if operation.HasField("error") and operation.error.code:
                    raise OperationFailed(operation_name, operation.error.code, operation.error.message)
                return
            if self.remaining_seconds() < delay:
                raise DeadlineReached(f"operation {operation_name} still running at the deadline")
            time.sleep(delay)
            delay = min(delay * 1.5, self.config.poll_max_seconds)

    def status_of(self, error: BaseException) -> str:
        """The google.rpc status name of an API error (REST carries it in the JSON body)."""
        response = getattr(error, "response", None)
        if response is not None:
            try:
                status = response.json().get("error", {}).get("status")
                if status:
                    return str(status)
            except (ValueError, AttributeError):
                pass
        code = getattr(error, "grpc_status_code", None)
        return getattr(code, "name", "") or type(error).__name__

    # -------------------------------------------------------------------------------- discovery
    def discover(self, report: CleanupReport) -> list[tuple[str, bool]]:
        found: dict[str, bool] = {}
        if self.config.sweep:
            extra = {k: v for k, v in self.config.labels.items() if k != self.config.label_key}
            text = label_filter(extra, exists=[self.config.label_key])
        elif self.ownership:
            text = label_filter(self.ownership)
        else:
            text = ""
        if text:
            pager = self.call(
                self.endpoints_client.list_endpoints, request={"parent": self.config.parent, "filter": text}
            )
            for endpoint in pager:
                found.setdefault(endpoint.name, False)
        for name in self.config.endpoints:
            found[name] = True
        return list(found.items())

    # --------------------------------------------------------------------------------- endpoints
    def clean_endpoint(self, name: str, explicit: bool, now: _dt.datetime) -> EndpointResult:
        result = EndpointResult(name=name, explicit=explicit)
        started = time.monotonic()
        try:
            self._clean_endpoint(result, now)
        except DeadlineReached as error:
            result.action = "remaining"
            result.errors.append(str(error))
        except self.exceptions.GoogleAPICallError as error:
            result.action = "failed"
            result.errors.append(f"{self.status_of(error)}: {error.message}")
        except Exception as error:  # a bug or an unexpected client error must not hide what remains
            result.action = "failed"
            result.errors.append(f"{type(error).__name__}: {error}")
        result.seconds = time.monotonic() - started
        created = _dt.datetime.fromisoformat(result.created) if result.created else None
        if created is not None:
            end = _utc_now() if result.action in ("deleted", "already_gone") else now
            result.lifetime_seconds = round((end - created).total_seconds(), 3)
        return result

    def _record(self, result: EndpointResult, endpoint: Any) -> None:
        result.display_name = endpoint.display_name
        result.labels = dict(endpoint.labels)
        created = _timestamp(endpoint.create_time)
        if created is not None:
            result.created = created.isoformat()
        known = {info.id for info in result.deployed_models}
        for deployed in endpoint.deployed_models:
            if deployed.id not in known:
                result.deployed_models.append(
                    describe_deployed_model(deployed, int(endpoint.traffic_split.get(deployed.id, 0)))
                )

    def _clean_endpoint(self, result: EndpointResult, now: _dt.datetime) -> None:
        config = self.config
        client = self.endpoints_client
        not_found = self.exceptions.NotFound
        delete_requested = False
        for attempt in range(1, config.max_passes + 1):
            try:
                endpoint = self.call(client.get_endpoint, name=result.name)
            except not_found:
                result.action = "deleted" if delete_requested else "already_gone"
                if not delete_requested and attempt > 1:
                    result.reason = "deleted by someone else while the cleanup worked on it"
                return
            self._record(result, endpoint)
            verdict = self._may_touch(result, endpoint, now)
            if verdict is not None:
                result.action, result.reason = verdict
                return
            if config.dry_run:
                result.action = "would_delete"
                result.plan = [
                    f"undeploy {deployed_id}" + (f" with traffic split {split}" if split else "")
                    for deployed_id, split in undeploy_plan(
                        [d.id for d in endpoint.deployed_models], dict(endpoint.traffic_split)
                    )
                ] + ["delete the endpoint"]
                return
            try:
                if self._settle_operations(result):
                    continue  # something was in flight: look at the endpoint again
                endpoint = self.call(client.get_endpoint, name=result.name)
                self._record(result, endpoint)
                for deployed_id, split in undeploy_plan(
                    [d.id for d in endpoint.deployed_models], dict(endpoint.traffic_split)
                ):
                    request: dict[str, Any] = {"endpoint": result.name, "deployed_model_id": deployed_id}
                    if split:
                        request["traffic_split"] = split
                    operation = self.call(client.undeploy_model, request=request)
                    self.wait(client, operation.operation.name)
                    result.models_undeployed.append(deployed_id)
                operation = self.call(client.delete_endpoint, name=result.name)
                delete_requested = True
                self.wait(client, operation.operation.name)
                result.action = "deleted"
                return
            except not_found:
                continue  # the endpoint or a model vanished under us: the next pass sees the truth
            except (
                self.exceptions.FailedPrecondition,
                self.exceptions.BadRequest,
                self.exceptions.Conflict,
            ) as error:
                # Something changed meanwhile (a deploy arrived, an operation runs, the split moved).
                result.errors.append(f"pass {attempt}: {self.status_of(error)}: {error.message}")
                if self.status_of(error) not in ("FAILED_PRECONDITION", "INVALID_ARGUMENT", "ABORTED"):
                    raise
            except OperationFailed as error:
                result.errors.append(f"pass {attempt}: {error}")
                if error.code in _PERMANENT_OPERATION_CODES:
                    result.action = "failed"
                    return
            self._pause(attempt)
        result.action = "remaining"
        result.reason = f"still present after {config.max_passes} passes"

    def _pause(self, attempt: int) -> None:
        delay = min(5.0, 0.1 * 2**attempt)
        if self.remaining_seconds() <= delay:
            raise DeadlineReached("the cleanup deadline passed between passes")
        time.sleep(delay)

    def _may_touch(self, result: EndpointResult, endpoint: Any, now: _dt.datetime) -> tuple[str, str] | None:
        """None when the cleanup may remove this endpoint; else (action, reason)."""
        config = self.config
        labels = dict(endpoint.labels)
        if config.sweep:
            state = self._pipeline_state(labels.get(config.label_key, ""))
            current = sanitize_label_value(config.run_name) if config.run_name else ""
            extra = {k: v for k, v in config.labels.items() if k != config.label_key}
            if extra and not is_owned(labels, extra):
                return "skipped", "does not carry the --label filter"
            sweep, why = sweep_verdict(
                labels,
                _timestamp(endpoint.create_time),
                now,
                config.older_than_seconds,
                state,
                current,
                config.label_key,
            )
            result.reason = why
            return None if sweep else ("skipped", why)
        if not is_owned(labels, self.ownership):
            if result.explicit and config.force:
                result.reason = "not labelled as this run's; removed because force=True"
            elif result.explicit:
                wanted = (
                    ", ".join(f"{k}={v}" for k, v in self.ownership.items()) or "(no ownership label given)"
                )
                return (
                    "refused",
                    f"explicitly named but not this run's (needs labels {wanted}); pass force to remove it",
                )
            else:
                return "skipped", "no longer carries this run's labels"
        if config.keep_on_success and config.run_state == "SUCCEEDED":
            return "kept", "the run succeeded and keep_on_success is set (promotion)"
        return None

    def _pipeline_state(self, run_label: str) -> str | None:
        if not run_label:
            return None
        name = f"{self.config.parent}/pipelineJobs/{run_label}"
        try:
            job = self.call(self.pipelines_client.get_pipeline_job, name=name)
        except self.exceptions.NotFound:
            return None
        except self.exceptions.GoogleAPICallError as error:
            log.warning("cannot read pipeline job %s (%s); the age decides", name, error)
            return None
        return _enum_name(job.state) or None

    def _settle_operations(self, result: EndpointResult) -> bool:
        """Cancels in-flight deploys (``in_flight="cancel"``) and waits out every in-flight operation.

        Returns:
            True when anything was in flight (the caller re-reads the endpoint).
        """
        client = self.endpoints_client
        try:
            listing = self.call(client.list_operations, request={"name": result.name})
        except (self.exceptions.MethodNotImplemented, self.exceptions.Forbidden) as error:
            # Without the list we cannot cancel; the delete's FAILED_PRECONDITION loop still waits it out.
            note = (
                f"cannot list operations ({self.status_of(error)}): waiting out in-flight deploys by retrying"
            )
            if note not in result.errors:
                result.errors.append(note)
            return False
        pending = [op for op in listing.operations if not op.done]
        for operation in pending:
            is_deploy = operation.metadata.type_url.rsplit(".", 1)[-1] == "DeployModelOperationMetadata"
            if is_deploy and self.config.in_flight == "cancel":
                try:
                    self.call(client.cancel_operation, request={"name": operation.name})
                    result.cancelled_operations.append(operation.name)
                except (
                    self.exceptions.NotFound,
                    self.exceptions.FailedPrecondition,
                    self.exceptions.BadRequest,
                ):
                    pass  # finished meanwhile
        for operation in pending:
            try:
                self.wait(client, operation.name)
            except OperationFailed as error:
                if error.code != 1:  # CANCELLED is what we asked for
                    result.errors.append(f"in-flight {error}")
            except self.exceptions.NotFound:
                pass
        return bool(pending)

    # ------------------------------------------------------------------------------------ models
    def clean_models(self, report: CleanupReport, now: _dt.datetime) -> list[ModelResult]:
        config = self.config
        if config.sweep:
            text = label_filter(
                {k: v for k, v in config.labels.items() if k != config.label_key}, [config.label_key]
            )
        else:
            text = label_filter(self.ownership)
        if not text:
            return []
        results = []
        for model in self.call(
            self.models_client.list_models, request={"parent": config.parent, "filter": text}
        ):
            result = ModelResult(name=model.name, display_name=model.display_name)
            results.append(result)
            labels = dict(model.labels)
            if config.sweep:
                swept, why = sweep_verdict(
                    labels,
                    _timestamp(model.create_time),
                    now,
                    config.older_than_seconds,
                    self._pipeline_state(labels.get(config.label_key, "")),
                    sanitize_label_value(config.run_name) if config.run_name else "",
                    config.label_key,
                )
                if not swept:
                    result.action, result.reason = "skipped", why
                    continue
            elif not is_owned(labels, self.ownership):
                result.action, result.reason = "skipped", "not this run's"
                continue
            if config.keep_on_success and config.run_state == "SUCCEEDED":
                result.action, result.reason = "kept", "the run succeeded and keep_on_success is set"
                continue
            if config.dry_run:
                result.action = "would_delete"
                continue
            try:
                operation = self.call(self.models_client.delete_model, name=model.name)
                self.wait(self.models_client, operation.operation.name)
                result.action = "deleted"
            except self.exceptions.NotFound:
                result.action = "already_gone"
            except (OperationFailed, DeadlineReached) as error:
                result.action = "failed"
                result.errors.append(str(error))
            except self.exceptions.GoogleAPICallError as error:
                result.action = "failed"
                result.errors.append(f"{self.status_of(error)}: {error.message}")
        return results


def cleanup(config: CleanupConfig, clients: VertexClients | None = None) -> CleanupReport:
    """Runs the cleanup described by ``config`` (already :func:`resolve_config`-ed) and reports."""
    clients = clients or vertex_clients(config.location, config.api_endpoint)
    started = time.monotonic()
    now = _utc_now()
    report = CleanupReport(
        project=config.project,
        location=config.location,
        run_name=config.run_name,
        run_state=config.run_state or "UNKNOWN",
        mode="sweep" if config.sweep else "cleanup",
        dry_run=config.dry_run,
        ownership_labels=config.ownership_labels()
        if not config.sweep
        else {config.label_key: "*", **config.labels},
        api_endpoint=clients.api_endpoint,
        started=now.isoformat(),
    )
    cleaner = _Cleaner(config, clients)
    try:
        targets = cleaner.discover(report)
    except (DeadlineReached, cleaner.exceptions.GoogleAPICallError) as error:
        report.notes.append(f"discovery failed: {error}")
        report.endpoints.append(
            EndpointResult(name=f"{config.parent}/endpoints/?", action="failed", errors=[str(error)])
        )
        report.seconds = time.monotonic() - started
        return report
    log.info(
        "cleanup: %d endpoint(s) to look at: %s", len(targets), ", ".join(n for n, _ in targets) or "none"
    )
    workers = max(1, min(config.max_workers, len(targets)))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cleanup") as pool:
        futures = [pool.submit(cleaner.clean_endpoint, name, explicit, now) for name, explicit in targets]
        report.endpoints = [future.result() for future in futures]
    for result in report.endpoints:
        log.info("cleanup: %s -> %s %s", result.name, result.action, result.reason)
    if config.delete_models:
        try:
            report.models = cleaner.clean_models(report, now)
        except (DeadlineReached, cleaner.exceptions.GoogleAPICallError) as error:
            report.models.append(
                ModelResult(name=f"{config.parent}/models/?", action="failed", errors=[str(error)])
            )
    report.seconds = round(time.monotonic() - started, 3)
    return report


# ---------------------------------------------------------------------------------------------- output
_ACTION_TEXT = {
    "deleted": "deleted",
    "already_gone": "already gone",
    "kept": "**kept**",
    "would_delete": "would delete (dry run)",
    "refused": "**refused** (not this run's)",
    "skipped": "skipped",
    "remaining": "**REMAINS**",
    "failed": "**REMAINS** (failed)",
}


def _machines(result: EndpointResult) -> str:
    """``2 models on g2-standard-8 + 1 NVIDIA_L4, 1-2 replicas``, one line per distinct machine."""
    counts: dict[str, int] = {}
    for info in result.deployed_models:
        accel = f" + {info.accelerator_count} {info.accelerator_type}" if info.accelerator_type else ""
        replicas = f", {info.replicas} replicas" if info.replicas else ""
        text = f"{info.machine_type}{accel}{replicas}"
        counts[text] = counts.get(text, 0) + 1
    return "<br>".join(f"{n} model{'s' if n > 1 else ''} on {text}" for text, n in counts.items()) or "–"


def render_markdown(report: CleanupReport) -> str:
    """The task's Markdown report: outcome first, then one row per endpoint, then how to remove leftovers."""
    remaining, refused = report.remaining, report.refused
    owned = [e for e in report.endpoints if e.action not in ("skipped", "refused")]
    if report.dry_run:
        count = sum(e.action == "would_delete" for e in owned)
        headline = f"Dry run: {count} endpoint(s) would be removed; nothing changed."
    elif remaining:
        headline = (
            f"**FAILED: {len(remaining)} resource(s) owned by this run remain** (how to remove them: below)."
        )
    elif any(e.action == "kept" for e in owned):
        headline = "Kept on success: the run succeeded and keep_on_success is set; nothing was removed."
    else:
        count = sum(e.action == "deleted" for e in owned)
        headline = f"Nothing owned by this run remains ({count} endpoint(s) deleted)."
    labels = ", ".join(f"`{k}={v}`" for k, v in report.ownership_labels.items()) or "–"
    lines = [
        f"# Endpoint cleanup{': ' + report.run_name if report.run_name else ''}",
        "",
        headline,
        "",
        f"- run state: **{report.run_state}** · mode: {report.mode}{' (dry run)' if report.dry_run else ''}",
        f"- project / location: `{report.project}` / `{report.location}` · labels: {labels}",
        f"- took {format_seconds(report.seconds)}",
        "",
    ]
    if report.endpoints:
        lines += [
            "| endpoint | display name | outcome | models undeployed | lived | machines |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for e in report.endpoints:
            lived = format_seconds(e.lifetime_seconds) if e.lifetime_seconds is not None else "–"
            outcome = _ACTION_TEXT.get(e.action, e.action) + (f": {e.reason}" if e.reason else "")
            lines.append(
                f"| `{e.name.rsplit('/', 1)[-1]}` | {e.display_name or '–'} | {outcome} | "
                f"{len(e.models_undeployed)} | {lived} | {_machines(e)} |"
            )
        lines.append("")
    else:
        lines += ["No endpoint carries this run's labels.", ""]
    if report.models:
        lines += ["| model | outcome |", "| --- | --- |"]
        lines += [
            f"| `{m.name.rsplit('/', 1)[-1]}` {m.display_name} | "
            f"{_ACTION_TEXT.get(m.action, m.action)} {m.reason} |"
            for m in report.models
        ]
        lines.append("")
    leftovers = [e for e in report.endpoints if e.remains]
    if leftovers or refused:
        lines += ["## What remains and how to remove it", ""]
        for e in leftovers:
            lines.append(f"- `{e.name}` ([console]({console_url(e.name)}))")
            for error in e.errors[-3:]:
                lines.append(f"  - error: {error}")
            lines.append("  ```")
            lines += [f"  {c}" for c in remove_commands(e.name, e.still_deployed)]
            lines.append("  ```")
        for m in report.models:
            if m.remains:
                parts = m.name.split("/")
                lines.append(
                    f"- model `{m.name}`: "
                    f"`gcloud ai models delete {parts[-1]} --project={parts[1]} --region={parts[3]}`"
                )
        for e in report.endpoints:
            if e.action == "refused":
                lines.append(f"- refused `{e.name}`: {e.reason}")
        lines.append("")
    text = "\n".join(lines)
    return (
        text if len(text) < 45_000 else text[:45_000] + "\n\n… (truncated; the JSON report has everything)\n"
    )


def failure_message(report: CleanupReport) -> str:
    """One paragraph naming what remains and the commands that remove it (the task's last log line)."""
    parts = []
    for e in report.endpoints:
        if e.remains:
            parts.append(
                f"{e.name} ({console_url(e.name)}; {' && '.join(remove_commands(e.name, e.still_deployed))})"
            )
    parts += [m.name for m in report.models if m.remains]
    if parts:
        return f"{len(parts)} resource(s) owned by run {report.run_name or '?'} remain: " + "; ".join(parts)
    return "explicitly named endpoint(s) refused (not this run's; pass force to remove): " + ", ".join(
        report.refused
    )


def write_reports(
    report: CleanupReport, markdown_path: str | Path | None, json_path: str | Path | None
) -> None:
    if markdown_path:
        Path(markdown_path).parent.mkdir(parents=True, exist_ok=True)
        Path(markdown_path).write_text(render_markdown(report), encoding="utf-8")
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(
            json.dumps(report.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )


def run_cleanup(
    config: CleanupConfig,
    markdown_path: str | Path | None = None,
    json_path: str | Path | None = None,
    *,
    raise_on_failure: bool = False,
    clients: VertexClients | None = None,
) -> CleanupReport:
    """Validates, cleans, writes both reports; the one entry point of the CLI and the KFP component.

    Args:
        config: What to clean (see :class:`CleanupConfig`).
        markdown_path: Where the Markdown report goes (optional).
        json_path: Where the JSON report goes (optional).
        raise_on_failure: Raise :class:`CleanupIncomplete` (the KFP task fails) when something owned
            remains; :class:`BadInput` when only refusals are left.
        clients: Pre-built clients (tests); built from ``config.api_endpoint`` otherwise.

    Returns:
        The report; ``report.exit_code`` is 0 (nothing owned remains), 1 (something does) or 2 (refused).
    """
    config = resolve_config(config)
    report = cleanup(config, clients)
    write_reports(report, markdown_path, json_path)
    log.info("cleanup finished in %.1fs, exit code %d", report.seconds, report.exit_code)
    if raise_on_failure and report.exit_code == EXIT_REMAINING:
        raise CleanupIncomplete(failure_message(report))
    if raise_on_failure and report.exit_code == EXIT_BAD_INPUT:
        raise BadInput(failure_message(report))
    return report
