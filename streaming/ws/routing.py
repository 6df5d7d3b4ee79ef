"""WebSocket URL routes of the streaming app (mounted in `valuecell_site.asgi`)."""

from django.urls import path

from streaming.ws.consumer import AgentConsumer

websocket_urlpatterns = [
    path("ws/agents/", AgentConsumer.as_asgi()),
]
