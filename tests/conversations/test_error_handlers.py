"""With DEBUG off (as in production and in Django's test client), unknown paths are JSON 404s."""

import pytest


@pytest.mark.django_db
def test_unknown_path_is_a_json_404(client):
    response = client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "No such resource: /no/such/thing"}}
