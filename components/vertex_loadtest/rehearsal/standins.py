"""Lightweight stand-ins for the two google-cloud-pipeline-components steps ``kfp.local`` cannot run
(they are container components): same component names, inputs and outputs as ``EndpointCreateOp``
(``endpoint-create``) and ``ModelDeployOp`` (``model-deploy``), same Vertex AI calls
(``vertex_calls``), so the rehearsal runs the reference pipeline's DAG unchanged with only these two
executors swapped.
"""

from kfp import dsl
from kfp.dsl import Input, Output, OutputPath

from vertex_loadtest._images import ENDPOINT_CLEANUP, image_for
from vertex_loadtest.artifact_types import VertexEndpoint, VertexModel


@dsl.component(base_image=image_for(ENDPOINT_CLEANUP), install_kfp_package=False)
def endpoint_create(
    display_name: str,
    endpoint: Output[VertexEndpoint],
    gcp_resources: OutputPath(str),  # type: ignore[valid-type]
    location: str = "us-central1",
    description: str = "",
    labels: dict = {},  # noqa: B006 - KFP reads the default as the spec's default
    encryption_spec_key_name: str = "",
    network: str = "",
    project: str = "",
) -> None:
    """Creates a Vertex AI endpoint, like ``EndpointCreateOp``.

    Args:
        display_name: The endpoint's display name.
        location: Region of the endpoint.
        description: The endpoint's description.
        labels: Labels to put on the endpoint (the run label among them).
        encryption_spec_key_name: Unused in the rehearsal.
        network: Unused in the rehearsal.
        project: Project of the endpoint.

    Returns:
        endpoint: The created endpoint (``metadata["resourceName"]``).
        gcp_resources: The long-running operation, as google-cloud-pipeline-components reports it.
    """
    from vertex_loadtest.rehearsal.vertex_calls import create_endpoint, gcp_resources_json
    from vertex_loadtest.vertex_clients import vertex_clients

    clients = vertex_clients(location)
    parent = f"projects/{project}/locations/{location}"
    created = create_endpoint(
        clients, parent, display_name=display_name, labels=labels, description=description
    )
    endpoint.uri = f"https://{location}-aiplatform.googleapis.com/v1/{created.name}"
    endpoint.metadata["resourceName"] = created.name
    with open(gcp_resources, "w") as handle:
        handle.write(gcp_resources_json(created.operation, clients.api_endpoint))


@dsl.component(base_image=image_for(ENDPOINT_CLEANUP), install_kfp_package=False)
def model_deploy(
    model: Input[VertexModel],
    endpoint: Input[VertexEndpoint],
    gcp_resources: OutputPath(str),  # type: ignore[valid-type]
    deployed_model_display_name: str = "",
    traffic_split: dict = {},  # noqa: B006 - KFP reads the default as the spec's default
    dedicated_resources_machine_type: str = "",
    dedicated_resources_min_replica_count: int = 0,
    dedicated_resources_max_replica_count: int = 0,
    dedicated_resources_accelerator_type: str = "",
    dedicated_resources_accelerator_count: int = 0,
    automatic_resources_min_replica_count: int = 0,
    automatic_resources_max_replica_count: int = 0,
    service_account: str = "",
    disable_container_logging: bool = False,
    enable_access_logging: bool = False,
    explanation_metadata: dict = {},  # noqa: B006
    explanation_parameters: dict = {},  # noqa: B006
) -> None:
    """Deploys a model to an endpoint, like ``ModelDeployOp``.

    Args:
        model: The model to deploy.
        endpoint: The endpoint to deploy to.
        deployed_model_display_name: Display name of the deployment.
        traffic_split: Traffic split; ``{"0": 100}`` gives the new model all traffic.
        dedicated_resources_machine_type: Machine type, e.g. ``n1-standard-4``.
        dedicated_resources_min_replica_count: Minimum replicas.
        dedicated_resources_max_replica_count: Maximum replicas.
        dedicated_resources_accelerator_type: Accelerator, e.g. ``NVIDIA_L4``.
        dedicated_resources_accelerator_count: Accelerators per replica.
        automatic_resources_min_replica_count: Unused in the rehearsal.
        automatic_resources_max_replica_count: Unused in the rehearsal.
        service_account: Unused in the rehearsal.
        disable_container_logging: Unused in the rehearsal.
        enable_access_logging: Unused in the rehearsal.
        explanation_metadata: Unused in the rehearsal.
        explanation_parameters: Unused in the rehearsal.

    Returns:
        gcp_resources: The long-running operation, as google-cloud-pipeline-components reports it.
    """
    from vertex_loadtest.rehearsal.vertex_calls import Machine, deploy_model, gcp_resources_json
    from vertex_loadtest.vertex_clients import vertex_clients

    endpoint_name = endpoint.metadata["resourceName"]
    clients = vertex_clients(endpoint_name.split("/")[3])
    deployed = deploy_model(
        clients,
        endpoint_name,
        model=model.metadata["resourceName"],
        display_name=deployed_model_display_name,
        traffic_split=traffic_split,
        machine=Machine(
            dedicated_resources_machine_type,
            dedicated_resources_min_replica_count,
            dedicated_resources_max_replica_count,
            dedicated_resources_accelerator_type,
            dedicated_resources_accelerator_count,
        ),
    )
    with open(gcp_resources, "w") as handle:
        handle.write(gcp_resources_json(deployed.operation, clients.api_endpoint))
