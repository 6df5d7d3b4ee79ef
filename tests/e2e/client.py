"""HTTP helpers for end-to-end tests: start a run, read SSE events, resume."""

from __future__ import annotations

import httpx

from tests.sse import SseEvent, SseParser

TIMEOUT = httpx.Timeout(30.0, connect=5.0)


def read_events(response: httpx.Response, limit: int | None = None) -> list[SseEvent]:
    """Read events until the stream ends (or `limit` events were read); may be called again."""
    state = response.extensions.setdefault("sse", {"parser": SseParser(), "text": response.iter_text(), "ready": []})
    events: list[SseEvent] = []
    while limit is None or len(events) < limit:
        if state["ready"]:
            events.append(state["ready"].pop(0))
            continue
        try:
            text = next(state["text"])
        except StopIteration:
            break
        state["ready"].extend(state["parser"].feed(text))
    return events


def run(client: httpx.Client, query: str, limit: int | None = None, **fields) -> tuple[httpx.Response, list[dict]]:
    """POST /agents/stream and read its events (all of them, or the first `limit`)."""
    with client.stream("POST", "/agents/stream", json={"query": query, **fields}) as response:
        if response.status_code != 200:
            response.read()
            return response, []
        events = read_events(response, limit)
    return response, [e.json for e in events]


def resume(client: httpx.Client, conversation_id: str, after: int, header: bool = True) -> list[dict]:
    headers = {"Last-Event-ID": str(after)} if header else {}
    params = {} if header else {"after": str(after)}
    with client.stream("GET", f"/conversations/{conversation_id}/stream", headers=headers, params=params) as response:
        assert response.status_code == 200, response.read()
        return [e.json for e in read_events(response)]


def resume_if_any(client: httpx.Client, conversation_id: str, after: int) -> list[dict]:
    """Like `resume`, but a 204 (nothing after the cursor, no run in progress) reads as no events."""
    with client.stream("GET", f"/conversations/{conversation_id}/stream", headers={"Last-Event-ID": str(after)}) as response:
        if response.status_code == 204:
            return []
        assert response.status_code == 200, response.read()
        return [e.json for e in read_events(response)]


def names(events: list[dict]) -> list[str]:
    return [e["event"] for e in events]
