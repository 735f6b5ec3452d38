"""Deleting the models a run uploaded (``delete_models``), after its endpoints are gone.

Right after its last undeploy, a model's deletion can be refused with FAILED_PRECONDITION for a
while (the service still counts the deployment): the deletion is retried with backoff within the
deadline, unless the model is still deployed on an endpoint this cleanup did not remove (then
waiting would not help, and the report says where it is deployed).
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Collection
from typing import Any

from google.api_core import exceptions

from vertex_loadtest.durations import format_seconds
from vertex_loadtest.endpoint_cleanup.api import (
    VertexApi,
    describe_error,
    is_failed_precondition,
)
from vertex_loadtest.endpoint_cleanup.cleaner import sweep_decision
from vertex_loadtest.endpoint_cleanup.config import CleanupConfig
from vertex_loadtest.endpoint_cleanup.discovery import list_candidates
from vertex_loadtest.endpoint_cleanup.plan import endpoint_key
from vertex_loadtest.endpoint_cleanup.report import Action, ModelResult
from vertex_loadtest.errors import DeadlineReached, OperationFailed


def clean_models(
    api: VertexApi,
    config: CleanupConfig,
    now: _dt.datetime,
    removed_endpoints: Collection[tuple[str, str]],
    notes: list[str],
) -> list[ModelResult]:
    """Deletes every model carrying the ownership labels (in sweep mode: every stale labelled one).

    Args:
        api: The cleanup's calls.
        config: The resolved configuration.
        now: When the cleanup started (the sweep's age reference).
        removed_endpoints: ``(location, id)`` of the endpoints this cleanup removed or found gone.
        notes: Where to say how the listing went.

    Returns:
        One result per model listed.
    """
    results = []
    for model in list_candidates(api, api.models.list_models, config, notes):
        result = ModelResult(name=model.name, display_name=model.display_name)
        results.append(result)
        if config.sweep:
            swept, why = sweep_decision(api, config, dict(model.labels), model.create_time, now)
            if not swept:
                result.action, result.reason = Action.SKIPPED, why
                continue
        if config.keep_on_success and config.run_state == "SUCCEEDED":
            result.action, result.reason = Action.KEPT, "the run succeeded and keep_on_success is set"
            continue
        if config.dry_run:
            result.action = Action.WOULD_DELETE
            continue
        try:
            _delete(api, config, result, removed_endpoints)
        except (OperationFailed, DeadlineReached) as error:
            result.action = Action.FAILED
            result.errors.append(str(error))
        except exceptions.GoogleAPICallError as error:
            result.action = Action.FAILED
            result.errors.append(describe_error(error))
    return results


def _deployed_elsewhere(api: VertexApi, name: str, removed: Collection[tuple[str, str]]) -> list[str]:
    """Endpoints the model is still deployed on that this cleanup did not remove."""
    try:
        model: Any = api.call(api.models.get_model, name=name)
    except exceptions.GoogleAPICallError:
        return []
    return [ref.endpoint for ref in model.deployed_models if endpoint_key(ref.endpoint) not in removed]


def _delete(
    api: VertexApi, config: CleanupConfig, result: ModelResult, removed: Collection[tuple[str, str]]
) -> None:
    started = time.monotonic()
    delay = config.poll_initial_seconds
    while True:
        try:
            operation = api.call(api.models.delete_model, name=result.name)
            api.wait(api.models.get_operation, operation.operation.name)
        except exceptions.NotFound:
            result.action = Action.ALREADY_GONE
            return
        except (exceptions.GoogleAPICallError, OperationFailed) as error:
            if not is_failed_precondition(error):
                raise
            elsewhere = _deployed_elsewhere(api, result.name, removed)
            if elsewhere:
                result.action = Action.FAILED
                result.reason = f"still deployed on {', '.join(elsewhere)}"
                result.errors.append(describe_error(error))
                return
            if not result.errors:
                result.errors.append(f"{describe_error(error)} (retrying: it may still count the undeploy)")
            api.sleep(delay, f"retrying the deletion of {result.name}")
            delay = min(delay * 2, config.poll_max_seconds)
            continue
        result.action = Action.DELETED
        if result.errors:
            result.reason = f"deleted after retrying for {format_seconds(time.monotonic() - started)}"
        return
