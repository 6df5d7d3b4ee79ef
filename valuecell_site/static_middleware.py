"""WhiteNoise for static paths only, behind an async-capable middleware.

WhiteNoise's middleware is sync-only; at the top of the chain it would make
Django run every request (streams included) through a thread and back. Here it
serves `STATIC_URL` paths and everything else stays on the event loop.
"""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from whitenoise.middleware import WhiteNoiseMiddleware


class AsyncStaticFilesMiddleware:
    sync_capable = False
    async_capable = True

    def __init__(self, get_response) -> None:
        assert iscoroutinefunction(get_response)
        self.get_response = get_response
        self._whitenoise = WhiteNoiseMiddleware(lambda request: None)
        self._serve = sync_to_async(self._whitenoise, thread_sensitive=False)
        self._prefix = "/" + settings.STATIC_URL.lstrip("/")
        markcoroutinefunction(self)

    async def __call__(self, request):
        if request.path_info.startswith(self._prefix):
            response = await self._serve(request)
            if response is not None:
                return response
        return await self.get_response(request)
