"""A scripted OpenAI-compatible chat-completions server for tests (plain ASGI, uvicorn in a thread).

Tests queue replies (streams, HTTP errors, stalls, malformed data); the server records
every request (also at `GET /_requests`) and which streams the client walked away from.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from tests.live import free_port

STALL_CAP_SECONDS = 30.0


@dataclass(frozen=True)
class Stall:
    """Stop sending and wait until the client goes away (at most `STALL_CAP_SECONDS`)."""


@dataclass(frozen=True)
class Pause:
    """Wait this long before the next step (a slow model)."""

    seconds: float


@dataclass(frozen=True)
class Raw:
    """Bytes sent as they are (malformed data, comments)."""

    text: str


Step = dict | Raw | Pause | Stall


@dataclass
class Reply:
    """One scripted answer to one `POST /v1/chat/completions`."""

    status: int = 200
    steps: list[Step] = field(default_factory=list)
    body: dict | None = None  # for a non-200 reply
    headers: dict[str, str] = field(default_factory=dict)
    done: bool = True  # end a stream with `data: [DONE]`


# --- building replies -----------------------------------------------------------


def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "fake",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def text_reply(*pieces: str, reasoning: tuple[str, ...] = (), reasoning_field: str = "reasoning_content") -> Reply:
    steps: list[Step] = [chunk({"role": "assistant", "content": ""})]
    steps += [chunk({reasoning_field: piece}) for piece in reasoning]
    steps += [chunk({"content": piece}) for piece in pieces]
    steps.append(chunk({}, finish_reason="stop"))
    return Reply(steps=steps)


def tool_reply(*calls: tuple[str, str, dict[str, Any]], text: tuple[str, ...] = ()) -> Reply:
    """A turn asking for tools: each call is (id, name, arguments), its arguments streamed in pieces."""
    steps: list[Step] = [chunk({"role": "assistant", "content": None})]
    steps += [chunk({"content": piece}) for piece in text]
    for index, (call_id, name, arguments) in enumerate(calls):
        encoded = json.dumps(arguments)
        cut = len(encoded) // 2
        steps.append(chunk({"tool_calls": [
            {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
        ]}))
        for piece in (encoded[:cut], encoded[cut:]):
            steps.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
    steps.append(chunk({}, finish_reason="tool_calls"))
    return Reply(steps=steps)


def error_reply(status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None) -> Reply:
    return Reply(
        status=status,
        body={"error": {"message": message, "type": "fake_error", "param": None, "code": code}},
        headers=headers or {},
    )


# --- the server -------------------------------------------------------------------


class FakeOpenAI:
    """Start with `.start()`; `.base_url` is what the agent's `LLM_BASE_URL` should be."""

    def __init__(self, api_key: str = "test") -> None:
        self.api_key = api_key
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.url}/v1"
        self._lock = threading.Condition()
        self._replies: deque[Reply] = deque()
        self.requests: list[dict[str, Any]] = []
        self.disconnected: set[int] = set()  # request indexes whose stream the client left early
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # --- control (from the test thread) ---------------------------------------------
    def start(self) -> "FakeOpenAI":
        config = uvicorn.Config(
            self, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-openai", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake OpenAI server did not start")
            time.sleep(0.01)  # waiting for uvicorn's own `started` flag; bounded by the deadline
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def reset(self) -> None:
        with self._lock:
            self._replies.clear()
            self.requests.clear()
            self.disconnected.clear()

    def enqueue(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    def pending(self) -> int:
        with self._lock:
            return len(self._replies)

    def wait_until(self, predicate: Callable[["FakeOpenAI"], bool], timeout: float = 10.0) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: predicate(self), timeout)

    def _changed(self) -> None:
        with self._lock:
            self._lock.notify_all()

    # --- ASGI ---------------------------------------------------------------------------
    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path, method = scope["path"], scope["method"]
        if method == "GET" and path == "/_requests":
            with self._lock:
                snapshot = [{k: v for k, v in r.items() if k != "at"} for r in self.requests]
            await _send_json(send, 200, {"requests": snapshot, "disconnected": sorted(self.disconnected)})
        elif method == "POST" and path == "/v1/chat/completions":
            await self._chat(scope, body, receive, send)
        else:
            await _send_json(send, 404, {"error": {"message": f"fake server: no route {method} {path}"}})

    async def _chat(self, scope: dict, body: bytes, receive: Callable, send: Callable) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            request = json.loads(body)
        except ValueError:
            request = None
        with self._lock:
            index = len(self.requests)
            self.requests.append({
                "index": index,
                "authorization": headers.get("authorization", ""),
                "body": request,
                "at": time.monotonic(),
            })
            reply = self._replies.popleft() if self._replies else None
            self._lock.notify_all()
        if headers.get("authorization") != f"Bearer {self.api_key}":
            reply = error_reply(401, "Incorrect API key provided.", "invalid_api_key")
        elif not isinstance(request, dict) or request.get("stream") is not True or not request.get("messages"):
            reply = error_reply(400, "fake server: expected a JSON body with messages and stream=true")
        elif reply is None:
            reply = error_reply(500, "fake server: no scripted reply left")
        if reply.status != 200:
            await _send_json(send, reply.status, reply.body or {}, reply.headers)
            return
        await self._stream(index, reply, receive, send)

    async def _stream(self, index: int, reply: Reply, receive: Callable, send: Callable) -> None:
        gone = asyncio.Event()
        finished = False

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            if not finished:
                with self._lock:
                    self.disconnected.add(index)
                    self._lock.notify_all()
            gone.set()

        watcher = asyncio.create_task(watch())
        try:
            await send({
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
            })
            for step in reply.steps:
                if gone.is_set():
                    return
                if isinstance(step, Stall):
                    try:
                        await asyncio.wait_for(gone.wait(), STALL_CAP_SECONDS)
                    except TimeoutError:
                        pass
                    return
                if isinstance(step, Pause):
                    await asyncio.sleep(step.seconds)
                    continue
                text = step.text if isinstance(step, Raw) else f"data: {json.dumps(step)}\n\n"
                await send({"type": "http.response.body", "body": text.encode(), "more_body": True})
            if reply.done:
                await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": True})
            finished = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the client went away while we were sending; `watch` records it
        finally:
            finished = finished or gone.is_set()
            watcher.cancel()


async def _send_json(send: Callable, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
    raw = json.dumps(payload).encode()
    extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()), *extra],
    })
    await send({"type": "http.response.body", "body": raw})
