"""Django's standard middleware without thread hops on the async path.

In async mode Django runs every sync `process_request`/`process_response` on a
thread and back: a dozen hops per request, several milliseconds on an idle
server and far more under load, before a stream's first byte. These hooks do no
I/O except where noted, so they run inline; where one may touch the database
(saving a session, storing messages) that call still goes through a thread.
"""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.db import connections
from django.middleware import clickjacking, common, csrf, security
from django.utils.functional import SimpleLazyObject


class ReleaseConnectionsForStreamsMiddleware:
    """Give a streaming response's database connections back before its first byte.

    Django closes a request's connections only when its response ends, and a
    stream lasts as long as its run: with PostgreSQL's pool, every open stream
    would hold a connection (the pool ran dry at about 20 streams). Outermost,
    so it runs after every other middleware's response hook (a new anonymous
    session is saved there). What the stream reads later takes a connection
    for the read only.
    """

    sync_capable = False
    async_capable = True

    def __init__(self, get_response) -> None:
        if not iscoroutinefunction(get_response):
            raise TypeError("ReleaseConnectionsForStreamsMiddleware needs an async middleware chain")
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request):
        response = await self.get_response(request)
        if response.streaming:
            # The request's thread (thread-sensitive): where its ORM calls ran.
            await sync_to_async(connections.close_all)()
        return response


class InlineAsyncMixin:
    """Run the sync hooks inline in async mode (for hooks that do no I/O)."""

    def needs_thread_for_response(self, request, response) -> bool:
        return False

    async def __acall__(self, request):
        response = None
        if hasattr(self, "process_request"):
            response = self.process_request(request)
        response = response or await self.get_response(request)  # type: ignore[attr-defined]  # the middleware's
        if hasattr(self, "process_response"):
            if self.needs_thread_for_response(request, response):
                response = await sync_to_async(self.process_response, thread_sensitive=True)(request, response)
            else:
                response = self.process_response(request, response)
        return response


class SecurityMiddleware(InlineAsyncMixin, security.SecurityMiddleware):
    pass


class SessionMiddleware(InlineAsyncMixin, sessions.SessionMiddleware):
    def needs_thread_for_response(self, request, response) -> bool:
        session = getattr(request, "session", None)
        return session is not None and (session.modified or settings.SESSION_SAVE_EVERY_REQUEST)


class CommonMiddleware(InlineAsyncMixin, common.CommonMiddleware):
    pass


class CsrfViewMiddleware(InlineAsyncMixin, csrf.CsrfViewMiddleware):
    async def process_view(self, request, callback, callback_args, callback_kwargs):  # type: ignore[override]
        # Reads cookies, headers and (for forms) the already-read body: no I/O.
        return super().process_view(request, callback, callback_args, callback_kwargs)


class AuthenticationMiddleware(InlineAsyncMixin, auth.AuthenticationMiddleware):
    pass  # sets lazy `request.user`/`request.auser`; nothing is loaded here


class MessageMiddleware(InlineAsyncMixin, messages.MessageMiddleware):
    def needs_thread_for_response(self, request, response) -> bool:
        storage = getattr(request, "_messages", None)
        # Storing read or new messages may read the session: only then a thread.
        return storage is not None and (storage.used or storage.added_new)


class XFrameOptionsMiddleware(InlineAsyncMixin, clickjacking.XFrameOptionsMiddleware):
    pass


class ProxyUserMiddleware(auth.RemoteUserMiddleware):
    """Proxy authentication: the user a trusted proxy names in the header
    `VALUECELL_REMOTE_USER_HEADER` is signed in (created on first sight), and
    signed out of a request that comes without it. The proxy must remove that
    header from what clients send. Installed only when the setting is set."""

    @property
    def header(self) -> str:  # type: ignore[override]
        # Django's async path reads META["HTTP_" + header]: the header's name, normalized.
        return settings.VALUECELL_REMOTE_USER_HEADER.upper().replace("-", "_")

    async def aprocess_request(self, request):
        await super().aprocess_request(request)
        # Django 5.2 signs the user in or out on `request.user` but leaves
        # `request.auser()` (what the doors ask) on the user it read before.
        if type(request.user) is not SimpleLazyObject:  # type(): not evaluating the lazy user
            request._acached_user = request.user
