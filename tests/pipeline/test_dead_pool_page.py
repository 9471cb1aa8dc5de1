"""/dead-pool/ as the server renders it: who may see it, its rows, filters, CSV export,
paging, query counts, and claims and reopenings through it."""

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from pipeline.models import DeadPoolClaim, Opportunity, StageChange, Via
from pipeline.process import DeadReason, Stage
from tests.factories import (
    AccountFactory,
    BdrFactory,
    Cast,
    OpportunityFactory,
    UserFactory,
    advance,
    make_cast,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def cast() -> Cast:
    return make_cast()


def bury(count: int, *, owners, account, died_in=Stage.VALIDATING, days_ago: float = 3,
         reason=DeadReason.NO_BUDGET, claimed_by=None, name: str = "") -> list[Opportunity]:
    """`count` dead opportunities with the history row of their death (seed-style bulk
    inserts: the pool only reads them)."""
    now = timezone.now()
    when = now - timedelta(days=days_ago)
    buried = Opportunity.objects.bulk_create([
        Opportunity(
            account=account, owner=owners[i % len(owners)],
            name=name or f"{account.name} deal {i}", source="inbound",
            amount=Decimal(1000 + i), amount_at_stage_entry=Decimal(1000 + i),
            currency="EUR", expected_close_date=now.date(), stage=Stage.DEAD,
            stage_entered_at=when, dead_reason=reason, dead_note="Parked",
        )
        for i in range(count)
    ])
    StageChange.objects.bulk_create([
        StageChange(opportunity=o, from_stage=died_in, to_stage=Stage.DEAD,
                    changed_by=o.owner, changed_at=when, via=Via.SEED, reason="Parked",
                    dead_reason=reason, checklist={})
        for o in buried
    ])
    if claimed_by is not None:
        DeadPoolClaim.objects.bulk_create([
            DeadPoolClaim(opportunity=o, claimed_by=claimed_by) for o in buried])
    return buried


def row_ids(response) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr data-opportunity-id="(\d+)"',
                                         response.content.decode())]


def row_html(response, opportunity: Opportunity) -> str:
    html = response.content.decode()
    start = html.index(f'<tr data-opportunity-id="{opportunity.pk}"')
    return html[start:html.index("</tr>", start)]


# --- who may see it ---


@pytest.mark.parametrize("who", ["bdr", "manager", "sales_ops"])
def test_bdrs_managers_and_sales_ops_see_the_pool_and_its_link(client, cast, who):
    [dead] = bury(1, owners=[cast.rep], account=AccountFactory())
    client.force_login(getattr(cast, who))

    response = client.get("/dead-pool/")

    assert response.status_code == 200
    assert row_ids(response) == [dead.pk]
    assert 'href="/dead-pool/">Dead pool</a>' in response.content.decode()


@pytest.mark.parametrize("who", ["rep", "no role"])
def test_everyone_else_gets_403_and_no_link(client, cast, who):
    [dead] = bury(1, owners=[cast.rep], account=AccountFactory())
    client.force_login(cast.rep if who == "rep" else UserFactory(team=cast.rep.team))

    for path in ("/dead-pool/", "/dead-pool/export/"):
        response = client.get(path)
        assert response.status_code == 403
        assert "The dead pool is for BDRs, managers and sales ops." in response.content.decode()
    for action in ("claim", "release", "reopen"):
        response = client.post(f"/dead-pool/{dead.pk}/{action}/", {"reason": "Mine now"})
        assert response.status_code == 403
    assert Opportunity.objects.get(pk=dead.pk).stage == Stage.DEAD
    assert not DeadPoolClaim.objects.exists()
    assert 'href="/dead-pool/"' not in client.get("/board/").content.decode()


def test_a_manager_sees_only_their_teams_dead(client, cast):
    ours = bury(1, owners=[cast.rep], account=AccountFactory())
    bury(1, owners=[cast.other_manager], account=AccountFactory())
    client.force_login(cast.manager)

    assert row_ids(client.get("/dead-pool/")) == [ours[0].pk]


# --- what a row shows ---


def test_a_row_shows_stage_of_death_reason_owner_account_age_and_claimer(client, cast):
    account = AccountFactory(name="Globex")
    [dead] = bury(1, owners=[cast.rep], account=account, died_in=Stage.CONFIRMING,
                  days_ago=12.5, reason=DeadReason.COMPETITOR, claimed_by=cast.bdr)
    client.force_login(cast.bdr)

    row = row_html(client.get("/dead-pool/"), dead)

    cells = [re.sub(r"<[^>]+>", " ", cell).split()
             for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    assert cells[1:7] == [
        ["Globex"], str(cast.rep).split(), "Confirming Value with Power".split(),
        ["Lost", "to", "a", "competitor", "Parked"], ["12"], str(cast.bdr).split(),
    ]
    assert "Release" in row and "Reopens in Confirming Value with Power." in row


def test_only_a_bdr_is_offered_the_claim_and_a_claimed_row_offers_others_no_reopening(
        client, cast):
    [free] = bury(1, owners=[cast.rep], account=AccountFactory(name="Free"))
    [taken] = bury(1, owners=[cast.rep], account=AccountFactory(name="Taken"),
                   claimed_by=BdrFactory(team=cast.rep.team))

    client.force_login(cast.bdr)
    response = client.get("/dead-pool/")
    assert "Claim" in row_html(response, free) and "Reopen" in row_html(response, free)
    assert "Claim" not in row_html(response, taken)
    assert "Reopen" not in row_html(response, taken)
    client.force_login(cast.manager)
    response = client.get("/dead-pool/")
    assert "Claim" not in row_html(response, free)
    assert "Reopen" in row_html(response, taken) and "Release" in row_html(response, taken)


# --- filters ---


@pytest.fixture
def pool(cast):
    """Five dead deals, one different from the first in each filter."""
    second_bdr = BdrFactory(team=cast.rep.team)
    return {
        "base": bury(1, owners=[cast.rep], account=AccountFactory(name="Acme"),
                     name="Base")[0],
        "confirming": bury(1, owners=[cast.rep], account=AccountFactory(name="Acme"),
                           died_in=Stage.CONFIRMING, name="Confirming")[0],
        "competitor": bury(1, owners=[cast.rep], account=AccountFactory(name="Acme"),
                           reason=DeadReason.COMPETITOR, name="Competitor")[0],
        "colleague": bury(1, owners=[cast.colleague], account=AccountFactory(name="Acme"),
                          name="Colleague")[0],
        "globex": bury(1, owners=[cast.rep], account=AccountFactory(name="Globex"),
                       name="Globex")[0],
        "old": bury(1, owners=[cast.rep], account=AccountFactory(name="Acme"), days_ago=30,
                    name="Old")[0],
        "ancient": bury(1, owners=[cast.rep], account=AccountFactory(name="Acme"),
                        days_ago=400, name="Ancient")[0],
        "mine": bury(1, owners=[cast.rep], account=AccountFactory(name="Acme"),
                     claimed_by=cast.bdr, name="Mine")[0],
        "theirs": bury(1, owners=[cast.rep], account=AccountFactory(name="Acme"),
                       claimed_by=second_bdr, name="Theirs")[0],
    }


@pytest.mark.parametrize(("query", "expected"), [
    ("stage=confirming", ["confirming"]),
    ("reason=competitor", ["competitor"]),
    ("owner={colleague}", ["colleague"]),
    ("account=glob", ["globex"]),
    ("age=older", ["old"]),
    ("age=over_a_year", ["ancient"]),
    ("claimed=mine", ["mine"]),
    ("claimed=claimed", ["mine", "theirs"]),
    ("claimed=unclaimed&account=acme&stage=validating&reason=no_budget&age=recent",
     ["base", "colleague"]),
])
def test_each_filter_narrows_the_pool(client, cast, pool, query, expected):
    client.force_login(cast.bdr)

    response = client.get("/dead-pool/?" + query.format(colleague=cast.colleague.pk))

    assert response.status_code == 200
    assert sorted(row_ids(response)) == sorted(pool[name].pk for name in expected)


def test_the_age_bands_meet_at_the_reopen_window(client, cast):
    [recent] = bury(1, owners=[cast.rep], account=AccountFactory(),
                    days_ago=29 + 23 / 24)
    [old] = bury(1, owners=[cast.rep], account=AccountFactory(), days_ago=30)
    client.force_login(cast.bdr)

    assert row_ids(client.get("/dead-pool/?age=recent")) == [recent.pk]
    assert row_ids(client.get("/dead-pool/?age=older")) == [old.pk]


@pytest.mark.parametrize(("query", "message"), [
    ("stage=closed", "Select a valid choice"),
    ("reason=bored", "Select a valid choice"),
    ("owner=nobody", "Select a valid choice"),
    ("age=forever", "Select a valid choice"),
    ("claimed=maybe", "Select a valid choice"),
    ("account=" + "x" * 101, "at most 100 characters"),
    ("page=two", "There is no page “two” of the dead pool"),
    ("page=7", "There is no page “7” of the dead pool"),
])
def test_bad_filters_get_400_with_a_message(client, cast, query, message):
    bury(1, owners=[cast.rep], account=AccountFactory())
    client.force_login(cast.bdr)

    for path in ("/dead-pool/", "/dead-pool/export/"):
        response = client.get(f"{path}?{query}")
        if path.endswith("export/") and query.startswith("page="):
            assert response.status_code == 200  # the export is not paged
            continue
        assert response.status_code == 400
        assert message in response.content.decode()


# --- CSV ---


def test_the_csv_holds_every_filtered_row_not_only_the_page(client, cast, settings):
    settings.DEAD_POOL_PAGE_SIZE = 2
    account = AccountFactory(name="Initech")
    buried = bury(3, owners=[cast.rep], account=account, days_ago=4, claimed_by=cast.bdr)
    bury(2, owners=[cast.rep], account=AccountFactory(name="Other"))
    client.force_login(cast.bdr)

    response = client.get("/dead-pool/export/?account=initech")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    lines = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert lines[0] == ["Id", "Opportunity", "Account", "Owner", "Died in", "Reason", "Note",
                        "Dead since", "Days dead", "Amount", "Currency", "Claimed by"]
    died_on = (timezone.localtime() - timedelta(days=4)).date().isoformat()
    assert lines[1:] == [
        [str(o.pk), o.name, "Initech", str(cast.rep), "Validating Benefits & Values",
         "No budget", "Parked", died_on, "4", f"{o.amount:.2f}", "EUR", str(cast.bdr)]
        for o in buried  # all died at the same moment: newest id first
    ][::-1]


def test_csv_cells_a_spreadsheet_would_run_are_defused(client, cast):
    bury(1, owners=[cast.rep], account=AccountFactory(name="=cmd|' /C calc'!A0"),
         name="@SUM(1+1)")
    client.force_login(cast.bdr)

    content = b"".join(client.get("/dead-pool/export/").streaming_content).decode()

    row = list(csv.reader(io.StringIO(content)))[1]
    assert row[1:3] == ["'@SUM(1+1)", "'=cmd|' /C calc'!A0"]


# --- paging and query counts ---


def test_the_pool_is_paged_most_recently_dead_first(client, cast, settings):
    settings.DEAD_POOL_PAGE_SIZE = 5
    account = AccountFactory()
    for days in range(12):
        bury(1, owners=[cast.rep], account=account, days_ago=days + 1, name=f"Day {days + 1}")
    client.force_login(cast.bdr)

    first, last = client.get("/dead-pool/"), client.get("/dead-pool/?page=3")

    names = dict(Opportunity.objects.values_list("pk", "name"))
    assert [names[pk] for pk in row_ids(first)] == [f"Day {d}" for d in range(1, 6)]
    assert [names[pk] for pk in row_ids(last)] == ["Day 11", "Day 12"]
    assert "Page 1 of 3" in first.content.decode()
    assert "12 dead opportunities" in first.content.decode()


def pool_queries(client, path="/dead-pool/") -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("who", ["bdr", "manager"])
def test_the_query_count_does_not_grow_with_the_pool(client, cast, settings, who):
    settings.DEAD_POOL_PAGE_SIZE = 50
    client.force_login(getattr(cast, who))
    account = AccountFactory()
    bury(5, owners=[cast.rep, cast.colleague], account=account, claimed_by=cast.bdr)
    bury(5, owners=[cast.rep], account=account, died_in=Stage.NEGOTIATING, days_ago=60)
    small = pool_queries(client)
    small_filtered = pool_queries(client, "/dead-pool/?claimed=unclaimed&age=older")
    bury(150, owners=[cast.rep, cast.colleague], account=account, claimed_by=cast.bdr)
    bury(150, owners=[cast.rep], account=account, died_in=Stage.NEGOTIATING, days_ago=60)

    assert Opportunity.objects.count() == 310
    assert pool_queries(client) == small
    assert pool_queries(client, "/dead-pool/?claimed=unclaimed&age=older") == small_filtered


def test_htmx_filtering_answers_with_the_table_alone(client, cast):
    [dead] = bury(1, owners=[cast.rep], account=AccountFactory(name="Hooli"))
    client.force_login(cast.bdr)

    response = client.get("/dead-pool/?account=hooli", headers={"HX-Request": "true"})

    html = response.content.decode()
    assert html.lstrip().startswith('<div id="pool">')
    assert row_ids(response) == [dead.pk] and "<header" not in html


# --- claiming and reopening through the page ---


def test_a_bdr_claims_from_the_page_and_returns_to_the_same_filters(client, cast):
    [dead] = bury(1, owners=[cast.rep], account=AccountFactory(name="Umbrella"))
    client.force_login(cast.bdr)

    response = client.post(f"/dead-pool/{dead.pk}/claim/", {"filters": "account=umbrella"})

    assert response.status_code == 302
    assert response["Location"] == "/dead-pool/?account=umbrella"
    page = client.get(response["Location"])
    assert str(cast.bdr) in row_html(page, dead)
    assert f"You claimed “{dead.name}”." in page.content.decode()


def test_a_second_claim_is_a_409_naming_the_claimer(client, cast):
    [dead] = bury(1, owners=[cast.rep], account=AccountFactory(), claimed_by=cast.bdr)
    client.force_login(BdrFactory(team=cast.rep.team))

    response = client.post(f"/dead-pool/{dead.pk}/claim/")

    assert response.status_code == 409
    assert f"is already claimed by {cast.bdr}" in response.content.decode()
    assert DeadPoolClaim.objects.get().claimed_by == cast.bdr


def test_the_opportunity_page_of_a_claimed_dead_deal_names_the_claimer(client, cast):
    [dead] = bury(1, owners=[cast.rep], account=AccountFactory(), claimed_by=cast.bdr)
    client.force_login(cast.manager)

    html = client.get(f"/opportunities/{dead.pk}/").content.decode()

    assert f'<dt>Claimed by</dt><dd class="claimer">{cast.bdr}</dd>' in html


def test_a_bdr_releases_their_claim_from_the_page(client, cast):
    [dead] = bury(1, owners=[cast.rep], account=AccountFactory(), claimed_by=cast.bdr)
    client.force_login(cast.bdr)

    assert client.post(f"/dead-pool/{dead.pk}/release/").status_code == 302

    assert DeadPoolClaim.objects.get().released_by == cast.bdr


def killed(cast: Cast, stage: Stage) -> Opportunity:
    opportunity = advance(OpportunityFactory(owner=cast.rep), stage)
    opportunity.move_to(Stage.DEAD, by=cast.rep, via=Via.PAGE, reason="Budget frozen",
                        dead_reason=DeadReason.NO_BUDGET)
    return opportunity


def test_reopening_from_the_page_writes_one_history_row(client, cast):
    opportunity = killed(cast, Stage.VALIDATING)
    rows = opportunity.stage_changes.count()
    client.force_login(cast.bdr)

    response = client.post(f"/dead-pool/{opportunity.pk}/reopen/", {
        "reason": "Champion back", "version": opportunity.version, "filters": ""})

    assert (response.status_code, response["Location"]) == (302, "/dead-pool/")
    opportunity.reload()
    assert opportunity.stage == Stage.VALIDATING
    assert list(opportunity.stage_changes.order_by("pk").values_list(
        "from_stage", "to_stage", "reason", "changed_by"))[rows:] == [
        ("dead", "validating", "Champion back", cast.bdr.pk)]
    page = client.get("/dead-pool/")
    assert f"“{opportunity.name}” reopened in Validating Benefits &amp; Values." in (
        page.content.decode())


@pytest.mark.parametrize(("data", "status", "message"), [
    ({"reason": ""}, 400, "This field is required."),
    ({"reason": "x" * 2001}, 400, "at most 2000 characters"),
    ({"reason": "Back", "version": "old"}, 400, "Enter a whole number."),
    ({"reason": "Back", "version": 1}, 409, "since you loaded it"),
])
def test_a_bad_reopening_is_refused_with_a_message_and_changes_nothing(
        client, cast, data, status, message):
    opportunity = killed(cast, Stage.DISCOVERING)
    rows = StageChange.objects.count()
    client.force_login(cast.bdr)

    response = client.post(f"/dead-pool/{opportunity.pk}/reopen/", data)

    assert response.status_code == status
    assert message in response.content.decode()
    assert Opportunity.objects.get(pk=opportunity.pk).stage == Stage.DEAD
    assert StageChange.objects.count() == rows


def test_an_unknown_or_open_opportunity_cannot_be_claimed(client, cast):
    client.force_login(cast.bdr)
    stage_one = OpportunityFactory(owner=cast.bdr)

    assert client.post("/dead-pool/999999/claim/").status_code == 404
    response = client.post(f"/dead-pool/{stage_one.pk}/claim/")
    assert response.status_code == 400
    assert "Only a dead opportunity can be claimed" in response.content.decode()
    assert client.get(f"/dead-pool/{stage_one.pk}/claim/").status_code == 405
