"""The dashboard in a real browser: a manager changes quarter and scope and follows a
figure to exactly the opportunities behind it."""

import pytest
from playwright.sync_api import expect

from tests.forecasting.conftest import quarter_name

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_a_manager_follows_a_past_quarters_figure_to_its_opportunities(log_in, quarterly):
    page = log_in(quarterly.manager)
    page.get_by_role("link", name="Forecast", exact=True).click()
    expect(page.locator('[data-figure="commit"]')).to_have_text("30,000 EUR")

    page.get_by_label("Quarter").fill(quarter_name(2))
    page.get_by_label("Rep").select_option(label=str(quarterly.anna))
    page.get_by_role("button", name="Show").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Forecast for {quarter_name(2)}")
    expect(page.locator('[data-figure="closed"]')).to_have_text("120,000 EUR")
    expect(page.locator('[data-figure="target"]')).to_have_text("none set")
    page.locator('[data-figure="closed"] a').click()

    rows = page.locator("table.forecast-opportunities tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Alpha")
    expect(page.locator("[data-listed-total]")).to_have_text("1 opportunity, 120,000 EUR")
