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
    api: str = "predict",
    prompts: Input[Artifact] = None,
    max_tokens: int = 0,
    input_tokens: int = 0,
    output_tokens: int = 0,
    token_spread: float = 0.0,
    prompt_seed: int = 0,
    goodput: str = "",
    sweep: bool = False,
    sweep_slos: Optional[list] = None,  # noqa: UP045 - KFP reads the annotation
    stage_time: str = "30s",
    sweep_resolution: float = 0.1,
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
        api: ``predict`` (``:predict``), or for generative endpoints ``chat`` (streamed OpenAI chat
            completions) or ``stream-raw`` (``:streamRawPredict``); adds TTFT, TPOT, ITL, tokens/s
            and goodput to the stats.
        prompts: JSONL of prompts for ``chat``/``stream-raw``: ``messages`` or ``prompt`` per line,
            optional ``max_tokens``.
        max_tokens: A cap on every request's ``max_tokens`` (set where a prompt has none); 0: no cap.
        input_tokens: Instead of ``prompts``: synthetic prompts of about this many tokens.
        output_tokens: Synthetic prompts ask for about this many tokens.
        token_spread: Synthetic lengths vary uniformly within this fraction of the means.
        prompt_seed: Seed of the synthetic prompts.
        goodput: Per-request SLOs that make a request good, e.g. ``ttft<500ms,tpot<50ms``.
        sweep: Run a capacity sweep instead of one load: stages of open-model request rate (the
            first at target_rps, default 1 rps), doubled until a stage breaches one of sweep_slos,
            then bisected; run_time bounds the whole sweep. stats.json gains a capacity section
            (max_within_slo, limited_by, every stage) and the report opens with the latency against
            throughput chart.
        sweep_slos: The SLO expressions every stage must hold (gate syntax), e.g. ["p95 < 500ms",
            "error_rate < 1%"].
        stage_time: Each stage's measured time, after a warm-up (a fifth of it, at least 1 s and
            twice one user's pace).
        sweep_resolution: Bisect until the loads are within this fraction of each other.

    Returns:
        report: Locust's HTML report (renders in the Vertex AI Pipelines UI).
        stats: A directory with ``stats.json`` (the documented schema the gate reads) and Locust's CSVs.
        metrics: Headline numbers: requests, failures, rps, latency percentiles of successful requests;
            for generative runs also TTFT/TPOT/ITL percentiles, token counts, tokens/s and goodput;
            after a sweep also capacity_rps and capacity_users.
    """
    import shlex
    import shutil

    from vertex_loadtest.errors import BadInput, LoadTestAborted
    from vertex_loadtest.locust_load_test.results import metrics as headline_metrics
    from vertex_loadtest.locust_load_test.runner import LoadTest, Outcome, run_load_test
    from vertex_loadtest.locust_load_test.sweep import Sweep, run_sweep

    def source(artifact: Artifact | None) -> str:
        return (
            "" if artifact is None else (artifact.uri if artifact.uri.startswith("gs://") else artifact.path)
        )

    test = LoadTest(
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
        api=api,
        prompts=source(prompts),
        max_tokens=max_tokens,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        token_spread=token_spread,
        prompt_seed=prompt_seed,
        goodput=goodput,
    )
    if sweep:
        if not sweep_slos:
            raise BadInput("sweep=True needs sweep_slos, e.g. ['p95 < 500ms', 'error_rate < 1%']")
        plan = Sweep(tuple(sweep_slos), stage_time=stage_time, resolution=sweep_resolution)
        outcome: Outcome | None = run_sweep(test, plan, stats.path)
    else:
        outcome = run_load_test(test, stats.path)
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
