"""The opportunity page's move form in a real browser: it asks only for what a move needs."""

import pytest
from playwright.sync_api import expect

from pipeline.models import Opportunity
from pipeline.process import DeadReason, Stage
from tests.factories import OpportunityFactory, RepFactory, advance

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
