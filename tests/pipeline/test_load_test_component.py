"""``LocustLoadTestOp`` run by ``kfp.local``: the component as Vertex runs it, outputs checked."""

from pathlib import Path

import pytest
from kfp import dsl, local

from vertex_loadtest import LocustLoadTestOp
from vertex_loadtest.artifact_types import VertexEndpoint
from vertex_loadtest.histogram import readable
from vertex_loadtest.stats import load_stats

pytestmark = pytest.mark.slow


@pytest.fixture
def local_runner(tmp_path):
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))


def test_component_writes_report_stats_and_metrics(local_runner, prediction_server):
    task = LocustLoadTestOp(
        host=prediction_server.url, users=3, run_time="3s", processes=1, instances='[{"text": "hello"}]'
    )
    report = Path(task.outputs["report"].path).read_text()
    assert "<html" in report.lower() and "POST" in report
    stats = load_stats(task.outputs["stats"].path)
    assert stats["run"]["complete"] is True and stats["totals"]["successes"] > 0
    assert (Path(task.outputs["stats"].path) / "locust_stats.csv").exists()
    metrics = task.outputs["metrics"].metadata
    assert metrics["requests"] == stats["totals"]["requests"]
    assert metrics["latency_p95_ms"] == readable(stats["totals"]["latency_ms"]["p95"])
    assert metrics["generator_loop_lag_p99_ms"] == stats["generator"]["loop_lag_ms"]["p99"] >= 0


@dsl.pipeline
def endpoint_pipeline(endpoint_name: str, locustfile_uri: str):
    endpoint = dsl.importer(
        artifact_uri="https://example.invalid/endpoint",
        artifact_class=VertexEndpoint,
        metadata={"resourceName": endpoint_name},
    )
    locustfile = dsl.importer(artifact_uri=locustfile_uri, artifact_class=dsl.Artifact)
    LocustLoadTestOp(
        endpoint=endpoint.output, locustfile=locustfile.output, users=2, run_time="2s", processes=1
    )


def test_endpoint_artifact_and_gs_locustfile_through_a_pipeline(
    local_runner, prediction_server, gcs_emulator, monkeypatch, tmp_path
):
    """The endpoint artifact's resourceName picks the :predict path; the locustfile comes from gs://."""
    from google.cloud import storage

    served_paths = []
    original = prediction_server._respond

    async def remember(method, path, headers, body, writer):
        served_paths.append(path)
        return await original(method, path, headers, body, writer)

    prediction_server._respond = remember
    monkeypatch.setenv("VERTEX_LOADTEST_API_ENDPOINT", prediction_server.url)
    bucket = storage.Client().create_bucket("tests")
    bucket.blob("locustfile.py").upload_from_string(
        "from locust import task\n"
        "from vertex_loadtest.locust_load_test.vertex_user import VertexEndpointUser\n\n"
        "class TeamUser(VertexEndpointUser):\n"
        "    @task\n"
        "    def send(self):\n"
        "        self.predict([{'text': 'from a team'}])\n"
    )
    name = "projects/p/locations/us-central1/endpoints/42"
    endpoint_pipeline(endpoint_name=name, locustfile_uri="gs://tests/locustfile.py")
    # One read of the endpoint (for a dedicated DNS name; this one has none), then load at :predict.
    assert served_paths.count(f"/v1/{name}") == 1
    assert set(served_paths) == {f"/v1/{name}", f"/v1/{name}:predict"}


@dsl.pipeline
def team_locustfile_pipeline(host: str, locustfile_uri: str):
    locustfile = dsl.importer(artifact_uri=locustfile_uri, artifact_class=dsl.Artifact)
    LocustLoadTestOp(host=host, locustfile=locustfile.output, users=2, run_time="3s", processes=1)


def test_article_style_locustfile_runs_unchanged_in_the_component(
    local_runner, prediction_server, gcs_emulator, monkeypatch
):
    """The file reads VERTEX_AI_ENDPOINT_HOST/PATH at import, as the exit-handler article's does."""
    from google.cloud import storage

    monkeypatch.setenv("BASELINE_NO_AUTH", "1")
    article = Path(__file__).parents[1] / "data" / "article_locustfile.py"
    storage.Client().create_bucket("team").blob("locustfile.py").upload_from_filename(str(article))
    team_locustfile_pipeline(host=prediction_server.url, locustfile_uri="gs://team/locustfile.py")
    assert prediction_server.counters.by_outcome.get("ok", 0) > 20


def test_component_sweep_writes_the_capacity_and_its_metrics(local_runner):
    from vertex_loadtest.rehearsal.prediction_server import Behaviour, PredictionServer

    with PredictionServer(Behaviour(latency="100ms", slots=2)) as server:  # holds 20 rps
        task = LocustLoadTestOp(
            host=server.url,
            sweep=True,
            sweep_slos=["p95 < 300ms"],
            stage_time="2s",
            target_rps=8.0,
            run_time="40s",
            processes=1,
        )
    stats = load_stats(task.outputs["stats"].path)
    capacity = stats["capacity"]
    assert capacity["stages"][0]["target"] == 8 and capacity["max_within_slo"] is not None
    assert capacity["max_within_slo"]["rps"] <= 22
    assert task.outputs["metrics"].metadata["capacity_rps"] == capacity["max_within_slo"]["rps"]
    report = Path(task.outputs["report"].path).read_text()
    assert "vertex-loadtest-capacity" in report and "<svg" in report
