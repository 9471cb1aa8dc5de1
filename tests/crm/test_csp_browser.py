"""Every main page works in real Chromium under the content security policy that production
sends: no console error, no refused script or style, htmx and Chart.js at work.

One browser session visits them all, as a superuser (who sees every page) with a team's
year of opportunities from the forecast's stage stories.
"""

import pytest
from playwright.sync_api import expect

from forecasting import calibration
from pipeline.process import Stage
from tests.factories import (
    ContactFactory,
    OpportunityFactory,
    SalesOpsFactory,
    UserFactory,
    advance,
    record_order,
)
from tests.forecasting.stage_stories import stage_stories

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

# Runs in every page before its own scripts; a refusal is reported to the console too, but
# this names the directive.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (event) {
  console.error("CSP violation: " + event.violatedDirective + " " + event.blockedURI);
});
"""


@pytest.fixture(autouse=True)
def calendar_quarters(settings, monkeypatch):
    settings.FISCAL_YEAR_START_MONTH = 1
    monkeypatch.setattr(calibration, "MINIMUM_SAMPLE", 3)


def test_every_main_page_works_under_the_content_security_policy(live_server, page,
                                                                 log_in):
    cast = stage_stories()
    rep = cast.anna
    at_finalizing = advance(OpportunityFactory(owner=rep, name="Initech rollout"),
                            Stage.FINALIZING)
    pending = advance(OpportunityFactory(owner=rep, name="Umbrella licences"), Stage.FINALIZING)
    record_order(pending)
    contact = ContactFactory(account=at_finalizing.account)
    admin = UserFactory(is_superuser=True, is_staff=True)
    SalesOpsFactory()

    problems: list[str] = []
    page.add_init_script(REPORT_VIOLATIONS)
    page.on("console", lambda message: problems.append(f"{page.url}: {message.text}")
            if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"{page.url}: {error}"))
    policies = {}

    def visit(path: str) -> None:
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, (path, response.status)
        policies[path] = response.headers.get("content-security-policy", "")

    visit("/login/")
    log_in(admin)
    paths = [
        "/board/", f"/opportunities/{at_finalizing.pk}/",
        f"/opportunities/{at_finalizing.pk}/plan/", "/orders/pending/",
        f"/opportunities/{pending.pk}/review/", "/dead-pool/", "/forecast/",
        "/forecast/funnel/?quarter=2026-Q2", "/forecast/calibration/?quarter=2026-Q2",
        "/forecast/calls/", "/forecast/quotas/", "/notifications/", "/account/tokens/",
        "/imports/", f"/accounts/{at_finalizing.account_id}/", f"/contacts/{contact.pk}/",
        f"/contacts/{contact.pk}/erase/", "/handoffs/",
        "/admin/",
        f"/admin/pipeline/opportunity/{at_finalizing.pk}/change/",
        f"/admin/crm/user/{rep.pk}/change/",
    ]
    for path in paths:
        visit(path)
        if path == "/board/":
            # htmx runs under the policy: the first column's cards are on the page.
            expect(page.locator(f'[data-opportunity-id="{at_finalizing.pk}"]')).to_be_visible()
        if path.startswith("/forecast/funnel/"):
            # Chart.js draws under the policy.
            chart = page.locator('canvas[data-chart="funnel-chart"]')
            expect(chart).to_have_attribute("data-drawn", "true")
            assert chart.evaluate("canvas => Chart.getChart(canvas) !== undefined")

    # The language switch, an inline handler before the policy, still switches.
    visit("/notifications/")
    page.select_option("#language", "de")
    expect(page.locator("html")).to_have_attribute("lang", "de")

    assert problems == []
    for path, policy in policies.items():
        assert "script-src 'self'" in policy, path
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, path
