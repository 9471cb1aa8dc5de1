"""The API's docs page works under the app's content security policy: its scripts come
from our static files, nothing inline runs."""

import pytest


@pytest.mark.browser
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_api_docs_list_and_open_every_operation_under_the_apps_policy(page, live_server):
    problems = []
    page.on("console", lambda message: problems.append(message.text)
            if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    response = page.goto(f"{live_server.url}/api/docs/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe" not in policy
    page.locator(".opblock").first.wait_for()
    assert page.locator(".opblock").count() >= 20
    page.get_by_text("/api/opportunities/{opportunity_id}/move").click()
    page.locator(".opblock.is-open").wait_for()
    page.get_by_role("button", name="Authorize").click()
    page.locator(".modal-ux").wait_for()
    assert problems == []
