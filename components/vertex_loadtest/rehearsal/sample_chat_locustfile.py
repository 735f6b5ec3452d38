"""The sample locustfile ``vertex-loadtest demo --llm`` uploads: how a team writes its own test of a
generative endpoint on the built-in ``VertexChatUser``.

Most users send the run's prompts (``--prompts`` or synthetic); some hold a two-turn conversation,
the second turn carrying the first answer, each turn under its own name so the gate can judge them
apart (``"POST chat follow-up": ttft_p95 < 800ms``).
"""

from locust import task

from vertex_loadtest.locust_load_test.vertex_user import VertexChatUser

QUESTION = "How does the event loop decide which task runs next?"


class AssistantUser(VertexChatUser):
    """Asks the run's prompts, and now and then a question with a follow-up."""

    @task(4)
    def prompt(self) -> None:
        self.chat_next()

    @task(1)
    def conversation(self) -> None:
        messages = [{"role": "user", "content": QUESTION}]
        answer = self.chat(messages, name="chat question", max_tokens=24)
        if answer is not None:
            messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": "Shorter?"}]
            self.chat(messages, name="chat follow-up", max_tokens=12)
