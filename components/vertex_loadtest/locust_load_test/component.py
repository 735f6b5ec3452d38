"""``LocustLoadTestOp``: the KFP definition of the load test. It only declares the interface and hands
off to ``runner.run_load_test``, imported inside the function (definition vs. runtime:
``docs/architecture.md``).

The component function is ``locust_load_test`` (so the spec is named ``locust-load-test``, like the
image), exported as ``LocustLoadTestOp`` as google-cloud-pipeline-components does.
"""

from typing import Optional

from kfp import dsl
from kfp.dsl import HTML, Artifact, Input, Metrics, Output

from vertex_loadtest._images import LOCUST_LOAD_TEST, image_for
from vertex_loadtest.artifact_types import VertexEndpoint


@dsl.component(base_image=image_for(LOCUST_LOAD_TEST), install_kfp_package=False)
def locust_load_test(
    report: Output[HTML],
    stats: Output[Artifact],
    metrics: Output[Metrics],
    endpoint: Input[VertexEndpoint] = None,
    locustfile: Input[Artifact] = None,
    payloads: Input[Artifact] = None,
    host: str = "",
    locustfile_sha256: str = "",
    instances: str = "",
    users: int = 10,
    spawn_rate: float = 10.0,
    run_time: str = "1m",
    processes: int = 0,
    request_timeout: float = 60.0,
    target_rps: float = 0.0,
    locust_options: str = "",
    auth: str = "auto",
    abort_on_breach: Optional[list] = None,  # noqa: UP045 - KFP reads the annotation
    abort_grace: str = "30s",
) -> None:
    """Load-tests a Vertex AI endpoint (or any HTTP host) with Locust.

    Args:
        endpoint: The endpoint to test (``google.VertexEndpoint``, e.g. from ``EndpointCreateOp``).
        locustfile: A locustfile artifact (e.g. a ``dsl.importer`` of a ``gs://`` URI); empty: the
            built-in ``VertexEndpointUser`` sends the payloads to ``:predict``.
        payloads: JSONL of request bodies (``{"instances": [...]}``) or single instances.
        host: Instead of ``endpoint``: any HTTP(S) URL; its path, if any, is the predict path.
        locustfile_sha256: The locustfile's expected SHA-256; a mismatch refuses to run it.
        instances: Inline JSON instances (a list) or one request body, instead of ``payloads``.
        users: Concurrent Locust users.
        spawn_rate: Users started per second.
        run_time: How long to run: ``30s``, ``5m``, ``1h30m``.
        processes: Locust processes; 0 uses every core of the machine.
        request_timeout: Seconds before a request counts as a timeout failure.
        target_rps: Pace the users to this total request rate (open model); 0: as fast as they go.
        locust_options: Extra Locust command-line options, e.g. ``--reset-stats``.
        auth: ``auto`` (Google ADC token, none for loopback hosts), ``google`` or ``none``.
        abort_on_breach: SLO expressions (as for ``LatencyGateOp``) that stop the test early once
            breached for 3 s after ``abort_grace``; the run then fails as incomplete.
        abort_grace: How long the test runs before an early abort may happen.

    Returns:
        report: Locust's HTML report (renders in the Vertex AI Pipelines UI).
        stats: A directory with ``stats.json`` (the documented schema the gate reads) and Locust's CSVs.
        metrics: Headline numbers: requests, failures, rps, latency percentiles of successful requests.
    """
    import shlex
    import shutil

    from vertex_loadtest.errors import LoadTestAborted
    from vertex_loadtest.locust_load_test.results import metrics as headline_metrics
    from vertex_loadtest.locust_load_test.runner import LoadTest, run_load_test

    def source(artifact: Artifact | None) -> str:
        return (
            "" if artifact is None else (artifact.uri if artifact.uri.startswith("gs://") else artifact.path)
        )

    outcome = run_load_test(
        LoadTest(
            host=host,
            endpoint=endpoint.metadata.get("resourceName", "") if endpoint is not None else "",
            locustfile=source(locustfile),
            locustfile_sha256=locustfile_sha256,
            payloads=source(payloads),
            instances=instances,
            users=users,
            spawn_rate=spawn_rate,
            run_time=run_time,
            processes=processes,
            request_timeout_s=request_timeout,
            target_rps=target_rps,
            locust_options=tuple(shlex.split(locust_options)),
            auth=auth,
            abort_on_breach=tuple(abort_on_breach or ()),
            abort_grace=abort_grace,
        ),
        stats.path,
    )
    if outcome is None:  # a worker replica of a distributed run: the master writes the outputs
        return
    shutil.move(str(outcome.report), report.path)
    for name, value in headline_metrics(outcome.stats).items():
        metrics.log_metric(name, value)
    if not outcome.complete:
        raise LoadTestAborted(
            f"load test stopped early ({outcome.stats['run']['stop_reason']}); reports written"
        )


LocustLoadTestOp = locust_load_test
