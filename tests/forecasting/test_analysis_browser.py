"""The funnel and calibration in real Chromium: the chart draws from the vendored
Chart.js without a console error, the table beside it shows the same figures, and the
pages pass axe-core's automated accessibility checks."""

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from forecasting import calibration
from tests.forecasting.stage_stories import stage_stories

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture(autouse=True)
def calendar_quarters(settings, monkeypatch):
    settings.FISCAL_YEAR_START_MONTH = 1
    settings.TIME_ZONE = "UTC"
    monkeypatch.setattr(calibration, "MINIMUM_SAMPLE", 3)


def test_the_charts_draw_and_their_tables_show_the_same_figures(live_server, log_in):
    cast = stage_stories()
    page = log_in(cast.manager)
    errors = []
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    found = {}

    page.goto(f"{live_server.url}/forecast/funnel/?quarter=2026-Q2")
    chart = page.locator('canvas[data-chart="funnel-chart"]')
    # Visible as soon as the page is laid out; drawn once the deferred scripts ran.
    expect(chart).to_have_attribute("data-drawn", "true")
    drawn = chart.evaluate("canvas => Chart.getChart(canvas).data.datasets[0].data")
    row = page.locator('table[data-table="funnel"] tr[data-stage="identifying"]')
    expect(row.locator("td")).to_have_text(["3", "2", "67 %", "1", "20"])
    found["funnel"] = Axe().run(page)

    page.get_by_role("link", name="Calibration").click()
    page.get_by_label("Quarter").fill("2026-Q2")
    page.get_by_role("button", name="Show").click()
    expect(page.locator('table[data-table="calibration"] tr[data-stage="validating"] td')
           ).to_have_text(["40 %", "67 % (2 of 3 won)", "0"])
    calibration = page.locator('canvas[data-chart="calibration-chart"]')
    expect(calibration).to_have_attribute("data-drawn", "true")
    calibrated = calibration.evaluate(
        "canvas => Chart.getChart(canvas).data.datasets.map(dataset => dataset.data)")
    found["calibration"] = Axe().run(page)

    assert drawn == [67, 50, 50, 100, 100, 100, 100]
    assert calibrated == [[50, 50, 67, None, None, None, None],
                          [10, 25, 40, 60, 75, 90, 95]]
    assert errors == []
    assert {name: result.generate_report() for name, result in found.items()
            if result.violations_count} == {}
