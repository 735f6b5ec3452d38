"""A locustfile in the style of the exit-handler article most teams start from (plain HttpUser, the
target read from the environment at import, one token fetched in on_start): the load test must run it
unchanged. With BASELINE_NO_AUTH=1 the Google token step is skipped (loopback targets).
"""

from os import environ as env

from locust import HttpUser, task


class VertexEndpointUser(HttpUser):
    host = env["VERTEX_AI_ENDPOINT_HOST"]
    path = env["VERTEX_AI_ENDPOINT_PATH"]

    def on_start(self):
        if env.get("BASELINE_NO_AUTH") == "1":
            return
        import google.auth
        import google.auth.transport.requests

        creds, _ = google.auth.default()
        creds.refresh(google.auth.transport.requests.Request())
        self.client.headers = {"Authorization": f"Bearer {creds.token}"}

    @task
    def request_prediction(self):
        prompt = "Write a dialog using Shakespeare language."
        body = {"instances": [{"text": prompt}]}
        with self.client.post(self.path, json=body, catch_response=True) as res:
            if res.status_code == 200:
                res.success()
            else:
                res.failure(f"Status code: {res.status_code} Reason: {res.reason}")
