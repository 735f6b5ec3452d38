"""``distributed_load_test_op``: ``LocustLoadTestOp`` scaled past one machine, on an engine that exists.

Locust's own master/worker protocol, placed by a Vertex AI CustomJob with worker pools
(google-cloud-pipeline-components' ``create_custom_training_job_from_component``): ``workerpool0``
runs one replica, the Locust master, which writes the outputs; ``workerpool1`` runs
``replica_count - 1`` workers. Every replica runs the same image and reads its part from
``CLUSTER_SPEC`` (``cluster.py``); every replica still uses all its cores. Needs the ``pipelines`` extra.

::

    from vertex_loadtest.locust_load_test.distributed import distributed_load_test_op

    BigLoadTestOp = distributed_load_test_op(replica_count=5, machine_type="n2-highcpu-16")
    BigLoadTestOp(endpoint=endpoint, locustfile=tests.output, users=2000, run_time="10m")
"""

from typing import Any

from vertex_loadtest.locust_load_test.component import LocustLoadTestOp

MIN_REPLICAS = 2


def distributed_load_test_op(
    replica_count: int, machine_type: str = "n2-highcpu-8", **custom_job: Any
) -> Any:
    """Returns ``LocustLoadTestOp`` as a Vertex AI CustomJob of ``replica_count`` machines.

    Args:
        replica_count: Machines in all: one Locust master and ``replica_count - 1`` workers (at least 2).
        machine_type: Machine type of every replica; each one runs a Locust process per core.
        **custom_job: Other arguments of ``create_custom_training_job_from_component`` (``network``,
            ``service_account``, ``timeout``, ...).

    Returns:
        A component with the inputs and outputs of ``LocustLoadTestOp`` plus the CustomJob's own.
    """
    from google_cloud_pipeline_components.v1.custom_job import create_custom_training_job_from_component

    from vertex_loadtest.errors import BadInput

    if replica_count < MIN_REPLICAS:
        raise BadInput(
            f"replica_count {replica_count} must be at least {MIN_REPLICAS} (a master and a worker); "
            "for one machine use LocustLoadTestOp, which already uses every core"
        )
    return create_custom_training_job_from_component(
        LocustLoadTestOp,
        display_name="locust-load-test",
        replica_count=replica_count,
        machine_type=machine_type,
        **custom_job,
    )
