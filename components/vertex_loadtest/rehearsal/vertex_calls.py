"""What the rehearsal's stand-ins for ``EndpointCreateOp`` and ``ModelDeployOp`` do: the same Vertex AI
calls, through the real ``aiplatform_v1`` clients, at the API endpoint the environment names
(``VERTEX_LOADTEST_API_ENDPOINT``: the emulator in a rehearsal).
"""

import json
from typing import Any

from vertex_loadtest.vertex_clients import vertex_clients


def gcp_resources(operation_name: str, api_endpoint: str) -> str:
    """The ``gcp_resources`` JSON google-cloud-pipeline-components writes for a long-running operation."""
    base = api_endpoint if "://" in api_endpoint else f"https://{api_endpoint}"
    return json.dumps(
        {"resources": [{"resourceType": "VertexLro", "resourceUri": f"{base}/v1/{operation_name}"}]}
    )


def create_endpoint(
    project: str, location: str, display_name: str, labels: dict[str, str], description: str = ""
) -> tuple[str, str]:
    """Creates an endpoint and waits for it; returns its resource name and the ``gcp_resources`` JSON."""
    from google.cloud import aiplatform_v1

    clients = vertex_clients(location)
    operation = clients.endpoints.create_endpoint(
        parent=f"projects/{project}/locations/{location}",
        endpoint=aiplatform_v1.Endpoint(display_name=display_name, description=description, labels=labels),
    )
    endpoint = operation.result(timeout=600)
    return endpoint.name, gcp_resources(operation.operation.name, clients.api_endpoint)


def deploy_model(
    model: str,
    endpoint: str,
    *,
    deployed_model_display_name: str,
    traffic_split: dict[str, Any],
    machine_type: str,
    min_replica_count: int,
    max_replica_count: int,
    accelerator_type: str,
    accelerator_count: int,
) -> str:
    """Deploys ``model`` to ``endpoint`` on dedicated resources and waits; returns ``gcp_resources``."""
    from google.cloud import aiplatform_v1

    location = endpoint.split("/")[3]
    clients = vertex_clients(location)
    machine = aiplatform_v1.MachineSpec(machine_type=machine_type or "n1-standard-4")
    if accelerator_type:
        machine.accelerator_type = getattr(aiplatform_v1.AcceleratorType, accelerator_type)
        machine.accelerator_count = accelerator_count
    deployed = aiplatform_v1.DeployedModel(
        model=model,
        display_name=deployed_model_display_name,
        dedicated_resources=aiplatform_v1.DedicatedResources(
            machine_spec=machine,
            min_replica_count=min_replica_count or 1,
            max_replica_count=max_replica_count or min_replica_count or 1,
        ),
    )
    operation = clients.endpoints.deploy_model(
        endpoint=endpoint,
        deployed_model=deployed,
        traffic_split={key: int(value) for key, value in (traffic_split or {"0": 100}).items()},
    )
    operation.result(timeout=1800)
    return gcp_resources(operation.operation.name, clients.api_endpoint)
