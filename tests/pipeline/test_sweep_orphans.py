"""The sweep_orphans pipeline (the safety net under exit tasks) under kfp.local, against the emulator.

An orphan older than the threshold whose run is over goes; a younger one, one whose run still runs,
and foreign endpoints (unlabelled, another team's) stay untouched.
"""

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml
from kfp import local

from tests.cleanup_world import World
from vertex_loadtest import compile
from vertex_loadtest.labels import RUN_LABEL_KEY
from vertex_loadtest.pipelines.sweep_orphans import sweep_orphans
from vertex_loadtest.rehearsal.vertex_emulator import VertexEmulator

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:You may be attemping to run a task:RuntimeWarning"),
]


def backdate(emulator: VertexEmulator, name: str, hours: float) -> None:
    """Makes endpoint ``name`` look created ``hours`` ago (the emulator stamps the present)."""
    created = dt.datetime.now(tz=dt.UTC) - dt.timedelta(hours=hours)
    with emulator.lock:
        emulator.state.endpoints[emulator.canonical(name)]["createTime"] = created.isoformat()


def test_old_orphan_goes_young_running_and_foreign_stay(
    vertex_emulator: VertexEmulator, tmp_path: Path
) -> None:
    world = World(vertex_emulator)
    orphan = world.endpoint({RUN_LABEL_KEY: "deploy-and-test-cancelled-run"}, models=2, traffic=[50, 50])
    running = world.endpoint({RUN_LABEL_KEY: "deploy-and-test-still-running"}, models=1)
    young = world.endpoint({RUN_LABEL_KEY: "deploy-and-test-young-run"}, models=1)
    foreign = [world.endpoint({}, models=1), world.endpoint({"team": "serving"}, models=1)]
    for name in (orphan, running, *foreign):
        backdate(vertex_emulator, name, hours=7)
    backdate(vertex_emulator, young, hours=1)
    vertex_emulator.set_pipeline_job_state("deploy-and-test-still-running", "PIPELINE_STATE_RUNNING")
    world._mark = len(vertex_emulator.requests)

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path))
    sweep_orphans(
        project="test-project",
        location="us-central1",
        older_than="6h",
        api_endpoint=vertex_emulator.api_endpoint,
    )

    report = json.loads(next(tmp_path.rglob("report.json")).read_text())
    actions = {e["name"]: e["action"] for e in report["endpoints"]}
    assert actions == {orphan: "deleted", running: "skipped", young: "skipped"}
    assert report["mode"] == "sweep" and report["exit_code"] == 0
    left = sorted(vertex_emulator.endpoints())
    touched = world.touched([running, young, *foreign])
    print(
        f"FAULT-MATRIX sweep_orphans under kfp.local: orphan swept=1, young/running/foreign touched={touched}"
    )
    assert left == sorted([running, young, *foreign]) and touched == 0


def test_the_template_is_compiled_and_never_cached() -> None:
    spec = yaml.safe_load((compile.PACKAGE_DIR / "pipelines" / "sweep_orphans.yaml").read_text())
    assert spec["pipelineInfo"]["name"] == "sweep-orphans"
    [task] = spec["root"]["dag"]["tasks"].values()
    assert task["cachingOptions"] == {}
    job_name = {"runtimeValue": {"constant": "{{$.pipeline_job_name}}"}}
    assert task["inputs"]["parameters"]["run_name"] == job_name
    assert set(spec["root"]["inputDefinitions"]["parameters"]) == {
        "project", "location", "older_than", "delete_models", "dry_run", "api_endpoint"
    }  # fmt: skip
