"""Every screen a rep works in passes axe-core's automated WCAG checks in real Chromium:
labels on every control, contrast, headings, landmarks, names of buttons and dialogs.

Automated checks find about a third of accessibility problems; the keyboard-only move and
the screen-reader announcements have their own tests in test_board_browser.py.
"""

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone
from playwright.sync_api import Page, expect

from pipeline.process import Stage
from tests.factories import (
    ContactFactory,
    ExchangeRateFactory,
    OpportunityFactory,
    RepFactory,
    advance,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

AXE = Axe()


def violations(page: Page) -> str:
    """axe-core's report of what the page as shown now violates; empty when nothing."""
    results = AXE.run(page)
    return results.generate_report() if results.violations_count else ""


def test_the_rep_screens_pass_the_automated_accessibility_checks(live_server, log_in):
    rep = RepFactory()
    opportunity = advance(OpportunityFactory(owner=rep, name="Globex payroll"), Stage.VALIDATING)
    contact = ContactFactory(account=opportunity.account)
    opportunity.add_committee_member(contact, by=rep)
    ContactFactory(account=opportunity.account, archived_at=timezone.now())
    # Warnings and a teammate's card (not draggable) are on the board too.
    OpportunityFactory(owner=RepFactory(team=rep.team), currency="CHF")
    ExchangeRateFactory(currency="USD")
    page = log_in(rep)

    found = {}
    for path in ("/board/", "/board/?dead=on", f"/opportunities/{opportunity.pk}/",
                 f"/opportunities/{opportunity.pk}/edit/", "/opportunities/new/",
                 "/accounts/", f"/accounts/{opportunity.account_id}/",
                 f"/contacts/{contact.pk}/edit/", f"/contacts/{contact.pk}/",
                 "/notifications/", "/forecast/"):
        page.goto(f"{live_server.url}{path}")
        found[path] = violations(page)

    # The dialogs: the "Move to…" menu, then the gate refusal with its controls.
    page.goto(f"{live_server.url}/board/")
    card = page.locator(f'[data-opportunity-id="{opportunity.pk}"]')
    card.get_by_role("button", name="Move to…").click()
    dialog = page.locator("#move-dialog")
    expect(dialog.get_by_role("radio", name=Stage.CONFIRMING.label)).to_be_checked()
    found["move menu"] = violations(page)
    dialog.get_by_role("button", name="Move", exact=True).click()
    expect(dialog.locator("ul.missing li").first).to_be_visible()
    found["gate refusal"] = violations(page)

    assert {where: report for where, report in found.items() if report} == {}


def test_the_deal_desk_screens_pass_the_automated_accessibility_checks(live_server, log_in,
                                                                        page):
    """The offer, the close plan (the rep's and the customer's), the order form, sales
    ops' queue, review and hand-offs, and the forecast with its quotas and lists."""
    from pipeline.models import ReviewCheck
    from tests.factories import ManagerFactory, SalesOpsFactory, record_order

    rep = RepFactory()
    manager = ManagerFactory(team=rep.team)
    at_finalizing = advance(OpportunityFactory(owner=rep), Stage.FINALIZING)
    pending = advance(OpportunityFactory(owner=rep), Stage.PENDING)
    won = advance(OpportunityFactory(owner=rep), Stage.PENDING)
    won.approve_order(by=SalesOpsFactory(), confirmed=set(ReviewCheck.values))
    contact = at_finalizing.close_plan.steps.first().owner_contact
    _link, token = at_finalizing.share_close_plan(contact, by=rep)
    record_order(at_finalizing)

    found = {}
    page.goto(f"{live_server.url}/plan/{token}/")
    found["shared plan"] = violations(page)
    page.goto(f"{live_server.url}/plan/not-a-token/")
    found["closed link"] = violations(page)
    rep_page = log_in(rep)
    for path in (f"/opportunities/{at_finalizing.pk}/plan/",
                 f"/opportunities/{at_finalizing.pk}/offer/",
                 f"/opportunities/{at_finalizing.pk}/order/", "/forecast/"):
        rep_page.goto(f"{live_server.url}{path}")
        found[path] = violations(rep_page)
    rep_page.get_by_role("button", name="Log out").click()
    ops_page = log_in(SalesOpsFactory())
    for path in ("/orders/pending/", f"/opportunities/{pending.pk}/review/", "/handoffs/",
                 f"/contacts/{contact.pk}/", f"/contacts/{contact.pk}/erase/"):
        ops_page.goto(f"{live_server.url}{path}")
        found[path] = violations(ops_page)
    ops_page.get_by_role("button", name="Log out").click()
    # The manager's forecast shows the team's rows, its sub-pages their tables.
    manager_page = log_in(manager)
    for path in ("/forecast/", "/forecast/quotas/", "/forecast/opportunities/?figure=closed"):
        manager_page.goto(f"{live_server.url}{path}")
        found[path] = violations(manager_page)

    assert {where: report for where, report in found.items() if report} == {}
