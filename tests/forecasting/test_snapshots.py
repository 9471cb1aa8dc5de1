"""Weekly snapshots of the open pipeline (set-based, once per slot) and what changed in
the quarter since one."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.models import fiscal_quarter, fiscal_quarter_bounds
from forecasting.models import Snapshot, SnapshotRow
from forecasting.tasks import take_weekly_snapshot
from pipeline.models import Opportunity
from pipeline.process import Stage
from tests.factories import (
    BdrFactory,
    ExchangeRateFactory,
    ManagerFactory,
    OpportunityFactory,
    RepFactory,
)

pytestmark = pytest.mark.django_db


def quarter():
    first, after = fiscal_quarter_bounds(*fiscal_quarter(timezone.localdate()))
    return first, after, first + timedelta(days=45)


def deal(owner, name, stage, amount, *, currency="EUR", closes=None):
    """Seed-style: the stage set directly, as test code may, knowingly."""
    return OpportunityFactory(owner=owner, name=name, stage=stage, amount=Decimal(amount),
                              currency=currency, expected_close_date=closes or quarter()[2])


def set_stage(opportunity, stage):
    """Test code moving a deal without its gates, knowingly."""
    Opportunity.objects.filter(pk=opportunity.pk).update(stage=stage,
                                                         stage_entered_at=timezone.now())


@pytest.fixture
def team():
    manager = ManagerFactory(first_name="Maria", last_name="Manager")
    anna = RepFactory(team=manager.team, first_name="Anna", last_name="Rep")
    ben = RepFactory(team=manager.team, first_name="Ben", last_name="Rep")
    return manager, anna, ben


def test_a_snapshot_copies_every_open_opportunity_with_its_company_amount(team):
    manager, anna, ben = team
    ExchangeRateFactory(currency="USD", rate=Decimal("0.5"))
    first, after, middle = quarter()
    negotiating = deal(anna, "Alpha", Stage.NEGOTIATING, "100000")
    dollars = deal(ben, "Bravo", Stage.CONFIRMING, "20000", currency="USD")
    francs = deal(ben, "Charlie", Stage.DISCOVERING, "5000", currency="CHF", closes=after)
    early = deal(anna, "Delta", Stage.IDENTIFYING, "700")
    deal(anna, "Won", Stage.CLOSED, "1")
    deal(anna, "Parked", Stage.DEAD, "2")

    snapshot, taken = Snapshot.take(Snapshot.minute_slot(), by=manager)

    assert taken and snapshot.rows == 4
    rows = set(SnapshotRow.objects.filter(snapshot=snapshot).values_list(
        "opportunity_id", "owner_id", "stage", "category", "amount", "currency",
        "amount_company", "expected_close_date"))
    assert rows == {
        (negotiating.pk, anna.pk, "negotiating", "commit", Decimal("100000.00"), "EUR",
         Decimal("100000.00"), middle),
        (dollars.pk, ben.pk, "confirming", "best_case", Decimal("20000.00"), "USD",
         Decimal("10000.00"), middle),
        (francs.pk, ben.pk, "discovering", "pipeline", Decimal("5000.00"), "CHF", None, after),
        (early.pk, anna.pk, "identifying", "omitted", Decimal("700.00"), "EUR",
         Decimal("700.00"), middle),
    }


def test_a_snapshot_is_one_insert_however_many_opportunities(team):
    manager, anna, ben = team
    deal(anna, "One", Stage.NEGOTIATING, "1")
    with CaptureQueriesContext(connection) as few:
        Snapshot.take(Snapshot.minute_slot())
    for number in range(20):
        deal(ben, f"Deal {number}", Stage.VALIDATING, "2")
    with CaptureQueriesContext(connection) as many:
        snapshot, _taken = Snapshot.take(Snapshot.minute_slot() + timedelta(minutes=1))

    assert snapshot.rows == 21
    assert len(many) == len(few)
    assert sum("INSERT INTO" in query["sql"] and "forecasting_snapshotrow" in query["sql"]
               for query in many.captured_queries) == 1


def test_the_weekly_task_takes_one_snapshot_a_week_however_often_it_runs(team, monkeypatch):
    manager, anna, ben = team
    deal(anna, "Alpha", Stage.NEGOTIATING, "100")
    deal(ben, "Bravo", Stage.VALIDATING, "200")

    assert take_weekly_snapshot() == 2
    deal(ben, "Charlie", Stage.VALIDATING, "300")
    assert take_weekly_snapshot() == 0
    assert (Snapshot.objects.count(), SnapshotRow.objects.count()) == (1, 2)

    next_week = timezone.now() + timedelta(days=7)
    monkeypatch.setattr(timezone, "now", lambda: next_week)
    assert take_weekly_snapshot() == 3
    assert take_weekly_snapshot() == 0
    assert list(Snapshot.objects.order_by("slot").values_list("rows", flat=True)) == [2, 3]
    monday = Snapshot.objects.order_by("slot").last().slot
    assert (timezone.localtime(monday).weekday(), timezone.localtime(monday).hour) == (0, 0)


def test_a_manager_takes_a_snapshot_on_demand_once_a_minute(client, team):
    manager, anna, ben = team
    deal(anna, "Alpha", Stage.NEGOTIATING, "100")
    client.force_login(manager)

    first = client.post("/forecast/snapshots/take/", follow=True)
    second = client.post("/forecast/snapshots/take/", follow=True)

    assert "Snapshot taken: 1 open opportunity." in first.content.decode()
    assert "A snapshot was taken this minute already." in second.content.decode()
    assert list(Snapshot.objects.values_list("taken_by", "rows")) == [(manager.pk, 1)]


@pytest.mark.parametrize("role", [RepFactory, BdrFactory])
def test_only_a_manager_takes_a_snapshot_on_demand(client, role):
    client.force_login(role())

    assert client.post("/forecast/snapshots/take/").status_code == 403
    assert not Snapshot.objects.exists()


@pytest.fixture
def week(team):
    """A quarter's deals at the snapshot, then a week of changes the real way where the
    history matters (amounts and close dates), directly for the stages."""
    manager, anna, ben = team
    ExchangeRateFactory(currency="USD", rate=Decimal("0.5"))
    first, after, middle = quarter()
    alpha = deal(anna, "Alpha", Stage.NEGOTIATING, "100000")
    bravo = deal(anna, "Bravo", Stage.CONFIRMING, "40000")
    charlie = deal(ben, "Charlie", Stage.DISCOVERING, "30000")
    delta = deal(ben, "Delta", Stage.NEGOTIATING, "50000")
    echo = deal(anna, "Echo", Stage.NEGOTIATING, "20000", currency="USD")
    foxtrot = deal(ben, "Foxtrot", Stage.NEGOTIATING, "70000")
    hotel = deal(anna, "Hotel", Stage.DISCOVERING, "12000", closes=after + timedelta(days=9))
    deal(anna, "India", Stage.NEGOTIATING, "8000")
    stranger = deal(RepFactory(), "Juliet", Stage.NEGOTIATING, "999")
    Snapshot.take(Snapshot.minute_slot() - timedelta(days=7))

    set_stage(alpha, Stage.CLOSED)
    set_stage(bravo, Stage.DEAD)
    set_stage(charlie, Stage.NEGOTIATING)
    set_stage(delta, Stage.VALIDATING)
    set_stage(stranger, Stage.DEAD)
    echo.update_details(by=anna, amount=Decimal("30000"))
    foxtrot.update_details(by=ben, expected_close_date=middle + timedelta(days=10))
    foxtrot.update_details(by=ben, expected_close_date=after + timedelta(days=20))
    hotel.update_details(by=anna, expected_close_date=middle)
    deal(anna, "Golf", Stage.NEGOTIATING, "25000")
    return team


def sections(page: str) -> dict[str, list[tuple[str, str, str]]]:
    """Each kind of change: (name, amount, now) of its rows."""
    found = {}
    for kind, body in re.findall(r'data-kind="(\w+)">(.*?)</section>', page, re.S):
        found[kind] = [
            (name, amount, re.sub(r"\s+", " ", now).strip())
            for name, amount, now in re.findall(
                r'<a href="[^"]+">([^<]+)</a>.*?data-figure="amount">([^<]+)</td>.*?'
                r'data-figure="now">(.*?)</td>', body, re.S)]
    return found


def test_what_changed_since_the_last_snapshot(client, week):
    manager, anna, ben = week
    first, after, middle = quarter()
    client.force_login(manager)

    page = client.get("/forecast/changes/").content.decode()

    def closes(day):
        return f"closing {day:%m/%d/%Y}"

    found = sections(page)
    assert found == {
        "new": [("Golf", "25,000 EUR", f"Commit, 25,000.00 EUR, {closes(middle)}")],
        "won": [("Alpha", "100,000 EUR", f"Closed (won), 100,000.00 EUR, {closes(middle)}")],
        "died": [("Bravo", "40,000 EUR", f"Dead (parked), 40,000.00 EUR, {closes(middle)}")],
        "moved_up": [("Charlie", "30,000 EUR", f"Commit, 30,000.00 EUR, {closes(middle)}")],
        "moved_down": [("Delta", "50,000 EUR", f"Pipeline, 50,000.00 EUR, {closes(middle)}")],
        "amount_changed": [("Echo", "15,000 EUR", f"Commit, 30,000.00 USD, {closes(middle)}")],
        "pushed_out": [("Foxtrot", "70,000 EUR",
                        f'Commit, 70,000.00 EUR, {closes(after + timedelta(days=20))}; '
                        '<span data-figure="pushes">close date pushed 2 times</span>')],
        "pulled_in": [("Hotel", "12,000 EUR", f"Pipeline, 12,000.00 EUR, {closes(middle)}")],
    }
    # Commit then: Alpha, Delta, Echo (10,000 EUR), Foxtrot and India; now: Charlie,
    # Echo (15,000 EUR), Golf and India.
    assert 'data-figure="commit-then">238,000 EUR' in page
    assert 'data-figure="commit-now">78,000 EUR' in page
    assert "Juliet" not in page


def test_a_rep_sees_what_changed_in_their_own_deals_only(client, week):
    manager, anna, ben = week
    client.force_login(anna)

    found = sections(client.get("/forecast/changes/").content.decode())

    assert {kind: [row[0] for row in rows] for kind, rows in found.items() if rows} == {
        "new": ["Golf"], "won": ["Alpha"], "died": ["Bravo"], "amount_changed": ["Echo"],
        "pulled_in": ["Hotel"]}


def test_a_manager_narrows_what_changed_to_one_rep(client, week):
    manager, anna, ben = week
    client.force_login(manager)

    found = sections(client.get(f"/forecast/changes/?rep={ben.pk}").content.decode())

    assert [row[0] for rows in found.values() for row in rows] == [
        "Charlie", "Delta", "Foxtrot"]


def test_nobody_sees_what_changed_outside_their_scope(client, week):
    manager, anna, ben = week
    client.force_login(anna)
    assert client.get(f"/forecast/changes/?rep={ben.pk}").status_code == 404
    assert client.get(f"/forecast/changes/?team={manager.team.pk}").status_code == 404
    client.force_login(ManagerFactory())
    assert client.get(f"/forecast/changes/?team={manager.team.pk}").status_code == 404
    assert client.get(f"/forecast/changes/?rep={anna.pk}").status_code == 404
    client.force_login(BdrFactory(team=manager.team))
    response = client.get("/forecast/changes/")
    assert response.status_code == 403
    assert "Alpha" not in response.content.decode()


def test_without_a_snapshot_the_page_says_so(client, team):
    manager, anna, ben = team
    client.force_login(manager)

    page = client.get("/forecast/changes/").content.decode()

    assert "No snapshot yet" in page
    assert "Take a snapshot now" in page


def test_beat_asks_for_the_weekly_snapshot_every_hour(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["take-weekly-forecast-snapshot"]

    assert (entry["task"], entry["schedule"]) == (take_weekly_snapshot.name,
                                                  timedelta(hours=1))


def test_what_changed_takes_as_many_queries_however_many_deals_changed(client, team):
    manager, anna, ben = team
    client.force_login(manager)
    deal(anna, "Alpha", Stage.NEGOTIATING, "100")
    Snapshot.take(Snapshot.minute_slot() - timedelta(days=7))
    deal(anna, "New 0", Stage.NEGOTIATING, "1")
    with CaptureQueriesContext(connection) as few:
        client.get("/forecast/changes/")
    for number in range(1, 11):
        deal(ben, f"New {number}", Stage.VALIDATING, "2")
    with CaptureQueriesContext(connection) as many:
        page = client.get("/forecast/changes/").content.decode()

    assert page.count('data-opportunity-id="') == 11
    assert len(many) == len(few)


def csv_lines(response) -> list[str]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return response.content.decode().splitlines()


def test_each_kind_of_change_downloads_as_csv(client, week):
    manager, anna, ben = week
    first, after, middle = quarter()
    client.force_login(manager)

    page = client.get("/forecast/changes/").content.decode()
    pushed = csv_lines(client.get("/forecast/changes/?format=csv&table=pushed_out"))
    new = csv_lines(client.get("/forecast/changes/?format=csv&table=new"))

    assert "format=csv&amp;table=pushed_out" in page and "Download as CSV" in page
    assert pushed == [
        "Opportunity,Owner,Amount,Category then,Amount then,Currency then,Close date then,"
        "Category now,Amount now,Currency now,Close date now,Close date pushes",
        f"Foxtrot,Ben Rep,70000.00,Commit,70000.00,EUR,{middle.isoformat()},"
        f"Commit,70000.00,EUR,{(after + timedelta(days=20)).isoformat()},2",
    ]
    assert new[1] == f"Golf,Anna Rep,25000.00,,,,,Commit,25000.00,EUR,{middle.isoformat()},0"
    assert client.get("/forecast/changes/?format=csv&table=nonsense").status_code == 400


def test_a_reps_changes_csv_holds_only_their_own_deals(client, week):
    manager, anna, ben = week
    client.force_login(anna)

    assert csv_lines(client.get("/forecast/changes/?format=csv&table=moved_up")) == [
        "Opportunity,Owner,Amount,Category then,Amount then,Currency then,Close date then,"
        "Category now,Amount now,Currency now,Close date now,Close date pushes"]
    assert [line.split(",")[:2] for line in csv_lines(
        client.get("/forecast/changes/?format=csv&table=won"))[1:]] == [["Alpha", "Anna Rep"]]
    assert client.get(f"/forecast/changes/?rep={ben.pk}&format=csv").status_code == 404
    client.force_login(BdrFactory(team=manager.team))
    assert client.get("/forecast/changes/?format=csv&table=won").status_code == 403
