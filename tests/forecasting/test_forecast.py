"""The managers' forecast: the quarter's Closed, Commit, Best Case and Pipeline, the target,
the gap and the coverage, in the company currency, with a row per owner."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from forecasting.models import Quota
from pipeline.process import Stage
from tests.factories import ExchangeRateFactory, RepFactory
from tests.forecasting.conftest import deal, figure, this_quarter

pytestmark = pytest.mark.django_db


def test_the_quarter_by_category_in_the_company_currency(client, team):
    manager, anna, ben = team
    year, quarter, first, after = this_quarter()
    ExchangeRateFactory(currency="USD", rate=Decimal("0.5"))
    deal(anna, Stage.NEGOTIATING, "100000")                    # commit
    deal(anna, Stage.PENDING, "20000", currency="USD")         # commit, 10,000 EUR
    deal(ben, Stage.CONFIRMING, "40000")                       # best case
    deal(ben, Stage.DISCOVERING, "30000")                      # pipeline
    deal(ben, Stage.IDENTIFYING, "999999")                     # omitted
    deal(ben, Stage.DISCOVERING, "77777", closes=after + timedelta(days=3))  # next quarter
    deal(ben, Stage.DISCOVERING, "5000", currency="CHF")       # no rate: left out, said so
    deal(anna, Stage.CLOSED, "60000")                          # closed this quarter
    deal(anna, Stage.CLOSED, "11111",
         entered=timezone.now() - timedelta(days=200))          # closed long ago
    deal(RepFactory(), Stage.NEGOTIATING, "500000")            # another team's
    Quota.set(rep=anna, fiscal_year=year, quarter=quarter, amount=Decimal("200000"), by=manager)
    Quota.set(rep=ben, fiscal_year=year, quarter=quarter, amount=Decimal("100000"), by=manager)
    client.force_login(manager)

    page = client.get("/forecast/").content.decode()

    assert figure(page, "closed") == "60,000 EUR"
    assert figure(page, "commit") == "110,000 EUR"
    assert figure(page, "best_case") == "40,000 EUR"
    assert figure(page, "pipeline") == "30,000 EUR"
    # 100,000 x 75 % + 10,000 x 95 % (pending) + 40,000 x 60 % + 30,000 x 25 %
    assert figure(page, "weighted") == "116,000 EUR"
    assert figure(page, "target") == "300,000 EUR"
    assert figure(page, "gap") == "240,000 EUR"
    assert figure(page, "coverage") == "0.8x of what is still needed"
    assert "1 amount has no exchange rate and is left out." in page


def test_each_owners_figures_link_to_exactly_the_deals_behind_them(client, team):
    manager, anna, ben = team
    commit = deal(anna, Stage.NEGOTIATING, "100000")
    best = deal(anna, Stage.CONFIRMING, "40000")
    deal(ben, Stage.NEGOTIATING, "5000")
    client.force_login(manager)
    page = client.get("/forecast/").content.decode()
    row = page[page.index(f'data-owner-id="{anna.pk}"'):]
    link = re.search(r'<a href="([^"]+)">100,000</a>', row).group(1).replace("&amp;", "&")

    board = client.get(link).content.decode()

    assert f'data-opportunity-id="{commit.pk}"' in board
    assert f'data-opportunity-id="{best.pk}"' not in board
    assert board.count('data-opportunity-id="') == 1


def test_managers_start_at_the_forecast_and_reps_see_only_their_team(client, team):
    manager, anna, ben = team
    deal(anna, Stage.NEGOTIATING, "100000")
    deal(RepFactory(), Stage.NEGOTIATING, "500000")
    client.force_login(manager)
    assert client.get("/")["Location"] == "/forecast/"
    client.force_login(anna)
    assert client.get("/")["Location"] == "/board/"
    assert figure(client.get("/forecast/").content.decode(), "commit") == "100,000 EUR"


def test_the_owner_table_downloads_as_csv(client, team):
    manager, anna, ben = team
    deal(anna, Stage.NEGOTIATING, "100000")
    deal(ben, Stage.CONFIRMING, "40000")
    client.force_login(manager)

    response = client.get("/forecast/?format=csv")

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    lines = response.content.decode().splitlines()
    assert lines[0] == ("Rep,Quota,Closed,Commit,Best Case,Pipeline,Weighted pipeline,"
                        "Coverage,Currency")
    assert sorted(lines[1:]) == sorted([
        f"{anna},,0.00,100000.00,0.00,0.00,75000.00,,EUR",
        f"{ben},,0.00,0.00,40000.00,0.00,24000.00,,EUR",
    ])


def test_a_quarter_beyond_the_calendar_is_refused_with_a_message(client, team):
    manager, anna, ben = team
    client.force_login(manager)
    response = client.get("/forecast/?quarter=9999-Q4")
    assert response.status_code == 400
    assert "There is no quarter 9999-Q4 in the calendar." in response.content.decode()


def test_the_forecast_query_count_does_not_grow_with_deals(client, team,
                                                           django_assert_max_num_queries):
    manager, anna, ben = team
    deal(anna, Stage.NEGOTIATING, "1000")
    client.force_login(manager)
    with django_assert_max_num_queries(30) as few:
        client.get("/forecast/")
    for number in range(15):
        deal(RepFactory(team=manager.team), Stage.CONFIRMING, str(1000 + number))
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get("/forecast/")
