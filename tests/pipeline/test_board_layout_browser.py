"""The board on a phone and on a desktop: the page is as wide as the screen, every dialog
fits in it, and the filters fold away on narrow screens (issue 14)."""

import pytest
from playwright.sync_api import Page, expect

from pipeline.process import ORDERED_STAGES, Stage
from tests.factories import OpportunityFactory, RepFactory, advance

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def fully_visible(page: Page, selector: str) -> bool:
    """Whether the element's whole box lies inside the window."""
    return page.evaluate("""(selector) => {
        const box = document.querySelector(selector).getBoundingClientRect();
        return box.width > 0 && box.left >= 0 && box.top >= 0
            && box.right <= window.innerWidth && box.bottom <= window.innerHeight;
    }""", selector)


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_board_is_as_wide_as_the_screen_and_the_move_dialog_fits_in_it(
    live_server, log_in, viewport
):
    rep = RepFactory()
    # A card in every column, the far-right ones included, each with its "Move to…".
    for stage in ORDERED_STAGES[:6]:
        advance(OpportunityFactory(owner=rep, name=f"Deal in {stage.value}"), stage)
    last = advance(OpportunityFactory(owner=rep, name="Far right deal"), Stage.FINALIZING)
    page = log_in(rep)
    page.set_viewport_size(viewport)
    page.goto(f"{live_server.url}/board/")

    assert page.evaluate("() => document.documentElement.scrollWidth") == viewport["width"]

    card = page.locator(f"#card-{last.pk}")
    card.scroll_into_view_if_needed()
    card.get_by_role("button", name="Move to…").click()
    dialog = page.locator("#move-dialog")
    expect(dialog).to_be_visible()
    assert fully_visible(page, "#move-dialog")
    cancel = dialog.get_by_role("button", name="Cancel")
    cancel.scroll_into_view_if_needed()
    assert fully_visible(page, "#move-dialog [data-close-dialog]")
    assert page.evaluate("() => document.documentElement.scrollWidth") == viewport["width"]
    cancel.click()
    expect(dialog).to_be_hidden()


def test_the_gate_dialog_fits_on_a_phone(live_server, log_in):
    rep = RepFactory()
    opportunity = OpportunityFactory(owner=rep, name="Initech rollout")
    page = log_in(rep)
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/board/")

    page.locator(f"#card-{opportunity.pk}").get_by_role("button", name="Move to…").click()
    dialog = page.locator("#move-dialog")
    dialog.get_by_role("button", name="Move", exact=True).click()

    expect(dialog.locator(".refusal")).to_be_visible()
    assert fully_visible(page, "#move-dialog")
    assert page.evaluate("() => document.documentElement.scrollWidth") == PHONE["width"]


def test_on_a_phone_the_filters_fold_behind_one_button_that_the_keyboard_opens(
    live_server, log_in
):
    rep = RepFactory()
    OpportunityFactory(owner=rep)
    page = log_in(rep)
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/board/")
    owner_filter = page.get_by_label("Search")

    expect(owner_filter).to_be_hidden()
    toggle = page.locator(".board-filters-toggle")
    toggle.focus()
    page.keyboard.press("Enter")
    expect(owner_filter).to_be_visible()
    page.keyboard.press("Enter")
    expect(owner_filter).to_be_hidden()


def test_on_a_desktop_the_filters_show_without_a_click(live_server, log_in):
    rep = RepFactory()
    page = log_in(rep)
    page.set_viewport_size(DESKTOP)
    page.goto(f"{live_server.url}/board/")

    expect(page.get_by_label("Search")).to_be_visible()
    expect(page.locator(".board-filters-toggle")).to_be_hidden()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_opportunity_page_is_as_wide_as_the_screen(live_server, log_in, viewport):
    rep = RepFactory()
    opportunity = advance(OpportunityFactory(owner=rep, name="Initech rollout"),
                          Stage.VALIDATING)
    page = log_in(rep)
    page.set_viewport_size(viewport)

    page.goto(f"{live_server.url}/opportunities/{opportunity.pk}/")

    expect(page.get_by_role("heading", name="Initech rollout")).to_be_visible()
    assert page.evaluate("() => document.documentElement.scrollWidth") == viewport["width"]
