from django.conf import settings
from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path

from conversations import pages
from streaming.dialects import valuecell_web
from streaming.dialects.urls import agui_patterns, valuecell_patterns
from streaming.http import agents as streaming_views
from streaming.http import conversations as conversation_views
from streaming.http import metrics as metrics_views


async def healthz(request):
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("", pages.chat, name="chat"),
    path("admin/", admin.site.urls),
    path("healthz", healthz),
    path("metrics", metrics_views.metrics),
    path("agents", streaming_views.agents),
    path("agents/stream", streaming_views.agents_stream),
    path("conversations", conversation_views.conversation_list),
    path("conversations/<str:conversation_id>", conversation_views.conversation),
    path("conversations/<str:conversation_id>/items", conversation_views.conversation_items),
    path("conversations/<str:conversation_id>/stream", conversation_views.conversation_stream),
    path("conversations/<str:conversation_id>/cancel", conversation_views.conversation_cancel),
    # Dialects: the same events for ValueCell's web frontend and for AG-UI clients (docs/dialects.md).
    path("api/v1/", include(valuecell_patterns)),
    path("ag-ui/", include(agui_patterns)),
]
if settings.VALUECELL_WEB_CLIENT_DIR:
    urlpatterns += valuecell_web.urlpatterns(settings.VALUECELL_WEB_CLIENT_DIR)

handler404 = "streaming.http.api.not_found"
handler500 = "streaming.http.api.server_error"
