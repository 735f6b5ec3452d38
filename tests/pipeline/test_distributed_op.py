"""The distributed helper compiles into a CustomJob: one master pool and one worker pool, same image."""

import json

import pytest
import yaml
from kfp import compiler

from vertex_loadtest import LocustLoadTestOp
from vertex_loadtest.errors import BadInput
from vertex_loadtest.locust_load_test.distributed import distributed_load_test_op


def worker_pools(tmp_path, **kwargs) -> list[dict]:
    path = tmp_path / "distributed.yaml"
    compiler.Compiler().compile(distributed_load_test_op(**kwargs), str(path))
    spec = yaml.safe_load(path.read_text())
    default = spec["root"]["inputDefinitions"]["parameters"]["worker_pool_specs"]["defaultValue"]
    return json.loads(default) if isinstance(default, str) else default


def test_master_pool_of_one_and_worker_pool_of_the_rest(tmp_path):
    pools = worker_pools(tmp_path, replica_count=4, machine_type="n2-highcpu-16")
    assert [pool["replica_count"] for pool in pools] == [1, 3]
    assert {pool["machine_spec"]["machine_type"] for pool in pools} == {"n2-highcpu-16"}
    images = {pool["container_spec"]["image_uri"] for pool in pools}
    assert images == {LocustLoadTestOp.component_spec.implementation.container.image}


def test_one_replica_is_refused_with_the_fix():
    with pytest.raises(BadInput, match="use LocustLoadTestOp"):
        distributed_load_test_op(replica_count=1)
