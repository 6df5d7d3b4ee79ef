"""Django's ASGI handler, without a thread for requests that never needed one.

asgiref gives each request a thread of its own, started by its first
thread-sensitive call. Django's handler always makes one at the end, to close
the response (`sync_to_async(response.close)`): a thread started and joined
per request, about 0.9 ms of CPU on this project's machine, for a stream that
otherwise ran entirely on the event loop. `handle` below is Django 5.2's,
except that it closes the response inline when the request's thread was never
started: closing then has nothing of that thread's to release (no connection
was opened there), and `request_finished`'s receivers find nothing open on the
loop's thread. `tests/conversations/test_middleware.py` pins Django's original,
so an upgrade that changes it is noticed.
"""

from __future__ import annotations

import asyncio

from asgiref.sync import sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.urls import set_script_prefix

from valuecell_site.middleware import request_thread_started


async def close_response(response) -> None:
    if request_thread_started():
        await sync_to_async(response.close)()
    else:
        response.close()


class StreamingASGIHandler(ASGIHandler):
    async def handle(self, scope, receive, send):
        """Django 5.2's `ASGIHandler.handle`; the response is closed by `close_response`."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        await signals.request_started.asend(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            assert error_response is not None
            body_file.close()
            await self.send_response(error_response, send)
            await close_response(error_response)
            return

        async def process_request(request, send):
            response = await self.run_get_response(request)
            try:
                await self.send_response(response, send)
            except asyncio.CancelledError:
                # Client disconnected during send_response (ignore exception).
                pass

            return response

        # Try to catch a disconnect while getting response.
        tasks = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(process_request(request, send)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        # Now wait on both tasks (they may have both finished by now).
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    # Ignore client disconnects.
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                # Allow views to handle cancellation.
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    # Task re-raised the CancelledError as expected.
                    pass

        try:
            response = tasks[1].result()
        except asyncio.CancelledError:
            await signals.request_finished.asend(sender=self.__class__)
        else:
            await close_response(response)

        body_file.close()
