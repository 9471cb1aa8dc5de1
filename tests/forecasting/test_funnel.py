"""The funnel: of the opportunities that entered a stage in a quarter, how many reached
the next stage and the median days they spent in it; once per opportunity and stage,
undone moves left out (fixture: tests/forecasting/stage_stories.py)."""

import html
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import BdrFactory, ManagerFactory, SalesOpsFactory, UserFactory
from tests.forecasting.stage_stories import S, moved, stage_stories, story

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def calendar_quarters(settings):
    settings.FISCAL_YEAR_START_MONTH = 1
    settings.TIME_ZONE = "UTC"


@pytest.fixture
def cast():
    return stage_stories()


def table(page: str, name: str) -> dict[str, list[str]]:
    """A table of the page as {stage key: the texts of its cells}."""
    start = page.index(f'data-table="{name}"')
    body = page[start:page.index("</table>", start)]
    return {stage: [html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
                    for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
            for stage, row in re.findall(r'<tr data-stage="(\w+)">(.*?)</tr>', body, re.S)}


def test_conversion_and_median_days_per_stage_for_the_team(client, cast):
    client.force_login(cast.manager)

    page = client.get("/forecast/funnel/", {"quarter": "2026-Q2"}).content.decode()

    # Stage, entered, reached the next stage, share, still in the stage, median days.
    assert table(page, "funnel") == {
        # Beta (10 days), Gamma reopened (30) and Delta, whose move on was undone.
        "identifying": ["Identifying Opportunity", "3", "2", "67 %", "1", "20"],
        # Beta once, though it came back (30 + 10 days; the undone minute in Validating
        # does not split its stay), and Gamma, still there.
        "discovering": ["Discovering Problems, Impacts & Goals", "2", "1", "50 %", "1", "40"],
        # Acme (30 days, on to Confirming) and Beta twice (20 + 20 days, then dead).
        "validating": ["Validating Benefits & Values", "2", "1", "50 %", "0", "35"],
        "confirming": ["Confirming Value with Power", "1", "1", "100 %", "0", "30"],
        # Acme's 40 days run into the next quarter; Echo's 2.
        "negotiating": ["Negotiating & Mutual Plan", "2", "2", "100 %", "0", "21"],
        "finalizing": ["Finalizing Closure", "1", "1", "100 %", "0", "1"],
        "pending": ["Pending (sales-ops review)", "1", "1", "100 %", "0", "1"],
    }


def test_a_rep_sees_only_their_own_funnel(client, cast):
    client.force_login(cast.anna)

    page = client.get("/forecast/funnel/", {"quarter": "2026-Q2"}).content.decode()

    rows = table(page, "funnel")
    assert rows["negotiating"][1:] == ["1", "1", "100 %", "0", "40"]
    assert rows["finalizing"][1:] == ["0", "0", "—", "0", "—"]


def test_a_manager_narrows_the_funnel_to_one_rep(client, cast):
    client.force_login(cast.manager)

    page = client.get("/forecast/funnel/", {"quarter": "2026-Q2", "rep": cast.ben.pk})

    rows = table(page.content.decode(), "funnel")
    assert rows["identifying"][1:] == ["0", "0", "—", "0", "—"]
    assert rows["negotiating"][1:] == ["1", "1", "100 %", "0", "2"]


def test_sales_ops_see_the_company_funnel(client, cast):
    client.force_login(SalesOpsFactory())

    page = client.get("/forecast/funnel/", {"quarter": "2026-Q2"}).content.decode()

    # Olga's Golf, of another team, entered Identifying and Discovering too.
    assert table(page, "funnel")["identifying"][1:] == ["4", "3", "75 %", "1", "10"]
    assert table(page, "funnel")["discovering"][1:] == ["3", "1", "33 %", "2", "40"]


def test_a_skip_in_imported_history_counts_as_reaching_the_next_stage(client):
    manager = ManagerFactory()
    imported = story(manager, "Imported", "2026-01-05", ("2026-01-06", S.DISCOVERING))
    moved(imported, ("2026-01-16", S.CONFIRMING))
    client.force_login(manager)

    page = client.get("/forecast/funnel/", {"quarter": "2026-Q1"}).content.decode()

    assert table(page, "funnel")["discovering"][1:] == ["1", "1", "100 %", "0", "10"]
    assert table(page, "funnel")["validating"][1:] == ["0", "0", "—", "0", "—"]


def test_the_funnel_downloads_as_csv(client, cast):
    client.force_login(cast.manager)

    response = client.get("/forecast/funnel/",
                          {"quarter": "2026-Q2", "format": "csv", "table": "funnel"})

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="funnel-2026-Q2.csv"'
    assert response.content.decode().splitlines() == [
        "Stage,Entered,Reached the next stage,Share (%),Still in the stage,"
        "Median days in the stage",
        "Identifying Opportunity,3,2,67,1,20.0",
        '"Discovering Problems, Impacts & Goals",2,1,50,1,40.0',
        "Validating Benefits & Values,2,1,50,0,35.0",
        "Confirming Value with Power,1,1,100,0,30.0",
        "Negotiating & Mutual Plan,2,2,100,0,21.0",
        "Finalizing Closure,1,1,100,0,1.0",
        "Pending (sales-ops review),1,1,100,0,1.0",
    ]


def test_who_may_see_which_funnel(client, cast):
    def status(user, **query):
        client.force_login(user)
        return client.get("/forecast/funnel/", {"quarter": "2026-Q2", **query}).status_code

    assert status(BdrFactory(team=cast.manager.team)) == 403
    assert status(UserFactory()) == 403
    assert status(cast.anna, rep=cast.ben.pk) == 404
    assert status(cast.anna, team=cast.manager.team_id) == 404
    assert status(cast.manager, rep=cast.olga.pk) == 404
    assert status(cast.manager, team=cast.olga.team_id) == 404
    assert status(ManagerFactory(), team=cast.manager.team_id) == 404
    assert status(cast.manager, team=cast.manager.team_id) == 200


def test_a_refusal_shows_no_figures(client, cast):
    client.force_login(cast.anna)

    response = client.get("/forecast/funnel/", {"rep": cast.ben.pk})

    assert response.status_code == 404
    assert b'data-table="funnel"' not in response.content


def test_a_bad_quarter_or_table_is_refused_with_a_message(client, cast):
    client.force_login(cast.manager)

    quarter = client.get("/forecast/funnel/", {"quarter": "2026-Q9"})
    too_early = client.get("/forecast/calibration/", {"quarter": "0001-Q1"})
    wrong_table = client.get("/forecast/funnel/", {"format": "csv", "table": "calibration"})

    assert quarter.status_code == 400
    assert b"Enter a valid value." in quarter.content
    assert too_early.status_code == 400
    assert b"There is no quarter 0001-Q1 in the calendar." in too_early.content
    assert wrong_table.status_code == 400
    assert "This page has no table “calibration”." in wrong_table.content.decode()


def test_the_funnel_query_count_does_not_grow_with_the_history(client, cast):
    client.force_login(cast.manager)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/forecast/funnel/", {"quarter": "2026-Q2"}).status_code == 200
        return len(captured)

    small = queries()
    for number in range(20):
        story(cast.ben, f"More {number}", "2026-04-03", ("2026-04-13", S.DISCOVERING),
              ("2026-05-13", S.VALIDATING), ("2026-05-20", S.DISCOVERING))
    large = queries()

    assert (small, large) == (13, 13)  # 3 of them renew the session (idle expiry)
