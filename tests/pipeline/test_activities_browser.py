"""Activities in a real browser: a rep plans a meeting on the opportunity page and the
board's card shows it."""

import pytest
from playwright.sync_api import expect

from pipeline.models import Activity, ActivityKind, ActivityStatus
from tests.factories import ContactFactory, OpportunityFactory, RepFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_a_rep_plans_a_meeting_and_the_card_shows_it(live_server, log_in):
    rep = RepFactory()
    opportunity = OpportunityFactory(owner=rep, name="Initech payroll")
    ContactFactory(account=opportunity.account, first_name="Ada", last_name="Lovelace")
    page = log_in(rep)
    card = page.locator(f"#card-{opportunity.pk}")

    page.goto(f"{live_server.url}/board/")
    expect(card.locator(".card-no-activity")).to_have_text("Nothing planned")

    page.goto(f"{live_server.url}/opportunities/{opportunity.pk}/")
    section = page.locator("#activities")
    form = section.locator(".activity-form")
    form.get_by_label("Kind").select_option(ActivityKind.MEETING.value)
    form.get_by_label("Status").select_option("planned")
    form.get_by_label("When").fill("2030-06-03T10:00")
    form.get_by_label("Minutes").fill("60")
    form.get_by_label("Subject").fill("Scoping workshop")
    form.get_by_label("Ada Lovelace").check()
    form.get_by_role("button", name="Log it").click()

    # htmx swaps the section in place, and the checklist out of band.
    expect(section.locator(".notice")).to_have_text("Meeting “Scoping workshop” logged.")
    listed = section.locator(".activity-planned")
    expect(listed).to_contain_text("Scoping workshop")
    expect(listed).to_contain_text("with Ada Lovelace")
    expect(listed.get_by_role("link", name="Add to calendar (.ics)")).to_be_visible()
    expect(page.locator('#checklist [data-criterion="identifying.next_call_scheduled"]')
           ).to_have_class("criterion met")
    meeting = Activity.objects.get()
    assert (meeting.kind, meeting.status, meeting.subject) == (
        ActivityKind.MEETING, ActivityStatus.PLANNED, "Scoping workshop")

    page.goto(f"{live_server.url}/board/")
    expect(card.locator(".card-next-activity")).to_have_text("Meeting 06/03/2030 10 a.m.")
    expect(card.locator(".card-no-activity")).to_have_count(0)
