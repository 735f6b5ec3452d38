"""``make demo`` / ``vertex-loadtest demo``: the reference pipeline rehearsed on one machine, no cloud.

1. Starts the GCS emulator and the Vertex AI emulator on loopback, serves the sample model (a small
   real classifier, ``model_server``) in the Vertex custom-container contract, uploads the sample
   locustfile to the GCS emulator and registers the model in the Vertex emulator.
2. Runs ``deploy_and_test`` under ``kfp.local``; only ``EndpointCreateOp`` and ``ModelDeployOp`` are
   swapped for stand-ins making the same calls. Importers, load test, gate, exit handler and cleanup
   are the production components.
3. Prints the verdict, the report paths, and ends with ``endpoints left: N`` counted from the emulator.

By default the screen shows one line per task, the verdict and the paths; everything else goes to
``demo.log`` in the output directory (``--verbose`` shows it as it happens; ``console.py``).

Exit 0 when the pipeline succeeded, 1 when it failed (``--slo 'p95 < 1ms'``, ``--fail-deploy``).
"""

import argparse
import contextlib
import hashlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from vertex_loadtest.ports import free_port
from vertex_loadtest.rehearsal.console import demo_console

PROJECT, LOCATION = "rehearsal-project", "us-central1"
BUCKET, LOCUSTFILE_OBJECT = "rehearsal-tests", "perf/locustfile.py"
SERVER_START_TIMEOUT_S = 30
#: Read as a file, never imported here: importing it would import locust (and gevent's patches).
SAMPLE_LOCUSTFILE = Path(__file__).resolve().parent / "sample_locustfile.py"
LOG_FILE = "demo.log"


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def gcs_emulator() -> Iterator[str]:
    from gcp_storage_emulator.server import create_server

    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@contextlib.contextmanager
def model_server() -> Iterator[str]:
    """The sample model in its own process, as Vertex runs a serving container."""
    port = free_port()
    env = {
        **os.environ,
        "AIP_HTTP_PORT": str(port),
        "AIP_PREDICT_ROUTE": "/predict",
        "AIP_HEALTH_ROUTE": "/health",
    }
    process = subprocess.Popen([sys.executable, "-m", "vertex_loadtest.rehearsal.model_server"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the sample model server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def upload_locustfile() -> tuple[str, str]:
    """Puts the sample locustfile in the GCS emulator; returns its gs:// URI and SHA-256."""
    from google.cloud.storage import Client

    source = SAMPLE_LOCUSTFILE.read_bytes()
    bucket = Client(project=PROJECT).create_bucket(BUCKET)
    bucket.blob(LOCUSTFILE_OBJECT).upload_from_string(source)
    return f"gs://{BUCKET}/{LOCUSTFILE_OBJECT}", hashlib.sha256(source).hexdigest()


def register_model(model_url: str) -> str:
    """Uploads the sample model to the Vertex emulator's registry, backed by the local server."""
    from vertex_loadtest.rehearsal.vertex_calls import upload_model
    from vertex_loadtest.vertex_clients import vertex_clients

    uploaded = upload_model(
        vertex_clients(LOCATION),
        f"projects/{PROJECT}/locations/{LOCATION}",
        display_name="review-sentiment",
        model_url=model_url,
        image_uri="local/review-sentiment",
        health_route="/health",
    )
    return uploaded.name


def _newest(root: Path, pattern: str) -> Path | None:
    found = sorted(root.glob(f"*/{pattern}"), key=lambda path: path.stat().st_mtime)
    return found[-1] if found else None


def run_demo(args: argparse.Namespace) -> int:
    """Runs the rehearsal; see the module docstring."""
    output = Path(args.output_dir).resolve()
    output.mkdir(parents=True, exist_ok=True)
    log = output / LOG_FILE
    with demo_console(log, args.verbose) as show:
        if not args.verbose:
            show(f"[demo] everything but this summary goes to {log} (--verbose shows it here)")
        succeeded, left = _rehearse(args, output, lambda message: show(f"[demo] {message}"), show)
    print(f"endpoints left: {left}", flush=True)
    return 0 if succeeded else 1


def _rehearse(
    args: argparse.Namespace, output: Path, say: Callable[[str], None], show: Callable[[str], None]
) -> tuple[bool, int]:
    """Runs the pipeline; returns whether it succeeded and how many endpoints are left."""
    from kfp import local

    from vertex_loadtest.pipelines.deploy_and_test import DEFAULT_SLOS, build_pipeline
    from vertex_loadtest.rehearsal.standins import endpoint_create, model_deploy
    from vertex_loadtest.rehearsal.vertex_emulator import VertexEmulator

    pipeline_root = output / "pipeline-root"
    pipeline_root.mkdir(parents=True, exist_ok=True)
    slos = args.slo or DEFAULT_SLOS
    with contextlib.ExitStack() as stack:
        storage_url = stack.enter_context(gcs_emulator())
        vertex = stack.enter_context(VertexEmulator(operation_seconds=0.5))
        stack.enter_context(
            _environment(
                STORAGE_EMULATOR_HOST=storage_url,
                GOOGLE_CLOUD_PROJECT=PROJECT,
                VERTEX_LOADTEST_API_ENDPOINT=vertex.api_endpoint,
            )
        )
        print(f"[demo] GCS emulator {storage_url}, Vertex AI emulator {vertex.api_endpoint}", flush=True)
        model_url = stack.enter_context(model_server())
        locustfile_uri, locustfile_sha256 = upload_locustfile()
        model_name = register_model(model_url)
        print(f"[demo] model {model_name} served by {model_url}; locustfile {locustfile_uri}", flush=True)
        if args.fail_deploy:
            vertex.fail_operations("deployModel", message="Injected by --fail-deploy: the deployment failed.")
            say("--fail-deploy: the model deployment will fail")
        say(f"running the reference pipeline under kfp.local (SLOs: {'; '.join(slos)})")
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(pipeline_root))
        pipeline = build_pipeline(endpoint_create, model_deploy)
        started = time.monotonic()
        try:
            pipeline(
                project=PROJECT,
                location=LOCATION,
                model_resource_name=model_name,
                locustfile_uri=locustfile_uri,
                locustfile_sha256=locustfile_sha256,
                run_time=args.run_time,
                users=args.users,
                slos=slos,
                keep_endpoint_on_success=args.keep_on_success,
            )
            succeeded = True
        except RuntimeError as error:
            say(f"the pipeline failed: {error}")
            succeeded = False
        say(f"pipeline {'SUCCEEDED' if succeeded else 'FAILED'} in {time.monotonic() - started:.0f}s")
        _show_outputs(pipeline_root, say, show)
        return succeeded, len(vertex.endpoints())


def _show_outputs(pipeline_root: Path, say: Callable[[str], None], show: Callable[[str], None]) -> None:
    """Shows the verdict's headline and table, and where each report is (``<run>/<task>/<output>``)."""
    verdict = _newest(pipeline_root, "latency-gate*/verdict")
    if verdict is not None:
        show(f"\n{_headline(verdict.read_text(encoding='utf-8'))}\n")
    for label, pattern in (
        ("load test report (HTML)", "locust-load-test/report"),
        ("load test stats", "locust-load-test/stats/stats.json"),
        ("SLO verdict (Markdown)", "latency-gate*/verdict"),
        ("cleanup report (Markdown)", "endpoint-cleanup/report"),
    ):
        path = _newest(pipeline_root, pattern)
        say(f"{label}: {path if path else '(not produced: the pipeline stopped before it)'}")


def _headline(verdict: str) -> str:
    """The verdict's title, summary and SLO table: what it says before its notes and run details."""
    lines = verdict.strip().splitlines()
    table_end = max((i for i, line in enumerate(lines) if line.startswith("|")), default=len(lines) - 1)
    return "\n".join(lines[: table_end + 1])
