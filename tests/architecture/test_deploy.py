"""The production environment that docs/deploy.md documents passes `manage.py check
--deploy` with no issues, and the checks Django skips for subclassed middleware still run."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client, override_settings

from valuecell_site.checks import check_security_through_subclassed_middleware

ROOT = Path(__file__).resolve().parents[2]


def documented_production_environment() -> dict[str, str]:
    """The `NAME=value` lines of the block under "### The production environment"."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    section = text.split("### The production environment", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "docs/deploy.md has no production environment block"
    env = {}
    for line in block.group(1).splitlines():
        match = re.match(r"([A-Z_][A-Z0-9_]*)=(\S*)", line)
        if match:
            env[match.group(1)] = match.group(2)
    # The placeholders (…) stand for secrets of your own.
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    return {name: value.replace("…", "secret") for name, value in env.items()}


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SECURE_", "DEBUG"))}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**inherited, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_documented_production_environment_passes_check_deploy_with_no_issues():
    env = documented_production_environment()
    assert env["DEBUG"] == "false" and env["BEHIND_TLS_PROXY"] == "true"
    result = check_deploy(env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout + result.stderr


def test_without_hsts_and_the_ssl_redirect_check_deploy_says_so():
    """What the three false alarms used to hide: Django's HSTS and SSL-redirect warnings."""
    env = {**documented_production_environment(), "SECURE_HSTS_SECONDS": "0", "SECURE_SSL_REDIRECT": "false"}
    result = check_deploy(env)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "security.W004" in output and "security.W008" in output
    assert not any(f"security.W00{n})" in output for n in (1, 2, 3)), output


@pytest.mark.parametrize(
    ("removed", "expected"),
    [
        ("valuecell_site.middleware.SecurityMiddleware", "valuecell_site.W001"),
        ("valuecell_site.middleware.XFrameOptionsMiddleware", "valuecell_site.W002"),
        ("valuecell_site.middleware.CsrfViewMiddleware", "valuecell_site.W003"),
    ],
)
def test_a_missing_security_middleware_is_still_reported(settings, removed, expected):
    ids = [message.id for message in check_security_through_subclassed_middleware(None)]
    assert "valuecell_site.W001" not in ids, "the middleware is there"
    assert "security.W004" in ids, "with the local settings (no HSTS) the HSTS check runs and warns"
    settings.MIDDLEWARE = [path for path in settings.MIDDLEWARE if path != removed]
    ids = [message.id for message in check_security_through_subclassed_middleware(None)]
    assert [i for i in ids if i.startswith("valuecell_site.")] == [expected]


def test_the_ssl_redirect_spares_the_health_check():
    with override_settings(SECURE_SSL_REDIRECT=True, SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")):
        client = Client()
        assert client.get("/healthz").status_code == 200
        redirected = client.get("/agents", HTTP_X_FORWARDED_PROTO="http")
        assert redirected.status_code == 301 and redirected["Location"] == "https://testserver/agents"
        assert client.get("/agents", HTTP_X_FORWARDED_PROTO="https").status_code == 200
