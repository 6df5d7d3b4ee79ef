"""The standard middleware runs inline on the async path, and still saves sessions."""

import pytest
from django.test import AsyncClient

import valuecell_site.middleware as middleware

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def hops(monkeypatch):
    calls: list[str] = []
    real = middleware.sync_to_async

    def counting(func, *args, **kwargs):
        calls.append(getattr(func, "__qualname__", repr(func)))
        return real(func, *args, **kwargs)

    monkeypatch.setattr(middleware, "sync_to_async", counting)
    return calls


async def test_a_plain_api_request_makes_no_thread_hop_in_middleware(hops):
    response = await AsyncClient().get("/healthz")
    assert response.status_code == 200
    assert response.headers["X-Frame-Options"] == "DENY", "XFrameOptions still ran"
    assert response.headers["X-Content-Type-Options"] == "nosniff", "Security still ran"
    assert hops == []


async def test_a_request_that_modifies_the_session_still_saves_it(hops):
    client = AsyncClient()
    response = await client.post(
        "/agents/stream", {"query": "hello", "agent_name": "nobody"}, content_type="application/json"
    )
    # Refused (unknown agent) after the anonymous session was created: it is saved and set.
    assert response.status_code == 404
    assert "sessionid" in response.cookies and "csrftoken" in response.cookies
    assert any("process_response" in name for name in hops)


# Django 5.2's ASGIHandler.handle, which valuecell_site/asgi_handler.py copies.
DJANGO_HANDLE_SHA256 = "98faeb5bef800331e6a8002fbc96b30e4122a23438ae45a047190a531ea11323"


def test_the_streaming_handler_copies_djangos_handle_as_it_is():
    """A Django upgrade that changes `handle` must be looked at: the copy would drift."""
    import hashlib
    import inspect

    from django.core.handlers.asgi import ASGIHandler

    source = inspect.getsource(ASGIHandler.handle)
    assert hashlib.sha256(source.encode()).hexdigest() == DJANGO_HANDLE_SHA256


def _asgi_get(path: str) -> tuple[int, list[str]]:
    """Serve one GET through the project's ASGI application; (status, names of threads started)."""
    import asyncio
    import threading

    from asgiref.testing import ApplicationCommunicator

    from valuecell_site.asgi import django_asgi_app

    started: list[str] = []
    real_start = threading.Thread.start

    def start(thread):
        started.append(thread.name)
        return real_start(thread)

    async def serve() -> int:
        scope = {"type": "http", "method": "GET", "path": path, "headers": [(b"host", b"127.0.0.1")],
                 "query_string": b"", "http_version": "1.1", "scheme": "http", "server": ("127.0.0.1", 80)}  # fmt: skip
        communicator = ApplicationCommunicator(django_asgi_app, scope)
        await communicator.send_input({"type": "http.request", "body": b""})
        status = (await communicator.receive_output(10))["status"]
        while (await communicator.receive_output(10)).get("more_body"):
            pass
        await communicator.wait(10)
        return status

    threading.Thread.start = start  # type: ignore[method-assign]
    try:
        return asyncio.run(serve()), started
    finally:
        threading.Thread.start = real_start  # type: ignore[method-assign]


def test_a_request_that_needs_no_thread_starts_none_and_one_that_queries_still_gets_one():
    status, started = _asgi_get("/healthz")
    assert status == 200 and started == []
    status, started = _asgi_get("/conversations")  # anonymous: the ORM runs on the request's thread
    assert status == 200 and any(name.startswith("ThreadPoolExecutor") for name in started)


async def test_a_token_request_gets_no_message_storage_and_a_cookie_request_does():
    token = await AsyncClient().get("/conversations", headers={"Authorization": "Bearer vc_unknown"})
    assert token.status_code == 401 and not hasattr(token.asgi_request, "_messages")
    client = AsyncClient()
    client.cookies["sessionid"] = "none-yet"
    cookie = await client.get("/conversations", headers={"Authorization": "Bearer vc_unknown"})
    assert hasattr(cookie.asgi_request, "_messages")
