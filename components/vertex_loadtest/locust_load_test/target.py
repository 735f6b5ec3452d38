"""Where the load goes: a Vertex AI endpoint resource name or a plain HTTP host, turned into the
host and ``:predict`` path Locust uses, and whether requests carry a Google token. An endpoint with
its own DNS name (a dedicated endpoint) takes its load there, not at the regional API host.
"""

import dataclasses
import ipaddress
import json
import logging
import re
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from vertex_loadtest.errors import BadInput
from vertex_loadtest.vertex_clients import resolve_api_endpoint

_ENDPOINT_NAME = re.compile(r"^projects/[^/]+/locations/(?P<location>[a-z0-9-]+)/endpoints/[^/:]+$")
DEFAULT_HOST_PATH = "/predict"
#: How long reading the endpoint (for its dedicated DNS name) may take.
LOOKUP_TIMEOUT_S = 30
logger = logging.getLogger(__name__)
#: What every Locust process of a run finds in its environment (the variables of the article-style
#: locustfiles teams bring): the target's scheme://host and its :predict path.
HOST_ENV, PATH_ENV = "VERTEX_AI_ENDPOINT_HOST", "VERTEX_AI_ENDPOINT_PATH"


@dataclass(frozen=True)
class Target:
    host: str  # scheme://netloc, as Locust's --host
    predict_path: str
    endpoint: str | None  # the Vertex resource name, when there is one
    anonymous: bool  # send no bearer token

    def as_dict(self) -> dict[str, str | None]:
        return {"host": self.host, "path": self.predict_path, "endpoint": self.endpoint}

    def environment(self) -> dict[str, str]:
        """``VERTEX_AI_ENDPOINT_HOST`` and ``VERTEX_AI_ENDPOINT_PATH`` for the Locust processes."""
        return {HOST_ENV: self.host, PATH_ENV: self.predict_path}


def resolve(host: str = "", endpoint: str = "", auth: str = "auto") -> Target:
    """Returns the target of a run.

    Args:
        host: A URL such as ``http://127.0.0.1:8080`` (an optional path is the predict path,
            default ``/predict``).
        endpoint: A Vertex AI endpoint resource name ``projects/P/locations/L/endpoints/E``.
        auth: ``auto`` (a token except for loopback hosts), ``google`` or ``none``.
    """
    if bool(host) == bool(endpoint):
        raise BadInput("give exactly one target: a host URL or an endpoint resource name")
    if auth not in ("auto", "google", "none"):
        raise BadInput(f"auth {auth!r} is not one of auto, google, none")
    if endpoint:
        match = _ENDPOINT_NAME.match(endpoint)
        if not match:
            raise BadInput(
                f"endpoint {endpoint!r} is not a resource name like projects/P/locations/L/endpoints/E"
            )
        base = resolve_api_endpoint("", match["location"])
        if "://" not in base:
            base = f"https://{base}"
        target_host, path = _split(base)[0], f"/v1/{endpoint}:predict"
    else:
        target_host, path = _split(host)
        path = path or DEFAULT_HOST_PATH
    anonymous = auth == "none" or (auth == "auto" and _is_loopback(urlsplit(target_host).hostname or ""))
    return Target(target_host, path, endpoint or None, anonymous)


def _split(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadInput(
            f"host {url!r} is not an http(s) URL such as https://example.com or http://127.0.0.1:8080"
        )
    return f"{parts.scheme}://{parts.netloc}", parts.path.rstrip("/")


def _is_loopback(hostname: str) -> bool:
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def with_dedicated_dns(resolved: Target) -> Target:
    """Returns the target with the endpoint's dedicated DNS name as its host, when it has one.

    Reads the endpoint (``GET /v1/{endpoint}``, with a Google token unless the target is anonymous);
    when that fails the load goes to the regional API host, with a warning saying why.
    """
    if resolved.endpoint is None:
        return resolved
    request = urllib.request.Request(f"{resolved.host}/v1/{resolved.endpoint}")
    try:
        if not resolved.anonymous:
            request.add_header("Authorization", f"Bearer {_google_token()}")
        with urllib.request.urlopen(request, timeout=LOOKUP_TIMEOUT_S) as response:
            dns = json.loads(response.read()).get("dedicatedEndpointDns", "")
    except Exception as error:  # any failure: the regional host still serves shared endpoints
        logger.warning(
            "could not read endpoint %s for its dedicated DNS name (%s: %s): sending the load to %s",
            resolved.endpoint,
            type(error).__name__,
            error,
            resolved.host,
        )
        return resolved
    return dataclasses.replace(resolved, host=f"https://{dns}") if dns else resolved


def _google_token() -> str:
    import google.auth
    import google.auth.transport.requests

    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    credentials.refresh(google.auth.transport.requests.Request())  # type: ignore[no-untyped-call]
    return str(credentials.token)
