"""The chat page: a server-rendered shell whose static modules talk to the JSON API.

The view only renders the template with a little configuration, sets the CSRF
cookie the page's POSTs need, and maps module URLs to their hashed names.
"""

from __future__ import annotations

import json
from functools import cache

from django.conf import settings
from django.contrib.staticfiles.storage import staticfiles_storage
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_safe

SITE_NAME = "ValueCell"
MODULE_DIRS = ("chat", "vendor")
MODULE_SUFFIXES = (".js", ".mjs")


@cache
def import_map() -> str:
    """An import map from each module's plain URL to its hashed URL (empty in DEBUG).

    Modules import each other by relative path; with manifest storage the map
    sends those imports to the cache-forever hashed files.
    """
    root = settings.BASE_DIR / "static"
    paths = sorted(
        path.relative_to(root).as_posix()
        for folder in MODULE_DIRS
        for path in (root / folder).rglob("*")
        if path.suffix in MODULE_SUFFIXES
    )
    base_url: str = staticfiles_storage.base_url  # type: ignore[attr-defined]  # every static storage has one
    imports = {base_url + path: static(path) for path in paths}
    body = json.dumps({"imports": {plain: hashed for plain, hashed in imports.items() if plain != hashed}})
    # Same escaping as json_script: the map sits inside a <script> element.
    return body.replace("<", "\\u003C").replace(">", "\\u003E").replace("&", "\\u0026")


@require_safe
@ensure_csrf_cookie
def chat(request: HttpRequest) -> HttpResponse:
    conversation_id = request.GET.get("conversation", "").strip()[:64] or None
    config = {
        "conversationId": conversation_id,
        "defaultAgent": settings.VALUECELL_DEFAULT_AGENT,
        # No byte at all (not even a heartbeat) for three heartbeats: the connection is dead.
        "silenceMs": int(settings.VALUECELL_SSE_HEARTBEAT_SECONDS * 3000),
        "siteName": SITE_NAME,
    }
    context = {"config": config, "import_map": import_map(), "site_name": SITE_NAME}
    return render(request, "chat/index.html", context)
