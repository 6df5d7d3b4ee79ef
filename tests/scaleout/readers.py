"""Clients of the scale-out tests: an HTTP client with a token, and a reader that
follows a conversation to its `done` the way a real client does."""

from __future__ import annotations

import threading
import time

import httpx

from tests.e2e.client import read_events


def client_for(server, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {token}"})



class Reader(threading.Thread):
    """Reads a conversation to its `done` as a client would: a stream that ends
    early is resumed with Last-Event-ID, a 503 is retried a moment later.

    It starts the run itself (`POST /agents/stream` with `query`), or follows
    `conversation_id` from its first event."""

    def __init__(self, server, token: str, *, query: str = "", conversation_id: str = "") -> None:
        super().__init__(daemon=True)
        self.server, self.token, self.query, self.conversation_id = server, token, query, conversation_id
        self.events: list[dict] = []
        self.resumes = 0
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            with client_for(self.server, self.token) as client:
                if self.query:
                    self._start(client)
                while not self.events or self.events[-1]["event"] != "done":
                    self._resume(client)
        except Exception as exc:
            self.error = exc

    def _start(self, client: httpx.Client) -> None:
        body = {"query": self.query, "agent_name": "bench"}
        with client.stream("POST", "/agents/stream", json=body) as response:
            assert response.status_code == 200, response.read()
            self.conversation_id = response.headers["X-Conversation-Id"]
            self._read(response)

    def _resume(self, client: httpx.Client) -> None:
        self.resumes += 1
        after = self.events[-1]["seq"] if self.events else 0
        url = f"/conversations/{self.conversation_id}/stream"
        with client.stream("GET", url, headers={"Last-Event-ID": str(after)}) as response:
            if response.status_code == 503:
                time.sleep(1)  # (Retry-After says 5: a test need not wait that long)
                return
            assert response.status_code == 200, response.read()
            self._read(response)

    def _read(self, response: httpx.Response) -> None:
        while batch := read_events(response, limit=1):
            self.events.append(batch[0].json)
