"""A local Vertex AI emulator: the part of the v1 REST API the components and the rehearsal use.

The unmodified ``google.cloud.aiplatform_v1`` clients talk to it over REST on 127.0.0.1::

    with VertexEmulator() as emulator:
        clients = VertexClients(emulator.api_endpoint)   # vertex_loadtest.vertex_clients

What it serves, how it behaves, its fault injection and the ``:predict`` contract with a local model
server: docs/rehearsal.md. Modules: ``state`` (resources, clock, operations), ``endpoints``,
``models``, ``operations``, ``predict`` (semantics), ``routes`` (the route table, named after the
discovery document's methods), ``server`` (HTTP), ``filters`` and ``validation``, ``admin``.
"""

from vertex_loadtest.rehearsal.vertex_calls import MODEL_URL_ENV, deploy_local_model
from vertex_loadtest.rehearsal.vertex_emulator.admin import serve
from vertex_loadtest.rehearsal.vertex_emulator.predict import MAX_PREDICT_BYTES
from vertex_loadtest.rehearsal.vertex_emulator.server import LOOPBACK, VertexEmulator
from vertex_loadtest.rehearsal.vertex_emulator.state import OPERATION_KINDS
from vertex_loadtest.rehearsal.vertex_emulator.status import STATUS_CODES, ApiError
from vertex_loadtest.rehearsal.vertex_emulator.validation import validate_split

#: The name tests/unit/test_cleanup_logic.py imports.
_validate_split = validate_split

__all__ = [
    "LOOPBACK",
    "MAX_PREDICT_BYTES",
    "MODEL_URL_ENV",
    "OPERATION_KINDS",
    "STATUS_CODES",
    "ApiError",
    "VertexEmulator",
    "deploy_local_model",
    "serve",
    "validate_split",
]
