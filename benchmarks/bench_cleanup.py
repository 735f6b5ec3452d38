"""Endpoint cleanup parallelism: 5 endpoints x 2 models with 0.5 s operations, against the emulator.

Each endpoint's chain is serial by nature (undeploy, undeploy, delete: 3 operations of 0.5 s plus
polling), so the floor for any number of endpoints is one chain. Measured side by side in one run:

* ``solo``: one endpoint x 2 models, alone (the single endpoint chain, median of 3 runs);
* ``parallel``: 5 endpoints x 2 models, the shipped configuration (one thread per endpoint);
* ``serial``: the same 5 endpoints with ``max_workers=1`` (what a one-by-one cleanup costs).

The ratio is wall time / solo chain; the target for ``parallel`` is <= 1.3x (serial is ~5x). The
cleanup runs with its shipped polling (0.2 s first poll, x1.5 backoff), through the real
``aiplatform_v1`` REST clients.
"""

import statistics
import time
from pathlib import Path

from google.cloud import aiplatform_v1

from vertex_loadtest.endpoint_cleanup.cleanup import run_cleanup
from vertex_loadtest.endpoint_cleanup.config import CleanupConfig
from vertex_loadtest.labels import run_labels
from vertex_loadtest.rehearsal.vertex_emulator import VertexEmulator
from vertex_loadtest.vertex_clients import client_kwargs

OPERATION_SECONDS = 0.5
ENDPOINTS = 5
MODELS = 2
TARGET_RATIO = 1.3
PARENT = "projects/bench/locations/us-central1"
MACHINE = {
    "machine_spec": {"machine_type": "g2-standard-8", "accelerator_type": "NVIDIA_L4", "accelerator_count": 1}
}


def _populate(emulator: VertexEmulator, run: str, endpoints: int) -> None:
    emulator.set_operation_seconds(0)
    kwargs = client_kwargs(emulator.api_endpoint)
    endpoint_client = aiplatform_v1.EndpointServiceClient(**kwargs)
    model = (
        aiplatform_v1.ModelServiceClient(**kwargs)
        .upload_model(parent=PARENT, model={"display_name": "m", "container_spec": {"image_uri": "local/m"}})
        .result(timeout=10)
        .model
    )
    for _ in range(endpoints):
        name = (
            endpoint_client.create_endpoint(
                parent=PARENT, endpoint={"display_name": "e", "labels": run_labels(run)}
            )
            .result(timeout=10)
            .name
        )
        deployed: list[str] = []
        for _ in range(MODELS):
            split = {d: 100 // MODELS for d in deployed}
            split["0"] = 100 - sum(split.values())
            operation = endpoint_client.deploy_model(
                endpoint=name,
                deployed_model={"model": model, "dedicated_resources": {**MACHINE, "min_replica_count": 1}},
                traffic_split=split,
            )
            deployed.append(operation.result(timeout=10).deployed_model.id)
    emulator.set_operation_seconds(OPERATION_SECONDS)


def _clean(emulator: VertexEmulator, run: str, workers: int) -> tuple[float, float, int]:
    """Returns (wall seconds, longest endpoint chain in this run, endpoints left)."""
    config = CleanupConfig(
        project="bench",
        location="us-central1",
        run_name=run,
        api_endpoint=emulator.api_endpoint,
        max_workers=workers,
    )
    started = time.perf_counter()
    report = run_cleanup(config)
    wall = time.perf_counter() - started
    if report.exit_code != 0:
        raise RuntimeError(f"cleanup left {report.remaining}")
    return wall, max(e.seconds for e in report.endpoints), len(emulator.endpoints())


def measure() -> list[dict]:
    rows = []
    with VertexEmulator() as emulator:
        solo_walls = []
        for attempt in range(3):
            _populate(emulator, f"solo-{attempt}", 1)
            solo_walls.append(_clean(emulator, f"solo-{attempt}", 8)[0])
        solo = statistics.median(solo_walls)
        rows.append({"mode": "solo (1 endpoint)", "endpoints": 1, "wall": solo, "chain": solo, "left": 0})
        for mode, workers in (("parallel (shipped)", 8), ("serial (max_workers=1)", 1)):
            run = mode.split()[0]
            _populate(emulator, run, ENDPOINTS)
            wall, chain, left = _clean(emulator, run, workers)
            rows.append({"mode": mode, "endpoints": ENDPOINTS, "wall": wall, "chain": chain, "left": left})
    for row in rows:
        row["ratio"] = row["wall"] / solo
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        f"Cleanup of N endpoints x {MODELS} models, {OPERATION_SECONDS} s per operation "
        "(emulator, real REST client).",
        f"Ratio = wall time / the single endpoint chain (solo median); parallel target <= {TARGET_RATIO}x.",
        "",
        "| mode | endpoints | wall (s) | longest chain in run (s) | ratio | target | endpoints left |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for row in rows:
        target = ""
        if row["mode"].startswith("parallel"):
            target = "met" if row["ratio"] <= TARGET_RATIO else "**missed**"
        lines.append(
            f"| {row['mode']} | {row['endpoints']} | {row['wall']:.2f} | {row['chain']:.2f} | "
            f"{row['ratio']:.2f}x | {target} | {row['left']} |"
        )
    return "\n".join(lines)


def run(results_dir: Path) -> str:
    return table(measure())


if __name__ == "__main__":
    print(run(Path(__file__).resolve().parent / "results"))
