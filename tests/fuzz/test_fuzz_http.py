"""Property: whatever a client sends over HTTP (bodies, headers, path ids), the
answer is a success or a 4xx JSON error, never a 500, on SQLite and PostgreSQL.

Hypothesis generates the inputs (derandomized: the same examples every run);
`@example` pins the inputs that once broke PostgreSQL.
"""

from __future__ import annotations

import json
import logging
import socket
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.live import LiveServer
from tests.sse import SseParser

pytestmark = [pytest.mark.e2e, pytest.mark.fuzz]
logging.getLogger("httpx").setLevel(logging.WARNING)  # hundreds of requests: only what fails

FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text as JSON can carry it: any code point, NUL and lone surrogates included.
hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec=None, categories=None), max_size=20),
    st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfffy", "\ufeff", "\u202e", " ", "conv-" + "0" * 32]),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | hostile_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
    max_leaves=12,
)


def dumps(value) -> bytes:
    """JSON with every non-ASCII character escaped: lone surrogates travel as `\\ud800`."""
    return json.dumps(value, ensure_ascii=True).encode()


def check(response: httpx.Response) -> None:
    """A success, or a 4xx whose body is the API's JSON error."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        assert response.headers.get("content-type") == "application/json", response.text[:300]
        if response.request.method == "HEAD":
            assert response.content == b""
            return
        error = response.json()["error"]
        assert error["code"] and error["message"]


def check_stream(response: httpx.Response) -> None:
    """A run the fuzzer started ends with `done`, and no system failure."""
    parser = SseParser()
    events = [event.json for text in response.iter_text() for event in parser.feed(text)]
    names = [e["event"] for e in events]
    assert names and names[-1] == "done", names[-5:]
    assert "system_failed" not in names, events[-3:]


@pytest.fixture(scope="module")
def client(server: LiveServer, token: str):
    with httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


@pytest.fixture(scope="module")
def conversation(client: httpx.Client) -> str:
    """A conversation of the fuzzer's, for inputs that name one."""
    with client.stream("POST", "/agents/stream", json={"query": "k=2 delay_ms=0", "agent_name": "bench"}) as response:
        check_stream(response)
        return response.headers["x-conversation-id"]


def post_stream(client: httpx.Client, content: bytes, headers: dict | None = None) -> None:
    with client.stream("POST", "/agents/stream", content=content, headers=headers) as response:
        if response.status_code == 200:
            check_stream(response)
        else:
            response.read()
            check(response)


# --- bodies ---------------------------------------------------------------------------
stream_bodies = st.fixed_dictionaries(
    {},
    optional={
        # bench fails fast on anything but "k=N": a run the fuzzer starts ends at once.
        "query": hostile_text | json_values,
        "agent_name": st.sampled_from(["bench", "nobody"]) | hostile_text | json_values,
        "conversation_id": hostile_text | json_values,
        "extra": json_values,
    },
)


@FUZZ
@given(body=stream_bodies)
@example(body={"query": "AAPL\x00", "agent_name": "bench"})
@example(body={"query": "\ud800", "agent_name": "bench"})
@example(body={"query": "AAPL", "agent_name": "bench", "conversation_id": "conv-\x00"})
@example(body={"query": "AAPL", "agent_name": "\x00"})
def test_any_json_body_to_start_a_run(client, body):
    if "agent_name" not in body:
        body = {**body, "agent_name": "bench"}
    post_stream(client, dumps(body), {"Content-Type": "application/json"})


@FUZZ
@given(raw=st.binary(max_size=200) | st.builds(lambda v: dumps(v), json_values))
@example(raw=b'{"query": ' + b"[" * 2000 + b"]" * 2000 + b"}")
@example(raw=b"[" * 50_000)
@example(raw=b'{"query": "' + b"\\u0000" * 10 + b'", "agent_name": "bench"}')
def test_any_bytes_as_a_body(client, raw):
    post_stream(client, raw, {"Content-Type": "application/json"})


@FUZZ
@given(answer=hostile_text)
@example(answer="NVDA\x00")
@example(answer="\udc80")
def test_any_text_as_an_answer_to_a_question(client, answer):
    """The demo agent asks which ticker when it finds none; the answer is fuzzed."""
    with client.stream("POST", "/agents/stream", json={"query": "no ticker here", "agent_name": "demo"}) as asked:
        check_stream(asked)
        conversation_id = asked.headers["x-conversation-id"]
    body = dumps({"query": answer, "conversation_id": conversation_id})
    post_stream(client, body, {"Content-Type": "application/json"})
    client.post(f"/conversations/{conversation_id}/cancel")  # if the answer was refused, the question still waits


# --- path ids ---------------------------------------------------------------------------
@FUZZ
@given(
    raw_id=hostile_text.map(lambda text: quote(text.encode("utf-8", "surrogatepass"), safe=""))
    | st.binary(min_size=1, max_size=12).map(lambda raw: quote(raw, safe="")),
    route=st.sampled_from(
        [("GET", ""), ("HEAD", ""), ("DELETE", ""), ("GET", "/items"), ("GET", "/stream"), ("POST", "/cancel")]
    ),
)
@example(raw_id="conv-%00", route=("GET", ""))
@example(raw_id="%00", route=("POST", "/cancel"))
@example(raw_id="%ED%A0%80", route=("GET", "/stream"))
@example(raw_id="%C0%80", route=("DELETE", ""))
def test_any_conversation_id_in_the_path(client, raw_id, route):
    method, suffix = route
    check(client.request(method, f"/conversations/{raw_id}{suffix}"))


# --- headers ------------------------------------------------------------------------------
# What an HTTP client may put in a header value (h11 refuses CR, LF, NUL and edge
# whitespace), less the bytes Daphne itself refuses with its own 400 page before
# the application sees the request (daphne.utils.INVALID_HEADER_VALUE_BYTES; the
# raw-socket test below sends those).
header_values = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0xFF, exclude_characters="\x85"),
    min_size=1,
    max_size=60,
)
fuzzed_headers = st.dictionaries(
    st.sampled_from(
        [
            "Last-Event-ID",
            "Idempotency-Key",
            "Authorization",
            "Content-Type",
            "Origin",
            "Sec-Fetch-Site",
            "Cookie",
            "Accept",
            "X-CSRFToken",
        ]
    ),
    header_values,
    max_size=4,
)


@FUZZ
@given(headers=fuzzed_headers, resume=st.booleans())
@example(headers={"Last-Event-ID": "99999999999999999999999"}, resume=True)
@example(headers={"Idempotency-Key": "\xff\xfe"}, resume=False)
@example(headers={"Cookie": "sessionid=\xe9\xff; csrftoken=x"}, resume=False)
@example(headers={"Authorization": "Bearer \xff"}, resume=True)
def test_any_header_values(client, conversation, headers, resume):
    encoded = {name: value.encode("latin-1") for name, value in headers.items()}
    if resume:
        with client.stream("GET", f"/conversations/{conversation}/stream", headers=encoded) as response:
            response.read()  # the conversation is idle: a short stream, a 204 or an error
            check(response)
    else:
        post_stream(client, b'{"query": "bad query", "agent_name": "bench"}', encoded)


def raw_request(server: LiveServer, head: bytes) -> int:
    """Send raw bytes, return the status the server answered."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head)
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 "), data[:100]
    return int(data.split(b" ", 2)[1])


@FUZZ
@given(
    name=st.sampled_from([b"Cookie", b"Last-Event-ID", b"Idempotency-Key", b"Authorization", b"Origin"]),
    value=st.binary(min_size=1, max_size=40).filter(lambda v: b"\r" not in v and b"\n" not in v),
)
@example(name=b"Cookie", value=b"sessionid=abcdefgh\x00ijklmnop")
@example(name=b"Cookie", value=b"sessionid=abcdefghijklmnopqrstuvwxyz012345\x00")
@example(name=b"Cookie", value=b"sessionid=\xed\xa0\x80")
@example(name=b"Last-Event-ID", value=b"1\x00")
def test_any_bytes_in_a_header_reach_no_500(server, token, name, value):
    """Bytes an HTTP library would refuse to send (NUL, invalid UTF-8), over a raw socket."""
    head = (
        b"GET /conversations HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        # A fuzzed cookie goes without a token: the session (anonymous use) is looked up.
        + (b"Authorization: Bearer " + token.encode() + b"\r\n" if name not in (b"Authorization", b"Cookie") else b"")
        + name
        + b": "
        + value
        + b"\r\n\r\n"
    )
    assert raw_request(server, head) < 500


# --- the dialect doors' paths and AG-UI ids ---------------------------------------------------
def check_any_api_answer(response: httpx.Response) -> None:
    """A dialect answers in its own shape (ValueCell's API never says 4xx): only never a 500."""
    assert response.status_code < 500, (response.status_code, response.text[:500])


@FUZZ
@given(
    raw_id=hostile_text.map(lambda text: quote(text.encode("utf-8", "surrogatepass"), safe="")),
    template=st.sampled_from(
        [
            "/api/v1/conversations/{}",
            "/api/v1/conversations/{}/history",
            "/api/v1/conversations/{}/scheduled-task-results",
            "/api/v1/agents/by-name/{}",
            "/ag-ui/demo/threads/{}/stream",
            "/ag-ui/{}",
        ]
    ),
)
@example(raw_id="conv-%00", template="/api/v1/conversations/{}")
@example(raw_id="%00", template="/ag-ui/demo/threads/{}/stream")
def test_any_id_in_a_dialect_path(client, raw_id, template):
    check_any_api_answer(client.get(template.format(raw_id)))


@FUZZ
@given(thread_id=hostile_text, message_id=hostile_text)
@example(thread_id="t\x00", message_id="m")
@example(thread_id="t", message_id="m\x00")
@example(thread_id="\ud800", message_id="m")
def test_any_ag_ui_ids(client, thread_id, message_id):
    body = {
        "threadId": thread_id,
        "runId": "r",
        "state": {},
        "messages": [{"id": message_id, "role": "user", "content": "k=1"}],
        "tools": [],
        "context": [],
        "forwardedProps": {},
    }
    with client.stream("POST", "/ag-ui/bench", content=dumps(body), headers={"Content-Type": "application/json"}) as r:
        r.read()
        check_any_api_answer(r)
