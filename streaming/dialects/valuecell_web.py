"""ValueCell's web frontend (a production build) served by Django, on the same
origin as `/api/v1/`, when `VALUECELL_WEB_CLIENT_DIR` names the build.

Hashed assets under `/assets/`, its `/logo.svg`, and `index.html` for the
single-page app's own routes (`/home`, `/agent/<name>`, `/market`, `/setting`).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import mimetypes
import re
from pathlib import Path

from asgiref.sync import sync_to_async
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, re_path
from django.utils._os import safe_join

TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
IMMUTABLE = "public, max-age=31536000, immutable"  # file names carry their content's hash
SPA_ROUTES = r"^(?:home|market|agent|setting|test)(?:/.*)?$"


def _read_file(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


_read = sync_to_async(_read_file, thread_sensitive=False)


async def _file(root: str, relative: str, cache_control: str) -> HttpResponse:
    try:
        path = Path(safe_join(root, relative))
    except ValueError:  # outside the build (`..`)
        raise Http404(relative) from None
    content = await _read(path)
    if content is None:
        raise Http404(relative)
    kind = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    response = HttpResponse(content, content_type=kind)
    response["Cache-Control"] = cache_control
    return response


INLINE_SCRIPT = re.compile(rb"<script\b(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)


@functools.lru_cache(maxsize=4)
def inline_script_hashes(html: bytes) -> tuple[str, ...]:
    """'sha256-…' sources for each inline script of a page (a static build's)."""
    return tuple(
        "sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() for body in INLINE_SCRIPT.findall(html)
    )


def urlpatterns(root: str) -> list[URLPattern]:
    async def asset(request: HttpRequest, path: str) -> HttpResponse:
        return await _file(root, f"assets/{path}", IMMUTABLE)

    async def logo(request: HttpRequest) -> HttpResponse:
        return await _file(root, "logo.svg", "no-cache")

    async def index(request: HttpRequest) -> HttpResponse:
        response = await _file(root, "index.html", "no-cache")
        # The build's own inline scripts, allowed by hash by the site's
        # Content-Security-Policy (valuecell_site/csp.py); nothing else inline runs.
        response.csp_script_hashes = inline_script_hashes(response.content)  # type: ignore[attr-defined]
        response.csp_inline_styles = True  # type: ignore[attr-defined]  # React sets style attributes
        return response

    return [
        re_path(r"^assets/(?P<path>.+)$", asset),
        re_path(r"^logo\.svg$", logo),
        re_path(SPA_ROUTES, index),
    ]
