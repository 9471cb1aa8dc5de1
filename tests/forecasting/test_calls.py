"""Forecast calls: a rep's call prefilled from their deals, a manager's adjustment kept
beside it, team calls, and the accuracy of the first, mid-quarter and last call."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from crm.models import fiscal_quarter, fiscal_quarter_bounds
from forecasting.models import CallKind, ForecastCall
from pipeline.process import Stage
from tests.factories import (
    BdrFactory,
    ExchangeRateFactory,
    ManagerFactory,
    OpportunityFactory,
    RepFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def team():
    manager = ManagerFactory(first_name="Maria", last_name="Manager")
    anna = RepFactory(team=manager.team, first_name="Anna", last_name="Rep")
    ben = RepFactory(team=manager.team, first_name="Ben", last_name="Rep")
    return manager, anna, ben


def deal(owner, stage, amount, *, currency="EUR", closes=None, closed_at=None):
    """Seed-style: the stage set directly, as test code may, knowingly."""
    year, quarter = fiscal_quarter(timezone.localdate())
    first, after = fiscal_quarter_bounds(year, quarter)
    return OpportunityFactory(
        owner=owner, stage=stage, amount=Decimal(amount), currency=currency,
        expected_close_date=closes or first + (after - first) / 2,
        stage_entered_at=closed_at or timezone.now())


def at(monkeypatch, moment: datetime) -> None:
    """The clock stands at `moment` for what follows."""
    monkeypatch.setattr(timezone, "now", lambda: moment)


def test_a_reps_call_is_prefilled_from_their_opportunities(client, team):
    manager, anna, ben = team
    deal(anna, Stage.CLOSED, "60000")
    deal(anna, Stage.NEGOTIATING, "100000")
    deal(anna, Stage.CONFIRMING, "40000")
    deal(ben, Stage.NEGOTIATING, "999")
    client.force_login(anna)

    page = client.get("/forecast/calls/").content.decode()

    # Commit: won 60,000 plus Commit 100,000; Best Case adds the 40,000 of Best Case.
    assert 'name="commit" value="160000.00"' in page
    assert 'name="best_case" value="200000.00"' in page
    assert f'data-rep-id="{ben.pk}"' not in page


def test_an_adjustment_keeps_the_reps_call_beside_it_with_who_and_when(client, team):
    manager, anna, ben = team
    deal(anna, Stage.NEGOTIATING, "100000")
    client.force_login(anna)
    response = client.post("/forecast/calls/new/", {
        "commit": "90000", "best_case": "120000", "note": "Bank deal may slip"})
    assert response.status_code == 302
    client.force_login(manager)

    response = client.post("/forecast/calls/new/", {
        "rep": anna.pk, "commit": "70000", "best_case": "100000",
        "note": "Anna is optimistic"})

    assert response.status_code == 302
    calls = list(ForecastCall.objects.order_by("pk").values_list(
        "kind", "rep__first_name", "made_by__first_name", "commit", "best_case", "note",
        "system_commit"))
    assert calls == [
        ("rep", "Anna", "Anna", Decimal("90000.00"), Decimal("120000.00"),
         "Bank deal may slip", Decimal("100000.00")),
        ("adjustment", "Anna", "Maria", Decimal("70000.00"), Decimal("100000.00"),
         "Anna is optimistic", Decimal("100000.00")),
    ]
    page = client.get("/forecast/calls/").content.decode()
    row = page[page.index(f'data-rep-id="{anna.pk}"'):]
    assert "Commit 90,000, Best Case 120,000" in row[:row.index('data-figure="adjustment"')]
    assert "Commit 70,000, Best Case 100,000" in row
    assert "by Maria Manager" in row


def test_a_rep_reads_their_own_calls_not_their_managers_adjustment(client, team):
    manager, anna, ben = team
    ForecastCall.submit(by=anna, commit=Decimal(5), best_case=Decimal(6), note="mine")
    ForecastCall.adjust(by=manager, rep=anna, commit=Decimal(3), best_case=Decimal(4),
                        note="hers is high")
    client.force_login(anna)

    page = client.get("/forecast/calls/").content.decode()

    assert "Commit 5, Best Case 6" in page
    assert "hers is high" not in page and 'data-figure="adjustment"' not in page


def test_a_manager_calls_the_quarter_for_their_team(client, team):
    manager, anna, ben = team
    deal(anna, Stage.NEGOTIATING, "100000")
    deal(ben, Stage.CONFIRMING, "50000")
    client.force_login(manager)
    page = client.get("/forecast/calls/").content.decode()
    team_row = page[page.index(f'data-team-id="{manager.team.pk}"'):]
    assert "100,000 EUR" in team_row and "150,000 EUR" in team_row

    client.post("/forecast/calls/new/", {"team": manager.team.pk, "commit": "80000",
                                         "best_case": "140000", "note": ""})

    call = ForecastCall.objects.get()
    assert (call.kind, call.rep, call.team, call.made_by, call.commit) == (
        CallKind.TEAM, None, manager.team, manager, Decimal("80000.00"))


def test_a_new_call_never_replaces_an_earlier_one(client, team):
    manager, anna, ben = team
    client.force_login(anna)
    client.post("/forecast/calls/new/", {"commit": "10", "best_case": "20"})
    client.post("/forecast/calls/new/", {"commit": "30", "best_case": "40"})

    assert list(ForecastCall.objects.order_by("pk").values_list("commit", flat=True)) == [
        Decimal("10.00"), Decimal("30.00")]
    page = client.get("/forecast/calls/").content.decode()
    assert page.count('data-call-id="') == 2


def test_a_best_case_below_the_commit_is_refused_and_writes_nothing(client, team):
    manager, anna, ben = team
    client.force_login(anna)

    response = client.post("/forecast/calls/new/", {"commit": "500", "best_case": "400"})

    assert response.status_code == 400
    assert "The Best Case cannot be below the Commit" in response.content.decode()
    assert not ForecastCall.objects.exists()


@pytest.mark.parametrize("field", ["rep", "team"])
def test_a_rep_neither_adjusts_a_colleague_nor_calls_for_the_team(client, team, field):
    manager, anna, ben = team
    client.force_login(anna)
    target = ben.pk if field == "rep" else manager.team.pk

    response = client.post("/forecast/calls/new/", {field: target, "commit": "1",
                                                     "best_case": "2"})

    assert response.status_code == 404
    assert not ForecastCall.objects.exists()


def test_another_manager_cannot_adjust_or_see_the_teams_calls(client, team):
    manager, anna, ben = team
    ForecastCall.submit(by=anna, commit=Decimal(5), best_case=Decimal(6), note="mine")
    stranger = ManagerFactory()
    client.force_login(stranger)

    response = client.post("/forecast/calls/new/", {"rep": anna.pk, "commit": "1",
                                                     "best_case": "2"})

    assert response.status_code == 404
    assert ForecastCall.objects.count() == 1
    assert "mine" not in client.get("/forecast/calls/").content.decode()
    assert client.get(f"/forecast/calls/?team={manager.team.pk}").status_code == 404


def test_a_bdr_has_no_calls_page(client, team):
    client.force_login(BdrFactory())
    assert client.get("/forecast/calls/").status_code == 403
    assert client.post("/forecast/calls/new/", {"commit": "1", "best_case": "2"}
                       ).status_code == 403


def test_accuracy_of_the_first_mid_quarter_and_last_calls(client, team, monkeypatch):
    manager, anna, ben = team
    zone = timezone.get_current_timezone()
    # 2026-Q2 runs from 1 April to 30 June; its midpoint is 16 May.
    ExchangeRateFactory(currency="USD", rate=Decimal("0.5"))
    won = datetime(2026, 5, 20, 12, tzinfo=zone)
    deal(anna, Stage.CLOSED, "90000", closed_at=won)
    deal(anna, Stage.CLOSED, "20000", currency="USD", closed_at=won)  # 10,000 EUR
    deal(ben, Stage.CLOSED, "50000", closed_at=won)
    deal(ben, Stage.CLOSED, "33333", closed_at=datetime(2026, 7, 2, tzinfo=zone))  # Q3
    for day, commit in ((10, "80000"), (25, "90000")):
        at(monkeypatch, datetime(2026, 4, day, 9, tzinfo=zone))
        ForecastCall.submit(by=anna, commit=Decimal(commit), best_case=Decimal(commit))
    at(monkeypatch, datetime(2026, 4, 10, 10, tzinfo=zone))
    ForecastCall.call_for_team(by=manager, team=manager.team, commit=Decimal("200000"),
                               best_case=Decimal("250000"))
    at(monkeypatch, datetime(2026, 5, 10, 9, tzinfo=zone))
    ForecastCall.submit(by=anna, commit=Decimal("100000"), best_case=Decimal("100000"))
    at(monkeypatch, datetime(2026, 6, 20, 9, tzinfo=zone))
    ForecastCall.submit(by=anna, commit=Decimal("125000"), best_case=Decimal("130000"))
    ForecastCall.adjust(by=manager, rep=anna, commit=Decimal("110000"),
                        best_case=Decimal("110000"))
    ForecastCall.call_for_team(by=manager, team=manager.team, commit=Decimal("150000"),
                               best_case=Decimal("160000"))
    ForecastCall.submit(by=ben, commit=Decimal("0"), best_case=Decimal("10"))
    monkeypatch.undo()
    client.force_login(manager)

    page = client.get("/forecast/accuracy/?quarter=2026-Q2").content.decode()

    def row(kind, caller):
        start = page.index(f'data-caller-id="{caller.pk}" data-kind="{kind}"')
        return [cell.split("</td>")[0] for cell in page[start:page.index("</tr>", start)]
                .split('<td data-figure="')[1:]]

    # Anna closed 100,000 EUR: 125 % of her first Commit, 100 % of the one in force at
    # the midpoint, 80 % of her last.
    assert row("rep", anna) == [
        'closed">100,000 EUR', '1">Commit 80,000: <strong>125 %</strong>',
        '2">Commit 100,000: <strong>100 %</strong>', '3">Commit 125,000: <strong>80 %</strong>']
    # Maria adjusted after the midpoint only: no mid-quarter adjustment.
    assert row("adjustment", manager) == [
        'closed">100,000 EUR', '1">Commit 110,000: <strong>91 %</strong>',
        '2">no call', '3">Commit 110,000: <strong>91 %</strong>']
    # The team closed 150,000 EUR in the quarter (Ben's July deal is Q3's).
    assert row("team", manager) == [
        'closed">150,000 EUR', '1">Commit 200,000: <strong>75 %</strong>',
        '2">Commit 200,000: <strong>75 %</strong>', '3">Commit 150,000: <strong>100 %</strong>']
    # A Commit of nothing has no percentage.
    assert row("rep", ben)[3] == '3">Commit 0: <strong>—</strong>'
    lines = csv_lines(client.get("/forecast/accuracy/?quarter=2026-Q2&format=csv"))
    assert lines[0] == ("Caller,Kind,For,Closed,First call Commit,First call (%),"
                        "Mid-quarter call Commit,Mid-quarter call (%),Last call Commit,"
                        "Last call (%)")
    assert "Anna Rep,Own call,Anna Rep,100000.00,80000.00,125,100000.00,100,125000.00,80" \
        in lines
    assert "Maria Manager,Adjustment,Anna Rep,100000.00,110000.00,91,,,110000.00,91" in lines
    assert "Ben Rep,Own call,Ben Rep,50000.00,0.00,,,,0.00," in lines
    client.force_login(anna)
    page = client.get("/forecast/accuracy/?quarter=2026-Q2").content.decode()
    assert page.count("data-caller-id=") == 1
    lines = csv_lines(client.get("/forecast/accuracy/?quarter=2026-Q2&format=csv"))
    assert [line.split(",")[:2] for line in lines[1:]] == [["Anna Rep", "Own call"]]


def test_accuracy_waits_for_the_quarter_to_end(client, team):
    manager, anna, ben = team
    ForecastCall.submit(by=anna, commit=Decimal(5), best_case=Decimal(6))
    year, quarter = fiscal_quarter(timezone.localdate())
    client.force_login(manager)

    page = client.get(f"/forecast/accuracy/?quarter={year}-Q{quarter}").content.decode()

    assert "This quarter has not ended yet" in page
    assert "data-caller-id=" not in page


def test_calls_are_made_for_the_quarter_under_way(team, monkeypatch):
    manager, anna, ben = team
    at(monkeypatch, timezone.now() + timedelta(days=200))

    call = ForecastCall.submit(by=anna, commit=Decimal(1), best_case=Decimal(1))

    assert (call.fiscal_year, call.quarter) == fiscal_quarter(timezone.localdate())


def csv_lines(response) -> list[str]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return response.content.decode().splitlines()


def test_the_calls_tables_download_as_csv_with_formulas_defused(client, team):
    manager, anna, ben = team
    deal(anna, Stage.CLOSED, "60000")
    deal(anna, Stage.NEGOTIATING, "100000")
    ForecastCall.submit(by=anna, commit=Decimal("150000"), best_case=Decimal("170000"),
                        note="=HYPERLINK(1)")
    ForecastCall.adjust(by=manager, rep=anna, commit=Decimal("140000"),
                        best_case=Decimal("160000"), note="-5 on the bank deal")
    client.force_login(manager)
    year, quarter = fiscal_quarter(timezone.localdate())

    page = client.get("/forecast/calls/").content.decode()
    reps = csv_lines(client.get("/forecast/calls/?format=csv&table=reps"))
    teams = csv_lines(client.get("/forecast/calls/?format=csv&table=teams"))
    history = csv_lines(client.get("/forecast/calls/?format=csv&table=history"))

    assert "format=csv&amp;table=history" in page and "Download as CSV" in page
    assert reps == [
        "Account executive,System Commit,System Best Case,Call Commit,Call Best Case,"
        "Adjusted Commit,Adjusted Best Case",
        "Anna Rep,160000.00,160000.00,150000.00,170000.00,140000.00,160000.00",
        "Ben Rep,0.00,0.00,,,,",
    ]
    assert teams[1] == f"{manager.team},160000.00,160000.00,,"
    assert [line.split(",", 1)[1] for line in history] == [
        "Kind,For,By,Commit,Best Case,Note",
        "Manager's adjustment,Anna Rep,Maria Manager,140000.00,160000.00,'-5 on the bank deal",
        "Rep's call,Anna Rep,Anna Rep,150000.00,170000.00,'=HYPERLINK(1)",
    ]
    response = client.get("/forecast/calls/?format=csv&table=reps")
    assert response["Content-Disposition"] == (
        f'attachment; filename="calls-reps-{year}-Q{quarter}.csv"')


def test_a_reps_calls_csv_holds_only_their_own_rows(client, team):
    manager, anna, ben = team
    ForecastCall.submit(by=anna, commit=Decimal(5), best_case=Decimal(6), note="mine")
    ForecastCall.submit(by=ben, commit=Decimal(7), best_case=Decimal(8), note="his")
    ForecastCall.adjust(by=manager, rep=anna, commit=Decimal(3), best_case=Decimal(4),
                        note="hers is high")
    client.force_login(anna)

    reps = csv_lines(client.get("/forecast/calls/?format=csv&table=reps"))
    history = csv_lines(client.get("/forecast/calls/?format=csv&table=history"))

    assert reps == [
        "Account executive,System Commit,System Best Case,Call Commit,Call Best Case",
        "Anna Rep,0.00,0.00,5.00,6.00",
    ]
    assert [line.split(",", 1)[1] for line in history[1:]] == [
        "Rep's call,Anna Rep,Anna Rep,5.00,6.00,mine"]


def test_an_unknown_calls_table_is_a_bad_request(client, team):
    manager, anna, ben = team
    client.force_login(manager)

    assert client.get("/forecast/calls/?format=csv&table=secrets").status_code == 400


def test_a_bdr_gets_no_calls_csv(client, team):
    client.force_login(BdrFactory())

    assert client.get("/forecast/calls/?format=csv&table=reps").status_code == 403
