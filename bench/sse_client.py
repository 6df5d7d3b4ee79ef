"""A lean HTTP/1.1 SSE client (an asyncio Protocol), the same for both servers.

It decodes chunked bodies incrementally and hands the caller whole SSE frames
(bytes, split on a blank line) with one receive time per socket read, so the
client's own cost stays small and identical for every server measured.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# (frames, perf_counter at receipt, wall clock at receipt)
FrameSink = Callable[[list[bytes], float, float], None]


class HttpError(RuntimeError):
    """The server answered with something other than a 200 event stream, or hung up early."""


@dataclass
class Response:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    started_at: float = 0.0  # perf_counter before connecting (what a user waits from)
    sent_at: float = 0.0  # perf_counter right after the request was written
    ended_at: float = 0.0  # perf_counter when the body ended
    body: bytes = b""  # the body of a non-200 answer


def request_bytes(method: str, host: str, port: int, path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Accept: text/event-stream", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class ChunkedDecoder:
    """Incremental `Transfer-Encoding: chunked` decoder."""

    def __init__(self) -> None:
        self._raw = b""
        self._remaining = 0  # data bytes left in the current chunk
        self._skip = 0  # CRLF bytes after a chunk still to skip
        self.finished = False

    def feed(self, data: bytes) -> bytes:
        buf = self._raw + data if self._raw else data
        pos, size, out = 0, len(buf), []
        while pos < size and not self.finished:
            if self._skip:
                taken = min(self._skip, size - pos)
                pos += taken
                self._skip -= taken
            elif self._remaining:
                taken = min(self._remaining, size - pos)
                out.append(buf[pos : pos + taken])
                pos += taken
                self._remaining -= taken
                if not self._remaining:
                    self._skip = 2
            else:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    break
                length = int(buf[pos:eol].split(b";", 1)[0], 16)
                pos = eol + 2
                if length == 0:
                    self.finished = True
                else:
                    self._remaining = length
        self._raw = buf[pos:] if not self.finished else b""
        return b"".join(out)


class FrameSplitter:
    """Body bytes in, whole SSE frames (ending with a blank line) out to the sink."""

    def __init__(self, sink: FrameSink) -> None:
        self.sink = sink
        self._buffer = b""

    def feed(self, data: bytes, perf: float, wall: float) -> None:
        buffer = self._buffer + data if self._buffer else data
        if b"\n\n" not in buffer:
            self._buffer = buffer
            return
        *frames, self._buffer = buffer.split(b"\n\n")
        self.sink(frames, perf, wall)


class _SseProtocol(asyncio.Protocol):
    def __init__(self, request: bytes, sink: FrameSink, done: asyncio.Future[Response]) -> None:
        self.request = request
        self.splitter = FrameSplitter(sink)
        self.done = done
        self.response = Response()
        self.head = b""
        self.in_body = False
        self.chunked: ChunkedDecoder | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)
        self.response.sent_at = time.perf_counter()

    def data_received(self, data: bytes) -> None:
        perf, wall = time.perf_counter(), time.time()
        if not self.in_body:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            self._parse_head(self.head[:end])
            data, self.head, self.in_body = self.head[end + 4 :], b"", True
        if self.response.status != 200:
            self.response.body += data
            return
        if self.chunked is not None:
            data = self.chunked.feed(data)
        if data:
            self.splitter.feed(data, perf, wall)
        if self.chunked is not None and self.chunked.finished:
            self._finish(None)
            assert self.transport is not None
            self.transport.close()

    def _parse_head(self, head: bytes) -> None:
        status_line, *lines = head.decode("latin-1").split("\r\n")
        self.response.status = int(status_line.split(" ", 2)[1])
        for line in lines:
            name, _, value = line.partition(":")
            self.response.headers[name.strip().lower()] = value.strip()
        if self.response.headers.get("transfer-encoding", "").lower() == "chunked":
            self.chunked = ChunkedDecoder()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.response.status != 200:
            self._finish(HttpError(f"answered {self.response.status or 'nothing'}: {self.response.body[:300]!r}"))
        elif self.chunked is not None and not self.chunked.finished:
            self._finish(HttpError(f"connection lost mid-stream: {exc}"))
        else:
            self._finish(None)

    def _finish(self, error: Exception | None) -> None:
        if self.done.done():
            return
        self.response.ended_at = time.perf_counter()
        if error is None:
            self.done.set_result(self.response)
        else:
            self.done.set_exception(error)


async def stream(
    host: str,
    port: int,
    method: str,
    path: str,
    sink: FrameSink,
    *,
    headers: dict[str, str] | None = None,
    json_body: dict | None = None,
) -> Response:
    """Send one request and feed every SSE frame of its body to `sink`; raise unless 200."""
    body = json.dumps(json_body).encode() if json_body is not None else b""
    all_headers = dict(headers or {})
    if json_body is not None:
        all_headers["Content-Type"] = "application/json"
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Response] = loop.create_future()
    request = request_bytes(method, host, port, path, all_headers, body)
    started = time.perf_counter()
    transport, protocol = await loop.create_connection(lambda: _SseProtocol(request, sink, done), host, port)
    protocol.response.started_at = started
    try:
        return await done
    finally:
        transport.close()
