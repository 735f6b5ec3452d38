"""The per-endpoint state machine: settle in-flight operations, undeploy every model, delete; repeat.

Per endpoint (endpoints run in parallel threads), pass after pass until it is gone or the deadline
passes:
    1. settle in-flight operations: list the endpoint's operations (every page), cancel in-flight
       deploys (``in_flight="cancel"``, the default), and wait until every one has ended. A deploy in
       flight is not yet in ``deployed_models`` and makes the delete fail; real GPU deploys run 15
       minutes and more. Listing is optional: whatever error it answers (403, 404 from a front end
       that does not route it, 501, 5xx) means only "cannot list", never "endpoint gone"; a refused
       cancel (501 UNIMPLEMENTED, 400 not cancellable) means waiting instead;
    2. undeploy every deployed model (from ``deployed_models``, not the traffic split: a model can be
       deployed with no traffic entry), in the order of :func:`~.plan.undeploy_plan`. An undeploy
       refused with FAILED_PRECONDITION, at the call or inside its operation, while the model carries
       traffic: move its traffic off (``updateEndpoint``) and undeploy again;
    3. delete the endpoint.
Only the endpoint's own NotFound means it is gone (idempotent: a re-run after a crash finishes the
job). A FAILED_PRECONDITION or ABORTED ("busy": an operation still runs, something was deployed
meanwhile) starts another pass after a pause, for as long as the deadline allows: that is how an
in-flight deploy is waited out when operations cannot be listed. Any other failure also starts
another pass, at most ``max_passes`` times. The result says what the cleanup waited for, how long.
"""

from __future__ import annotations

import datetime as _dt
import logging
import time
from dataclasses import dataclass
from typing import Any

from google.api_core import exceptions
from google.cloud import aiplatform_v1

from vertex_loadtest.durations import format_seconds
from vertex_loadtest.endpoint_cleanup.api import (
    CANCELLED,
    FAILED_PRECONDITION,
    VertexApi,
    describe_error,
    enum_name,
    is_failed_precondition,
    status_of,
    timestamp,
    utc_now,
)
from vertex_loadtest.endpoint_cleanup.config import CleanupConfig, InFlight
from vertex_loadtest.endpoint_cleanup.plan import is_owned, split_without, sweep_verdict, undeploy_plan
from vertex_loadtest.endpoint_cleanup.report import Action, DeployedModelInfo, EndpointResult
from vertex_loadtest.errors import DeadlineReached, OperationFailed

log = logging.getLogger(__name__)

#: google.rpc codes of a failed operation that another pass will not fix.
_PERMANENT_OPERATION_CODES = frozenset({3, 7, 16})  # INVALID_ARGUMENT, PERMISSION_DENIED, UNAUTHENTICATED
#: Statuses that say "busy, try again later" rather than "wrong".
_BUSY = ("FAILED_PRECONDITION", "ABORTED")
_DEPLOY_METADATA = "DeployModelOperationMetadata"


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
    low = automatic.min_replica_count if automatic else 0
    return DeployedModelInfo(
        id=deployed.id,
        model=deployed.model,
        display_name=deployed.display_name,
        machine_type="automatic" if automatic else "shared",
        accelerator_type="",
        accelerator_count=0,
        replicas=f"{low}-{max(automatic.max_replica_count, low)}" if automatic else "",
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


@dataclass
class _Progress:
    """What one endpoint's passes have learnt so far."""

    delete_requested: bool = False
    failed_passes: int = 0
    busy_seconds: float = 0.0
    busy_reason: str = ""
    listing_refused: str = ""  # the status ListOperations answered, once it failed

    def busy_note(self) -> str:
        listing = f"; operations not listable ({self.listing_refused})" if self.listing_refused else ""
        return f"endpoint busy ({self.busy_reason}{listing}): retried for {format_seconds(self.busy_seconds)}"


class EndpointCleaner:
    """Removes one endpoint at a time (thread-safe: per-endpoint state lives in the call)."""

    def __init__(self, config: CleanupConfig, api: VertexApi) -> None:
        self.config = config
        self.api = api
        self.ownership = config.ownership_labels()

    def clean(self, name: str, explicit: bool, now: _dt.datetime) -> EndpointResult:
        """Removes the endpoint ``name`` if the cleanup may; never raises."""
        result = EndpointResult(name=name, explicit=explicit)
        progress = _Progress()
        started = time.monotonic()
        try:
            self._clean(result, progress, now)
        except DeadlineReached as error:
            result.action = Action.REMAINING
            result.errors.append(str(error))
        except exceptions.GoogleAPICallError as error:
            result.action = Action.FAILED
            result.errors.append(describe_error(error))
        except Exception as error:  # a bug or an unexpected client error must not hide what remains
            result.action = Action.FAILED
            result.errors.append(f"{type(error).__name__}: {error}")
        if progress.busy_seconds:
            result.waited.append(progress.busy_note())
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

    def _read(self, result: EndpointResult) -> aiplatform_v1.Endpoint | None:
        """The endpoint as it is now (None: gone), recorded in the result."""
        try:
            endpoint = self.api.call(self.api.endpoints.get_endpoint, name=result.name)
        except exceptions.NotFound:
            return None
        self._record(result, endpoint)
        return endpoint

    def _clean(self, result: EndpointResult, progress: _Progress, now: _dt.datetime) -> None:
        attempt = 0
        while True:
            attempt += 1
            endpoint = self._read(result)
            if endpoint is None:
                result.action = Action.DELETED if progress.delete_requested else Action.ALREADY_GONE
                if not progress.delete_requested and attempt > 1:
                    result.reason = "deleted by someone else while the cleanup worked on it"
                return
            verdict = self._may_touch(result, endpoint, now)
            if verdict is not None:
                result.action, result.reason = verdict
                return
            if self.config.dry_run:
                result.action = Action.WOULD_DELETE
                result.plan = [
                    f"undeploy {deployed_id}" + (f" with traffic split {split}" if split else "")
                    for deployed_id, split in undeploy_plan(
                        [d.id for d in endpoint.deployed_models], dict(endpoint.traffic_split)
                    )
                ] + ["delete the endpoint"]
                return
            if self._one_pass(result, progress, attempt):
                return
            if progress.failed_passes >= self.config.max_passes:
                result.action = Action.REMAINING
                result.reason = f"still present after {progress.failed_passes} failed passes"
                return

    def _one_pass(self, result: EndpointResult, progress: _Progress, attempt: int) -> bool:
        """Settles, undeploys, deletes; True when the endpoint is done with (deleted or failed for good)."""
        api = self.api
        started = time.monotonic()
        busy = False
        try:
            if self._settle_operations(result, progress):
                return False  # something was in flight: look at the endpoint again
            endpoint = self._read(result)
            if endpoint is None:
                return False
            for deployed_id, split in undeploy_plan(
                [d.id for d in endpoint.deployed_models], dict(endpoint.traffic_split)
            ):
                self._undeploy(result, deployed_id, split)
            operation = api.call(api.endpoints.delete_endpoint, name=result.name)
            progress.delete_requested = True
            api.wait(api.endpoints.get_operation, operation.operation.name)
            result.action = Action.DELETED
            return True
        except exceptions.NotFound as error:
            # The endpoint vanished (the next read says so), or an operation or model did: look again.
            result.errors.append(f"pass {attempt}: {describe_error(error)}")
            progress.failed_passes += 1
        except (exceptions.FailedPrecondition, exceptions.BadRequest, exceptions.Conflict) as error:
            status = status_of(error)
            if status in _BUSY:
                progress.busy_reason, busy = describe_error(error), True
            elif status == "INVALID_ARGUMENT":
                result.errors.append(f"pass {attempt}: {describe_error(error)}")
                progress.failed_passes += 1
            else:
                raise
        except OperationFailed as error:
            if error.code == FAILED_PRECONDITION:
                progress.busy_reason, busy = str(error), True
            else:
                result.errors.append(f"pass {attempt}: {error}")
                if error.code in _PERMANENT_OPERATION_CODES:
                    result.action = Action.FAILED
                    return True
                progress.failed_passes += 1
        if busy:  # waiting, not failing: as long as the deadline allows
            delay = min(
                self.config.poll_max_seconds, self.config.poll_initial_seconds * 2 ** min(attempt, 16)
            )
        else:
            delay = min(5.0, 0.1 * 2**progress.failed_passes)
        api.sleep(delay, "waiting for the endpoint to settle")
        if busy:
            progress.busy_seconds += time.monotonic() - started
        return False

    def _undeploy(self, result: EndpointResult, deployed_id: str, split: dict[str, int] | None) -> None:
        """Undeploys one model; moves its traffic off first when the service insists."""
        api = self.api
        request: dict[str, Any] = {"endpoint": result.name, "deployed_model_id": deployed_id}
        if split:
            request["traffic_split"] = split
        try:
            operation = api.call(api.endpoints.undeploy_model, request=request)
            api.wait(api.endpoints.get_operation, operation.operation.name)
        except (exceptions.GoogleAPICallError, OperationFailed) as error:
            why = describe_error(error)
            if not is_failed_precondition(error) or not self._move_traffic_off(result, deployed_id, why):
                raise
            operation = api.call(api.endpoints.undeploy_model, request=request)
            api.wait(api.endpoints.get_operation, operation.operation.name)
        result.models_undeployed.append(deployed_id)

    def _move_traffic_off(self, result: EndpointResult, deployed_id: str, why: str) -> bool:
        """Sets a traffic split without ``deployed_id``; False when it carried no traffic (nothing to fix)."""
        api = self.api
        endpoint = api.call(api.endpoints.get_endpoint, name=result.name)
        if not endpoint.traffic_split.get(deployed_id, 0):
            return False
        split = split_without([d.id for d in endpoint.deployed_models], endpoint.traffic_split, deployed_id)
        result.errors.append(f"undeploy of {deployed_id} refused ({why}): moving its traffic off first")
        api.call(
            api.endpoints.update_endpoint,
            endpoint={"name": result.name, "traffic_split": split},
            update_mask={"paths": ["traffic_split"]},
        )
        return True

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

    def _settle_operations(self, result: EndpointResult, progress: _Progress) -> bool:
        """Cancels in-flight deploys (``in_flight="cancel"``) and waits until every operation has ended.

        Returns:
            True when anything was in flight (the caller re-reads the endpoint).
        """
        api = self.api
        if progress.listing_refused:
            return False
        try:
            listed = api.endpoint_operations(result.name)
        except (exceptions.GoogleAPICallError, DeadlineReached) as error:
            if api.remaining_seconds() <= 0:
                raise
            # Any answer, NotFound included, only means "cannot list": the busy loop waits instead.
            progress.listing_refused = status_of(error)
            result.errors.append(
                f"cannot list operations ({progress.listing_refused}): waiting out in-flight deploys by "
                "retrying the undeploy and delete"
            )
            return False
        pending = [op for op in listed if not op.done]
        for operation in pending:
            kind = operation.metadata.type_url.rsplit(".", 1)[-1]
            refusal = ""
            if kind == _DEPLOY_METADATA and self.config.in_flight == InFlight.CANCEL:
                refusal = self._cancel(result, operation.name)
            self._wait_out(result, operation.name, kind, refusal)
        return bool(pending)

    def _cancel(self, result: EndpointResult, operation_name: str) -> str:
        """Asks to cancel; "" when asked, else why the service refused (501, 400 not cancellable, ...)."""
        try:
            self.api.call(self.api.endpoints.cancel_operation, request={"name": operation_name})
        except exceptions.GoogleAPICallError as error:
            return describe_error(error)
        result.cancelled_operations.append(operation_name)
        return ""

    def _wait_out(self, result: EndpointResult, operation_name: str, kind: str, refusal: str) -> None:
        """Waits until an in-flight operation has ended and says so in ``result.waited``."""
        what = kind.removesuffix("OperationMetadata") or "operation"
        cancelled = operation_name in result.cancelled_operations
        how = "cancelled" if cancelled else f"cancel refused ({refusal})" if refusal else "not cancelled"
        started = time.monotonic()
        outcome = "ended"
        try:
            self.api.wait(self.api.endpoints.get_operation, operation_name)
        except OperationFailed as error:
            outcome = "ended cancelled" if error.code == CANCELLED else f"failed ({error})"
        except exceptions.NotFound:
            outcome = "vanished"
        result.waited.append(
            f"in-flight {what} {operation_name.rsplit('/', 1)[-1]} ({how}): {outcome} after "
            f"{format_seconds(time.monotonic() - started)}"
        )
