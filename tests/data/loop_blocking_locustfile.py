"""A locustfile whose task computes for 15 ms without yielding: it keeps every other greenlet,
and the responses they wait for, off the event loop (what a heavy response parser does)."""

import time

from locust import constant, task

from vertex_loadtest.locust_load_test.vertex_user import VertexEndpointUser


class BusyUser(VertexEndpointUser):
    wait_time = constant(0.03)

    @task
    def predict_then_compute(self) -> None:
        self.predict_next()
        busy_until = time.perf_counter() + 0.015
        while time.perf_counter() < busy_until:  # CPU-bound, no gevent yield
            pass
