"""A local Vertex AI emulator: the part of the v1 REST API the components and the rehearsal use.

The unmodified ``google.cloud.aiplatform_v1`` clients talk to it over REST on 127.0.0.1::

    with VertexEmulator() as emulator:
        clients = VertexClients(emulator.api_endpoint)   # vertex_loadtest.vertex_clients

What it serves, how it behaves, its fault injection, the knobs for the real service's harsher
behaviour and the ``:predict`` contract with a local model server: docs/rehearsal.md. Modules:
``state`` (resources, clock, operation engine), ``endpoints``, ``models``, ``operations``, ``predict``
(semantics), ``routes`` (the route table, each route named after its discovery method), ``call``,
``server`` (HTTP and the Python API), ``admin`` (HTTP admin API, CLI), ``filters`` (list filters and
paging), ``validation``, ``status`` (google.rpc.Status errors).
"""

from vertex_loadtest.rehearsal.vertex_emulator.admin import serve
from vertex_loadtest.rehearsal.vertex_emulator.server import VertexEmulator
from vertex_loadtest.rehearsal.vertex_emulator.status import ApiError
from vertex_loadtest.rehearsal.vertex_emulator.validation import validate_split

__all__ = ["ApiError", "VertexEmulator", "serve", "validate_split"]
