"""What every signed-in user meets on every page, in Chromium: their own language from
the first page, and the app's icon (issue 14)."""

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD, RepFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_a_chosen_language_is_applied_at_the_next_login_in_a_new_browser(
    live_server, log_in, browser
):
    rep = RepFactory()
    page = log_in(rep)
    page.get_by_label("Language").select_option("de")
    expect(page.locator("html")).to_have_attribute("lang", "de")

    other_browser = browser.new_context(locale="en-GB")  # no cookie of the first one
    other = other_browser.new_page()
    other.route("**/favicon.*", lambda route: route.fulfill(status=204))
    other.goto(f"{live_server.url}/login/")
    expect(other.locator("html")).to_have_attribute("lang", "en")
    other.fill("#id_username", rep.username)
    other.fill("#id_password", PASSWORD)
    other.get_by_role("button", name="Log in").click()

    expect(other.locator("html")).to_have_attribute("lang", "de")
    expect(other.get_by_role("button", name="Abmelden")).to_be_visible()
    other_browser.close()


def test_every_page_has_an_icon_that_is_served(live_server, log_in):
    page = log_in(RepFactory())
    page.goto(f"{live_server.url}/board/")

    icon = page.locator('link[rel="icon"]').get_attribute("href")
    answer = page.request.get(f"{live_server.url}{icon}")
    assert (answer.status, answer.headers["content-type"]) == (200, "image/svg+xml")
    # Tools that ask for the classic address find it too.
    classic = page.request.get(f"{live_server.url}/favicon.ico")
    assert (classic.status, classic.headers["content-type"]) == (200, "image/svg+xml")
