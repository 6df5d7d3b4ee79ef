"""With DEBUG off (as in production and in Django's test client), unknown paths are JSON 404s
and server errors JSON 500s, or 503s when the database cannot be reached."""

import pytest
from django.db import OperationalError
from django.test import AsyncClient, Client, override_settings
from django.urls import path


@pytest.mark.django_db
def test_unknown_path_is_a_json_404(client):
    response = client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "No such resource: /no/such/thing"}}


def _unreachable_database(request):
    raise OperationalError("couldn't get a connection after 10.00 sec")


def _bug(request):
    raise ValueError("a bug")


urlpatterns = [path("db", _unreachable_database), path("bug", _bug)]
handler500 = "streaming.http.api.server_error"


@override_settings(ROOT_URLCONF=__name__)
def test_a_database_error_outside_the_api_is_a_json_503_and_a_bug_a_json_500():
    client = Client(raise_request_exception=False)
    response = client.get("/db")
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert response.json()["error"]["code"] == "database_unavailable"
    response = client.get("/bug")
    assert response.status_code == 500 and response.json()["error"]["code"] == "internal_error"


@override_settings(ROOT_URLCONF=__name__)
async def test_the_same_under_asgi():
    response = await AsyncClient(raise_request_exception=False).get("/db")
    assert response.status_code == 503 and response.json()["error"]["code"] == "database_unavailable"
