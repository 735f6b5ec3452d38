"""Find every endpoint a run created, undeploy every model on it, delete it; report; fail on leftovers.

The runtime of ``EndpointCleanupOp`` (the ``dsl.ExitHandler`` exit task) and of ``vertex-loadtest
cleanup``: both call :func:`run_cleanup`. The parts, one job each:

- :mod:`.config`: what to clean (ownership labels, explicit endpoints, sweep, deadline);
- :mod:`.discovery`: which endpoints carry the ownership labels;
- :mod:`.cleaner`: the per-endpoint state machine (settle operations, undeploy, delete);
- :mod:`.models`: the run's uploaded models (``delete_models``);
- :mod:`.plan`: the pure rules (undeploy order and splits, ownership, the sweep rule);
- :mod:`.report`: what happened, as Markdown and JSON, with the commands that remove leftovers.

Foreign endpoints (same display name, another run's label, no label) are never touched. An
explicit endpoint that is not owned is refused unless ``force``; a refusal is bad input (exit 2)
after everything else has been cleaned.

Sweeper (``sweep=True``, ``vertex-loadtest cleanup --sweep --older-than 6h``), for the day an exit
handler could not run: an endpoint carrying the run label, older than the threshold, whose pipeline
job is not running (or cannot be found), and which is not the current run's, is removed.

``keep_on_success`` with ``run_state == "SUCCEEDED"`` keeps every owned endpoint (promotion) and says
so. ``dry_run`` lists what would be done and changes nothing (exit 0).
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from pathlib import Path

from google.api_core import exceptions

from vertex_loadtest.endpoint_cleanup.api import VertexApi, utc_now
from vertex_loadtest.endpoint_cleanup.cleaner import EndpointCleaner
from vertex_loadtest.endpoint_cleanup.config import CleanupConfig, resolve_config
from vertex_loadtest.endpoint_cleanup.discovery import discover
from vertex_loadtest.endpoint_cleanup.models import clean_models
from vertex_loadtest.endpoint_cleanup.plan import endpoint_key
from vertex_loadtest.endpoint_cleanup.report import (
    EXIT_BAD_INPUT,
    EXIT_REMAINING,
    Action,
    CleanupReport,
    EndpointResult,
    ModelResult,
    failure_message,
    write_reports,
)
from vertex_loadtest.errors import BadInput, CleanupIncomplete, DeadlineReached
from vertex_loadtest.vertex_clients import VertexClients, vertex_clients

log = logging.getLogger(__name__)


def cleanup(config: CleanupConfig, clients: VertexClients | None = None) -> CleanupReport:
    """Runs the cleanup described by ``config`` (already :func:`resolve_config`-ed) and reports.

    Args:
        config: What to clean.
        clients: Pre-built clients; built from ``config.api_endpoint`` otherwise.

    Returns:
        The report (never raises for API errors: they end up in it).
    """
    clients = clients or vertex_clients(config.location, config.api_endpoint)
    started = time.monotonic()
    now = utc_now()
    report = CleanupReport(
        project=config.project,
        location=config.location,
        run_name=config.run_name,
        run_state=config.run_state or "UNKNOWN",
        mode="sweep" if config.sweep else "cleanup",
        dry_run=config.dry_run,
        ownership_labels=(
            {config.label_key: "*", **config.labels} if config.sweep else config.ownership_labels()
        ),
        api_endpoint=clients.api_endpoint,
        started=now.isoformat(),
    )
    api = VertexApi(clients, config.deadline_seconds, config.poll_initial_seconds, config.poll_max_seconds)
    try:
        targets = discover(api, config, report.notes)
    except (DeadlineReached, exceptions.GoogleAPICallError) as error:
        report.notes.append(f"discovery failed: {error}")
        report.endpoints.append(
            EndpointResult(name=f"{config.parent}/endpoints/?", action=Action.FAILED, errors=[str(error)])
        )
        report.seconds = time.monotonic() - started
        return report
    log.info(
        "cleanup: %d endpoint(s) to look at: %s", len(targets), ", ".join(n for n, _ in targets) or "none"
    )
    cleaner = EndpointCleaner(config, api)
    workers = max(1, min(config.max_workers, len(targets)))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cleanup") as pool:
        futures = [pool.submit(cleaner.clean, name, explicit, now) for name, explicit in targets]
        report.endpoints = [future.result() for future in futures]
    for result in report.endpoints:
        log.info("cleanup: %s -> %s %s", result.name, result.action, result.reason)
    if config.delete_models:
        removed = {
            endpoint_key(e.name)
            for e in report.endpoints
            if e.action in (Action.DELETED, Action.ALREADY_GONE)
        }
        try:
            report.models = clean_models(api, config, now, removed, report.notes)
        except (DeadlineReached, exceptions.GoogleAPICallError) as error:
            report.models.append(
                ModelResult(name=f"{config.parent}/models/?", action=Action.FAILED, errors=[str(error)])
            )
    report.seconds = round(time.monotonic() - started, 3)
    return report


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
        config: What to clean (see :class:`~.config.CleanupConfig`).
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
