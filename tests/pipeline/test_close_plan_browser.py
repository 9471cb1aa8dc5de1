"""The customer accepts the close plan through its share link, in a real browser, and the
rep's card can then leave Confirming."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from pipeline.models import ClosePlan, Opportunity
from pipeline.process import Stage
from tests.factories import ContactFactory, OpportunityFactory, RepFactory, advance

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_the_customer_accepts_the_plan_through_the_link_and_the_card_moves_on(
        live_server, log_in, page):
    rep = RepFactory()
    opportunity = advance(OpportunityFactory(owner=rep), Stage.CONFIRMING)
    contact = ContactFactory(account=opportunity.account, first_name="Clara",
                             last_name="Customer")
    today = timezone.localdate()
    opportunity.save_close_plan(by=rep, target_signature_date=today + timedelta(days=40))
    opportunity.add_plan_step(by=rep, title="Board approval of the order",
                              due_date=today + timedelta(days=20), owner_contact=contact)
    opportunity.accept_close_plan(by=rep)
    _link, token = opportunity.share_close_plan(contact, by=rep)
    opportunity.tick("confirming.offer_in_ballpark", by=rep, note="Agreed on the call")
    for member in opportunity.active_committee():
        opportunity.record_preferred_vendor(member.contact, by=rep)
    opportunity.reload()
    assert [c.key for c in opportunity.missing_criteria()] == ["confirming.close_plan_accepted"]

    page.goto(f"{live_server.url}/plan/{token}/")
    expect(page.get_by_role("heading", name="Our plan to signature")).to_be_visible()
    expect(page.get_by_role("navigation")).to_have_count(0)
    page.get_by_role("button", name="Mark as done").click()
    expect(page.get_by_text("Marked as done. Thank you.")).to_be_visible()
    page.get_by_role("button", name="Accept this plan as Clara Customer").click()
    expect(page.get_by_text("Accepted by Clara Customer")).to_be_visible()
    assert ClosePlan.objects.get().customer_accepted_by == contact

    board = log_in(rep)
    card = board.locator(f"#card-{opportunity.pk}")
    expect(card.locator(".progress")).to_have_text("3/3 criteria")
    card.locator(".card-amount").drag_to(board.locator("#column-negotiating-cards"))
    expect(board.locator("#board-notice")).to_contain_text("moved to Negotiating")
    assert Opportunity.objects.get(pk=opportunity.pk).stage == Stage.NEGOTIATING
