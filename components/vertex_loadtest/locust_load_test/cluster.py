"""Which part a replica plays in a distributed load test, from Vertex AI's ``CLUSTER_SPEC``.

A Vertex AI CustomJob with worker pools sets, on every replica::

    CLUSTER_SPEC={"cluster": {"workerpool0": ["cmle-training-workerpool0-ab-0:2222"],
                              "workerpool1": ["cmle-training-workerpool1-ab-0:2222", ...]},
                  "task": {"type": "workerpool1", "index": 0}}

``workerpool0`` index 0 is the Locust master (it writes every output); every replica of the other
pools is a Locust worker that connects to it. No ``CLUSTER_SPEC``, or a cluster of one replica, is a
single-machine run. Locally, ``vertex_loadtest.rehearsal.loopback_cluster`` runs the same roles as
processes on 127.0.0.1.
"""

import json
from dataclasses import dataclass

from vertex_loadtest.errors import BadInput

ENV = "CLUSTER_SPEC"
MASTER_POOL = "workerpool0"


@dataclass(frozen=True)
class Role:
    """This replica's part: ``single``, ``master`` or ``worker``."""

    kind: str
    master_host: str = ""
    master_port: int = 0
    workers: tuple[str, ...] = ()  # the worker replicas' addresses, as CLUSTER_SPEC lists them
    name: str = ""  # this replica, e.g. "workerpool1[0]"


SINGLE = Role("single")


def role_from_spec(text: str | None) -> Role:
    """Returns the role a ``CLUSTER_SPEC`` value gives this replica (``SINGLE`` when unset or empty).

    Raises:
        BadInput: the value is not a cluster spec Vertex AI would set (the message says what is off).
    """
    if not text or not text.strip():
        return SINGLE
    try:
        spec = json.loads(text)
        cluster, task = spec["cluster"], spec["task"]
        pool, index = str(task["type"]), int(task["index"])
        masters = list(cluster[MASTER_POOL])
    except (ValueError, TypeError, KeyError) as error:
        raise BadInput(
            f"{ENV} is not a Vertex AI cluster spec ({type(error).__name__}: {error}): expected "
            '{"cluster": {"workerpool0": ["host:port"], ...}, "task": {"type": "workerpool0", "index": 0}}'
        ) from None
    if len(masters) != 1:
        raise BadInput(
            f"{ENV} lists {len(masters)} replicas in {MASTER_POOL}; the Locust master pool needs exactly 1"
        )
    if pool not in cluster or not 0 <= index < len(cluster[pool]):
        raise BadInput(f"{ENV} task {pool}[{index}] is not a replica of its cluster {sorted(cluster)}")
    workers = tuple(address for name in sorted(cluster) if name != MASTER_POOL for address in cluster[name])
    if not workers:
        return SINGLE
    host, _, port = masters[0].rpartition(":")
    if not host or not port.isdigit():
        raise BadInput(f"{ENV} master address {masters[0]!r} is not host:port")
    kind = "master" if pool == MASTER_POOL else "worker"
    return Role(kind, host, int(port), workers, f"{pool}[{index}]")
