"""The dead pool in a real browser: a BDR filters it, claims a deal, reopens it with a
reason and finds it on the board in the stage the rule sends it to."""

from datetime import timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone
from playwright.sync_api import expect

from pipeline.models import Opportunity, Via
from pipeline.process import DeadReason, Stage
from tests.factories import AccountFactory, OpportunityFactory, advance, make_cast

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def dead_since(opportunity: Opportunity, days: int) -> Opportunity:
    opportunity.move_to(Stage.DEAD, by=opportunity.owner, via=Via.PAGE, reason="Went quiet",
                        dead_reason=DeadReason.NO_DECISION,
                        now=timezone.now() - timedelta(days=days))
    return opportunity


def test_a_bdr_filters_claims_and_reopens_a_deal_and_finds_it_on_the_board(
        live_server, log_in):
    cast = make_cast()
    old = dead_since(advance(OpportunityFactory(
        owner=cast.rep, account=AccountFactory(name="Globex"), name="Globex rollout"),
        Stage.VALIDATING), days=40)
    recent = dead_since(advance(OpportunityFactory(
        owner=cast.rep, account=AccountFactory(name="Initech"), name="Initech rollout"),
        Stage.VALIDATING), days=3)
    page = log_in(cast.bdr)

    page.get_by_role("link", name="Dead pool").click()
    rows = page.locator("table.pool tbody tr")
    expect(rows).to_have_count(2)
    page.locator(f'tr[data-opportunity-id="{recent.pk}"]').get_by_text("Reopen…").click()
    axe = Axe().run(page)  # WCAG checks, with a reopen form open
    assert not axe.violations_count, axe.generate_report()
    page.get_by_label("Dead for").select_option("older")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    row = page.locator(f'tr[data-opportunity-id="{old.pk}"]')
    expect(row).to_contain_text("Validating Benefits & Values")
    expect(page.locator(f'tr[data-opportunity-id="{recent.pk}"]')).to_have_count(0)

    row.get_by_role("button", name="Claim Globex rollout").click()
    expect(page.locator(".messages")).to_contain_text("You claimed “Globex rollout”.")
    expect(row.locator(".claimer")).to_have_text(str(cast.bdr))
    expect(rows).to_have_count(1)  # still filtered

    row.get_by_text("Reopen…").click()
    expect(row).to_contain_text("Reopens in Identifying Opportunity.")
    row.get_by_label("Why reopen it?").fill("Replied to the spring campaign")
    row.get_by_role("button", name="Reopen", exact=True).click()
    expect(page.locator(".messages")).to_contain_text(
        "“Globex rollout” reopened in Identifying Opportunity.")
    expect(page.locator(f'tr[data-opportunity-id="{old.pk}"]')).to_have_count(0)

    page.get_by_role("link", name="Board").click()
    column = page.locator('section.column[data-stage="identifying"]')
    expect(column.locator(f"#card-{old.pk}")).to_contain_text("Globex rollout")
    old.reload()
    assert (old.stage, old.owner) == (Stage.IDENTIFYING, cast.bdr)
    assert old.stage_changes.order_by("pk").last().reason == "Replied to the spring campaign"
