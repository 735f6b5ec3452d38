"""The safety net: a pipeline that sweeps endpoints whose run ended without its exit task.

Whether Vertex AI runs exit tasks when a run is cancelled is not documented. Scheduled (hourly, say)
on Vertex AI Pipelines, ``sweep_orphans`` removes every endpoint this library labelled whose run is
no longer running and which is older than ``older_than`` (the cleanup in sweep mode, see
``vertex_loadtest.endpoint_cleanup``); unlabelled endpoints and other teams' are never touched.
``make compile`` writes ``sweep_orphans.yaml``; each release publishes it next to the reference
template. docs/operations/sweeper.md shows the one call that schedules it.
"""

from typing import Optional

from kfp import dsl
from kfp.dsl import Artifact, Markdown, Output

from vertex_loadtest._images import ENDPOINT_CLEANUP, image_for

PIPELINE_NAME = "sweep-orphans"


@dsl.component(base_image=image_for(ENDPOINT_CLEANUP), install_kfp_package=False)
def sweep_endpoints(
    report: Output[Markdown],
    report_json: Output[Artifact],
    project: str,
    location: str,
    older_than: str = "6h",
    labels: Optional[dict] = None,  # noqa: UP045 - KFP reads the annotation
    delete_models: bool = False,
    dry_run: bool = False,
    deadline_seconds: int = 2700,
    api_endpoint: str = "",
    run_name: str = dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
) -> None:
    """Removes labelled endpoints older than older_than whose run is no longer running.

    Args:
        project: Google Cloud project to sweep.
        location: Vertex AI region to sweep.
        older_than: Only endpoints created longer ago (``6h``, ``90m``, ``1h30m``).
        labels: Further labels a swept endpoint must carry, e.g. {"team": "ml-serving"}.
        delete_models: Also delete stale models carrying the run label.
        dry_run: Report what would be removed, change nothing.
        deadline_seconds: Give up (and fail, naming what remains) after this long.
        api_endpoint: Vertex API endpoint override (http://127.0.0.1:PORT for the local emulator).
        run_name: The sweeper's own job name (run-unique, so a cache hit is impossible).

    Returns:
        report: Markdown: each endpoint looked at, swept or skipped and why.
        report_json: The same as JSON (report.json).
    """
    import os

    from vertex_loadtest.durations import parse_duration
    from vertex_loadtest.endpoint_cleanup.cleanup import run_cleanup
    from vertex_loadtest.endpoint_cleanup.config import CleanupConfig

    run_cleanup(
        CleanupConfig(
            project=project,
            location=location,
            run_name=run_name,
            labels=dict(labels or {}),
            api_endpoint=api_endpoint,
            dry_run=dry_run,
            delete_models=delete_models,
            sweep=True,
            older_than_seconds=float(parse_duration(older_than, "older_than")),
            deadline_seconds=float(deadline_seconds),
        ),
        markdown_path=report.path,
        json_path=os.path.join(report_json.path, "report.json"),
        raise_on_failure=True,
    )


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Removes endpoints labelled by vertex-loadtest whose run ended without its exit task "
    "(older than older_than, run no longer running). Schedule it on Vertex AI Pipelines.",
)
def sweep_orphans(
    project: str,
    location: str = "us-central1",
    older_than: str = "6h",
    delete_models: bool = False,
    dry_run: bool = False,
    api_endpoint: str = "",
) -> None:
    """Sweeps orphaned endpoints of one project and region.

    Args:
        project: Google Cloud project to sweep.
        location: Vertex AI region to sweep.
        older_than: Only endpoints created longer ago than this (well above the longest run).
        delete_models: Also delete stale models carrying the run label.
        dry_run: Report what would be removed, change nothing.
        api_endpoint: Vertex API endpoint override (the local emulator); empty: the region's.
    """
    sweep_endpoints(
        project=project,
        location=location,
        older_than=older_than,
        delete_models=delete_models,
        dry_run=dry_run,
        api_endpoint=api_endpoint,
        run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
    ).set_display_name("Sweep orphaned endpoints").set_caching_options(False)
