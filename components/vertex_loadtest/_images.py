"""Which container image each component runs on.

Every spec names ``{registry}/{component}:{version}``. The registry defaults to the published one; a
team that mirrors the images into its own Artifact Registry sets ``VERTEX_LOADTEST_IMAGE_REGISTRY``
before importing ``vertex_loadtest`` (or before ``make compile``) and every component follows.
"""

import os

from vertex_loadtest._version import __version__

DEFAULT_REGISTRY = "us-docker.pkg.dev/vertex-loadtest/images"
REGISTRY_ENV = "VERTEX_LOADTEST_IMAGE_REGISTRY"

LOCUST_LOAD_TEST = "locust-load-test"
LATENCY_GATE = "latency-gate"
ENDPOINT_CLEANUP = "endpoint-cleanup"
IMAGES = (LOCUST_LOAD_TEST, LATENCY_GATE, ENDPOINT_CLEANUP)


def image_for(component: str) -> str:
    """Returns the image reference a component's spec names, tagged with this version."""
    if component not in IMAGES:
        raise ValueError(f"unknown component image {component!r}; known: {', '.join(IMAGES)}")
    registry = os.environ.get(REGISTRY_ENV, DEFAULT_REGISTRY).rstrip("/")
    return f"{registry}/{component}:{__version__}"
