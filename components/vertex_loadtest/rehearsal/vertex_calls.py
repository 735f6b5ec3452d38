"""The rehearsal's one place for the Vertex AI calls that put a model on an endpoint: upload, create, deploy.

The rehearsal's stand-ins for ``EndpointCreateOp`` and ``ModelDeployOp``, the demo's model registration
and the tests all call these, through the real ``aiplatform_v1`` clients of
``vertex_loadtest.vertex_clients`` (the emulator in a rehearsal). Each waits for its operation and
returns the resource's name and the operation's name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vertex_loadtest.vertex_clients import VertexClients

#: The container environment variable naming the local server that answers a model's predictions (the
#: emulator's contract, docs/rehearsal.md).
MODEL_URL_ENV = "VERTEX_EMULATOR_MODEL_URL"
OPERATION_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class Done:
    """A finished call: the resource (or deployed model id) and the long-running operation's name."""

    name: str
    operation: str


@dataclass(frozen=True)
class Machine:
    """Dedicated resources of a deployment."""

    machine_type: str = "n1-standard-4"
    min_replica_count: int = 1
    max_replica_count: int = 1
    accelerator_type: str = ""
    accelerator_count: int = 0


def gcp_resources_json(operation_name: str, api_endpoint: str) -> str:
    """The ``gcp_resources`` JSON google-cloud-pipeline-components writes for a long-running operation."""
    base = api_endpoint if "://" in api_endpoint else f"https://{api_endpoint}"
    return json.dumps(
        {"resources": [{"resourceType": "VertexLro", "resourceUri": f"{base}/v1/{operation_name}"}]}
    )


def _finish(operation: Any) -> tuple[Any, str]:
    """The result of a ``google.api_core`` operation (an untyped API) and the operation's name."""
    return operation.result(timeout=OPERATION_TIMEOUT_S), str(operation.operation.name)


def upload_model(
    clients: VertexClients,
    parent: str,
    *,
    display_name: str,
    model_url: str,
    labels: Mapping[str, str] | None = None,
    image_uri: str = "local/model-server",
    health_route: str = "",
) -> Done:
    """Uploads a model whose predictions the local server at ``model_url`` answers (route ``/predict``)."""
    from google.cloud import aiplatform_v1

    model = aiplatform_v1.Model(
        display_name=display_name,
        labels=dict(labels or {}),
        container_spec=aiplatform_v1.ModelContainerSpec(
            image_uri=image_uri,
            predict_route="/predict",
            health_route=health_route,
            env=[aiplatform_v1.EnvVar(name=MODEL_URL_ENV, value=model_url)],
        ),
    )
    operation = clients.models.upload_model(parent=parent, model=model)
    response, name = _finish(operation)
    return Done(response.model, name)


def create_endpoint(
    clients: VertexClients,
    parent: str,
    *,
    display_name: str,
    labels: Mapping[str, str] | None = None,
    description: str = "",
) -> Done:
    """Creates an endpoint under ``parent`` (``projects/P/locations/L``)."""
    from google.cloud import aiplatform_v1

    operation = clients.endpoints.create_endpoint(
        parent=parent,
        endpoint=aiplatform_v1.Endpoint(
            display_name=display_name, description=description, labels=dict(labels or {})
        ),
    )
    endpoint, name = _finish(operation)
    return Done(endpoint.name, name)


def deploy_model(
    clients: VertexClients,
    endpoint: str,
    *,
    model: str,
    display_name: str = "",
    traffic_split: Mapping[str, int] | None = None,
    machine: Machine | None = None,
) -> Done:
    """Deploys ``model`` to ``endpoint`` on dedicated resources; ``traffic_split`` defaults to all of it."""
    from google.cloud import aiplatform_v1

    machine = machine or Machine()
    spec = aiplatform_v1.MachineSpec(machine_type=machine.machine_type or "n1-standard-4")
    if machine.accelerator_type:
        spec.accelerator_type = getattr(aiplatform_v1.AcceleratorType, machine.accelerator_type)
        spec.accelerator_count = machine.accelerator_count
    minimum = machine.min_replica_count or 1
    deployed = aiplatform_v1.DeployedModel(
        model=model,
        display_name=display_name,
        dedicated_resources=aiplatform_v1.DedicatedResources(
            machine_spec=spec,
            min_replica_count=minimum,
            max_replica_count=machine.max_replica_count or minimum,
        ),
    )
    operation = clients.endpoints.deploy_model(
        endpoint=endpoint,
        deployed_model=deployed,
        traffic_split={key: int(value) for key, value in (traffic_split or {"0": 100}).items()},
    )
    response, name = _finish(operation)
    return Done(response.deployed_model.id, name)


def deploy_local_model(
    api_endpoint: str,
    *,
    project: str,
    location: str,
    model_url: str,
    labels: dict[str, str] | None = None,
    display_name: str = "loadtest-endpoint",
) -> dict[str, str]:
    """Uploads a model served at ``model_url``, creates a labelled endpoint, deploys it with 100% traffic.

    Returns:
        ``{"endpoint": name, "model": name, "deployed_model_id": id}``.
    """
    clients = VertexClients(api_endpoint)
    parent = f"projects/{project}/locations/{location}"
    model = upload_model(clients, parent, display_name=display_name, model_url=model_url, labels=labels)
    endpoint = create_endpoint(clients, parent, display_name=display_name, labels=labels)
    deployed = deploy_model(clients, endpoint.name, model=model.name, display_name=display_name)
    return {"endpoint": endpoint.name, "model": model.name, "deployed_model_id": deployed.name}
