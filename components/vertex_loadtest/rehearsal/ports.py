"""Ports for the rehearsal's servers on loopback: the load test's own helper."""

from vertex_loadtest.locust_load_test.cluster import free_loopback_port as free_port

__all__ = ["free_port"]
