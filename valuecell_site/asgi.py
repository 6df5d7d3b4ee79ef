"""ASGI entry point: HTTP through Django, WebSockets through Channels routing."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "valuecell_site.settings")

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter

from streaming.ws.auth import WsAuthMiddleware
from streaming.ws.origin import BrowserOriginValidator
from streaming.ws.routing import websocket_urlpatterns

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # AllowedHostsOriginValidator for browsers (see ws_origin), then who the socket is from.
        "websocket": BrowserOriginValidator(WsAuthMiddleware(URLRouter(websocket_urlpatterns))),
    }
)

from streaming.runtime.maintenance import with_maintenance
from valuecell_site.daphne_options import close_oversized_frames_with_1009

# Under Daphne, a frame over its size limit closes the socket with 1009 instead of cutting it.
close_oversized_frames_with_1009()

# The first connection a worker serves starts its reaper and shutdown hook.
application = with_maintenance(application)
