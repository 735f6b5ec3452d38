"""The Google artifact types our components take, declared without importing
google-cloud-pipeline-components (which pulls google-cloud-aiplatform into every image).

Same schema title and version as ``google_cloud_pipeline_components.types.artifact_types``, so the
artifacts ``EndpointCreateOp`` and ``ModelDeployOp`` produce connect to our inputs unchanged.
"""

from kfp import dsl


class VertexEndpoint(dsl.Artifact):
    """A Vertex AI endpoint; ``metadata["resourceName"]`` is ``projects/P/locations/L/endpoints/E``."""

    schema_title = "google.VertexEndpoint"
    schema_version = "0.0.1"


class VertexModel(dsl.Artifact):
    """A Vertex AI model; ``metadata["resourceName"]`` is ``projects/P/locations/L/models/M``."""

    schema_title = "google.VertexModel"
    schema_version = "0.0.1"
