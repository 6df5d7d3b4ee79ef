"""ASGI entry point: HTTP through Django, WebSockets through Channels routing.

Every Daphne entry point imports this module before it listens, so it is also
where Daphne's connections get TCP_NODELAY (`daphne_tuning`).
"""

import os

from django.core.asgi import get_asgi_application

from valuecell_site import daphne_tuning

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "valuecell_site.settings")
daphne_tuning.install()

django_asgi_app = get_asgi_application()

from valuecell_site.middleware import skip_request_thread_at_start

skip_request_thread_at_start()

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

# The first connection a worker serves starts its reaper and shutdown hook.
application = with_maintenance(application)
