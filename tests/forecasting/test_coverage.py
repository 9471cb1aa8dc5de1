"""Pipeline coverage: this quarter's open pipeline over what is still needed, beside the
coverage history says is needed, rebuilt from the change history of past quarters."""

from decimal import Decimal

import pytest

from forecasting.coverage import historical_coverage
from pipeline.models import Opportunity
from tests.forecasting.conftest import figure, quarter_back, quarter_name

pytestmark = pytest.mark.django_db


def past(history, back):
    return next(q for q in history.quarters if q.name == quarter_name(back))


def test_each_past_quarter_counts_the_pipeline_of_its_first_day(quarterly):
    history = historical_coverage(Opportunity.objects.all(), *quarter_back(0))

    # Alpha at 100,000 (before its raise) and Bravo's 200,000 USD; Charlie was dead.
    assert (past(history, 2).pipeline, past(history, 2).closed) == (Decimal("200000.00"),
                                                                    Decimal("120000.00"))
    assert past(history, 2).ratio == Decimal("1.7")
    # Bravo pushed into it, Charlie reopened; Delta's move was undone before it began.
    assert (past(history, 1).pipeline, past(history, 1).closed) == (Decimal("150000.00"),
                                                                    Decimal("50000.00"))
    assert past(history, 1).ratio == Decimal("3.0")
    assert [q.recorded for q in history.quarters] == [True, True, False, False]
    assert history.ratio == Decimal("2.1")


def test_the_dashboard_shows_coverage_beside_the_coverage_needed(client, quarterly):
    client.force_login(quarterly.manager)

    page = client.get("/forecast/").content.decode()

    # Open 80,000 over 100,000 target minus 25,000 closed.
    assert figure(page, "coverage") == "1.1x of what is still needed"
    assert figure(page, "coverage_needed") == "2.1x, from the last four quarters"
    row = page[page.index(f'data-quarter="{quarter_name(1)}"'):]
    assert row[:row.index("</tr>")].count("3.0x") == 1
    row = page[page.index(f'data-quarter="{quarter_name(4)}"'):]
    assert "no history yet" in row[:row.index("</tr>")]


def test_with_too_little_history_no_ratio_is_invented(client, quarterly):
    # One quarter with history is not enough: Charlie's quarter alone.
    client.force_login(quarterly.anna)

    page = client.get(f"/forecast/?quarter={quarter_name(1)}").content.decode()

    assert figure(page, "coverage_needed") == "Too little history to say"
    assert "no coverage ratio is given rather than a guessed one" in page


def test_the_history_takes_a_bounded_number_of_queries(quarterly,
                                                       django_assert_max_num_queries):
    # The first look stores the four finished quarters (a savepoint, the quarters, and
    # one insert each); later looks read them.
    with django_assert_max_num_queries(14):
        historical_coverage(Opportunity.objects.all(), *quarter_back(0))
    with django_assert_max_num_queries(6):
        historical_coverage(Opportunity.objects.all(), *quarter_back(0))
