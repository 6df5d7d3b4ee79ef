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
