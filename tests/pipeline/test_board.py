"""The board as the server renders it: columns, totals, filters, paging, moves."""

import json
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.models import Contact, fiscal_quarter
from pipeline.models import (
    CommitteeMember,
    CriterionTick,
    Opportunity,
    StageChange,
    Via,
    count_progress,
)
from pipeline.process import CRITERIA, ORDERED_STAGES, Stage
from tests.factories import (
    AccountFactory,
    ExchangeRateFactory,
    ManagerFactory,
    OpportunityFactory,
    RepFactory,
    advance,
    satisfy_gate,
)

pytestmark = pytest.mark.django_db


def make_cards(count: int, owners, account) -> None:
    """`count` opportunities spread over the open stages, each carrying a committee,
    ticks and history rows (seed-style bulk inserts: the board only reads them)."""
    contact = Contact.objects.create(account=account, first_name="Ada", last_name="Lovelace")
    now = timezone.now()
    stages = ORDERED_STAGES[:6]
    opportunities = Opportunity.objects.bulk_create([
        Opportunity(
            account=account, owner=owners[i % len(owners)], name=f"Deal {i}", source="inbound",
            amount=Decimal(1000 + i), amount_at_stage_entry=Decimal(1000 + i), currency="EUR",
            expected_close_date=now.date(), stage=stages[i % len(stages)],
        )
        for i in range(count)
    ])
    keys = list(CRITERIA)[:3]
    CriterionTick.objects.bulk_create([
        CriterionTick(opportunity=o, criterion=key, ticked_by=o.owner, note="seen")
        for o in opportunities for key in keys
    ])
    CommitteeMember.objects.bulk_create([
        CommitteeMember(opportunity=o, contact=contact, added_by=o.owner) for o in opportunities
    ])
    StageChange.objects.bulk_create([
        StageChange(opportunity=o, from_stage=Stage.IDENTIFYING, to_stage=o.stage,
                    changed_by=o.owner, via=Via.SEED, checklist={})
        for o in opportunities
    ])


def board_queries(client, path="/board/") -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200
    return len(queries)


@pytest.fixture
def team():
    manager = ManagerFactory()
    reps = [RepFactory(team=manager.team) for _ in range(3)]
    return manager, reps


def test_board_query_count_does_not_grow_with_cards(client, team, settings):
    settings.BOARD_COLUMN_SIZE = 25
    manager, reps = team
    client.force_login(manager)
    make_cards(10, reps, AccountFactory())
    small = board_queries(client)
    small_with_dead = board_queries(client, "/board/?dead=on&closed=all")
    make_cards(490, reps, AccountFactory())
    assert Opportunity.objects.count() == 500
    assert board_queries(client) == small
    assert board_queries(client, "/board/?dead=on&closed=all") == small_with_dead


def test_load_more_query_count_does_not_grow_with_cards(client, team, settings):
    settings.BOARD_COLUMN_SIZE = 5
    manager, reps = team
    client.force_login(manager)
    make_cards(60, reps, AccountFactory())
    first = board_queries(client, "/board/columns/identifying/")
    make_cards(300, reps, AccountFactory())
    assert board_queries(client, "/board/columns/identifying/") == first
    middle = Opportunity.objects.order_by("expected_close_date", "pk")[150]
    after = f"{middle.expected_close_date.isoformat()}/{middle.pk:012d}"
    assert board_queries(client, f"/board/columns/identifying/?after={after}") == first


def test_columns_follow_the_process_with_dead_behind_a_toggle(client, team):
    manager, reps = team
    client.force_login(manager)
    html = client.get("/board/").content.decode()
    positions = [html.index(f'<section class="column" data-stage="{stage}"') for stage in
                 ["identifying", "discovering", "validating", "confirming", "negotiating",
                  "finalizing", "pending", "closed"]]
    assert positions == sorted(positions)
    assert 'data-stage="dead"' not in html
    assert 'data-stage="dead"' in client.get("/board/?dead=on").content.decode()


def test_column_header_shows_count_total_and_weighted_in_company_currency(client, team):
    manager, reps = team
    ExchangeRateFactory(currency="USD", rate=Decimal("0.5"))
    for amount, currency in [("1000", "EUR"), ("2000", "USD"), ("999", "CHF")]:
        opportunity = OpportunityFactory(owner=reps[0], amount=Decimal(amount),
                                         currency=currency)
        advance(opportunity, Stage.DISCOVERING)
    client.force_login(manager)
    response = client.get("/board/")
    header = response.context["columns"][1]
    assert header["stage"] == Stage.DISCOVERING
    assert header["totals"].count == 3
    assert header["totals"].amount == Decimal("2000.00")  # 1000 EUR + 2000 USD at 0.5
    assert header["totals"].weighted == Decimal("500.00")  # 25 %
    assert header["totals"].unconverted_currencies == ("CHF",)
    assert "have no exchange rate" in response.content.decode() or "has no exchange rate" in (
        response.content.decode()
    )


def closing_in(days: list[int], owner) -> list[Opportunity]:
    today = timezone.localdate()
    return [OpportunityFactory(owner=owner, name=f"Close in {in_days}",
                               expected_close_date=today + timezone.timedelta(days=in_days))
            for in_days in days]


def first_column_of_two_cards(client, manager, settings) -> dict:
    settings.BOARD_COLUMN_SIZE = 2
    client.force_login(manager)
    return client.get("/board/").context["columns"][0]


def test_columns_show_the_first_cards_by_expected_close_date_then_load_more(
    client, team, settings
):
    manager, reps = team
    made = closing_in([30, 10, 20], reps[0])
    column = first_column_of_two_cards(client, manager, settings)
    assert [c["name"] for c in column["cards"]] == ["Close in 10", "Close in 20"]
    assert column["has_more"]
    more = client.get(f"/board/columns/identifying/?after={column['after']}",
                      HTTP_HX_REQUEST="true")
    assert f'data-opportunity-id="{made[0].pk}"' in more.content.decode()
    assert "Close in 10" not in more.content.decode()
    assert "Load more" not in more.content.decode()


def test_load_more_misses_no_card_when_cards_left_the_column_meanwhile(
    client, team, settings
):
    manager, reps = team
    made = closing_in([10, 20, 30, 40], reps[0])
    column = first_column_of_two_cards(client, manager, settings)
    satisfy_gate(made[0])
    made[0].move_to(Stage.DISCOVERING, by=reps[0], via=Via.BOARD)
    more = client.get(f"/board/columns/identifying/?after={column['after']}",
                      HTTP_HX_REQUEST="true").content.decode()
    assert "Close in 30" in more and "Close in 40" in more
    assert "Close in 20" not in more


def test_load_more_refuses_a_key_that_is_not_one(client, team):
    manager, reps = team
    client.force_login(manager)
    response = client.get("/board/columns/identifying/?after=yesterday", HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert "Those cards cannot be found." in response.content.decode()
    assert client.get("/board/columns/nowhere/", HTTP_HX_REQUEST="true").status_code == 400


def test_filters_live_in_the_url(client, team):
    manager, reps = team
    mine = OpportunityFactory(owner=reps[0], name="Alpha upgrade", type="upsell")
    other = OpportunityFactory(owner=reps[1], name="Beta rollout")
    client.force_login(reps[0])

    def shown(query):
        html = client.get(f"/board/?{query}").content.decode()
        return {pk for pk in (mine.pk, other.pk) if f'data-opportunity-id="{pk}"' in html}

    assert shown("") == {mine.pk, other.pk}
    assert shown("scope=mine") == {mine.pk}
    assert shown(f"owner={reps[1].pk}") == {other.pk}
    assert shown("type=upsell") == {mine.pk}
    assert shown("q=beta") == {other.pk}
    assert shown("category=pipeline") == set()


@pytest.mark.parametrize("quarter", ["0000-Q1", "9999-Q4"])
def test_a_quarter_beyond_the_calendar_is_refused_with_a_message(client, team, quarter):
    manager, reps = team
    client.force_login(manager)

    board = client.get(f"/board/?quarter={quarter}")
    column = client.get(f"/board/columns/discovering/?quarter={quarter}",
                        HTTP_HX_REQUEST="true")

    assert board.status_code == 400
    assert f"There is no quarter {quarter} in the calendar." in board.content.decode()
    assert column.status_code == 400
    assert "Those filters are not valid" in column.content.decode()


def test_a_move_sent_with_a_bad_filter_is_saved_and_its_card_stays(client, team):
    manager, reps = team
    opportunity = OpportunityFactory(owner=reps[0])
    satisfy_gate(opportunity)
    client.force_login(reps[0])

    response = board_move(client, opportunity, "discovering", filters="?quarter=9999-Q4")

    assert response.status_code == 200
    assert json.loads(response["HX-Trigger-After-Settle"])["boardMoved"] == {
        "id": opportunity.pk, "stage": "discovering", "shown": True}
    assert Opportunity.objects.get(pk=opportunity.pk).stage == Stage.DISCOVERING


def test_the_closing_quarter_filter_suggests_the_quarters_around_today(client, team):
    manager, reps = team
    client.force_login(reps[0])
    html = client.get("/board/").content.decode()
    year, quarter = fiscal_quarter(timezone.localdate())
    assert 'list="closing-quarters"' in html
    assert f'<option value="{year}-Q{quarter}">' in html
    assert len(re.findall(r'<option value="\d{4}-Q[1-4]">', html)) == 7


def test_cards_of_others_are_not_draggable(client, team):
    manager, reps = team
    theirs = OpportunityFactory(owner=reps[1])
    mine = OpportunityFactory(owner=reps[0])
    client.force_login(reps[0])
    html = client.get("/board/").content.decode()
    assert f'id="card-{theirs.pk}" data-opportunity-id="{theirs.pk}"' in html
    assert _card(html, theirs.pk).count('data-movable="false"') == 1
    assert _card(html, mine.pk).count('data-movable="true"') == 1


def _card(html: str, pk: int) -> str:
    start = html.index(f'id="card-{pk}"')
    return html[start: html.index("</li>", start)]


def board_move(client, opportunity, stage, **extra):
    return client.post(
        f"/opportunities/{opportunity.pk}/move/",
        {"stage": stage, "version": opportunity.version, "via": "board", **extra},
        HTTP_HX_REQUEST="true",
    )


def test_a_drop_moves_the_card_and_updates_both_headers(client, team):
    manager, reps = team
    opportunity = OpportunityFactory(owner=reps[0], amount=Decimal("4000"))
    satisfy_gate(opportunity)
    client.force_login(reps[0])
    response = board_move(client, opportunity, "discovering")
    assert response.status_code == 200
    assert json.loads(response["HX-Trigger-After-Settle"])["boardMoved"]["stage"] == "discovering"
    html = response.content.decode()
    assert 'id="column-identifying-header" hx-swap-oob="outerHTML"' in html
    assert 'id="column-discovering-header" hx-swap-oob="outerHTML"' in html
    assert 'data-total="4000.00"' in html
    assert "Undo" in html
    assert StageChange.objects.get(opportunity=opportunity).via == Via.BOARD
    # The card alone comes back, at its new version; the columns are not re-rendered.
    assert f'data-version="{opportunity.version + 1}"' in _card(html, opportunity.pk)
    assert 'class="column-cards"' not in html


def test_a_move_that_takes_the_card_out_of_the_filter_removes_it(client, team):
    manager, reps = team
    opportunity = OpportunityFactory(owner=reps[0])
    satisfy_gate(opportunity)
    client.force_login(reps[0])
    response = board_move(client, opportunity, "discovering", filters="category=omitted")
    assert response.status_code == 200
    assert f'<li id="card-{opportunity.pk}" hx-swap-oob="delete"></li>' in (
        response.content.decode()
    )
    assert json.loads(response["HX-Trigger-After-Settle"])["boardMoved"]["shown"] is False


def test_an_unmet_gate_answers_with_the_missing_criteria_and_their_controls(client, team):
    manager, reps = team
    opportunity = OpportunityFactory(owner=reps[0])
    client.force_login(reps[0])
    response = board_move(client, opportunity, "validating")
    assert response.status_code == 422
    html = response.content.decode()
    assert "The next call is scheduled" in html
    assert 'name="retry_target" value="validating"' in html
    assert f'action="/opportunities/{opportunity.pk}/tick/"' in html
    opportunity.refresh_from_db()
    assert opportunity.stage == Stage.IDENTIFYING


def test_moving_another_reps_card_is_forbidden(client, team):
    manager, reps = team
    opportunity = OpportunityFactory(owner=reps[1])
    satisfy_gate(opportunity)
    client.force_login(reps[0])
    assert board_move(client, opportunity, "discovering").status_code == 403
    opportunity.refresh_from_db()
    assert opportunity.stage == Stage.IDENTIFYING


def test_a_stale_card_is_a_conflict_that_says_who_moved_it(client, team):
    manager, reps = team
    opportunity = OpportunityFactory(owner=reps[0])
    satisfy_gate(opportunity)
    stale_version = opportunity.version
    opportunity.move_to(Stage.DISCOVERING, by=manager, via=Via.PAGE)
    client.force_login(reps[0])
    response = client.post(
        f"/opportunities/{opportunity.pk}/move/",
        {"stage": "dead", "version": stale_version, "via": "board", "reason": "gone",
         "dead_reason": "other"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 409
    assert str(manager) in response.content.decode()
    assert json.loads(response["HX-Trigger-After-Settle"])["moveRefused"]["conflict"]


def test_undo_takes_the_card_back_without_a_reason_and_keeps_the_ticks(client, team):
    manager, reps = team
    opportunity = OpportunityFactory(owner=reps[0])
    satisfy_gate(opportunity)
    client.force_login(reps[0])
    board_move(client, opportunity, "discovering")
    opportunity.refresh_from_db()
    response = board_move(client, opportunity, "identifying", undo="on")
    assert response.status_code == 200
    opportunity.refresh_from_db()
    assert opportunity.stage == Stage.IDENTIFYING
    assert opportunity.gate_is_met()
    undo = StageChange.objects.filter(opportunity=opportunity).last()
    assert undo.is_undo and undo.reason == "undo"


def test_undo_cannot_take_back_someone_elses_move(client, team):
    manager, reps = team
    opportunity = OpportunityFactory(owner=reps[0])
    satisfy_gate(opportunity)
    opportunity.move_to(Stage.DISCOVERING, by=manager, via=Via.PAGE)
    client.force_login(reps[0])
    assert board_move(client, opportunity, "identifying", undo="on").status_code == 400
    opportunity.refresh_from_db()
    assert opportunity.stage == Stage.DISCOVERING


def test_the_move_menu_offers_only_the_moves_the_user_may_ask_for(client, team):
    manager, reps = team
    opportunity = OpportunityFactory(owner=reps[0])
    client.force_login(reps[0])
    html = client.get(f"/opportunities/{opportunity.pk}/move/",
                      HTTP_HX_REQUEST="true").content.decode()
    assert 'value="discovering"' in html and 'value="dead"' in html
    assert 'value="closed"' not in html


def test_card_progress_counted_in_bulk_matches_the_checklist(team):
    manager, reps = team
    stages = [Stage.IDENTIFYING, Stage.VALIDATING, Stage.CONFIRMING, Stage.NEGOTIATING]
    for stage in stages:
        opportunity = OpportunityFactory(owner=reps[0])
        advance(opportunity, stage)
        opportunity.tick(*{
            Stage.IDENTIFYING: ("identifying.problem_described",),
            Stage.VALIDATING: ("validating.champion_committed",),
            Stage.CONFIRMING: ("confirming.offer_in_ballpark",),
            Stage.NEGOTIATING: ("negotiating.risk_assessment",),
        }[stage], by=reps[0], note="done", not_required=stage == Stage.NEGOTIATING)
    confirmed = OpportunityFactory(owner=reps[0], name="whole committee confirmed")
    advance(confirmed, Stage.CONFIRMING)
    for member in confirmed.active_committee():
        confirmed.record_preferred_vendor(member.contact, by=reps[0])
    half_confirmed = OpportunityFactory(owner=reps[0], name="a new member not yet")
    advance(half_confirmed, Stage.CONFIRMING)
    for member in half_confirmed.active_committee():
        half_confirmed.record_preferred_vendor(member.contact, by=reps[0])
    half_confirmed.add_committee_member(
        Contact.objects.create(account=half_confirmed.account, first_name="New",
                               last_name="Member"), by=reps[0])
    plain = {o.pk: o.criteria_progress() for o in Opportunity.objects.all()}
    counted = {o.pk: o.criteria_progress()
               for o in count_progress(list(Opportunity.objects.cards()))}
    assert counted == plain
    assert counted[confirmed.pk] == (1, 3) and counted[half_confirmed.pk] == (0, 3)
    assert sorted(plain.values()) == [(0, 3), (1, 3), (1, 3), (1, 3), (1, 3), (1, 4)]


def tick_in_the_refusal_dialog(client, opportunity, note: str):
    """Tick the first criterion of Identifying from the dialog of a refused drop."""
    client.force_login(opportunity.owner)
    return client.post(f"/opportunities/{opportunity.pk}/tick/", {
        "criterion": "identifying.problem_described", "note": note,
        "version": opportunity.version, "retry_target": "discovering", "filters": ""},
        HTTP_HX_REQUEST="true")


def test_ticking_in_the_refusal_dialog_updates_the_card_behind_it(client, team):
    manager, reps = team
    opportunity = OpportunityFactory(owner=reps[0])
    response = tick_in_the_refusal_dialog(client, opportunity, "Tuesday 10:00")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="retry_target" value="discovering"' in html
    card = _card(html, opportunity.pk)
    assert 'hx-swap-oob="outerHTML"' in card
    assert "1/3 criteria" in card
    assert f'data-version="{opportunity.version + 1}"' in card


def test_a_refused_tick_in_the_dialog_keeps_the_checklist_and_says_why(client, team):
    manager, reps = team
    opportunity = OpportunityFactory(owner=reps[0])
    response = tick_in_the_refusal_dialog(client, opportunity, "")
    html = response.content.decode()
    assert response.status_code == 400
    assert 'class="refusal" role="alert">Add the evidence' in html
    assert f'action="/opportunities/{opportunity.pk}/tick/"' in html  # the controls stay
    assert 'name="retry_target" value="discovering"' in html
    assert not opportunity.ticks.exists()
