"""vertex-loadtest: KFP v2 components that load-test a Vertex AI endpoint, gate on SLOs, clean up.

Importing this package imports only the component definitions (kfp), never locust or gevent.
"""

from vertex_loadtest._version import __version__
from vertex_loadtest.latency_gate.component import LatencyGateOp
from vertex_loadtest.locust_load_test.component import LocustLoadTestOp

__all__ = ["LatencyGateOp", "LocustLoadTestOp", "__version__"]
