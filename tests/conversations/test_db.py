"""Database calls from async code: an unreachable database is a 503 `database_unavailable`,
any other database error stays what it is (a bug is not an outage)."""

import pytest
from django.db import OperationalError, connection

from conversations.db import database_sync_to_async
from streaming.errors import ErrorCode, ServiceError

pytestmark = pytest.mark.django_db(transaction=True)


def _cannot_connect() -> None:
    connection.close()  # as when no connection could be had (the pool timed out)
    raise OperationalError("couldn't get a connection after 10.00 sec")


def _bad_sql() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table")


def _answer() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 42")
        return cursor.fetchone()[0]


@pytest.mark.parametrize("thread_sensitive", [True, False])
async def test_an_unreachable_database_is_database_unavailable_with_retry_after(thread_sensitive):
    with pytest.raises(ServiceError) as raised:
        await database_sync_to_async(_cannot_connect, thread_sensitive=thread_sensitive)()
    assert raised.value.code == ErrorCode.DATABASE_UNAVAILABLE and raised.value.status == 503
    assert raised.value.headers == {"Retry-After": "5"}
    assert isinstance(raised.value.__cause__, OperationalError)
    assert await database_sync_to_async(_answer, thread_sensitive=thread_sensitive)() == 42, "the next call works"


async def test_an_error_on_a_working_connection_is_not_an_outage():
    with pytest.raises(OperationalError, match="no such table"):
        await database_sync_to_async(_bad_sql)()
    assert await database_sync_to_async(_answer)() == 42
