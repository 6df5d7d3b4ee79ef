"""ASGI entry point: HTTP through Django, WebSockets through Channels routing.

Every Daphne entry point imports this module before it listens, so it is also
where Daphne's connections get TCP_NODELAY (`daphne_tuning`). Django's handler
is `asgi_handler.StreamingASGIHandler`: no thread for a request that needs none.
"""

import os

import django

from valuecell_site import daphne_tuning

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "valuecell_site.settings")
daphne_tuning.install()
django.setup(set_prefix=False)  # what get_asgi_application() does, with our handler below

from valuecell_site.asgi_handler import StreamingASGIHandler
from valuecell_site.middleware import skip_request_thread_at_start

# A request that needs no thread of its own starts none (middleware.py, asgi_handler.py).
skip_request_thread_at_start()
django_asgi_app = StreamingASGIHandler()

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
