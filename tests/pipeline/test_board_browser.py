"""The Kanban board in a real browser: drags, dialogs, keyboard and undo, end to end.

Every test logs in through the login page and drives Debian's Chromium; the database is
the judge of what really moved.
"""

from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import Locator, Page, expect

from pipeline.models import Opportunity, StageChange
from pipeline.process import PROCESS, CriterionKind, Stage
from tests.factories import (
    OpportunityFactory,
    RepFactory,
    SalesOpsFactory,
    advance,
    plan_call,
    record_order,
    satisfy_gate,
)

# Real commits, which the live server's thread sees; serialized_rollback brings back the
# role groups that the flush after each test removes.
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def ticked(stage: Stage) -> list:
    """The criteria of a stage a person ticks (the others are derived from data)."""
    return [c for c in PROCESS[stage].exit_criteria if c.kind == CriterionKind.TICKED]


def column(page: Page, stage: Stage) -> Locator:
    """The list of cards of one column: where cards are dropped."""
    return page.locator(f"#column-{stage.value}-cards")


def card(page: Page, opportunity: Opportunity) -> Locator:
    return page.locator(f"#card-{opportunity.pk}")


def header(page: Page, stage: Stage) -> Locator:
    return page.locator(f"#column-{stage.value}-header")


def drag(page: Page, opportunity: Opportunity, stage: Stage) -> None:
    """Grab the card by its amount (not its link or button) and drop it on a column."""
    card(page, opportunity).locator(".card-amount").drag_to(column(page, stage))


def stage_in_database(opportunity: Opportunity) -> str:
    return Opportunity.objects.values_list("stage", flat=True).get(pk=opportunity.pk)


def record_board_requests(page: Page) -> None:
    """Note every request htmx starts; a drop that SortableJS accepts starts one at once."""
    page.evaluate("""() => {
        window.boardRequests = [];
        document.addEventListener("htmx:beforeRequest", (event) => {
            window.boardRequests.push(event.detail.requestConfig.path);
        });
    }""")


def board_requests(page: Page) -> list[str]:
    return page.evaluate("() => window.boardRequests")


def test_a_refused_drop_lists_what_is_missing_and_retry_moves_the_card_once_it_is_met(
    live_server, log_in
):
    rep = RepFactory()
    page = log_in(rep)

    page.get_by_role("link", name="New opportunity").click()
    page.fill("#id_new_account_name", "Globex")
    page.fill("#id_name", "Globex payroll rollout")
    page.select_option("#id_source", "webinar")
    page.fill("#id_amount", "50000")
    page.fill("#id_currency", "EUR")
    page.fill("#id_expected_close_date", "2030-06-30")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Opportunity “Globex payroll rollout” created.")).to_be_visible()
    opportunity = Opportunity.objects.get(name="Globex payroll rollout")

    page.get_by_role("link", name="Board").click()
    expect(column(page, Stage.IDENTIFYING).locator(card(page, opportunity))).to_have_count(1)
    page.evaluate("() => { window.boardNeverReloaded = true; }")
    drag(page, opportunity, Stage.DISCOVERING)

    dialog = page.locator("#move-dialog")
    expect(dialog).to_be_visible()
    missing = dialog.locator("ul.missing li")
    expect(missing).to_have_text([
        str(criterion.label) for criterion in PROCESS[Stage.IDENTIFYING].exit_criteria
    ])
    expect(column(page, Stage.IDENTIFYING).locator(card(page, opportunity))).to_have_count(1)
    expect(column(page, Stage.DISCOVERING).locator(card(page, opportunity))).to_have_count(0)
    assert stage_in_database(opportunity) == Stage.IDENTIFYING

    # "The next call is scheduled" is derived from a planned call (planned elsewhere, say
    # on the opportunity page in another tab); the dialog shows it met with the next tick.
    plan_call(opportunity, by=rep)
    for criterion in ticked(Stage.IDENTIFYING):
        row = dialog.locator(f'.criterion[data-criterion="{criterion.key}"]')
        row.get_by_placeholder("Evidence").fill(f"Call notes for {criterion.key}")
        row.get_by_role("button", name="Tick").click()
        expect(dialog.locator(f'.criterion.met[data-criterion="{criterion.key}"]')).to_be_visible()
    expect(missing).to_have_count(0)

    dialog.get_by_role("button", name="Retry the move").click()

    expect(dialog).to_be_hidden()
    expect(column(page, Stage.DISCOVERING).locator(card(page, opportunity))).to_have_count(1)
    expect(column(page, Stage.IDENTIFYING).locator(card(page, opportunity))).to_have_count(0)
    expect(header(page, Stage.IDENTIFYING).locator(".count")).to_have_attribute("data-count", "0")
    expect(header(page, Stage.IDENTIFYING).locator(".total")).to_have_attribute(
        "data-total", "0.00"
    )
    expect(header(page, Stage.DISCOVERING).locator(".count")).to_have_attribute("data-count", "1")
    expect(header(page, Stage.DISCOVERING).locator(".total")).to_have_attribute(
        "data-total", "50000.00"
    )
    assert stage_in_database(opportunity) == Stage.DISCOVERING
    assert page.evaluate("() => window.boardNeverReloaded") is True


def test_after_ticking_in_the_dialog_and_closing_it_the_card_can_be_dragged_again(
    live_server, log_in
):
    rep = RepFactory()
    opportunity = OpportunityFactory(owner=rep, name="Soylent pilot")
    page = log_in(rep)
    drag(page, opportunity, Stage.DISCOVERING)
    dialog = page.locator("#move-dialog")
    plan_call(opportunity, by=rep)
    for criterion in ticked(Stage.IDENTIFYING):
        row = dialog.locator(f'.criterion[data-criterion="{criterion.key}"]')
        row.get_by_placeholder("Evidence").fill("Agreed on the call")
        row.get_by_role("button", name="Tick").click()
        expect(dialog.locator(f'.criterion.met[data-criterion="{criterion.key}"]')).to_be_visible()
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
    expect(card(page, opportunity)).to_be_focused()

    drag(page, opportunity, Stage.DISCOVERING)

    expect(page.locator("#board-notice")).to_contain_text("“Soylent pilot” moved to")
    expect(column(page, Stage.DISCOVERING).locator(card(page, opportunity))).to_have_count(1)
    assert stage_in_database(opportunity) == Stage.DISCOVERING


def test_a_backward_drag_asks_for_a_reason_before_anything_moves(live_server, log_in):
    rep = RepFactory()
    opportunity = advance(OpportunityFactory(owner=rep), Stage.VALIDATING)
    page = log_in(rep)

    drag(page, opportunity, Stage.DISCOVERING)

    dialog = page.locator("#move-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("radio", name=Stage.DISCOVERING.label)).to_be_checked()
    reason = dialog.get_by_role("textbox", name="Reason")
    expect(reason).to_be_visible()
    assert stage_in_database(opportunity) == Stage.VALIDATING

    reason.fill("The budget owner left; we need to rediscover the goals.")
    dialog.get_by_role("button", name="Move", exact=True).click()

    expect(dialog).to_be_hidden()
    expect(column(page, Stage.DISCOVERING).locator(card(page, opportunity))).to_have_count(1)
    expect(column(page, Stage.VALIDATING).locator(card(page, opportunity))).to_have_count(0)
    assert stage_in_database(opportunity) == Stage.DISCOVERING
    change = StageChange.objects.filter(opportunity=opportunity).latest("changed_at")
    assert change.reason == "The budget owner left; we need to rediscover the goals."


@pytest.mark.parametrize("failure", ["server error", "no answer"])
def test_a_drop_the_server_does_not_confirm_puts_the_card_back_and_says_so(
    live_server, log_in, failure
):
    rep = RepFactory()
    opportunity = advance(OpportunityFactory(owner=rep), Stage.DISCOVERING)
    satisfy_gate(opportunity, Stage.DISCOVERING)
    page = log_in(rep)
    # What the browser meets when the server breaks down or the network drops; the
    # application server itself is never told about the move.
    page.route(f"**/opportunities/{opportunity.pk}/move/",
               lambda route: route.fulfill(status=502, body="Bad gateway")
               if failure == "server error" else route.abort("connectionrefused"))

    drag(page, opportunity, Stage.VALIDATING)

    expect(page.locator("#board-notice")).to_have_text(
        "The server did not answer. Reload the board to see the latest state.")
    expect(column(page, Stage.DISCOVERING).locator(card(page, opportunity))).to_have_count(1)
    expect(column(page, Stage.VALIDATING).locator(card(page, opportunity))).to_have_count(0)
    assert stage_in_database(opportunity) == Stage.DISCOVERING

    expect(card(page, opportunity)).to_be_focused()

    # From the "Move to…" dialog, the dialog stays open with the choice made and says so.
    card(page, opportunity).get_by_role("button", name="Move to…").click()
    dialog = page.locator("#move-dialog")
    dialog.get_by_role("button", name="Move", exact=True).click()
    expect(dialog.get_by_role("alert")).to_have_text(
        "The server did not answer. Reload the board to see the latest state.")
    expect(dialog.get_by_role("radio", name=Stage.VALIDATING.label)).to_be_checked()
    assert stage_in_database(opportunity) == Stage.DISCOVERING

    page.unroute(f"**/opportunities/{opportunity.pk}/move/")
    # Once the server answers again, the same move goes through, without a reload.
    dialog.get_by_role("button", name="Move", exact=True).click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#board-notice")).to_contain_text(
        f"moved to {Stage.VALIDATING.label}")
    expect(column(page, Stage.VALIDATING).locator(card(page, opportunity))).to_have_count(1)
    assert stage_in_database(opportunity) == Stage.VALIDATING


def test_a_card_reassigned_to_another_team_meanwhile_goes_back_and_the_dialog_says_why(
    live_server, log_in
):
    rep = RepFactory()
    opportunity = advance(OpportunityFactory(owner=rep), Stage.DISCOVERING)
    satisfy_gate(opportunity, Stage.DISCOVERING)
    page = log_in(rep)
    Opportunity.objects.filter(pk=opportunity.pk).update(owner=RepFactory())  # another team

    drag(page, opportunity, Stage.VALIDATING)

    dialog = page.locator("#move-dialog")
    expect(dialog.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(dialog).to_contain_text("This page does not exist, or it belongs to another team.")
    expect(column(page, Stage.DISCOVERING).locator(card(page, opportunity))).to_have_count(1)
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
    expect(column(page, Stage.DISCOVERING).locator(card(page, opportunity))).to_have_count(1)
    assert stage_in_database(opportunity) == Stage.DISCOVERING


def test_cancelling_the_reason_dialog_puts_the_card_back(live_server, log_in):
    rep = RepFactory()
    opportunity = advance(OpportunityFactory(owner=rep), Stage.VALIDATING)
    page = log_in(rep)

    drag(page, opportunity, Stage.DISCOVERING)
    dialog = page.locator("#move-dialog")
    expect(dialog.get_by_role("textbox", name="Reason")).to_be_visible()
    page.keyboard.press("Escape")

    expect(dialog).to_be_hidden()
    expect(column(page, Stage.VALIDATING).locator(card(page, opportunity))).to_have_count(1)
    expect(column(page, Stage.DISCOVERING).locator(card(page, opportunity))).to_have_count(0)
    expect(card(page, opportunity)).to_be_focused()
    assert stage_in_database(opportunity) == Stage.VALIDATING


def test_the_move_menu_moves_a_card_with_the_keyboard_alone(live_server, log_in):
    rep = RepFactory()
    opportunity = advance(OpportunityFactory(owner=rep), Stage.DISCOVERING)
    satisfy_gate(opportunity, Stage.DISCOVERING)
    satisfy_gate(opportunity, Stage.VALIDATING)
    page = log_in(rep)

    card(page, opportunity).locator(".card-title").focus()
    page.keyboard.press("Tab")
    expect(card(page, opportunity).get_by_role("button", name="Move to…")).to_be_focused()
    page.keyboard.press("Enter")

    dialog = page.locator("#move-dialog")
    expect(dialog).to_be_visible()
    # The usual move, one stage forward, is offered first.
    expect(dialog.get_by_role("radio", name=Stage.VALIDATING.label)).to_be_focused()
    expect(dialog.get_by_role("radio", name=Stage.VALIDATING.label)).to_be_checked()
    page.keyboard.press("ArrowDown")
    expect(dialog.get_by_role("radio", name=Stage.CONFIRMING.label)).to_be_checked()
    expect(dialog.get_by_role("textbox", name="Reason")).to_be_hidden()
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Move", exact=True)).to_be_focused()
    page.keyboard.press("Enter")

    expect(dialog).to_be_hidden()
    expect(column(page, Stage.CONFIRMING).locator(card(page, opportunity))).to_have_count(1)
    expect(card(page, opportunity)).to_be_focused()
    assert stage_in_database(opportunity) == Stage.CONFIRMING


def test_undo_puts_a_dragged_card_back(live_server, log_in):
    rep = RepFactory()
    opportunity = OpportunityFactory(owner=rep)
    satisfy_gate(opportunity)
    page = log_in(rep)

    drag(page, opportunity, Stage.DISCOVERING)
    undo = page.locator("#board-notice").get_by_role("button", name="Undo")
    expect(undo).to_be_visible()
    expect(column(page, Stage.DISCOVERING).locator(card(page, opportunity))).to_have_count(1)
    assert stage_in_database(opportunity) == Stage.DISCOVERING

    undo.click()

    expect(column(page, Stage.IDENTIFYING).locator(card(page, opportunity))).to_have_count(1)
    expect(column(page, Stage.DISCOVERING).locator(card(page, opportunity))).to_have_count(0)
    expect(undo).to_have_count(0)
    assert stage_in_database(opportunity) == Stage.IDENTIFYING


def test_a_card_of_another_rep_in_the_team_cannot_be_dragged(live_server, log_in):
    rep = RepFactory()
    colleague = RepFactory(team=rep.team)
    theirs = OpportunityFactory(owner=colleague, name="Their deal")
    mine = OpportunityFactory(owner=rep, name="My deal")
    for opportunity in (theirs, mine):
        satisfy_gate(opportunity)
    page = log_in(rep)
    record_board_requests(page)

    expect(card(page, theirs)).to_have_attribute("data-movable", "false")
    expect(card(page, theirs).get_by_role("button", name="Move to…")).to_have_count(0)
    drag(page, theirs, Stage.DISCOVERING)

    assert board_requests(page) == []
    assert column(page, Stage.IDENTIFYING).locator(card(page, theirs)).count() == 1
    # The same gesture does move a card of one's own.
    drag(page, mine, Stage.DISCOVERING)
    assert board_requests(page) == [f"/opportunities/{mine.pk}/move/"]
    expect(page.locator("#board-notice")).to_contain_text("“My deal” moved to")
    expect(column(page, Stage.DISCOVERING).locator(card(page, mine))).to_have_count(1)
    expect(column(page, Stage.IDENTIFYING).locator(card(page, theirs))).to_have_count(1)
    assert stage_in_database(theirs) == Stage.IDENTIFYING


def test_a_drop_on_pending_without_an_order_asks_for_it_then_submits_it(live_server, log_in):
    rep = RepFactory()
    opportunity = advance(OpportunityFactory(owner=rep, amount=Decimal("8000")),
                          Stage.FINALIZING)
    opportunity.tick("finalizing.customer_signed", by=rep, note="Signed by the CFO")
    page = log_in(rep)
    record_board_requests(page)

    drag(page, opportunity, Stage.PENDING)

    dialog = page.locator("#move-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".missing")).to_contain_text(
        "The purchase order was received and recorded")
    expect(dialog.get_by_role("link", name="Record the purchase order")).to_have_attribute(
        "href", f"/opportunities/{opportunity.pk}/order/")
    expect(column(page, Stage.FINALIZING).locator(card(page, opportunity))).to_have_count(1)
    assert stage_in_database(opportunity) == Stage.FINALIZING

    record_order(opportunity)
    page.goto(f"{live_server.url}/board/")
    drag(page, opportunity, Stage.PENDING)

    expect(page.locator("#board-notice")).to_contain_text("moved to Pending")
    expect(column(page, Stage.PENDING).locator(card(page, opportunity))).to_have_count(1)
    assert stage_in_database(opportunity) == Stage.PENDING


def pending_order(rep) -> Opportunity:
    opportunity = advance(OpportunityFactory(owner=rep, amount=Decimal("8000")),
                          Stage.PENDING)
    return opportunity


def test_sales_ops_reject_an_order_and_the_card_is_back_in_finalizing_with_the_reason(
        live_server, log_in):
    rep = RepFactory()
    opportunity = pending_order(rep)
    page = log_in(SalesOpsFactory())

    expect(page.get_by_role("heading", name="Orders to review")).to_be_visible()
    page.locator(f'tr[data-opportunity-id="{opportunity.pk}"] a').click()
    for check in ("prices", "periods", "coverage"):
        page.check(f'input[name="checks"][value="{check}"]')
    page.fill("#review-note", "Their own purchasing terms are attached.")
    page.get_by_role("button", name="Reject: the unticked checks failed").click()
    expect(page.get_by_text("is back in Finalizing")).to_be_visible()
    assert stage_in_database(opportunity) == Stage.FINALIZING

    page.get_by_role("button", name="Log out").click()
    page = log_in(rep)
    rejected = column(page, Stage.FINALIZING).locator(card(page, opportunity))
    expect(rejected.locator(".order-rejected")).to_have_text("Order rejected")
    rejected.locator(".card-title").click()
    expect(page.locator(".order-rejection")).to_contain_text(
        "Their own purchasing terms are attached.")
    expect(page.locator(".order-rejection")).to_contain_text("The agreed terms apply")


def test_sales_ops_approve_an_order_and_the_card_lands_in_closed_with_its_handoffs(
        live_server, log_in):
    rep = RepFactory()
    opportunity = pending_order(rep)
    page = log_in(SalesOpsFactory())
    page.goto(f"{live_server.url}/opportunities/{opportunity.pk}/review/")

    for check in ("terms", "prices", "periods", "coverage"):
        page.check(f'input[name="checks"][value="{check}"]')
    page.get_by_role("button", name="Approve: all four checks hold").click()

    expect(page.get_by_text("is closed; its hand-off tasks are on the list")).to_be_visible()
    page.get_by_role("link", name="Hand-offs").click()
    expect(page.locator(f'tr[data-opportunity-id="{opportunity.pk}"]')).to_have_count(4)
    page.get_by_role("link", name="Board").click()
    expect(column(page, Stage.CLOSED).locator(card(page, opportunity))).to_have_count(1)
    assert stage_in_database(opportunity) == Stage.CLOSED


def test_scrolling_to_the_end_of_a_long_column_loads_its_next_cards_once(
    live_server, log_in, settings
):
    settings.BOARD_COLUMN_SIZE = 5
    rep = RepFactory()
    for number in range(8):
        OpportunityFactory(owner=rep, name=f"Deal {number}")
    page = log_in(rep)
    cards = column(page, Stage.IDENTIFYING).locator(".card")
    expect(cards).to_have_count(5)

    cards.first.hover()
    page.mouse.wheel(0, 5000)

    expect(cards).to_have_count(8)
    expect(page.locator("#column-identifying-more button")).to_have_count(0)
    shown = cards.evaluate_all("cards => cards.map(card => card.dataset.opportunityId)")
    assert sorted(map(int, shown)) == sorted(
        Opportunity.objects.values_list("pk", flat=True)
    )


def test_a_moved_card_takes_its_place_by_close_date_and_load_more_shows_it_once(
    live_server, log_in, settings
):
    settings.BOARD_COLUMN_SIZE = 5
    rep = RepFactory()
    today = timezone.localdate()

    def closing_in(days: int, stage: Stage) -> Opportunity:
        opportunity = OpportunityFactory(
            owner=rep, name=f"Closes in {days}",
            expected_close_date=today + timezone.timedelta(days=days),
        )
        return advance(opportunity, stage)

    for days in (10, 30, 50, 70, 90, 110):  # the sixth waits behind "Load more"
        closing_in(days, Stage.DISCOVERING)
    soon, late = closing_in(20, Stage.IDENTIFYING), closing_in(120, Stage.IDENTIFYING)
    for opportunity in (soon, late):
        satisfy_gate(opportunity)
    page = log_in(rep)
    names = column(page, Stage.DISCOVERING).locator(".card-title")
    expect(names).to_have_count(5)

    def move_on(opportunity: Opportunity) -> None:
        card(page, opportunity).get_by_role("button", name="Move to…").click()
        page.locator("#move-dialog").get_by_role("button", name="Move", exact=True).click()
        expect(page.locator("#move-dialog")).to_be_hidden()

    move_on(soon)
    expect(names).to_have_text([f"Closes in {days}" for days in (10, 20, 30, 50, 70, 90)])
    # Past the cards shown: it goes last, and comes again with "Load more" (which its
    # focus scrolls into view), in its place and only once.
    move_on(late)
    names.first.hover()
    page.mouse.wheel(0, 5000)
    expect(names).to_have_text(
        [f"Closes in {days}" for days in (10, 20, 30, 50, 70, 90, 110, 120)]
    )
    expect(page.locator(f'[data-opportunity-id="{late.pk}"]')).to_have_count(1)


def test_a_card_moved_out_of_the_filter_leaves_the_board_and_undo_brings_it_back(
    live_server, log_in
):
    rep = RepFactory()
    opportunity = OpportunityFactory(owner=rep, name="Filtered deal")
    satisfy_gate(opportunity)
    page = log_in(rep)
    # Identifying is the only stage in the "omitted" forecast category.
    page.goto(f"{live_server.url}/board/?category=omitted")
    expect(column(page, Stage.IDENTIFYING).locator(card(page, opportunity))).to_have_count(1)

    card(page, opportunity).get_by_role("button", name="Move to…").click()
    page.locator("#move-dialog").get_by_role("button", name="Move", exact=True).click()

    expect(card(page, opportunity)).to_have_count(0)
    assert stage_in_database(opportunity) == Stage.DISCOVERING
    page.locator("#board-notice").get_by_role("button", name="Undo").click()

    expect(column(page, Stage.IDENTIFYING).locator(card(page, opportunity))).to_have_count(1)
    assert stage_in_database(opportunity) == Stage.IDENTIFYING
