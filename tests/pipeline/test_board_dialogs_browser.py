"""The board's gate dialog, its notices and every answer the server can give, as a rep
meets them in Chromium (issue 14)."""

from datetime import UTC, datetime

import pytest
from playwright.sync_api import Page, expect

from pipeline.models import Opportunity
from pipeline.process import PROCESS, CriterionKind, Stage
from tests.factories import (
    OpportunityFactory,
    RepFactory,
    advance,
    plan_call,
    satisfy_gate,
)
from tests.pipeline.test_board_browser import card, column, drag, stage_in_database

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def focused_field(page: Page) -> str:
    """What has keyboard focus: a criterion's evidence field by its criterion, else the
    element's own text or tag."""
    return page.evaluate("""() => {
        const element = document.activeElement;
        const row = element.closest(".criterion");
        if (row && element.name === "note") return row.dataset.criterion;
        return element.textContent.trim() || element.tagName;
    }""")


def test_a_drop_that_skips_a_stage_lists_the_whole_jump_by_stage_and_the_keyboard_works_it_off(
    live_server, log_in
):
    rep = RepFactory()
    opportunity = OpportunityFactory(owner=rep, name="Hooli expansion")
    plan_call(opportunity)  # stage 1's next call is derived from it, not ticked
    page = log_in(rep)
    needed = [criterion for stage in (Stage.IDENTIFYING, Stage.DISCOVERING)
              for criterion in PROCESS[stage].exit_criteria
              if criterion.kind == CriterionKind.TICKED]

    drag(page, opportunity, Stage.VALIDATING)

    dialog = page.locator("#move-dialog")
    expect(dialog.locator(".missing-stage")).to_have_text(
        [str(Stage.IDENTIFYING.label), str(Stage.DISCOVERING.label)])
    expect(dialog.locator("ul.missing li")).to_have_text([str(c.label) for c in needed])
    expect(dialog.locator(".refusal")).to_have_text(
        f"It cannot leave {Stage.IDENTIFYING.label} yet.")
    assert stage_in_database(opportunity) == Stage.IDENTIFYING

    # Focus stays in the dialog: on the first missing criterion, then on each next one.
    for criterion in needed:
        expect(dialog.locator(f'.criterion[data-criterion="{criterion.key}"] input[name=note]')
               ).to_be_focused()
        assert focused_field(page) == criterion.key
        page.keyboard.type("Agreed on the call")
        page.keyboard.press("Enter")
        expect(dialog.locator(f'.criterion.met[data-criterion="{criterion.key}"]')).to_be_visible()

    # One state at a time: the move is ready, and nothing says it cannot leave.
    expect(dialog.locator(".ready")).to_have_text(
        "Every exit criterion this move needs is met: retry it.")
    expect(dialog.locator(".refusal")).to_have_count(0)
    expect(dialog.get_by_role("button", name="Retry the move")).to_be_focused()
    page.keyboard.press("Enter")

    expect(dialog).to_be_hidden()
    expect(column(page, Stage.VALIDATING).locator(card(page, opportunity))).to_have_count(1)
    expect(card(page, opportunity)).to_be_focused()
    assert stage_in_database(opportunity) == Stage.VALIDATING


def test_closing_the_gate_dialog_gives_focus_back_to_the_card(live_server, log_in):
    rep = RepFactory()
    opportunity = OpportunityFactory(owner=rep)
    page = log_in(rep)
    drag(page, opportunity, Stage.DISCOVERING)
    dialog = page.locator("#move-dialog")
    expect(dialog.locator("ul.missing li").first).to_be_visible()

    page.keyboard.type("Described on the call")
    page.keyboard.press("Enter")
    expect(dialog.locator(".criterion.met")).to_have_count(1)
    page.keyboard.press("Escape")

    expect(dialog).to_be_hidden()
    expect(card(page, opportunity)).to_be_focused()


def background(page: Page, selector: str) -> str:
    return page.evaluate("(s) => getComputedStyle(document.querySelector(s)).backgroundColor",
                         selector)


def test_a_conflict_is_a_warning_and_an_alert_a_success_is_a_polite_success(
    live_server, log_in
):
    rep = RepFactory()
    moved = advance(OpportunityFactory(owner=rep, name="Acme renewal"), Stage.DISCOVERING)
    satisfy_gate(moved, Stage.DISCOVERING)
    changed = OpportunityFactory(owner=rep, name="Umbrella pilot")
    page = log_in(rep)

    drag(page, moved, Stage.VALIDATING)

    success = page.locator("#board-notice .notice-line")
    expect(success).to_contain_text("“Acme renewal” moved to")
    expect(success).to_have_class("notice-line notice-success")
    expect(success).to_have_attribute("role", "status")
    expect(page.locator("#announcer")).to_have_text(
        f"“Acme renewal” moved to {Stage.VALIDATING.label}.")
    expect(page.locator("#announcer")).to_have_attribute("aria-live", "polite")
    success_colour = background(page, "#board-notice .notice-line")

    satisfy_gate(changed)  # changed in another tab after the board loaded
    Opportunity.objects.filter(pk=changed.pk).update(
        changed_at=datetime(2026, 12, 5, 17, 45, tzinfo=UTC))
    drag(page, changed, Stage.DISCOVERING)

    warning = page.locator("#board-notice .notice-line")
    # The time the reader's way, as everywhere else in the app (the tests run in UTC).
    expect(warning).to_contain_text("at 12/05/2026 5:45 p.m. since you loaded it")
    expect(warning).to_have_class("notice-line notice-warning")
    expect(warning).to_have_attribute("role", "alert")
    assert background(page, "#board-notice .notice-line") != success_colour
    expect(page.locator("#move-dialog")).to_be_hidden()
    assert stage_in_database(changed) == Stage.IDENTIFYING


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422, 429, 500, 502, 503, "no answer"])
def test_whatever_the_server_answers_the_card_goes_back_and_the_board_says_so(
    live_server, log_in, status
):
    rep = RepFactory()
    opportunity = advance(OpportunityFactory(owner=rep), Stage.DISCOVERING)
    satisfy_gate(opportunity, Stage.DISCOVERING)
    page = log_in(rep)
    # What a proxy, a rate limiter or a dropped network answers: never the app's own shape.
    page.route(f"**/opportunities/{opportunity.pk}/move/",
               lambda route: route.abort("connectionrefused") if status == "no answer"
               else route.fulfill(status=status, body="<h1>Proxy error</h1>",
                                  content_type="text/html"))
    messages = {
        400: "The server could not read this request. Reload the board and try again.",
        403: "The server refused this: you may not do it, or you were signed out. "
             "Reload the board.",
        404: "Proxy error",
        409: "The server refused this move. Reload the board to see the latest state.",
        422: "The server refused this move. Reload the board to see the latest state.",
        429: "Too many requests at once. Wait a moment, then try again.",
    }
    failed = "The server did not answer. Reload the board to see the latest state."

    drag(page, opportunity, Stage.VALIDATING)

    if status == 404:  # the app's "not found" page for a card it no longer shows
        expect(page.locator("#move-dialog")).to_contain_text("Proxy error")
    else:
        notice = page.locator("#board-notice .notice-warning")
        expect(notice).to_have_text(messages.get(status, failed))
        expect(notice).to_have_attribute("role", "alert")
    expect(column(page, Stage.DISCOVERING).locator(card(page, opportunity))).to_have_count(1)
    expect(column(page, Stage.VALIDATING).locator(card(page, opportunity))).to_have_count(0)
    assert stage_in_database(opportunity) == Stage.DISCOVERING


@pytest.mark.parametrize("status", [403, 429, 503])
def test_a_move_menu_the_server_refuses_to_open_says_so_and_opens_no_stale_dialog(
    live_server, log_in, status
):
    rep = RepFactory()
    first = OpportunityFactory(owner=rep, name="First deal")
    second = OpportunityFactory(owner=rep, name="Second deal")
    page = log_in(rep)
    dialog = page.locator("#move-dialog")
    card(page, first).get_by_role("button", name="Move to…").click()
    expect(dialog).to_contain_text("Move “First deal”")
    dialog.get_by_role("button", name="Cancel").click()
    page.route(f"**/opportunities/{second.pk}/move/**",
               lambda route: route.fulfill(status=status, body="<h1>Proxy error</h1>",
                                           content_type="text/html"))

    card(page, second).get_by_role("button", name="Move to…").click()

    expect(page.locator("#board-notice .notice-warning")).to_be_visible()
    expect(dialog).to_be_hidden()
