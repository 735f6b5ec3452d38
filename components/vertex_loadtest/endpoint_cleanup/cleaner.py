"""The per-endpoint state machine: settle in-flight operations, undeploy every model, delete; repeat.

Per endpoint (endpoints run in parallel threads), until it is gone or the deadline passes:
    1. wait out in-flight operations on the endpoint (``in_flight="cancel"``, the default, first
       cancels in-flight deploys: a deploy in flight is not yet in ``deployed_models`` and makes the
       delete fail);
    2. undeploy every deployed model (from ``deployed_models``, not the traffic split: a model can be
       deployed with no traffic entry), in the order of :func:`~.plan.undeploy_plan`;
    3. delete the endpoint. A FAILED_PRECONDITION (something was deployed meanwhile) starts a new
       pass. NotFound on the endpoint means "already gone" (idempotent: a re-run after a crash
       finishes the job). Every finished operation's ``error`` is checked.
"""

from __future__ import annotations

import datetime as _dt
import logging
import time
from typing import Any

from google.api_core import exceptions
from google.cloud import aiplatform_v1

from vertex_loadtest.endpoint_cleanup.api import (
    CANCELLED,
    DeadlineReached,
    OperationFailed,
    VertexApi,
    describe_error,
    enum_name,
    status_of,
    timestamp,
    utc_now,
)
from vertex_loadtest.endpoint_cleanup.config import CleanupConfig, InFlight
from vertex_loadtest.endpoint_cleanup.plan import is_owned, sweep_verdict, undeploy_plan
from vertex_loadtest.endpoint_cleanup.report import Action, DeployedModelInfo, EndpointResult

log = logging.getLogger(__name__)

#: google.rpc codes of a failed operation that another pass will not fix.
_PERMANENT_OPERATION_CODES = frozenset({3, 7, 16})  # INVALID_ARGUMENT, PERMISSION_DENIED, UNAUTHENTICATED


def describe_deployed_model(deployed: aiplatform_v1.DeployedModel, traffic: int) -> DeployedModelInfo:
    """What a deployed model runs on, for the report."""
    dedicated = deployed.dedicated_resources
    if dedicated and dedicated.machine_spec.machine_type:
        spec = dedicated.machine_spec
        low = dedicated.min_replica_count
        return DeployedModelInfo(
            id=deployed.id,
            model=deployed.model,
            display_name=deployed.display_name,
            machine_type=spec.machine_type,
            accelerator_type=enum_name(spec.accelerator_type),
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


def pipeline_state(api: VertexApi, config: CleanupConfig, run_label: str) -> str | None:
    """The state of the pipeline job a run label names; None when it cannot be found or read."""
    if not run_label:
        return None
    name = f"{config.parent}/pipelineJobs/{run_label}"
    try:
        job = api.call(api.pipelines.get_pipeline_job, name=name)
    except exceptions.NotFound:
        return None  # labels are sanitized job names and may differ from the job id: the age decides
    except exceptions.GoogleAPICallError as error:
        log.warning("cannot read pipeline job %s (%s); the age decides", name, describe_error(error))
        return None
    return enum_name(job.state) or None


def sweep_decision(
    api: VertexApi, config: CleanupConfig, labels: dict[str, str], created: Any, now: _dt.datetime
) -> tuple[bool, str]:
    """Whether the sweeper removes a resource with these labels and creation time, and why."""
    extra = config.sweep_labels()
    if extra and not is_owned(labels, extra):
        return False, "does not carry the --label filter"
    return sweep_verdict(
        labels,
        timestamp(created),
        now,
        config.older_than_seconds,
        pipeline_state(api, config, labels.get(config.label_key, "")),
        config.current_run_label(),
        config.label_key,
    )


class EndpointCleaner:
    """Removes one endpoint at a time (thread-safe: it keeps no per-endpoint state)."""

    def __init__(self, config: CleanupConfig, api: VertexApi) -> None:
        self.config = config
        self.api = api
        self.ownership = config.ownership_labels()

    def clean(self, name: str, explicit: bool, now: _dt.datetime) -> EndpointResult:
        """Removes the endpoint ``name`` if the cleanup may; never raises."""
        result = EndpointResult(name=name, explicit=explicit)
        started = time.monotonic()
        try:
            self._clean(result, now)
        except DeadlineReached as error:
            result.action = Action.REMAINING
            result.errors.append(str(error))
        except exceptions.GoogleAPICallError as error:
            result.action = Action.FAILED
            result.errors.append(describe_error(error))
        except Exception as error:  # a bug or an unexpected client error must not hide what remains
            result.action = Action.FAILED
            result.errors.append(f"{type(error).__name__}: {error}")
        result.seconds = time.monotonic() - started
        created = _dt.datetime.fromisoformat(result.created) if result.created else None
        if created is not None:
            end = utc_now() if result.action in (Action.DELETED, Action.ALREADY_GONE) else now
            result.lifetime_seconds = round((end - created).total_seconds(), 3)
        return result

    def _record(self, result: EndpointResult, endpoint: aiplatform_v1.Endpoint) -> None:
        result.display_name = endpoint.display_name
        result.labels = dict(endpoint.labels)
        created = timestamp(endpoint.create_time)
        if created is not None:
            result.created = created.isoformat()
        known = {info.id for info in result.deployed_models}
        for deployed in endpoint.deployed_models:
            if deployed.id not in known:
                result.deployed_models.append(
                    describe_deployed_model(deployed, int(endpoint.traffic_split.get(deployed.id, 0)))
                )

    def _clean(self, result: EndpointResult, now: _dt.datetime) -> None:
        config, api = self.config, self.api
        delete_requested = False
        for attempt in range(1, config.max_passes + 1):
            try:
                endpoint = api.call(api.endpoints.get_endpoint, name=result.name)
            except exceptions.NotFound:
                result.action = Action.DELETED if delete_requested else Action.ALREADY_GONE
                if not delete_requested and attempt > 1:
                    result.reason = "deleted by someone else while the cleanup worked on it"
                return
            self._record(result, endpoint)
            verdict = self._may_touch(result, endpoint, now)
            if verdict is not None:
                result.action, result.reason = verdict
                return
            if config.dry_run:
                result.action = Action.WOULD_DELETE
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
                endpoint = api.call(api.endpoints.get_endpoint, name=result.name)
                self._record(result, endpoint)
                for deployed_id, split in undeploy_plan(
                    [d.id for d in endpoint.deployed_models], dict(endpoint.traffic_split)
                ):
                    request: dict[str, Any] = {"endpoint": result.name, "deployed_model_id": deployed_id}
                    if split:
                        request["traffic_split"] = split
                    operation = api.call(api.endpoints.undeploy_model, request=request)
                    api.wait(api.endpoints.get_operation, operation.operation.name)
                    result.models_undeployed.append(deployed_id)
                operation = api.call(api.endpoints.delete_endpoint, name=result.name)
                delete_requested = True
                api.wait(api.endpoints.get_operation, operation.operation.name)
                result.action = Action.DELETED
                return
            except exceptions.NotFound:
                continue  # the endpoint or a model vanished under us: the next pass sees the truth
            except (exceptions.FailedPrecondition, exceptions.BadRequest, exceptions.Conflict) as error:
                # Something changed meanwhile (a deploy arrived, an operation runs, the split moved).
                result.errors.append(f"pass {attempt}: {describe_error(error)}")
                if status_of(error) not in ("FAILED_PRECONDITION", "INVALID_ARGUMENT", "ABORTED"):
                    raise
            except OperationFailed as error:
                result.errors.append(f"pass {attempt}: {error}")
                if error.code in _PERMANENT_OPERATION_CODES:
                    result.action = Action.FAILED
                    return
            api.sleep(min(5.0, 0.1 * 2**attempt), "pausing between passes")
        result.action = Action.REMAINING
        result.reason = f"still present after {config.max_passes} passes"

    def _may_touch(
        self, result: EndpointResult, endpoint: aiplatform_v1.Endpoint, now: _dt.datetime
    ) -> tuple[Action, str] | None:
        """None when the cleanup may remove this endpoint; else (action, reason)."""
        config = self.config
        labels = dict(endpoint.labels)
        if config.sweep:
            swept, why = sweep_decision(self.api, config, labels, endpoint.create_time, now)
            result.reason = why
            return None if swept else (Action.SKIPPED, why)
        if not is_owned(labels, self.ownership):
            if result.explicit and config.force:
                result.reason = "not labelled as this run's; removed because force=True"
            elif result.explicit:
                wanted = (
                    ", ".join(f"{k}={v}" for k, v in self.ownership.items()) or "(no ownership label given)"
                )
                return (
                    Action.REFUSED,
                    f"explicitly named but not this run's (needs labels {wanted}); pass force to remove it",
                )
            else:
                return Action.SKIPPED, "no longer carries this run's labels"
        if config.keep_on_success and config.run_state == "SUCCEEDED":
            return Action.KEPT, "the run succeeded and keep_on_success is set (promotion)"
        return None

    def _settle_operations(self, result: EndpointResult) -> bool:
        """Cancels in-flight deploys (``in_flight="cancel"``) and waits out every in-flight operation.

        Returns:
            True when anything was in flight (the caller re-reads the endpoint).
        """
        api = self.api
        try:
            listing = api.call(api.endpoints.list_operations, request={"name": result.name})
        except (exceptions.MethodNotImplemented, exceptions.Forbidden) as error:
            # Without the list we cannot cancel; the delete's FAILED_PRECONDITION loop still waits it out.
            note = f"cannot list operations ({status_of(error)}): waiting out in-flight deploys by retrying"
            if note not in result.errors:
                result.errors.append(note)
            return False
        pending = [op for op in listing.operations if not op.done]
        for operation in pending:
            is_deploy = operation.metadata.type_url.rsplit(".", 1)[-1] == "DeployModelOperationMetadata"
            if is_deploy and self.config.in_flight == InFlight.CANCEL:
                try:
                    api.call(api.endpoints.cancel_operation, request={"name": operation.name})
                    result.cancelled_operations.append(operation.name)
                except (exceptions.NotFound, exceptions.FailedPrecondition, exceptions.BadRequest):
                    pass  # finished meanwhile
        for operation in pending:
            try:
                api.wait(api.endpoints.get_operation, operation.name)
            except OperationFailed as error:
                if error.code != CANCELLED:  # CANCELLED is what we asked for
                    result.errors.append(f"in-flight {error}")
            except exceptions.NotFound:
                pass
        return bool(pending)
