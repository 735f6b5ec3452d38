"""Which container image each component runs on.

Every spec names ``{registry}/{component}:{version}``. The registry defaults to the published one; a
team that mirrors the images into its own Artifact Registry sets ``VERTEX_LOADTEST_IMAGE_REGISTRY``
before importing ``vertex_loadtest`` (or before ``make compile``) and every component follows.

Releases pin images by digest: ``VERTEX_LOADTEST_IMAGE_DIGESTS`` names a JSON file
``{"<image>": "sha256:<64 hex>", ...}`` (Cloud Build writes it after pushing the images) and every
spec then names ``{registry}/{component}@sha256:...`` instead of the tag. The file must pin every
image: a partial or malformed file is an error, never a silent fallback to tags.
"""

import json
import os
import re
from pathlib import Path

from vertex_loadtest._version import __version__
from vertex_loadtest.errors import BadInput

DEFAULT_REGISTRY = "us-docker.pkg.dev/vertex-loadtest/images"
REGISTRY_ENV = "VERTEX_LOADTEST_IMAGE_REGISTRY"
DIGESTS_ENV = "VERTEX_LOADTEST_IMAGE_DIGESTS"

LOCUST_LOAD_TEST = "locust-load-test"
LATENCY_GATE = "latency-gate"
ENDPOINT_CLEANUP = "endpoint-cleanup"
IMAGES = (LOCUST_LOAD_TEST, LATENCY_GATE, ENDPOINT_CLEANUP)

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def image_for(component: str) -> str:
    """Returns the image reference a component's spec names: tagged with this version, or pinned by digest."""
    if component not in IMAGES:
        raise ValueError(f"unknown component image {component!r}; known: {', '.join(IMAGES)}")
    registry = os.environ.get(REGISTRY_ENV, DEFAULT_REGISTRY).rstrip("/")
    digests_file = os.environ.get(DIGESTS_ENV)
    if digests_file:
        return f"{registry}/{component}@{load_digests(digests_file)[component]}"
    return f"{registry}/{component}:{__version__}"


def load_digests(path: str | Path) -> dict[str, str]:
    """Reads a digests file and checks it pins every image.

    Raises:
        BadInput: the file is missing, not a JSON object, lacks an image or holds a malformed digest.
    """
    where = f"{DIGESTS_ENV}={path}"
    try:
        digests = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise BadInput(f"{where} cannot be read ({error}): point it to the digests JSON") from None
    except ValueError as error:
        raise BadInput(f"{where} is not JSON ({error}): expected {{image: 'sha256:...'}}") from None
    if not isinstance(digests, dict):
        raise BadInput(f"{where} holds {type(digests).__name__}, expected {{image: 'sha256:...'}}")
    missing = [image for image in IMAGES if image not in digests]
    if missing:
        raise BadInput(f"{where} pins no digest for {', '.join(missing)}: a release pins every image")
    malformed = {image: digests[image] for image in IMAGES if not _DIGEST.match(str(digests[image]))}
    if malformed:
        raise BadInput(f"{where} has malformed digests {malformed}: each must be 'sha256:' and 64 hex digits")
    return {image: digests[image] for image in IMAGES}
