"""Every HTML response carries the Content-Security-Policy (valuecell_site/csp.py),
error pages included; the chat page's one inline script has the response's nonce."""

from __future__ import annotations

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

EXPECTED = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self'; img-src 'self'; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def nonce_of(response) -> str:
    return re.search(r"'nonce-([A-Za-z0-9_-]{20,})'", response["Content-Security-Policy"]).group(1)


def test_the_chat_page_policy_and_its_nonce(client):
    response = client.get("/")
    nonce = nonce_of(response)
    assert response["Content-Security-Policy"] == EXPECTED.format(nonce=nonce)
    html = response.content.decode()
    assert f'<script type="importmap" nonce="{nonce}">' in html
    # No other inline script: the config is a JSON data block, the modules are files.
    scripts = re.findall(r"<script([^>]*)>", html)
    assert all("nonce=" in attrs or "src=" in attrs or 'type="application/json"' in attrs for attrs in scripts), scripts
    assert "<style" not in html and " style=" not in html
    assert nonce_of(client.get("/")) != nonce


def test_html_error_pages_carry_it_too(client):
    not_allowed = client.put("/")
    assert not_allowed.status_code == 405 and "Content-Security-Policy" in not_allowed
    csrf = Client(enforce_csrf_checks=True).post("/admin/login/", {"username": "a", "password": "b"})
    assert csrf.status_code == 403 and csrf["Content-Type"].startswith("text/html")
    assert "frame-ancestors 'none'" in csrf["Content-Security-Policy"]


def test_head_on_the_chat_page_answers_like_get(client):
    response = client.head("/")
    assert response.status_code == 200 and "Content-Security-Policy" in response


def test_the_admin_pages_have_no_inline_style_or_unnonced_script(admin_client):
    for path in ("/admin/", "/admin/conversations/conversation/", "/admin/auth/user/add/"):
        response = admin_client.get(path)
        assert response.status_code == 200, path
        html = response.content.decode()
        assert "<style" not in html, path
        inline = [attrs for attrs in re.findall(r"<script([^>]*)>", html) if "src=" not in attrs]
        assert all('type="application/json"' in attrs for attrs in inline), (path, inline)


def test_json_responses_and_djangos_debug_pages_carry_none(client, settings):
    assert "Content-Security-Policy" not in client.get("/agents")
    settings.DEBUG = True
    debug_page = client.get("/no/such/page")
    assert debug_page.status_code == 404 and "Content-Security-Policy" not in debug_page


def test_a_static_builds_inline_scripts_are_allowed_by_hash_and_nothing_else():
    """ValueCell's frontend build (streaming/dialects/valuecell_web.py) has inline scripts of its own."""
    import base64
    import hashlib

    from streaming.dialects.valuecell_web import inline_script_hashes
    from valuecell_site.csp import policy

    html = b'<script>a()</script><script src="/x.js"></script>\n<script type="module" async="">\nb()</script>'
    expected = tuple("sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() for body in (b"a()", b"\nb()"))
    assert inline_script_hashes(html) == expected
    built = policy("n0nce", expected, inline_styles=True)
    assert f"script-src 'self' 'nonce-n0nce' '{expected[0]}' '{expected[1]}';" in built
    assert "style-src 'self' 'unsafe-inline'" in built and built.count("unsafe-inline") == 1
