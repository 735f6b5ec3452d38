"""Test helpers for the endpoint cleanup: a little Vertex world in the emulator, built and inspected
through the real ``aiplatform_v1`` REST clients. Import it as ``from tests import cleanup_world``."""

from __future__ import annotations

import re
from typing import Any

from google.cloud import aiplatform_v1

from vertex_loadtest.endpoint_cleanup.cleanup import run_cleanup
from vertex_loadtest.endpoint_cleanup.config import CleanupConfig
from vertex_loadtest.endpoint_cleanup.report import CleanupReport
from vertex_loadtest.labels import RUN_LABEL_KEY, sanitize_label_value
from vertex_loadtest.rehearsal.vertex_emulator import VertexEmulator
from vertex_loadtest.vertex_clients import client_kwargs

PROJECT = "test-project"
LOCATION = "us-central1"
PARENT = f"projects/{PROJECT}/locations/{LOCATION}"
RUN = "Deploy-And-Test_2026-11-25 07:44"
RUN_LABEL = {RUN_LABEL_KEY: sanitize_label_value(RUN)}
OTHER_RUN_LABEL = {RUN_LABEL_KEY: "deploy-and-test-some-other-run"}
MUTATIONS = (
    "deployModel",
    "undeployModel",
    "deleteEndpoint",
    "updateEndpoint",
    "cancelOperation",
    "deleteModel",
)
GPU = {
    "machine_spec": {
        "machine_type": "g2-standard-8",
        "accelerator_type": "NVIDIA_L4",
        "accelerator_count": 1,
    },
    "min_replica_count": 1,
    "max_replica_count": 2,
}


_RESOURCE = re.compile(r"/locations/([^/]+)/(endpoints|models)/([^/:]+)")


def _resource_key(path: str) -> tuple[str, ...] | None:
    match = _RESOURCE.search(path)
    return match.groups() if match else None


class World:
    """Endpoints and models in an emulator, plus the numbers the fault matrix reports."""

    def __init__(self, emulator: VertexEmulator) -> None:
        self.emulator = emulator
        kwargs = client_kwargs(emulator.api_endpoint)
        self.endpoints = aiplatform_v1.EndpointServiceClient(**kwargs)
        self.models = aiplatform_v1.ModelServiceClient(**kwargs)
        self._model: str | None = None
        self._mark = 0

    def run(self, **overrides: Any) -> CleanupReport:
        """Runs the cleanup (the same entry point as the CLI and the component) against the emulator."""
        self._mark = len(self.emulator.requests)
        return run_cleanup(self.config(**overrides))

    def model(self, labels: dict[str, str] | None = None) -> str:
        if labels is None and self._model:
            return self._model
        name = (
            self.models.upload_model(
                parent=PARENT,
                model={
                    "display_name": "model",
                    "labels": labels or {},
                    "container_spec": {"image_uri": "local/model"},
                },
            )
            .result(timeout=10)
            .model
        )
        if labels is None:
            self._model = name
        return name

    def endpoint(
        self,
        labels: dict[str, str] | None = None,
        models: int = 1,
        traffic: list[int] | None = None,
        display_name: str = "loadtest-endpoint",
        untracked: int = 0,
    ) -> str:
        """An endpoint with ``models`` deployed; ``traffic``: percent per model (default: 100 on the first).

        ``untracked`` more models are deployed without any traffic split (no entry in it at all).
        """
        seconds = dict(self.emulator.operation_seconds_by_kind), self.emulator.operation_seconds
        self.emulator.set_operation_seconds(0)
        try:
            name = (
                self.endpoints.create_endpoint(
                    parent=PARENT, endpoint={"display_name": display_name, "labels": labels or {}}
                )
                .result(timeout=10)
                .name
            )
            traffic = traffic or [100] + [0] * (models - 1)
            ids: list[str] = []
            for index in range(models):
                # Deployed models get their final share; the new one ("0") the rest, so each step sums to 100.
                split = {deployed_id: traffic[k] for k, deployed_id in enumerate(ids)}
                split["0"] = 100 - sum(split.values())
                operation = self.endpoints.deploy_model(
                    endpoint=name,
                    deployed_model={
                        "model": self.model(),
                        "dedicated_resources": GPU,
                        "display_name": f"m{index}",
                    },
                    traffic_split=split,
                )
                ids.append(operation.result(timeout=10).deployed_model.id)
            for _ in range(untracked):
                self.endpoints.deploy_model(
                    endpoint=name, deployed_model={"model": self.model(), "dedicated_resources": GPU}
                ).result(timeout=10)
            return name
        finally:
            self.emulator.operation_seconds_by_kind, self.emulator.operation_seconds = seconds

    def config(self, **overrides: Any) -> CleanupConfig:
        values: dict[str, Any] = dict(
            project=PROJECT,
            location=LOCATION,
            run_name=RUN,
            api_endpoint=self.emulator.api_endpoint,
            poll_initial_seconds=0.02,
            poll_max_seconds=0.1,
            deadline_seconds=60,
        )
        values.update(overrides)
        return CleanupConfig(**values)

    def names_with(self, labels: dict[str, str]) -> list[str]:
        return [
            n
            for n, e in self.emulator.endpoints().items()
            if all(e["labels"].get(k) == v for k, v in labels.items())
        ]

    def leaked(self, labels: dict[str, str] = RUN_LABEL) -> int:
        """Endpoints carrying ``labels`` that still exist."""
        return len(self.names_with(labels))

    def touched(self, names: list[str]) -> int:
        """Mutating requests (deploy, undeploy, delete, update, cancel) on ``names`` since :meth:`run`.

        Matched by location and resource id, whether a path spells the project id or its number.
        """
        keys = {_resource_key(n) for n in names}
        return sum(
            1
            for _, path, kind, _ in self.emulator.requests[self._mark :]
            if kind in MUTATIONS and _resource_key(path) in keys
        )

    def figures(
        self, scenario: str, foreign: list[str], owned: dict[str, str] = RUN_LABEL
    ) -> tuple[int, int]:
        """Owned endpoints left (carrying ``owned``) and mutations of ``foreign``, printed and returned."""
        leaked, touched = self.leaked(owned), self.touched(foreign)
        print(f"FAULT-MATRIX {scenario}: endpoints leaked={leaked} foreign touched={touched}")
        return leaked, touched
