"""ASGI entry point: HTTP through Django, WebSockets through Channels routing."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "valuecell_site.settings")

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402  (after Django is set up)

application = ProtocolTypeRouter({"http": django_asgi_app})

from streaming.maintenance import with_maintenance  # noqa: E402

# The first connection a worker serves starts its reaper and shutdown hook.
application = with_maintenance(application)
