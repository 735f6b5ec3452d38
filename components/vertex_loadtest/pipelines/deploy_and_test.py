"""The reference pipeline: deploy a model to a fresh endpoint, load-test it, gate on SLOs, and always
tear the endpoint down.

::

    Import model ─┐                         ExitHandler "Deploy & test model"
    Import tests ─┤   Label run → Create endpoint → Deploy model → Test model performance → Gate on SLOs
                  └──────────────────────────────────────────────────────────────────────────────────┘
                                                  exit task: Clean up (always runs)

``Clean up`` is defined before the block and fed only parameters and placeholders (KFP refuses an
exit task that depends on another task): it finds what the run created by the run label that
``Label run`` computes from the job name, the same way (``vertex_loadtest.labels``).

``build_pipeline()`` makes the Vertex AI pipeline from google-cloud-pipeline-components'
``EndpointCreateOp`` and ``ModelDeployOp``; the local rehearsal passes its stand-ins for exactly those
two (``vertex_loadtest.rehearsal.standins``) and nothing else changes.
"""

from collections.abc import Callable
from typing import Any

from kfp import dsl

from vertex_loadtest._images import LATENCY_GATE, image_for
from vertex_loadtest.artifact_types import VertexModel
from vertex_loadtest.endpoint_cleanup.component import EndpointCleanupOp
from vertex_loadtest.latency_gate.component import LatencyGateOp
from vertex_loadtest.locust_load_test.component import LocustLoadTestOp

PIPELINE_NAME = "deploy-and-test"
DEFAULT_SLOS = ["p95 < 500ms", "error_rate < 1%", "rps >= 10"]


@dsl.component(base_image=image_for(LATENCY_GATE), install_kfp_package=False)
def RunLabelsOp(run_name: str = dsl.PIPELINE_JOB_NAME_PLACEHOLDER) -> dict:
    """The labels this run puts on what it creates, from its job name (the cleanup finds them by it).

    Args:
        run_name: The pipeline job name.

    Returns:
        ``{"vertex-loadtest-run": <the job name as a valid label value>}``.
    """
    from vertex_loadtest.labels import run_labels

    return run_labels(run_name)


def build_pipeline(
    create_endpoint_op: Callable[..., Any] | None = None, deploy_model_op: Callable[..., Any] | None = None
) -> Any:
    """Returns the reference pipeline.

    Args:
        create_endpoint_op: Replaces ``EndpointCreateOp`` (the rehearsal's stand-in); default: the real one.
        deploy_model_op: Replaces ``ModelDeployOp`` (the rehearsal's stand-in); default: the real one.
    """
    if create_endpoint_op is None or deploy_model_op is None:
        from google_cloud_pipeline_components.v1.endpoint import EndpointCreateOp, ModelDeployOp

        create_endpoint_op = create_endpoint_op or EndpointCreateOp
        deploy_model_op = deploy_model_op or ModelDeployOp

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Deploys a model to a fresh endpoint, load-tests it with Locust, gates the release on "
        "SLOs, and always deletes the endpoint (ExitHandler).",
    )
    def deploy_and_test(
        project: str,
        model_resource_name: str,
        locustfile_uri: str,
        location: str = "us-central1",
        locustfile_sha256: str = "",
        machine_type: str = "n1-standard-4",
        accelerator_type: str = "",
        accelerator_count: int = 0,
        min_replica_count: int = 1,
        max_replica_count: int = 1,
        users: int = 10,
        spawn_rate: float = 10.0,
        run_time: str = "5m",
        target_rps: float = 0.0,
        slos: list = DEFAULT_SLOS,
        baseline_stats_uri: str = "",
        keep_endpoint_on_success: bool = False,
    ) -> None:
        """Deploys a model to a fresh endpoint, load-tests it, gates on SLOs, always cleans up.

        Args:
            project: Google Cloud project of the endpoint.
            model_resource_name: The model to test, ``projects/P/locations/L/models/M``.
            locustfile_uri: The team's locustfile, ``gs://BUCKET/PATH.py``.
            location: Region of the endpoint.
            locustfile_sha256: The locustfile's expected SHA-256 (recommended); empty: not checked.
            machine_type: Machine type of the deployment.
            accelerator_type: Accelerator of the deployment, e.g. ``NVIDIA_L4``; empty: none.
            accelerator_count: Accelerators per replica.
            min_replica_count: Minimum replicas.
            max_replica_count: Maximum replicas.
            users: Concurrent Locust users.
            spawn_rate: Users started per second.
            run_time: Length of the load test (``30s``, ``5m``, ``1h``).
            target_rps: Pace to this total rate (open model); 0: as fast as the users go.
            slos: SLO expressions, e.g. ``["p95 < 500ms", "error_rate < 1%"]``.
            baseline_stats_uri: A previous run's stats artifact URI for ``baseline`` SLOs; empty: none.
            keep_endpoint_on_success: Keep the endpoint when the gate passes (promotion); default: delete.
        """
        cleanup = EndpointCleanupOp(
            project=project, location=location, keep_on_success=keep_endpoint_on_success
        ).set_display_name("Clean up")
        model = dsl.importer(
            artifact_uri=model_resource_name,
            artifact_class=VertexModel,
            metadata={"resourceName": model_resource_name},
        ).set_display_name("Import model")
        tests = dsl.importer(artifact_uri=locustfile_uri, artifact_class=dsl.Artifact).set_display_name(
            "Import tests"
        )
        with dsl.ExitHandler(cleanup, name="Deploy & test model"):
            labels = (
                RunLabelsOp(run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER)
                .set_display_name("Label run")
                .set_caching_options(False)
            )
            endpoint = (
                create_endpoint_op(
                    project=project, location=location, display_name="vertex-loadtest", labels=labels.output
                )
                .set_display_name("Create endpoint")
                .set_caching_options(False)
            )
            deploy = (
                deploy_model_op(
                    model=model.output,
                    endpoint=endpoint.outputs["endpoint"],
                    deployed_model_display_name="vertex-loadtest",
                    traffic_split={"0": 100},
                    dedicated_resources_machine_type=machine_type,
                    dedicated_resources_accelerator_type=accelerator_type,
                    dedicated_resources_accelerator_count=accelerator_count,
                    dedicated_resources_min_replica_count=min_replica_count,
                    dedicated_resources_max_replica_count=max_replica_count,
                )
                .set_display_name("Deploy model")
                .set_caching_options(False)
            )
            load_test = (
                LocustLoadTestOp(
                    endpoint=endpoint.outputs["endpoint"],
                    locustfile=tests.output,
                    locustfile_sha256=locustfile_sha256,
                    users=users,
                    spawn_rate=spawn_rate,
                    run_time=run_time,
                    target_rps=target_rps,
                )
                .after(deploy)
                .set_display_name("Test model performance")
                .set_caching_options(False)
            )
            with dsl.If(baseline_stats_uri == "", name="No baseline"):
                LatencyGateOp(stats=load_test.outputs["stats"], slos=slos).set_display_name("Gate on SLOs")
            with dsl.Else(name="Against baseline"):
                baseline = dsl.importer(artifact_uri=baseline_stats_uri, artifact_class=dsl.Artifact)
                LatencyGateOp(
                    stats=load_test.outputs["stats"],
                    baseline=baseline.set_display_name("Import baseline").output,
                    slos=slos,
                ).set_display_name("Gate on SLOs vs baseline")

    return deploy_and_test


#: The Vertex AI flavour, compiled to ``deploy_and_test.yaml`` by ``make compile``.
deploy_and_test = build_pipeline()
