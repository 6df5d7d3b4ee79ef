"""Django's PostgreSQL backend, with a pool that checks a connection before lending it.

After a database restart every idle connection in the pool is dead. Unchecked,
each was lent once and failed its request. psycopg_pool's own check (Django
passes it with CONN_HEALTH_CHECKS) finds them, but sleeps with a growing
back-off after each dead one, so a pool of six dead connections made the first
request after the restart wait its whole timeout and fail. Here the first dead
connection found makes the pool check every idle one at once (dead ones are
replaced in the background) and a working connection is lent instead.
"""

from __future__ import annotations

import logging

from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool

log = logging.getLogger(__name__)


def _works(connection) -> bool:
    try:
        ConnectionPool.check_connection(connection)  # one empty query's round trip
    except Exception:
        return False
    return True


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        pool = self.pool  # type: ignore[attr-defined]  # Django 5.1+, not in django-stubs yet
        if pool is None or _works(connection):
            return connection
        log.warning("a pooled database connection was broken (a database restart?); checking the pool")
        connection.close()
        pool.putconn(connection)  # closed: the pool drops it and opens another
        pool.check()  # the other idle connections died with it: drop them all now
        return super().get_new_connection(conn_params)
