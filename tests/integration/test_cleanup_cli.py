"""``vertex-loadtest cleanup`` end to end against the emulator: exit codes 0/1/2 and both reports."""

import json
from pathlib import Path

import pytest

from tests.cleanup_world import OTHER_RUN_LABEL, RUN, RUN_LABEL, World
from vertex_loadtest.cli import main
from vertex_loadtest.rehearsal.vertex_emulator import VertexEmulator
from vertex_loadtest.vertex_clients import API_ENDPOINT_ENV

BASE = ["cleanup", "--project", "test-project", "--location", "us-central1"]


def test_exit_0_and_reports(
    vertex_emulator: VertexEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    world = World(vertex_emulator)
    owned = world.endpoint(RUN_LABEL, models=2, traffic=[80, 20])
    foreign = world.endpoint(OTHER_RUN_LABEL)
    monkeypatch.setenv(API_ENDPOINT_ENV, vertex_emulator.api_endpoint)  # the env var wires the client
    label = "=".join(next(iter(RUN_LABEL.items())))
    code = main(
        [*BASE, "--label", label, "--run-state", "FAILED", "--report", str(tmp_path / "r.md"),
         "--report-json", str(tmp_path / "r.json")]
    )  # fmt: skip
    assert code == 0
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["ok"] and data["run_state"] == "FAILED"
    [endpoint] = data["endpoints"]
    assert endpoint["name"] == owned and endpoint["action"] == "deleted"
    assert len(endpoint["models_undeployed"]) == 2 and endpoint["deployed_models"][0]["machine_type"]
    markdown = (tmp_path / "r.md").read_text()
    assert "Nothing owned by this run remains" in markdown and "NVIDIA_L4" in markdown
    assert "Nothing owned" in capsys.readouterr().out
    assert foreign in vertex_emulator.endpoints()


def test_exit_1_when_something_remains(
    vertex_emulator: VertexEmulator, capsys: pytest.CaptureFixture
) -> None:
    world = World(vertex_emulator)
    owned = world.endpoint(RUN_LABEL)
    vertex_emulator.fail_operations("deleteEndpoint", 99, status="PERMISSION_DENIED", message="denied")
    code = main([*BASE, "--run-name", RUN, "--api-endpoint", vertex_emulator.api_endpoint])
    assert code == 1
    out = capsys.readouterr().out
    assert owned.rsplit("/", 1)[-1] in out and "gcloud ai endpoints delete" in out


def test_exit_2_on_bad_input(vertex_emulator: VertexEmulator, capsys: pytest.CaptureFixture) -> None:
    api = ["--api-endpoint", vertex_emulator.api_endpoint]
    assert main([*BASE, *api]) == 2  # nothing identifies the run
    assert main([*BASE, *api, "--label", "novalue"]) == 2
    assert main([*BASE, *api, "--sweep", "--older-than", "soon"]) == 2
    assert main([*BASE, *api, "--keep-on-success", "--run-name", RUN]) == 2
    err = capsys.readouterr().err
    assert "--older-than" in err and "--run-state" in err
    world = World(vertex_emulator)
    foreign = world.endpoint(OTHER_RUN_LABEL)
    assert main([*BASE, *api, "--run-name", RUN, "--endpoint", foreign]) == 2  # refused, untouched
    assert foreign in vertex_emulator.endpoints()


def test_sweep_dry_run_lists_without_touching(
    vertex_emulator: VertexEmulator, capsys: pytest.CaptureFixture
) -> None:
    world = World(vertex_emulator)
    world.endpoint({"vertex-loadtest-run": "old"})
    code = main(
        [*BASE, "--api-endpoint", vertex_emulator.api_endpoint, "--sweep", "--older-than", "6h", "--dry-run"]
    )
    assert code == 0
    assert "only" in capsys.readouterr().out  # too young for a 6 h sweep
    assert len(vertex_emulator.endpoints()) == 1
