"""The event store this process uses, chosen by `settings.VALUECELL_EVENT_STORE`
(a dotted path to a class implementing `streaming.stored.EventStore`), as
Channels chooses its layer: the event log is given a store, it imports none.
"""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from streaming.stored import EventStore


@cache
def _store(path: str) -> EventStore:
    store: EventStore = import_string(path)()
    return store


def event_store() -> EventStore:
    return _store(settings.VALUECELL_EVENT_STORE)
