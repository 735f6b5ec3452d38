"""The dedicated DNS name of a Vertex AI endpoint: where its chat completions and streams go when it
has one (``dedicatedEndpointDns``; the shared regional domain refuses such endpoints' traffic).

One ``GET`` of the endpoint resource over REST with the run's bearer token (none for the loopback
emulator), in the component's own process before Locust starts. Standard library and google-auth
only: the load-test image carries no Vertex AI client library.
"""

import json
import logging
import urllib.error
import urllib.request
from typing import Any

logger = logging.getLogger(__name__)
_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


def lookup(api_base: str, endpoint: str, anonymous: bool, timeout_s: float = 30.0) -> str:
    """Returns ``https://{dedicatedEndpointDns}`` of ``endpoint``, or "" when it has none.

    Args:
        api_base: The API's scheme and host, e.g. ``https://us-central1-aiplatform.googleapis.com``.
        endpoint: The endpoint resource name ``projects/P/locations/L/endpoints/E``.
        anonymous: Send no bearer token (the loopback emulator).
        timeout_s: Seconds to wait for the answer.

    A lookup that fails (no permission to get the endpoint, network) is logged and answers "", so the
    run uses the shared regional domain as it would without the lookup.
    """
    request = urllib.request.Request(f"{api_base}/v1/{endpoint}")
    if not anonymous:
        request.add_header("Authorization", f"Bearer {_token()}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            dns = json.loads(response.read()).get("dedicatedEndpointDns") or ""
    except (urllib.error.URLError, OSError, ValueError) as error:
        logger.warning(
            "could not read endpoint %s to find its dedicated DNS name (%s): using %s",
            endpoint,
            error,
            api_base,
        )
        return ""
    return f"https://{dns}" if dns else ""


def _token() -> str:
    import google.auth
    import google.auth.transport.requests

    credentials: Any
    credentials, _ = google.auth.default(scopes=_SCOPES)
    credentials.refresh(google.auth.transport.requests.Request())
    return str(credentials.token)
