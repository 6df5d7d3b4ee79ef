"""The API's boundary (valuecell_site/api_boundary.py), in process: cross-site
refusals, JSON errors under the API prefixes whatever DEBUG is, pages untouched."""

from __future__ import annotations

import logging
import re

import pytest
from django.test import AsyncClient, Client, RequestFactory

from conversations.models import Conversation
from streaming.http import agents as agent_views
from valuecell_site.api_boundary import csrf_failure, is_api_path

pytestmark = pytest.mark.django_db(transaction=True)

STREAM = {"query": "AAPL", "agent_name": "nobody"}  # refused later (404) if it gets through


def test_the_api_prefixes():
    for path in ("/agents", "/agents/stream", "/conversations", "/conversations/x/stream", "/api/v1/x", "/ag-ui/run", "/api"):
        assert is_api_path(path), path
    for path in ("/", "/admin/", "/agentsx", "/healthz", "/static/chat/chat.js", "/apis"):
        assert not is_api_path(path), path


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://testserver.evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "Cross-Site", "Origin": "http://testserver"},
        {"Origin": "file://"},
    ],
)
async def test_an_unsafe_cross_site_request_is_refused_before_a_session_exists(headers):
    response = await AsyncClient().post("/agents/stream", STREAM, content_type="application/json", headers=headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "cross_site_request"
    assert "sessionid" not in response.cookies and "csrftoken" not in response.cookies
    assert await Conversation.objects.acount() == 0


@pytest.mark.parametrize(
    "method, path",
    [("post", "/conversations/conv-x/cancel"), ("delete", "/conversations/conv-x"), ("put", "/api/v1/anything"), ("patch", "/ag-ui/x")],
)
async def test_every_unsafe_method_on_every_api_prefix_is_checked(method, path):
    response = await getattr(AsyncClient(), method)(path, headers={"Origin": "https://evil.example"})
    assert (response.status_code, response.json()["error"]["code"]) == (403, "cross_site_request")


@pytest.mark.parametrize(
    "headers",
    [
        {},  # a program: no Origin, no Sec-Fetch-Site
        {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
        {"Origin": "http://localhost:8000", "Sec-Fetch-Site": "same-site"},  # a host in ALLOWED_HOSTS
        {"Sec-Fetch-Site": "none"},  # typed in the address bar
    ],
)
async def test_same_site_and_program_requests_pass(settings, headers):
    settings.ALLOWED_HOSTS = ["testserver", "localhost"]
    response = await AsyncClient().post("/agents/stream", STREAM, content_type="application/json", headers=headers)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "unknown_agent")


async def test_safe_methods_are_never_refused_as_cross_site():
    headers = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    response = await AsyncClient().get("/agents", headers=headers)
    assert response.status_code == 200


async def test_trusted_origins_pass_and_a_bare_star_in_allowed_hosts_trusts_no_site(settings):
    settings.ALLOWED_HOSTS = ["*"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.example.com", "https://*.partner.example"]
    for origin, status in [
        ("https://app.example.com", 404),
        ("https://eu.partner.example", 404),
        ("http://eu.partner.example", 403),  # scheme differs
        ("https://evil.example", 403),
    ]:
        headers = {"Origin": origin}
        response = await AsyncClient().post("/agents/stream", STREAM, content_type="application/json", headers=headers)
        assert response.status_code == status, origin


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("path", ["/agents/nope", "/conversations/a/b/c", "/api/v2/nothing", "/ag-ui/", "/api"])
async def test_unknown_api_paths_are_json_404s_whatever_debug_is(settings, debug, path):
    settings.DEBUG = debug
    response = await AsyncClient().get(path)
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": f"No such resource: {path}"}}
    # ValueCell's own API answers its unknown paths in its own JSON shape.
    dialect = await AsyncClient().get("/api/v1/nothing")
    assert dialect.status_code == 404 and dialect["Content-Type"] == "application/json"


async def test_outside_the_api_debug_pages_stay_html(settings):
    settings.DEBUG = True
    response = await AsyncClient().get("/no/such/page")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("debug", [False, True])
async def test_an_unhandled_exception_in_an_api_view_is_a_json_500_with_a_ref(settings, monkeypatch, caplog, debug):
    settings.DEBUG = debug

    def broken():
        raise RuntimeError("secret detail /srv/db")

    monkeypatch.setattr(agent_views, "list_agents", broken)
    with caplog.at_level(logging.ERROR):
        response = await AsyncClient(raise_request_exception=False).get("/agents")
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "internal_error" and "secret" not in error["message"]
    assert re.fullmatch(r"An internal error occurred \(ref ([0-9a-f]{8})\)\.", error["message"])
    [record] = [r for r in caplog.records if error["ref"] in r.getMessage()]
    assert "secret detail" in str(record.exc_info[1])


def test_a_csrf_failure_is_json_under_the_api_and_djangos_page_elsewhere(settings):
    assert settings.CSRF_FAILURE_VIEW == "valuecell_site.api_boundary.csrf_failure"
    factory = RequestFactory()
    api = csrf_failure(factory.post("/api/v1/runs"), reason="CSRF cookie not set.")
    assert api.status_code == 403 and api["Content-Type"] == "application/json"
    assert b'"code": "csrf_failed"' in api.content
    page = csrf_failure(factory.post("/admin/login/"), reason="CSRF cookie not set.")
    assert page.status_code == 403 and page["Content-Type"].startswith("text/html")


def test_the_admin_login_still_gets_djangos_csrf_page():
    client = Client(enforce_csrf_checks=True)
    refused = client.post("/admin/login/", {"username": "a", "password": "b"})
    assert refused.status_code == 403 and refused["Content-Type"].startswith("text/html")


async def test_a_form_body_the_csrf_check_cannot_read_is_a_json_error(settings):
    """The session's CSRF check reads a form body for `csrfmiddlewaretoken`: a body it
    cannot read is this API's JSON 4xx, not Django's HTML 400."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    client = AsyncClient(enforce_csrf_checks=True)
    await client.post("/agents/stream", STREAM, content_type="application/json")  # the anonymous session
    assert "sessionid" in client.cookies
    for body, content_type, status, code in [
        (b"a=1", "multipart/form-data", 400, "invalid_json"),  # no boundary
        (b"a=1", "multipart/form-data; boundary=", 400, "invalid_json"),
        ("&".join(f"f{i}=1" for i in range(20)).encode(), "application/x-www-form-urlencoded", 400, "invalid_json"),
        (b"a=" + b"x" * 5000, "application/x-www-form-urlencoded", 413, "request_too_large"),
        (b"--x\r\nnot a part", "multipart/form-data; boundary=x", 403, "csrf_failed"),  # readable: no token in it
    ]:
        response = await client.post("/agents/stream", body, content_type=content_type)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), content_type
