"""Every database call made from async code, on a connection that works: the
one wrapper (`database_sync_to_async`) through which the record layer runs.

Django resets a connection only around a request, on the request's own thread.
Runs, the reaper, followers, WebSocket handshakes and the event writer call the
database on long-lived threads (the write lane's, asgiref's pools) that no
request cycle ever resets: after a database restart their dead connections
failed every call for minutes. So around every call, as Channels'
`database_sync_to_async` does with `close_old_connections`, this thread's
connections are tidied: a pooled one goes back to its pool (which checks a
connection before lending it again, see `conversations.postgresql`), a broken
one is closed. A failure because the database cannot be reached becomes
`ServiceError(database_unavailable)`: a 503 with Retry-After at the doors, a
retry for the event writer and runs.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import InterfaceError, OperationalError, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from streaming.errors import database_unavailable

P = ParamSpec("P")
R = TypeVar("R")


def _pooled(conn: BaseDatabaseWrapper) -> bool:
    return getattr(conn, "pool", None) is not None


def tidy_connections() -> None:
    """This thread's connections, ready for its next call (or for nothing).

    A pooled connection is given back: a thread holds one only during a call,
    and the pool checks it before the next. Any other connection is kept (an
    SQLite reconnect per call would cost the write lane dearly) unless the
    last call left it broken or inside a transaction, as Django's own
    `close_if_unusable_or_obsolete` would judge it.
    """
    for conn in connections.all(initialized_only=True):
        if conn.connection is None or conn.in_atomic_block:
            continue  # (in a transaction: sync code on this thread called us and owns it)
        if _pooled(conn) or conn.errors_occurred or conn.get_autocommit() != conn.settings_dict["AUTOCOMMIT"]:
            # A pooled connection's age is always over (the pool forbids CONN_MAX_AGE): back it goes.
            conn.close_if_unusable_or_obsolete()


def unreachable() -> bool:
    """Whether this thread has no working connection: none could be opened, or it broke."""
    return any(conn.connection is None or not conn.is_usable() for conn in connections.all(initialized_only=True))


def run_tidily(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Call `fn` (on this thread) between two tidy-ups; an unreachable database raises
    `ServiceError(database_unavailable)`, any other error stays what it is."""
    tidy_connections()
    try:
        return fn(*args, **kwargs)
    except (OperationalError, InterfaceError) as exc:
        if unreachable():
            raise database_unavailable() from exc
        raise
    finally:
        tidy_connections()


def database_sync_to_async(
    fn: Callable[P, R], *, thread_sensitive: bool = True, executor: ThreadPoolExecutor | None = None
) -> Callable[P, Awaitable[R]]:
    """`fn` (a sync function that uses the database) as a coroutine function, as
    `asgiref.sync.sync_to_async` makes it, each call run by `run_tidily`."""

    @functools.wraps(fn)
    def tidily(*args: P.args, **kwargs: P.kwargs) -> R:
        return run_tidily(fn, *args, **kwargs)

    if thread_sensitive:
        return sync_to_async(tidily)
    return sync_to_async(tidily, thread_sensitive=False, executor=executor)
