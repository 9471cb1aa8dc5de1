"""Calls, meetings and e-mails with the customer on an opportunity: who may log them, what
a planned one becomes, stage 1's derived "next call is scheduled", and the board card's
next planned activity. Time is frozen."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pipeline.models import (
    Activity,
    ActivityKind,
    ActivityStatus,
    ChangeForbidden,
    InvalidChange,
    Opportunity,
    count_progress,
)
from pipeline.process import CRITERIA, Stage
from tests.clock import MOMENT
from tests.factories import (
    BdrFactory,
    ContactFactory,
    OpportunityFactory,
    plan_call,
    satisfy_gate,
)

pytestmark = pytest.mark.django_db

NOW = MOMENT
NEXT_CALL = CRITERIA["identifying.next_call_scheduled"]


@pytest.fixture
def deal(clock, cast) -> Opportunity:
    return OpportunityFactory(owner=cast.rep, name="Umbrella CRM")


def activity_rows() -> list[tuple]:
    return list(Activity.objects.order_by("pk").values_list("kind", "status", "at", "subject"))


# --- logging ---


def test_a_rep_logs_a_planned_meeting_with_contacts_of_the_account(deal, cast):
    ada = ContactFactory(account=deal.account, first_name="Ada", last_name="Lovelace")
    meeting = deal.log_activity(by=cast.rep, kind="meeting", at=NOW + timedelta(days=2),
                                subject="  Scoping   workshop ", notes="Bring the ROI sheet",
                                contacts=[ada], minutes=90)
    meeting.refresh_from_db()
    assert (meeting.kind, meeting.status, meeting.at, meeting.subject, meeting.minutes) == (
        ActivityKind.MEETING, ActivityStatus.PLANNED, NOW + timedelta(days=2),
        "Scoping workshop", 90)
    assert (meeting.logged_by, meeting.logged_at, meeting.closed_at) == (cast.rep, NOW, None)
    assert list(meeting.contacts.all()) == [ada]
    assert meeting.ends_at == NOW + timedelta(days=2, minutes=90)


def test_a_call_that_took_place_is_logged_as_done(deal, cast):
    call = deal.log_activity(by=cast.rep, kind="call", at=NOW - timedelta(hours=2),
                             subject="Intro call", done=True)
    assert (call.status, call.closed_at, call.closed_by) == (ActivityStatus.DONE, NOW, cast.rep)


def test_logging_an_activity_leaves_the_opportunity_version_alone(deal, cast):
    """Forms on the page hold the version: an activity must not make them conflict."""
    version = deal.version
    plan_call(deal, by=cast.rep)
    assert Opportunity.objects.get(pk=deal.pk).version == version


@pytest.mark.parametrize(("details", "message"), [
    ({"kind": "fax"}, "Choose a call, a meeting or an e-mail."),
    ({"subject": "   "}, "Give the activity a subject."),
    ({"subject": "x" * 201}, "A subject has at most 200 characters."),
    ({"notes": "x" * 2001}, "The notes has 2001 characters; at most 2000 fit."),
    ({"minutes": 0}, "An activity lasts between 1 minute and a day."),
    ({"minutes": 24 * 60 + 1}, "An activity lasts between 1 minute and a day."),
    ({"at": NOW}, "A planned activity lies ahead; log one that took place as done."),
    ({"at": NOW + timedelta(days=3651)}, "Choose a time between 1900 and ten years from now."),
    ({"at": datetime(1899, 12, 31, tzinfo=UTC), "done": True},
     "Choose a time between 1900 and ten years from now."),
    ({"at": NOW + timedelta(minutes=6), "done": True},
     "An activity done cannot lie in the future; log it as planned."),
])
def test_bad_details_are_refused_and_nothing_is_logged(deal, cast, details, message):
    fields = {"kind": "call", "at": NOW + timedelta(days=1), "subject": "Call", **details}
    with pytest.raises(InvalidChange) as refusal:
        deal.log_activity(by=cast.rep, **fields)
    assert refusal.value.message == message
    assert activity_rows() == []


def test_a_done_call_may_be_logged_a_few_minutes_ahead_of_the_server_clock(deal, cast):
    call = deal.log_activity(by=cast.rep, kind="call", at=NOW + timedelta(minutes=5),
                             subject="Call", done=True)
    assert call.status == ActivityStatus.DONE


def test_a_contact_of_another_account_or_archived_is_refused(deal, cast):
    stranger = ContactFactory(first_name="Eve", last_name="Stranger")
    gone = ContactFactory(account=deal.account, first_name="Old", last_name="Timer",
                          archived_at=NOW)
    for contact in (stranger, gone):
        with pytest.raises(InvalidChange, match="is not a current contact of"):
            deal.log_activity(by=cast.rep, kind="call", at=NOW + timedelta(days=1),
                              subject="Call", contacts=[contact])
    assert activity_rows() == []


# --- who may log ---


@pytest.mark.parametrize(("who", "may"), [
    ("rep", True), ("manager", True), ("colleague", False), ("bdr", False),
    ("sales_ops", False), ("other_manager", False),
])
def test_whoever_may_edit_the_opportunity_logs_activities(deal, cast, who, may):
    user = getattr(cast, who)
    assert deal.activities_may_be_logged_by(user) is may
    if may:
        plan_call(deal, by=user)
        assert len(activity_rows()) == 1
    else:
        with pytest.raises(ChangeForbidden, match="You may not log activities on “Umbrella"):
            plan_call(deal, by=user)
        assert activity_rows() == []


def test_a_bdr_logs_activities_on_their_own_stage_1_opportunity_only(clock, cast):
    bdr = BdrFactory(team=cast.rep.team)
    own = OpportunityFactory(owner=bdr)
    assert own.activities_may_be_logged_by(bdr)
    plan_call(own, by=bdr)
    satisfy_gate(own, by=bdr)
    own.move_to(Stage.DISCOVERING, by=bdr, via="page", account_executive=cast.rep)
    assert not own.activities_may_be_logged_by(bdr)


def test_nobody_logs_activities_on_a_closed_or_dead_opportunity(deal, cast):
    deal.move_to(Stage.DEAD, by=cast.rep, via="page", reason="No budget",
                 dead_reason="no_budget")
    assert not deal.activities_may_be_logged_by(cast.rep)
    with pytest.raises(ChangeForbidden):
        plan_call(deal, by=cast.rep)


# --- planned ones are marked done or cancelled, never deleted ---


def test_a_planned_call_marked_done_after_its_time_keeps_its_time(clock, deal, cast):
    call = plan_call(deal, by=cast.rep, days_ahead=1)
    clock.advance(days=2)
    deal.complete_activity(call.pk, by=cast.rep)
    call.refresh_from_db()
    assert (call.status, call.at, call.closed_at, call.closed_by) == (
        ActivityStatus.DONE, NOW + timedelta(days=1), NOW + timedelta(days=2), cast.rep)


def test_a_planned_call_done_early_took_place_when_marked(clock, deal, cast):
    call = plan_call(deal, by=cast.rep, days_ahead=3)
    clock.advance(hours=5)
    deal.complete_activity(call.pk, by=cast.rep)
    call.refresh_from_db()
    assert call.at == NOW + timedelta(hours=5)


def test_a_cancelled_activity_stays_marked_cancelled(deal, cast):
    call = plan_call(deal, by=cast.rep)
    deal.cancel_activity(call.pk, by=cast.rep)
    assert activity_rows() == [("call", "cancelled", NOW + timedelta(days=3), "Detail session")]


@pytest.mark.parametrize("first", ["complete_activity", "cancel_activity"])
@pytest.mark.parametrize("then", ["complete_activity", "cancel_activity"])
def test_only_a_planned_activity_is_marked_done_or_cancelled(deal, cast, first, then):
    call = plan_call(deal, by=cast.rep)
    getattr(deal, first)(call.pk, by=cast.rep)
    before = activity_rows()
    with pytest.raises(InvalidChange, match="That activity is already"):
        getattr(deal, then)(call.pk, by=cast.rep)
    assert activity_rows() == before


def test_an_activity_of_another_opportunity_cannot_be_marked_from_this_one(deal, cast):
    other = OpportunityFactory(owner=cast.rep)
    call = plan_call(other, by=cast.rep)
    with pytest.raises(InvalidChange, match="That activity is not on this opportunity."):
        deal.complete_activity(call.pk, by=cast.rep)
    assert Activity.objects.get(pk=call.pk).status == ActivityStatus.PLANNED


def test_a_colleague_cannot_mark_the_reps_call_done(deal, cast):
    call = plan_call(deal, by=cast.rep)
    with pytest.raises(ChangeForbidden):
        deal.complete_activity(call.pk, by=cast.colleague)
    assert Activity.objects.get(pk=call.pk).status == ActivityStatus.PLANNED


# --- "the next call is scheduled" is derived ---


def met(opportunity: Opportunity) -> bool:
    return Opportunity.objects.get(pk=opportunity.pk).criterion_met(NEXT_CALL)


def test_the_next_call_is_scheduled_once_a_call_or_meeting_is_planned_ahead(deal, cast):
    assert not met(deal)
    plan_call(deal, by=cast.rep, kind=ActivityKind.EMAIL)
    assert not met(deal)
    plan_call(deal, by=cast.rep, kind=ActivityKind.MEETING)
    assert met(deal)


def test_a_call_whose_time_has_come_no_longer_schedules_the_next_one(clock, deal, cast):
    plan_call(deal, by=cast.rep, at=NOW + timedelta(hours=1))
    assert met(deal)
    clock.advance(hours=1)
    assert not met(deal)


def test_a_cancelled_or_done_call_schedules_nothing(deal, cast):
    first, second = plan_call(deal, by=cast.rep), plan_call(deal, by=cast.rep)
    deal.cancel_activity(first.pk, by=cast.rep)
    assert met(deal)
    deal.complete_activity(second.pk, by=cast.rep)
    assert not met(deal)


def test_leaving_identifying_needs_a_planned_call(deal, cast):
    for key in ("identifying.problem_described", "identifying.detail_sessions_committed"):
        deal.tick(key, by=cast.rep, note="On file")
    assert [c.key for c in deal.missing_criteria()] == ["identifying.next_call_scheduled"]
    plan_call(deal, by=cast.rep)
    deal.move_to(Stage.DISCOVERING, by=cast.rep, via="page")
    assert deal.stage == Stage.DISCOVERING


def test_the_board_counts_the_derived_criterion_as_the_gate_does(deal, cast):
    deal.tick("identifying.problem_described", by=cast.rep, note="On file")
    plan_call(deal, by=cast.rep)
    unplanned = OpportunityFactory(owner=cast.rep)
    cards = {card.pk: card.criteria_progress()
             for card in count_progress(list(Opportunity.objects.cards()))}
    assert cards == {deal.pk: (2, 3), unplanned.pk: (0, 3)}


# --- the card ---


def test_the_cards_read_their_next_planned_activity_in_bulk(clock, deal, cast):
    plan_call(deal, by=cast.rep, kind=ActivityKind.EMAIL, at=NOW + timedelta(days=4))
    plan_call(deal, by=cast.rep, kind=ActivityKind.MEETING, at=NOW + timedelta(days=2))
    past = plan_call(deal, by=cast.rep, at=NOW + timedelta(minutes=30))
    clock.advance(hours=1)  # the call planned for half an hour ago is not "next" any more
    [card] = count_progress([Opportunity.objects.cards().get(pk=deal.pk)])
    assert (card.next_activity_at, card.next_activity_kind, card.conversation_ahead) == (
        NOW + timedelta(days=2), "meeting", True)
    assert past.status == ActivityStatus.PLANNED


def test_board_queries_do_not_grow_with_cards_that_have_activities(client, clock, cast):
    def board_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/board/").status_code == 200
        return len(queries)

    def cards_with_activities(count: int) -> None:
        for number in range(count):
            opportunity = OpportunityFactory(owner=cast.rep)
            plan_call(opportunity, by=cast.rep, days_ahead=number + 1)
            opportunity.log_activity(by=cast.rep, kind="meeting", at=NOW, subject="Demo",
                                     done=True)

    client.force_login(cast.rep)
    cards_with_activities(3)
    few = board_queries()
    cards_with_activities(12)
    assert board_queries() == few
