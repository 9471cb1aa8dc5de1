"""The API's docs page works under the strict content security policy the app is moving
to: its scripts come from our static files, nothing inline runs."""

import pytest

STRICT = ("default-src 'self'; script-src 'self'; style-src 'self'; "
          "img-src 'self' data:; connect-src 'self'; object-src 'none'")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_api_docs_list_and_open_every_operation_under_a_strict_policy(page, live_server):
    def with_policy(route):
        response = route.fetch()
        route.fulfill(response=response,
                      headers={**response.headers, "content-security-policy": STRICT})

    page.route("**/*", with_policy)
    problems = []
    page.on("console", lambda message: problems.append(message.text)
            if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"{live_server.url}/api/docs/")
    page.locator(".opblock").first.wait_for()
    assert page.locator(".opblock").count() >= 20
    page.get_by_text("/api/opportunities/{opportunity_id}/move").click()
    page.locator(".opblock.is-open").wait_for()
    page.get_by_role("button", name="Authorize").click()
    page.locator(".modal-ux").wait_for()
    assert problems == []
