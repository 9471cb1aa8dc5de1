"""When something goes wrong, the page says so in the reader's language, in the app's look."""

import pytest
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import translation
from django.views.defaults import bad_request, server_error

from tests.factories import OpportunityFactory, RepFactory

pytestmark = pytest.mark.django_db


def test_another_teams_opportunity_is_a_page_not_found_with_the_way_back(client):
    hidden = OpportunityFactory()
    client.force_login(RepFactory())
    response = client.get(f"/opportunities/{hidden.pk}/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "<h1>Page not found</h1>" in page
    assert hidden.name not in page
    assert 'href="/board/"' in page


@pytest.mark.parametrize(("view", "heading"), [
    (server_error, "Serverfehler"), (bad_request, "Ungültige Anfrage"),
])
def test_the_server_error_pages_need_no_database_and_speak_the_readers_language(view, heading):
    request = RequestFactory().get("/board/")
    with translation.override("de"), CaptureQueriesContext(connection) as queries:
        response = view(request, exception=None) if view is bad_request else view(request)
    page = response.content.decode()
    assert f"<h1>{heading}</h1>" in page
    assert '<html lang="de">' in page
    assert len(queries) == 0  # the database may be what failed
