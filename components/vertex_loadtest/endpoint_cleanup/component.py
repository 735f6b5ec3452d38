"""``EndpointCleanupOp``: the KFP definition of the endpoint cleanup exit task (definition vs. runtime:
``docs/architecture.md``). The component function is ``endpoint_cleanup`` (the spec is named
``endpoint-cleanup``, like the image), exported as ``EndpointCleanupOp``.

Use it as the exit task of a ``dsl.ExitHandler`` around everything that creates endpoints::

    cleanup = EndpointCleanupOp()          # finds this run's endpoints by label and removes them
    with dsl.ExitHandler(cleanup):
        ...create (labelled with vertex_loadtest.labels.run_labels(dsl.PIPELINE_JOB_NAME_PLACEHOLDER)),
        deploy, load test, gate...

KFP lets an exit task depend on nothing but pipeline parameters, constants and placeholders, so it
cannot receive the endpoint artifact: it finds what its run created by the run label
``vertex-loadtest-run=<the job name, sanitized>`` (``run_name`` defaults to the job-name placeholder,
which also makes every run's task unique, so a cache hit is impossible), and/or by explicit names.
``project`` and ``location`` default to the pipeline's own: Vertex hands the exit task
``status.pipeline_job_resource_name`` (``projects/P/locations/L/pipelineJobs/JOB``), which the
runtime parses (falling back to ``VERTEX_LOADTEST_PROJECT`` / ``VERTEX_LOADTEST_LOCATION``). Google
Cloud Pipeline Components' ``{{$.pipeline_google_cloud_project_id}}`` placeholders are deliberately
not used: ``kfp.local`` crashes on them (even inside the component's source text). The function calls
``vertex_loadtest.endpoint_cleanup.cleanup.run_cleanup``, like ``vertex-loadtest cleanup``.
"""

from typing import Any, Optional

from kfp import dsl
from kfp.dsl import Artifact, Markdown, Output
from kfp.dsl.python_component import PythonComponent

from vertex_loadtest._images import ENDPOINT_CLEANUP, image_for


@dsl.component(base_image=image_for(ENDPOINT_CLEANUP), install_kfp_package=False)
def endpoint_cleanup(
    status: dsl.PipelineTaskFinalStatus,
    report: Output[Markdown],
    report_json: Output[Artifact],
    run_name: str = dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
    project: str = "",
    location: str = "",
    labels: Optional[dict] = None,  # noqa: UP045 - KFP reads the annotation
    endpoints: Optional[list] = None,  # noqa: UP045
    api_endpoint: str = "",
    keep_on_success: bool = False,
    delete_models: bool = False,
    dry_run: bool = False,
    force: bool = False,
    deadline_seconds: int = 2700,
    in_flight: str = "cancel",
    label_key: str = "vertex-loadtest-run",
) -> None:
    """Undeploys every model from every endpoint this run created and deletes the endpoints.

    Args:
        status: The final status of the ExitHandler's body (KFP fills it in).
        run_name: The pipeline job name; the ownership label is label_key=<run_name, sanitized to
            label rules>. Defaults to the job-name placeholder.
        project: Google Cloud project; empty: the pipeline's own (from the final status).
        location: Vertex AI region; empty: the pipeline's own (from the final status).
        labels: Further labels an owned endpoint must carry, e.g. {"team": "ml-serving"}.
        endpoints: Endpoint resource names (or ids) to remove as well; each must carry the run's
            labels unless force is set.
        api_endpoint: Vertex API endpoint override (e.g. http://127.0.0.1:8090 for the local
            emulator); default $VERTEX_LOADTEST_API_ENDPOINT or LOCATION-aiplatform.googleapis.com.
        keep_on_success: Keep the endpoints when the body succeeded (promotion flow); the report
            says so.
        delete_models: Also delete models carrying the run's labels (the ones the run uploaded).
        dry_run: Report what would be done, change nothing.
        force: Remove explicitly named endpoints even without the run's labels.
        deadline_seconds: Give up (and fail, naming what remains) after this long; the default (45
            minutes) waits out a GPU deploy that was in flight when the run stopped.
        in_flight: "cancel" in-flight deploys before waiting them out, or only "wait".
        label_key: The run label's key.

    Returns:
        report: Markdown: run state, each endpoint (models undeployed, deleted or kept, how long it
            lived, machine and accelerator), and what remains with the commands that remove it.
        report_json: The same as JSON (report.json).
    """
    import os

    from vertex_loadtest.endpoint_cleanup.cleanup import run_cleanup
    from vertex_loadtest.endpoint_cleanup.config import CleanupConfig

    run_cleanup(
        CleanupConfig(
            project=project,
            location=location,
            run_name=run_name,
            labels=dict(labels or {}),
            endpoints=list(endpoints or []),
            run_state=status.state,
            pipeline_job=status.pipeline_job_resource_name,
            api_endpoint=api_endpoint,
            dry_run=dry_run,
            force=force,
            keep_on_success=keep_on_success,
            delete_models=delete_models,
            deadline_seconds=float(deadline_seconds),
            in_flight=in_flight,
            label_key=label_key,
        ),
        markdown_path=report.path,
        json_path=os.path.join(report_json.path, "report.json"),
        raise_on_failure=True,
    )


class _EndpointCleanupComponent(PythonComponent):
    """Passes ``run_name`` as an explicit task argument, the job-name placeholder unless given.

    A placeholder given as a task argument is resolved by every KFP backend (Vertex, kfp.local); one
    left as a parameter's default value is not guaranteed to be.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> dsl.PipelineTask:
        kwargs.setdefault("run_name", dsl.PIPELINE_JOB_NAME_PLACEHOLDER)
        return super().__call__(*args, **kwargs)


endpoint_cleanup = _EndpointCleanupComponent(
    component_spec=endpoint_cleanup.component_spec, python_func=endpoint_cleanup.python_func
)
EndpointCleanupOp = endpoint_cleanup
