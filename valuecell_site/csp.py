"""A Content-Security-Policy on every HTML page: scripts, styles and images from
the site itself, inline scripts only with this response's nonce, no framing.

The chat page shows text an agent wrote (a prompt injection can make a model
write anything); the policy is the backstop should the page's sanitising miss
something: no foreign script runs, no foreign image is fetched (an image URL
can carry conversation data to its host).
"""

from __future__ import annotations

import secrets

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

HEADER = "Content-Security-Policy"


def policy(nonce: str, script_hashes: tuple[str, ...] = (), inline_styles: bool = False) -> str:
    """`script_hashes`: 'sha256-…' sources of a static page's own inline scripts;
    `inline_styles`: for a page whose own scripts set style attributes (a style
    runs no script, and what it could load is still bounded by img-src)."""
    scripts = " ".join(f"'{source}'" for source in (f"nonce-{nonce}", *script_hashes))
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src 'self' {scripts}",
            "style-src 'self' 'unsafe-inline'" if inline_styles else "style-src 'self'",
            "img-src 'self'",
            "font-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


class ContentSecurityPolicyMiddleware:
    """Gives each request a nonce (`request.csp_nonce`, for templates' inline
    scripts) and each HTML response the policy with it. A view serving a static
    page whose inline scripts cannot carry the nonce lists their hashes in
    `response.csp_script_hashes` (never for a page with content from users),
    and `response.csp_inline_styles = True` if its scripts set inline styles."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response) -> None:
        if not iscoroutinefunction(get_response):
            raise TypeError("ContentSecurityPolicyMiddleware needs an async middleware chain")
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        nonce = secrets.token_urlsafe(16)
        request.csp_nonce = nonce  # type: ignore[attr-defined]  # read by templates
        response = await self.get_response(request)
        if not response.get("Content-Type", "").startswith("text/html") or response.has_header(HEADER):
            return response
        if settings.DEBUG and response.status_code >= 400:
            # Django's debug pages (DEBUG only, never in production) are all inline style and script.
            return response
        hashes = tuple(getattr(response, "csp_script_hashes", ()))
        response[HEADER] = policy(nonce, hashes, inline_styles=getattr(response, "csp_inline_styles", False))
        return response
