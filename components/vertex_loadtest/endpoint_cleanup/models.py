"""Deleting the models a run uploaded (``delete_models``), after its endpoints are gone."""

from __future__ import annotations

import datetime as _dt

from google.api_core import exceptions

from vertex_loadtest.endpoint_cleanup.api import DeadlineReached, OperationFailed, VertexApi, describe_error
from vertex_loadtest.endpoint_cleanup.cleaner import sweep_decision
from vertex_loadtest.endpoint_cleanup.config import CleanupConfig
from vertex_loadtest.endpoint_cleanup.plan import is_owned, label_filter
from vertex_loadtest.endpoint_cleanup.report import Action, ModelResult


def clean_models(api: VertexApi, config: CleanupConfig, now: _dt.datetime) -> list[ModelResult]:
    """Deletes every model carrying the ownership labels (in sweep mode: every stale labelled one).

    Args:
        api: The cleanup's calls.
        config: The resolved configuration.
        now: When the cleanup started (the sweep's age reference).

    Returns:
        One result per model listed.
    """
    if config.sweep:
        text = label_filter(config.sweep_labels(), [config.label_key])
    else:
        text = label_filter(config.ownership_labels())
    if not text:
        return []
    results = []
    for model in api.call(api.models.list_models, request={"parent": config.parent, "filter": text}):
        result = ModelResult(name=model.name, display_name=model.display_name)
        results.append(result)
        labels = dict(model.labels)
        if config.sweep:
            swept, why = sweep_decision(api, config, labels, model.create_time, now)
            if not swept:
                result.action, result.reason = Action.SKIPPED, why
                continue
        elif not is_owned(labels, config.ownership_labels()):
            result.action, result.reason = Action.SKIPPED, "not this run's"
            continue
        if config.keep_on_success and config.run_state == "SUCCEEDED":
            result.action, result.reason = Action.KEPT, "the run succeeded and keep_on_success is set"
            continue
        if config.dry_run:
            result.action = Action.WOULD_DELETE
            continue
        try:
            operation = api.call(api.models.delete_model, name=model.name)
            api.wait(api.models.get_operation, operation.operation.name)
            result.action = Action.DELETED
        except exceptions.NotFound:
            result.action = Action.ALREADY_GONE
        except (OperationFailed, DeadlineReached) as error:
            result.action = Action.FAILED
            result.errors.append(str(error))
        except exceptions.GoogleAPICallError as error:
            result.action = Action.FAILED
            result.errors.append(describe_error(error))
    return results
