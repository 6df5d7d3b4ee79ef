"""The dialect doors' routes, mounted by `valuecell_site.urls` under `api/v1/` and `ag-ui/`."""

from __future__ import annotations

from django.urls import path, re_path

from streaming.dialects import agui_api
from streaming.dialects import valuecell_api as vc

# ValueCell's frontend calls some paths with a trailing slash and some without:
# every route takes both (a POST cannot be redirected to the other).
valuecell_patterns = [
    re_path(r"^healthz/?$", vc.healthz),
    re_path(r"^agents/?$", vc.agents),
    re_path(r"^agents/stream/?$", vc.stream),
    re_path(r"^agents/by-name/(?P<name>[^/]+)/?$", vc.agent_by_name),
    re_path(r"^conversations/?$", vc.conversations),
    re_path(r"^conversations/scheduled-task-results/?$", vc.all_scheduled_task_results),
    re_path(r"^conversations/(?P<conversation_id>[^/]+)/?$", vc.conversation),
    re_path(r"^conversations/(?P<conversation_id>[^/]+)/history/?$", vc.history),
    re_path(r"^conversations/(?P<conversation_id>[^/]+)/scheduled-task-results/?$", vc.scheduled_task_results),
    re_path(r"^tasks/(?P<task_id>[^/]+)/cancel/?$", vc.cancel_task),
    re_path(r"^watchlist/?$", vc.watchlist),
    re_path(r"^(?P<rest>.*)$", vc.unknown),
]

agui_patterns = [
    path("<str:agent_name>", agui_api.run),
    path("<str:agent_name>/threads/<str:thread_id>/stream", agui_api.thread_stream),
]
