"""The ``aiplatform_v1`` clients every runtime uses, built in one place.

Production talks gRPC to ``{location}-aiplatform.googleapis.com`` with Application Default
Credentials. An ``http://`` loopback ``api_endpoint`` (the rehearsal's emulator) gets the REST
transport with anonymous credentials; anonymous credentials are never used for any other address.
See docs/architecture.md (the shared floor).
"""

from __future__ import annotations

import functools
import os
import urllib.parse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from google.cloud import aiplatform_v1

API_ENDPOINT_ENV = "VERTEX_LOADTEST_API_ENDPOINT"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def resolve_api_endpoint(api_endpoint: str, location: str) -> str:
    """The API endpoint to call: the argument, else ``$VERTEX_LOADTEST_API_ENDPOINT``, else the region's."""
    return api_endpoint or os.environ.get(API_ENDPOINT_ENV, "") or f"{location}-aiplatform.googleapis.com"


def is_loopback(api_endpoint: str) -> bool:
    """Whether ``api_endpoint`` is a plain-HTTP address on this machine (the rehearsal's emulator)."""
    host = urllib.parse.urlsplit(
        api_endpoint if "://" in api_endpoint else f"https://{api_endpoint}"
    ).hostname
    return api_endpoint.startswith("http://") and host in LOOPBACK_HOSTS


def client_kwargs(api_endpoint: str) -> dict[str, Any]:
    """Keyword arguments for any ``aiplatform_v1`` client at ``api_endpoint``.

    A loopback ``http://`` endpoint gets REST and anonymous credentials; any other ``http://`` one
    gets REST with the default credentials; everything else the default transport (gRPC).
    """
    kwargs: dict[str, Any] = {"client_options": {"api_endpoint": api_endpoint}}
    if is_loopback(api_endpoint):
        from google.auth.credentials import AnonymousCredentials

        kwargs["credentials"] = AnonymousCredentials()  # type: ignore[no-untyped-call]  # google-auth
    if api_endpoint.startswith("http://"):
        kwargs["transport"] = "rest"
    return kwargs


class VertexClients:
    """The service clients of one API endpoint, each created on first use."""

    def __init__(self, api_endpoint: str) -> None:
        self.api_endpoint = api_endpoint
        self._kwargs = client_kwargs(api_endpoint)

    @functools.cached_property
    def endpoints(self) -> aiplatform_v1.EndpointServiceClient:
        from google.cloud import aiplatform_v1

        return aiplatform_v1.EndpointServiceClient(**self._kwargs)

    @functools.cached_property
    def models(self) -> aiplatform_v1.ModelServiceClient:
        from google.cloud import aiplatform_v1

        return aiplatform_v1.ModelServiceClient(**self._kwargs)

    @functools.cached_property
    def pipelines(self) -> aiplatform_v1.PipelineServiceClient:
        from google.cloud import aiplatform_v1

        return aiplatform_v1.PipelineServiceClient(**self._kwargs)

    @functools.cached_property
    def prediction(self) -> aiplatform_v1.PredictionServiceClient:
        from google.cloud import aiplatform_v1

        return aiplatform_v1.PredictionServiceClient(**self._kwargs)


def vertex_clients(location: str, api_endpoint: str = "") -> VertexClients:
    """Clients for ``location`` at the resolved API endpoint (see :func:`resolve_api_endpoint`)."""
    return VertexClients(resolve_api_endpoint(api_endpoint, location))
