"""The locustfile of generative runs (``--api chat`` or ``stream-raw``) when none is given."""

from locust import task

from vertex_loadtest.locust_load_test.vertex_user import VertexChatUser


class ChatUser(VertexChatUser):
    """Streams the run's prompts, round robin (see ``VertexChatUser``)."""

    @task
    def chat_next_prompt(self) -> None:
        self.chat_next()
