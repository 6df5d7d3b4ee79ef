"""A run's own database writes, retried while the database is unavailable.

A run never depends on a client, nor on the database staying up: like the
event writer, which holds its events until they are stored, a run whose
write finds the database restarting waits for it, rather than failing a task
that was going well. Any other error is the caller's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from streaming.errors import ErrorCode, ServiceError

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

FIRST_DELAY = 0.1
LONGEST_DELAY = 2.0


async def while_unavailable(call: Callable[P, Awaitable[R]], *args: P.args, **kwargs: P.kwargs) -> R:
    """`await call(*args, **kwargs)`, again and again while it raises `database_unavailable`."""
    delay = FIRST_DELAY
    waited = False
    while True:
        try:
            result = await call(*args, **kwargs)
        except ServiceError as error:
            if error.code != ErrorCode.DATABASE_UNAVAILABLE:
                raise
            if not waited:
                log.warning("%s: the database is unavailable; retrying until it is back", call.__name__)
                waited = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, LONGEST_DELAY)
            continue
        if waited:
            log.info("%s: the database is back", call.__name__)
        return result
