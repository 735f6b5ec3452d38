"""The locustfile that runs when none is given: the built-in user sending the configured payloads."""

from locust import task

from vertex_loadtest.locust_load_test.vertex_user import VertexEndpointUser


class PredictUser(VertexEndpointUser):
    """Sends the run's payloads to ``:predict``, round robin (see ``VertexEndpointUser``)."""

    @task
    def predict_next_payload(self) -> None:
        self.predict_next()
