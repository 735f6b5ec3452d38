"""vertex-loadtest: KFP v2 components that load-test a Vertex AI endpoint, gate on SLOs, clean up.

Importing this package imports only the component definitions (kfp), never locust or gevent.

The ops load on first use (PEP 562): inside a running KFP task kfp sets ``_KFP_RUNTIME=true`` and
leaves out its compile-time API (``dsl.component``), so a component's runtime import such as
``vertex_loadtest.latency_gate.gate`` must not define components on the way in.
"""

import importlib
from typing import TYPE_CHECKING, Any

from vertex_loadtest._version import __version__

#: Public op -> module defining it.
_OPS = {
    "EndpointCleanupOp": "vertex_loadtest.endpoint_cleanup.component",
    "LatencyGateOp": "vertex_loadtest.latency_gate.component",
    "LocustLoadTestOp": "vertex_loadtest.locust_load_test.component",
}

if TYPE_CHECKING:
    from vertex_loadtest.endpoint_cleanup.component import EndpointCleanupOp
    from vertex_loadtest.latency_gate.component import LatencyGateOp
    from vertex_loadtest.locust_load_test.component import LocustLoadTestOp


def __getattr__(name: str) -> Any:
    if name not in _OPS:
        raise AttributeError(f"module 'vertex_loadtest' has no attribute {name!r}")
    value = getattr(importlib.import_module(_OPS[name]), name)
    globals()[name] = value
    return value


__all__ = ["EndpointCleanupOp", "LatencyGateOp", "LocustLoadTestOp", "__version__"]
