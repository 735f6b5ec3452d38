"""Role selection from Vertex AI's CLUSTER_SPEC."""

import json

import pytest

from vertex_loadtest.errors import BadInput
from vertex_loadtest.locust_load_test.cluster import SINGLE, role_from_spec
from vertex_loadtest.rehearsal.loopback_cluster import loopback_cluster_specs

CLUSTER = {"workerpool0": ["master-0:2222"], "workerpool1": ["worker-0:2222", "worker-1:2222"]}


def spec(pool: str, index: int, cluster: dict = CLUSTER) -> str:
    return json.dumps({"cluster": cluster, "task": {"type": pool, "index": index}, "environment": "cloud"})


def test_workerpool0_is_the_master_expecting_every_other_replica():
    role = role_from_spec(spec("workerpool0", 0))
    assert (role.kind, role.master_host, role.master_port) == ("master", "master-0", 2222)
    assert role.workers == ("worker-0:2222", "worker-1:2222")


def test_other_pools_are_workers_of_the_master():
    role = role_from_spec(spec("workerpool1", 1))
    assert (role.kind, role.master_host, role.master_port, role.name) == (
        "worker",
        "master-0",
        2222,
        "workerpool1[1]",
    )


@pytest.mark.parametrize("value", [None, "", "  "])
def test_no_cluster_spec_is_a_single_machine(value):
    assert role_from_spec(value) is SINGLE


def test_a_cluster_of_one_replica_is_a_single_machine():
    assert role_from_spec(spec("workerpool0", 0, {"workerpool0": ["m:2222"]})) is SINGLE


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not json", "is not a Vertex AI cluster spec"),
        (json.dumps({"cluster": CLUSTER}), "is not a Vertex AI cluster spec"),
        (spec("workerpool0", 0, {"workerpool1": ["w:1"]}), "is not a Vertex AI cluster spec"),
        (spec("workerpool0", 0, {"workerpool0": ["a:1", "b:1"], "workerpool1": ["w:1"]}), "needs exactly 1"),
        (spec("workerpool1", 5), r"task workerpool1\[5\] is not a replica"),
        (spec("workerpool0", 0, {"workerpool0": ["no-port"], "workerpool1": ["w:1"]}), "is not host:port"),
    ],
)
def test_malformed_cluster_specs_are_named(value, message):
    with pytest.raises(BadInput, match=message):
        role_from_spec(value)


def test_loopback_specs_give_a_master_and_its_workers():
    roles = [role_from_spec(value) for value in loopback_cluster_specs(5557, workers=2)]
    assert [role.kind for role in roles] == ["master", "worker", "worker"]
    assert {(role.master_host, role.master_port) for role in roles} == {("127.0.0.1", 5557)}
    assert len(roles[0].workers) == 2
