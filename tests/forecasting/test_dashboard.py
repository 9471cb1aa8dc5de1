"""The dashboard over the quarter-crossing fixture: figures, the table per rep and where
each figure leads, hygiene flags, and who sees what."""

import re

import pytest

from tests.factories import BdrFactory, ManagerFactory, SalesOpsFactory, UserFactory
from tests.forecasting.conftest import figure, quarter_name

pytestmark = pytest.mark.django_db


def cell(page: str, owner, column: str) -> str:
    row = page[page.index(f'data-owner-id="{owner.pk}"'):]
    row = row[:row.index("</tr>")]
    start = row.index(f'data-column="{column}">') + len(f'data-column="{column}">')
    return row[start:row.index("</td>", start)]


def text(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def link(html: str) -> str:
    return re.search(r'href="([^"]+)"', html).group(1).replace("&amp;", "&")


def listed(client, url: str) -> list[str]:
    page = client.get(url).content.decode()
    return sorted(re.findall(r'data-opportunity-id="\d+"><th scope="row"><a [^>]+>([^<]+)<',
                             page))


def test_the_quarter_of_a_team_in_the_company_currency(client, quarterly):
    client.force_login(quarterly.manager)

    page = client.get("/forecast/").content.decode()

    assert figure(page, "closed") == "25,000 EUR"
    assert figure(page, "commit") == "30,000 EUR"
    assert figure(page, "best_case") == "10,000 EUR"
    assert figure(page, "pipeline") == "40,000 EUR"
    # 30,000 x 75 % + 10,000 x 60 % + 40,000 x 25 %
    assert figure(page, "weighted") == "38,500 EUR"
    assert figure(page, "target") == "100,000 EUR"
    assert figure(page, "gap") == "75,000 EUR"


def test_a_row_per_rep_with_quota_figures_and_coverage(client, quarterly):
    client.force_login(quarterly.manager)

    page = client.get("/forecast/").content.decode()

    anna, ben = quarterly.anna, quarterly.ben
    assert [text(cell(page, anna, c)) for c in
            ("quota", "closed", "commit", "best_case", "pipeline", "coverage")] == [
        "60,000", "25,000", "30,000", "0", "0", "0.9x"]  # 30,000 over 35,000
    assert [text(cell(page, ben, c)) for c in
            ("quota", "closed", "commit", "best_case", "pipeline", "coverage")] == [
        "40,000", "0", "0", "10,000", "40,000", "1.2x"]  # 50,000 over 40,000
    assert f'data-owner-id="{quarterly.outsider.pk}"' not in page


def test_each_figure_leads_to_exactly_the_opportunities_behind_it(client, quarterly):
    client.force_login(quarterly.manager)
    page = client.get("/forecast/").content.decode()
    anna, ben = quarterly.anna, quarterly.ben

    assert listed(client, link(cell(page, anna, "closed"))) == ["India"]
    assert listed(client, link(cell(page, anna, "commit"))) == ["Foxtrot"]
    assert listed(client, link(cell(page, ben, "best_case"))) == ["Golf"]
    assert listed(client, link(cell(page, ben, "pipeline"))) == ["Hotel"]
    assert listed(client, link(cell(page, ben, "coverage"))) == ["Golf", "Hotel"]
    top = page[page.index('data-figure="commit"'):]
    assert listed(client, link(top)) == ["Foxtrot"]


def test_a_past_quarters_closed_figure_leads_to_what_closed_in_it(client, quarterly):
    client.force_login(quarterly.manager)
    page = client.get(f"/forecast/?quarter={quarter_name(2)}").content.decode()

    assert figure(page, "closed") == "120,000 EUR"
    assert listed(client, link(cell(page, quarterly.anna, "closed"))) == ["Alpha"]
    assert listed(client, f"/forecast/opportunities/?quarter={quarter_name(1)}"
                          "&figure=closed") == ["Charlie"]


def test_hygiene_flags_on_the_dashboard(client, quarterly):
    client.force_login(quarterly.manager)

    page = client.get("/forecast/").content.decode()

    flagged = {name: flags for name, flags in re.findall(
        r'data-flagged-id="\d+"><th scope="row"><a [^>]+>([^<]+)</a>.*?'
        r'class="hygiene-flag">([^<]+)</td>', page, re.S)}
    assert flagged == {
        "Juliet": "Best Case, closing more than three months out",
        "Kilo": "Commit, close date passed",
        "Hotel": "Close date pushed twice or more this quarter",
    }
    assert "3 open opportunities carry a hygiene flag." in page


def test_a_rep_sees_only_their_own_figures(client, quarterly):
    client.force_login(quarterly.anna)

    page = client.get("/forecast/").content.decode()

    assert figure(page, "commit") == "30,000 EUR"
    assert figure(page, "best_case") == "0 EUR"
    assert figure(page, "target") == "60,000 EUR"
    assert f'data-owner-id="{quarterly.ben.pk}"' not in page
    response = client.get(f"/forecast/?rep={quarterly.ben.pk}")
    assert response.status_code == 400
    assert figure(response.content.decode(), "best_case") == "0 EUR"
    assert listed(client, f"/forecast/opportunities/?figure=best_case"
                          f"&rep={quarterly.ben.pk}") == []


def test_a_refused_scope_keeps_the_quarter_asked_for(client, quarterly):
    client.force_login(quarterly.anna)

    response = client.get(f"/forecast/?quarter={quarter_name(2)}&rep={quarterly.ben.pk}")

    assert response.status_code == 400
    assert figure(response.content.decode(), "closed") == "120,000 EUR"  # Anna's Alpha


def test_another_manager_sees_none_of_the_teams_figures(client, quarterly):
    client.force_login(ManagerFactory())

    response = client.get(f"/forecast/?team={quarterly.manager.team_id}")

    assert response.status_code == 400
    assert figure(response.content.decode(), "commit") == "0 EUR"
    assert listed(client, "/forecast/opportunities/?figure=commit") == []


@pytest.mark.parametrize("role", ["bdr", "no_role"])
def test_others_get_no_figures(client, quarterly, role):
    user = {"bdr": lambda: BdrFactory(team=quarterly.manager.team),
            "no_role": UserFactory}[role]()
    client.force_login(user)
    for url in ("/forecast/", "/forecast/?format=csv", "/forecast/opportunities/?figure=closed"):
        response = client.get(url)
        assert response.status_code == 403
        assert "data-figure" not in response.content.decode()
        assert "India" not in response.content.decode()


def test_the_rep_table_downloads_as_csv(client, quarterly):
    client.force_login(quarterly.manager)

    lines = client.get("/forecast/?format=csv").content.decode().splitlines()

    assert lines == [
        "Rep,Quota,Closed,Commit,Best Case,Pipeline,Weighted pipeline,Coverage,Currency",
        "Anna Alder,60000.00,25000.00,30000.00,0.00,0.00,22500.00,0.9,EUR",
        "Ben Birch,40000.00,0.00,0.00,10000.00,40000.00,16000.00,1.2,EUR",
    ]


def test_sales_ops_read_the_company_forecast_but_set_no_quotas(client, quarterly):
    client.force_login(SalesOpsFactory())

    page = client.get("/forecast/").content.decode()

    # Every deal of the company: an outsider, in no team of the manager, adds 500,000 EUR.
    assert figure(page, "commit") == "530,000 EUR"
    assert figure(page, "target") == "100,999 EUR"  # every rep's quota, the outsider's too
    assert client.get("/forecast/quotas/").status_code == 403
