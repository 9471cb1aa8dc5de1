"""Activities from the opportunity page and on the board's cards: logging, marking done or
cancelled, the .ics download; bad input and refusals answer 4xx with a message and change
nothing. Time is frozen."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.models import Activity, ActivityStatus, Opportunity
from pipeline.process import Stage
from tests.clock import MOMENT
from tests.factories import BdrFactory, ContactFactory, OpportunityFactory, plan_call

pytestmark = pytest.mark.django_db

NOW = MOMENT  # 08:30 UTC, the app's time zone


@pytest.fixture
def deal(clock, cast) -> Opportunity:
    return OpportunityFactory(owner=cast.rep, name="Umbrella CRM")


def log(client, opportunity, htmx=False, **fields):
    data = {"kind": "meeting", "status": "planned", "at": "2026-05-06T14:00",
            "minutes": "60", "subject": "Scoping workshop", "notes": "", **fields}
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client.post(f"/opportunities/{opportunity.pk}/activities/", data, **headers)


def rows() -> list[tuple]:
    return list(Activity.objects.order_by("pk").values_list("kind", "status", "subject"))


def test_a_rep_logs_a_planned_meeting_from_the_page_and_it_is_listed(client, deal, cast):
    ada = ContactFactory(account=deal.account, first_name="Ada", last_name="Lovelace")
    client.force_login(cast.rep)

    response = log(client, deal, contacts=[ada.pk], notes="Agenda: scope, ROI")

    assert response.status_code == 302
    assert response["Location"] == f"/opportunities/{deal.pk}/#activities"
    [meeting] = Activity.objects.all()
    assert meeting.at == datetime(2026, 5, 6, 14, 0, tzinfo=UTC)
    html = client.get(f"/opportunities/{deal.pk}/").content.decode()
    assert "Meeting “Scoping workshop” logged." in html
    item = re.search(r'<li class="activity activity-planned".*?</li>', html, re.S).group()
    assert "Scoping workshop" in item and "with Ada Lovelace" in item
    assert "Agenda: scope, ROI" in item
    assert f"/opportunities/{deal.pk}/activities/{meeting.pk}/meeting.ics" in item


def test_htmx_gets_the_section_and_the_checklist_out_of_band(client, deal, cast):
    client.force_login(cast.rep)
    response = log(client, deal, htmx=True, kind="call", subject="Next call")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Call “Next call” logged." in html
    assert '<section class="card" id="checklist" hx-swap-oob="true">' in html
    next_call = re.search(
        r'<li class="criterion (\w+)" data-criterion="identifying.next_call_scheduled"', html)
    assert next_call.group(1) == "met"


@pytest.mark.parametrize(("fields", "message"), [
    ({"kind": "fax"}, "Kind: Select a valid choice. fax is not one of the available choices."),
    ({"at": "tomorrow"}, "When: Enter a valid date/time."),
    ({"subject": ""}, "Subject: This field is required."),
    ({"minutes": "0"}, "Minutes: Ensure this value is greater than or equal to 1."),
    ({"at": "2026-05-04T08:00"},
     "A planned activity lies ahead; log one that took place as done."),
    ({"status": "done", "at": "2026-05-05T09:00"},
     "An activity done cannot lie in the future; log it as planned."),
])
@pytest.mark.parametrize("htmx", [False, True])
def test_bad_input_is_refused_with_a_message_and_nothing_is_logged(
        client, deal, cast, fields, message, htmx):
    client.force_login(cast.rep)
    response = log(client, deal, htmx=htmx, **fields)
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html.replace("&#x27;", "'").replace("&quot;", '"')
    assert rows() == []


def test_a_contact_of_another_account_is_refused(client, deal, cast):
    client.force_login(cast.rep)
    stranger = ContactFactory()
    response = log(client, deal, contacts=[stranger.pk])
    assert response.status_code == 400
    assert rows() == []


def test_a_colleague_who_may_see_but_not_edit_is_refused_with_403(client, deal, cast):
    client.force_login(cast.colleague)
    response = log(client, deal, htmx=True)
    assert response.status_code == 403
    assert "You may not log activities on “Umbrella CRM”." in response.content.decode()
    assert rows() == []
    page = client.get(f"/opportunities/{deal.pk}/").content.decode()
    assert 'class="activity-form"' not in page


def test_someone_who_may_not_see_it_gets_404(client, deal, cast):
    client.force_login(cast.other_manager)
    assert log(client, deal).status_code == 404
    call = plan_call(deal, by=cast.rep)
    assert client.post(f"/opportunities/{deal.pk}/activities/{call.pk}/done/").status_code \
        == 404
    assert client.get(f"/opportunities/{deal.pk}/activities/{call.pk}/meeting.ics"
                      ).status_code == 404
    assert rows() == [("call", "planned", "Detail session")]


def test_marking_done_and_cancelling_from_the_page(client, clock, deal, cast):
    first, second = plan_call(deal, by=cast.rep), plan_call(deal, by=cast.rep)
    clock.advance(days=4)  # before signing in: a session ends after hours idle
    client.force_login(cast.rep)
    response = client.post(f"/opportunities/{deal.pk}/activities/{first.pk}/done/",
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Marked done." in response.content.decode()
    response = client.post(f"/opportunities/{deal.pk}/activities/{second.pk}/cancel/")
    assert response.status_code == 302
    assert rows() == [("call", "done", "Detail session"),
                      ("call", "cancelled", "Detail session")]

    again = client.post(f"/opportunities/{deal.pk}/activities/{first.pk}/cancel/",
                        HTTP_HX_REQUEST="true")
    assert again.status_code == 400
    assert "That activity is already done." in again.content.decode()
    assert Activity.objects.get(pk=first.pk).status == ActivityStatus.DONE


def test_marking_an_activity_of_another_opportunity_is_refused(client, deal, cast):
    other = OpportunityFactory(owner=cast.rep)
    call = plan_call(other, by=cast.rep)
    client.force_login(cast.rep)
    response = client.post(f"/opportunities/{deal.pk}/activities/{call.pk}/done/")
    assert response.status_code == 400
    assert Activity.objects.get(pk=call.pk).status == ActivityStatus.PLANNED


def test_marking_needs_a_post(client, deal, cast):
    call = plan_call(deal, by=cast.rep)
    client.force_login(cast.rep)
    assert client.get(f"/opportunities/{deal.pk}/activities/{call.pk}/done/").status_code \
        == 405


# --- the .ics download ---


def test_a_planned_meeting_downloads_as_an_ics_file(client, deal, cast):
    ada = ContactFactory(account=deal.account, first_name="Ada", last_name="Lovelace",
                         email="ada@umbrella.example")
    meeting = deal.log_activity(by=cast.rep, kind="meeting", at=NOW + timedelta(days=2),
                                subject="Scoping workshop; ROI, scope", contacts=[ada],
                                minutes=90)
    client.force_login(cast.colleague)  # whoever may see the opportunity

    response = client.get(f"/opportunities/{deal.pk}/activities/{meeting.pk}/meeting.ics")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="meeting-{meeting.pk}.ics"')
    lines = response.content.decode().split("\r\n")
    assert lines[:6] == ["BEGIN:VCALENDAR", "VERSION:2.0",
                         "PRODID:-//Progression//Progression CRM//EN", "CALSCALE:GREGORIAN",
                         "METHOD:PUBLISH", "BEGIN:VEVENT"]
    assert f"UID:activity-{meeting.pk}@testserver" in lines
    assert "DTSTAMP:20260504T083000Z" in lines
    assert "DTSTART:20260506T083000Z" in lines
    assert "DTEND:20260506T100000Z" in lines
    assert r"SUMMARY:Scoping workshop\; ROI\, scope" in lines
    assert ('ATTENDEE;CN="Ada Lovelace";ROLE=REQ-PARTICIPANT:mailto:ada@umbrella.example'
            in lines)
    assert lines[-3:] == ["END:VEVENT", "END:VCALENDAR", ""]


@pytest.mark.parametrize("which", ["call", "done meeting", "cancelled meeting"])
def test_only_a_planned_meeting_has_a_calendar_file(client, deal, cast, which):
    if which == "call":
        activity = plan_call(deal, by=cast.rep)
    else:
        activity = plan_call(deal, by=cast.rep, kind="meeting")
        action = deal.complete_activity if which == "done meeting" else deal.cancel_activity
        action(activity.pk, by=cast.rep)
    client.force_login(cast.rep)
    response = client.get(f"/opportunities/{deal.pk}/activities/{activity.pk}/meeting.ics")
    assert response.status_code == 400
    assert "Only a planned meeting goes into a calendar." in response.content.decode()


# --- the board card ---


def card_html(client, opportunity) -> str:
    html = client.get("/board/").content.decode()
    return re.search(rf'<li class="card[^"]*" id="card-{opportunity.pk}".*?</li>', html,
                     re.S).group()


def test_the_card_shows_the_next_planned_activity(client, deal, cast):
    plan_call(deal, by=cast.rep, kind="meeting", at=datetime(2026, 5, 6, 12, 0, tzinfo=UTC))
    plan_call(deal, by=cast.rep, at=datetime(2026, 5, 9, 12, 0, tzinfo=UTC))
    client.force_login(cast.rep)
    card = card_html(client, deal)
    assert '<span class="card-next-activity">Meeting 05/06/2026 noon</span>' in card
    assert "card-no-activity" not in card


def test_the_card_marks_an_open_opportunity_with_nothing_planned(client, clock, deal, cast):
    call = plan_call(deal, by=cast.rep, days_ahead=1)
    deal.cancel_activity(call.pk, by=cast.rep)
    client.force_login(cast.rep)
    card = card_html(client, deal)
    assert '<span class="card-no-activity">Nothing planned</span>' in card
    assert "card-next-activity" not in card


def test_a_dead_card_carries_no_mark(client, deal, cast):
    deal.move_to(Stage.DEAD, by=cast.rep, via="page", reason="No budget",
                 dead_reason="no_budget")
    client.force_login(cast.rep)
    html = client.get("/board/?dead=on").content.decode()
    card = re.search(rf'id="card-{deal.pk}".*?</li>', html, re.S).group()
    assert "Nothing planned" not in card


# --- the dead pool: the BDR holding the claim nurtures the deal (issue #11) ---


@pytest.fixture
def claimed(deal, cast) -> Opportunity:
    """Umbrella CRM, parked as dead and claimed by the team's BDR."""
    deal.move_to(Stage.DEAD, by=cast.rep, via="page", reason="No budget",
                 dead_reason="no_budget")
    deal.claim(by=cast.bdr)
    return deal


def test_the_claiming_bdr_logs_a_call_on_the_dead_deal_from_its_page(client, claimed, cast):
    client.force_login(cast.bdr)
    page = client.get(f"/opportunities/{claimed.pk}/")
    assert page.status_code == 200
    assert 'class="activity-form"' in page.content.decode()

    response = log(client, claimed, kind="call", status="done", at="2026-05-03T16:00",
                   subject="Checked in on the budget")

    assert response.status_code == 302
    assert rows() == [("call", "done", "Checked in on the budget")]
    assert Activity.objects.get().logged_by == cast.bdr


def test_the_claiming_bdr_marks_planned_activities_done_and_cancelled(
        client, clock, claimed, cast):
    first, second = plan_call(claimed, by=cast.bdr), plan_call(claimed, by=cast.bdr)
    clock.advance(days=4)  # before signing in: a session ends after hours idle
    client.force_login(cast.bdr)
    done = client.post(f"/opportunities/{claimed.pk}/activities/{first.pk}/done/",
                       HTTP_HX_REQUEST="true")
    assert done.status_code == 200 and "Marked done." in done.content.decode()
    cancelled = client.post(f"/opportunities/{claimed.pk}/activities/{second.pk}/cancel/")
    assert cancelled.status_code == 302
    assert rows() == [("call", "done", "Detail session"),
                      ("call", "cancelled", "Detail session")]


def test_another_bdr_may_see_the_claimed_deal_but_not_log_on_it(client, claimed, cast):
    other = BdrFactory(team=cast.bdr.team)
    call = plan_call(claimed, by=cast.bdr)
    client.force_login(other)
    page = client.get(f"/opportunities/{claimed.pk}/").content.decode()
    assert 'class="activity-form"' not in page and "Mark done" not in page

    response = log(client, claimed, htmx=True)
    assert response.status_code == 403
    assert "You may not log activities on “Umbrella CRM”." in response.content.decode()
    cancel = client.post(f"/opportunities/{claimed.pk}/activities/{call.pk}/cancel/")
    assert cancel.status_code == 403
    assert rows() == [("call", "planned", "Detail session")]


def test_after_releasing_the_claim_the_bdr_may_not_log_any_more(client, claimed, cast):
    call = plan_call(claimed, by=cast.bdr)
    claimed.release_claim(by=cast.bdr)
    client.force_login(cast.bdr)
    page = client.get(f"/opportunities/{claimed.pk}/").content.decode()
    assert 'class="activity-form"' not in page

    response = log(client, claimed)
    assert response.status_code == 403
    assert "You may not log activities on “Umbrella CRM”." in response.content.decode()
    done = client.post(f"/opportunities/{claimed.pk}/activities/{call.pk}/done/",
                       HTTP_HX_REQUEST="true")
    assert done.status_code == 403
    assert rows() == [("call", "planned", "Detail session")]
