"""The opportunity page's move form in a real browser: it asks only for what a move needs."""

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from pipeline.models import FieldChange, Opportunity
from pipeline.process import DeadReason, Stage
from tests.factories import (
    ContactFactory,
    OpportunityFactory,
    RepFactory,
    advance,
    satisfy_gate,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_the_move_form_asks_for_a_reason_only_when_the_move_needs_one(live_server, log_in):
    rep = RepFactory()
    opportunity = advance(OpportunityFactory(owner=rep), Stage.VALIDATING)
    page = log_in(rep)
    page.goto(f"{live_server.url}/opportunities/{opportunity.pk}/")
    form = page.locator(".page-move-form")
    reason = form.get_by_label("Reason (needed to move back, to reopen, to park as dead or to "
                               "reject)")
    why_dead = form.get_by_label("Why is it dead?")

    # The usual move, one stage forward, needs neither.
    expect(form.get_by_label("Move to")).to_have_value(Stage.CONFIRMING.value)
    expect(reason).to_be_hidden()
    expect(why_dead).to_be_hidden()

    form.get_by_label("Move to").select_option(Stage.DISCOVERING.value)
    expect(reason).to_be_visible()
    expect(why_dead).to_be_hidden()

    form.get_by_label("Move to").select_option(Stage.DEAD.value)
    expect(reason).to_be_visible()
    expect(why_dead).to_be_visible()
    why_dead.select_option(DeadReason.NO_BUDGET.value)
    reason.fill("Budget frozen until next year")
    form.get_by_role("button", name="Move", exact=True).click()

    expect(page.locator(".messages")).to_contain_text(str(Stage.DEAD.label))
    opportunity = Opportunity.objects.get(pk=opportunity.pk)
    assert (opportunity.stage, opportunity.dead_reason) == (Stage.DEAD, DeadReason.NO_BUDGET)


def test_moving_ones_own_card_out_of_identifying_records_no_hand_over(live_server, log_in):
    """Issue 14: "handed over to" was written although the owner stayed the same."""
    rep = RepFactory(first_name="Anna", last_name="Keller")
    opportunity = OpportunityFactory(owner=rep)
    satisfy_gate(opportunity)
    page = log_in(rep)
    page.goto(f"{live_server.url}/opportunities/{opportunity.pk}/")

    page.locator(".page-move-form").get_by_role("button", name="Move", exact=True).click()

    timeline = page.locator(".timeline")
    expect(timeline).to_contain_text("moved it from Identifying Opportunity to Discovering")
    expect(timeline).not_to_contain_text("handed over")
    assert Opportunity.objects.get(pk=opportunity.pk).stage == Stage.DISCOVERING


def test_two_changes_in_the_same_second_show_newest_first(live_server, log_in):
    """Issue 14: the history is newest first, by time and then by the order written."""
    rep = RepFactory()
    opportunity = OpportunityFactory(owner=rep, amount=Decimal("1000"))
    opportunity.update_details(by=rep, amount=Decimal("2000"))
    opportunity.update_details(by=rep, amount=Decimal("3000"))
    same_second = FieldChange.objects.order_by("pk").first().changed_at
    FieldChange.objects.update(changed_at=same_second)
    page = log_in(rep)

    page.goto(f"{live_server.url}/opportunities/{opportunity.pk}/")

    entries = page.locator(".timeline li")
    expect(entries.first).to_contain_text("from 2,000.00 to 3,000.00")
    expect(entries.nth(1)).to_contain_text("from 1,000.00 to 2,000.00")


def test_the_timeline_shows_ticks_withdrawals_the_champion_and_the_committee_newest_first(
    live_server, log_in
):
    """Issue 14: these were recorded but missing from the opportunity's history."""
    rep = RepFactory(first_name="Anna", last_name="Keller")
    opportunity = advance(OpportunityFactory(owner=rep), Stage.VALIDATING)
    champion = ContactFactory(account=opportunity.account, first_name="Sam", last_name="Lowe")
    member = ContactFactory(account=opportunity.account, first_name="Kim", last_name="Berg")
    opportunity.tick("validating.champion_committed", by=rep, note="Joint plan agreed")
    opportunity.untick("validating.champion_committed", by=rep)
    opportunity.name_champion(champion, by=rep)
    opportunity.add_committee_member(member, by=rep)
    opportunity.remove_committee_member(member, by=rep)
    page = log_in(rep)

    page.goto(f"{live_server.url}/opportunities/{opportunity.pk}/")

    entries = page.locator(".timeline li")
    expect(entries.nth(0)).to_contain_text("Anna Keller removed Kim Berg from the decision "
                                           "committee")
    expect(entries.nth(1)).to_contain_text("Anna Keller added Kim Berg to the decision committee")
    expect(entries.nth(2)).to_contain_text("Anna Keller confirmed Sam Lowe as a convinced "
                                           "champion")
    expect(entries.nth(3)).to_contain_text("Anna Keller changed champion from — to Sam Lowe")
    expect(entries.nth(4)).to_contain_text(
        "Anna Keller withdrew the tick of “The champion committed to involve every decision "
        "maker")
    expect(entries.nth(5)).to_contain_text(
        "Anna Keller ticked “The champion committed to involve every decision maker")
    expect(entries.nth(5)).to_contain_text("Joint plan agreed")
    # Each says when, the reader's way.
    expect(entries.nth(0).locator("time")).to_have_text(re.compile(r"^\d\d/\d\d/\d{4} "))
