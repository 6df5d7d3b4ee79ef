"""Where database writes run: one lane for SQLite, the usual threads otherwise.

SQLite takes one writer at a time, and a writer that finds the database locked
sleeps in SQLite's busy handler (up to 100 ms a try) even after the lock is
free. With the event writer storing batches on one thread and every request
writing on its own, those sleeps became most of the event store's time under
load. So under SQLite every write of a run's lifecycle goes through the single
thread the event writer uses (asgiref's thread-sensitive executor outside a
request), one after the other, and none ever waits on the lock. Other databases
take concurrent writers: there the writes keep Django's usual async-to-sync
threads. Either way the call goes through `conversations.db`, which keeps the
thread's connection working.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from asgiref.sync import SyncToAsync
from django.conf import settings

from conversations.db import database_sync_to_async

P = ParamSpec("P")
R = TypeVar("R")

# The event writer's thread; also where runs' own ORM calls land (they run
# outside any request, so thread-sensitive calls use this executor).
WRITER_EXECUTOR: ThreadPoolExecutor = SyncToAsync.single_thread_executor


def serial_writes() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"


def on_write_lane(fn: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`fn` (a sync function that writes) as a coroutine function on the write lane."""
    if serial_writes():
        return database_sync_to_async(fn, thread_sensitive=False, executor=WRITER_EXECUTOR)
    return database_sync_to_async(fn)
