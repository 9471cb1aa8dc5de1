import pytest
from playwright.sync_api import expect
from tests.factories import OpportunityFactory, RepFactory

@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_explore(live_server, log_in):
    rep = RepFactory()
    o = OpportunityFactory(owner=rep, name="Acme rollout")
    page = log_in(rep)
    msgs = []
    page.on("console", lambda m: msgs.append(m.text))
    page.on("pageerror", lambda e: msgs.append(str(e)))
    page.goto(f"{live_server.url}/board/")
    page.screenshot(path="/tmp/browser/board.png", full_page=True)
    card = page.locator(f"#card-{o.pk}")
    target = page.locator("#column-discovering-cards")
    card.drag_to(target)
    page.wait_for_timeout(1500)
    page.screenshot(path="/tmp/browser/after.png", full_page=True)
    print(msgs)
    print(page.locator("#move-dialog").evaluate("d => d.open"))
    print(page.locator("#move-dialog-body").inner_html()[:500])
