"""A locustfile whose users burn CPU before each request: the generator saturates at a known rate
(``BURN_S`` of CPU per request: one core holds about ``1 / BURN_S`` requests per second)."""

import time

from locust import task

from vertex_loadtest.locust_load_test.vertex_user import VertexEndpointUser

BURN_S = 0.025


class BusyUser(VertexEndpointUser):
    @task
    def burn_then_predict(self):
        deadline = time.process_time() + BURN_S
        while time.process_time() < deadline:
            pass
        self.predict([{"x": 1}])
