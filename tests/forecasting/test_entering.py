"""A finished quarter's entering pipeline is rebuilt from the change history once, stored,
and read from then on: the dashboard shows the same figures, faster."""

import re
import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from forecasting.coverage import historical_coverage, pipeline_entering, previous_quarters
from forecasting.entering import (
    EnteringOpportunity,
    StoredQuarter,
    forget_stored_quarters,
    store,
    stored_quarters,
)
from forecasting.rollups import rates_in_force
from forecasting.tasks import take_weekly_snapshot
from pipeline.models import Opportunity
from pipeline.models.imported import ImportedOpportunity
from pipeline.process import Stage
from tests.factories import AccountFactory, OpportunityFactory
from tests.forecasting.conftest import figure, first_day, moment, quarter_back, quarter_name

pytestmark = pytest.mark.django_db


def history_rows(page: str) -> list[str]:
    return re.findall(r'<tr[^>]*data-quarter="[^"]*".*?</tr>', page, re.DOTALL)


def figures(history):
    return {q.name: (q.pipeline, q.closed, q.recorded) for q in history.quarters}


def rebuilt(opportunities, year, quarter):
    """The entering pipeline of each of the four quarters before, rebuilt as before."""
    rates = rates_in_force()
    return {f"{y}-Q{q}": pipeline_entering(opportunities, y, q, rates)
            for y, q in previous_quarters(year, quarter, 4)}


def scopes(quarterly):
    everyone = Opportunity.objects.all()
    return {"company": everyone, "team": everyone.filter(owner__team=quarterly.manager.team),
            "anna": everyone.filter(owner=quarterly.anna),
            "ben": everyone.filter(owner=quarterly.ben),
            "manager": Opportunity.objects.visible_to(quarterly.manager)}


def imported_win(owner, amount, closes):
    return ImportedOpportunity(
        source_system="salesforce", source_id=f"won-{closes}", account_id=AccountFactory().pk,
        owner_id=owner.pk, name="Imported win", stage=Stage.CLOSED, amount=Decimal(amount),
        currency="EUR", expected_close_date=closes, type="new_business", source="inbound")


@pytest.mark.parametrize("back", [0, 1])
def test_every_scope_shows_the_same_pipeline_from_stored_quarters(quarterly, back):
    year, quarter = quarter_back(back)
    for name, opportunities in scopes(quarterly).items():
        first = figures(historical_coverage(opportunities, year, quarter))
        again = figures(historical_coverage(opportunities, year, quarter))

        expected = rebuilt(opportunities, year, quarter)
        assert {q: pipeline for q, (pipeline, _c, _r) in first.items()} == expected, name
        assert again == first, name
    assert StoredQuarter.objects.count() == 4


def test_a_second_look_reads_the_stored_rows_instead_of_the_history(quarterly):
    with CaptureQueriesContext(connection) as first:
        historical_coverage(Opportunity.objects.all(), *quarter_back(0))
    with CaptureQueriesContext(connection) as second:
        historical_coverage(Opportunity.objects.all(), *quarter_back(0))

    assert len(second) < len(first)
    assert any("pipeline_stagechange" in query["sql"] for query in first.captured_queries)
    assert not any("pipeline_stagechange" in query["sql"] for query in second.captured_queries)
    assert any("forecasting_enteringopportunity" in query["sql"]
               for query in second.captured_queries)


def test_the_dashboard_takes_fewer_queries_once_the_quarters_are_stored(client, quarterly):
    client.force_login(quarterly.manager)
    with CaptureQueriesContext(connection) as first:
        cold = client.get("/forecast/").content.decode()
    with CaptureQueriesContext(connection) as second:
        warm = client.get("/forecast/").content.decode()

    assert len(second) < len(first)
    assert figure(warm, "coverage_needed") == figure(cold, "coverage_needed") == (
        "2.1x, from the last four quarters")
    assert len(history_rows(cold)) == 4
    assert history_rows(warm) == history_rows(cold)


def test_a_win_imported_into_a_finished_quarter_counts_where_it_closed(quarterly):
    before = figures(historical_coverage(Opportunity.objects.all(), *quarter_back(0)))

    Opportunity.enter_via_import([imported_win(quarterly.anna, "10000", first_day(1, 40)),
                                  imported_win(quarterly.anna, "5000", first_day(4, 5))],
                                 by=quarterly.manager)
    after = historical_coverage(Opportunity.objects.all(), *quarter_back(0))

    last = after.quarters[0]
    assert last.closed == before[quarter_name(1)][1] + Decimal("10000.00")
    # The older win is now the first record: the quarter after it has a history.
    assert [q.recorded for q in after.quarters] == [True, True, True, False]
    assert {q.name: q.pipeline for q in after.quarters} == rebuilt(
        Opportunity.objects.all(), *quarter_back(0))


def test_a_deal_handed_to_another_rep_moves_its_stored_pipeline_along(quarterly):
    historical_coverage(Opportunity.objects.all(), *quarter_back(0))

    Opportunity.objects.filter(name="Bravo").update(owner=quarterly.anna)
    anna = Opportunity.objects.filter(owner=quarterly.anna)

    assert ({q.name: q.pipeline for q in historical_coverage(anna, *quarter_back(0)).quarters}
            == rebuilt(anna, *quarter_back(0)))
    assert historical_coverage(anna, *quarter_back(0)).quarters[1].pipeline == Decimal(
        "200000.00")  # Alpha's 100,000 and Bravo's 100,000 (200,000 USD) two quarters ago


def test_the_current_quarter_is_never_stored(quarterly):
    year, quarter = quarter_back(0)
    next_year, next_quarter = (year, quarter + 1) if quarter < 4 else (year + 1, 1)

    history = historical_coverage(Opportunity.objects.all(), next_year, next_quarter)

    assert stored_quarters([(year, quarter)]) == {}
    assert not StoredQuarter.objects.filter(fiscal_year=year, quarter=quarter).exists()
    assert StoredQuarter.objects.count() == 3
    assert history.quarters[0].name == quarter_name(0)


def test_history_written_in_the_past_counts_once_the_stored_quarters_are_forgotten(quarterly):
    historical_coverage(Opportunity.objects.all(), *quarter_back(0))
    OpportunityFactory(owner=quarterly.anna, stage=Stage.DISCOVERING, amount=Decimal("7000"),
                       created_at=moment(2, 1),
                       expected_close_date=first_day(1, 3))  # as seed_demo writes them

    forget_stored_quarters()
    history = historical_coverage(Opportunity.objects.all(), *quarter_back(0))

    assert history.quarters[0].pipeline == Decimal("157000.00")
    assert StoredQuarter.objects.count() == 4


def test_storing_a_quarter_twice_stores_it_once(quarterly):
    store([quarter_back(2)])
    rows = EnteringOpportunity.objects.count()

    store([quarter_back(2)])

    assert StoredQuarter.objects.count() == 1
    assert EnteringOpportunity.objects.count() == rows == 2  # Alpha and Bravo


def test_the_weekly_task_stores_the_last_four_quarters(quarterly):
    take_weekly_snapshot()

    assert sorted(str(q) for q in StoredQuarter.objects.all()) == sorted(
        quarter_name(back) for back in range(1, 5))


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_dashboards_opened_at_once_store_each_quarter_once(quarterly, postgresql):
    past = previous_quarters(*quarter_back(0), 4)
    found, start = [], threading.Barrier(2)

    def look():
        start.wait()
        try:
            found.append(stored_quarters(past))
        finally:
            connection.close()

    threads = [threading.Thread(target=look) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(found) == 2 and found[0] == found[1]
    assert StoredQuarter.objects.count() == 4
    assert EnteringOpportunity.objects.filter(
        stored_quarter=found[0][quarter_back(2)]).count() == 2


def test_a_changed_fiscal_year_start_stores_its_own_quarters(quarterly, settings):
    historical_coverage(Opportunity.objects.all(), 2026, 1)
    settings.FISCAL_YEAR_START_MONTH = 2

    history = historical_coverage(Opportunity.objects.all(), 2026, 1)

    assert {q.name: q.pipeline for q in history.quarters} == rebuilt(
        Opportunity.objects.all(), 2026, 1)
    assert StoredQuarter.objects.count() == 8
