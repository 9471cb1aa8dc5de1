"""Strong reasons keep an opportunity past its deadline (process.md, "Timeouts and the dead
pool"): work with the customer, and an amount that doubled. Each extends the deadline once
per stage visit, logged with its reason, and the manager hears of it. Time is frozen."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from pipeline.models import (
    ActivityKind,
    ActivityRule,
    DeadlineExtension,
    ExtensionKind,
    Opportunity,
    StageChange,
)
from pipeline.process import Stage
from pipeline.tasks import park_overdue_opportunities, warn_owners_of_deadlines
from tests.clock import MOMENT
from tests.factories import OpportunityFactory, advance

pytestmark = pytest.mark.django_db

ENTERED = MOMENT
DEADLINE = ENTERED + timedelta(days=30)  # Discovering's default timeout
SWEEP = DEADLINE + timedelta(minutes=1)


@pytest.fixture
def deal(clock, cast) -> Opportunity:
    """In Discovering since ENTERED, 50,000 EUR, owned by the cast's rep."""
    opportunity = OpportunityFactory(owner=cast.rep, name="Initech payroll")
    advance(opportunity, Stage.DISCOVERING)
    assert (opportunity.stage_entered_at, opportunity.stage_deadline) == (ENTERED, DEADLINE)
    return opportunity


def done(opportunity: Opportunity, at: datetime, kind=ActivityKind.CALL) -> None:
    opportunity.log_activity(by=opportunity.owner, kind=kind, at=at, subject="Weekly call",
                             done=True)


def stored(opportunity: Opportunity) -> Opportunity:
    return Opportunity.objects.get(pk=opportunity.pk)


def extensions(opportunity: Opportunity) -> list[tuple]:
    return list(DeadlineExtension.objects.filter(opportunity=opportunity).order_by("pk")
                .values_list("kind", "days", "previous_deadline", "new_deadline",
                             "granted_by", "reason"))


# --- customer activity ---


def test_two_done_calls_or_meetings_in_14_days_extend_an_overdue_deadline_by_14_days(
        clock, cast, deal):
    clock.set(SWEEP)
    done(deal, SWEEP - timedelta(days=3))
    done(deal, SWEEP - timedelta(days=1), kind=ActivityKind.MEETING)

    assert park_overdue_opportunities() == 0

    assert stored(deal).stage == Stage.DISCOVERING
    assert stored(deal).stage_deadline == DEADLINE + timedelta(days=14)
    assert extensions(deal) == [(
        ExtensionKind.ACTIVITY, 14, DEADLINE, DEADLINE + timedelta(days=14), None,
        "2 calls or meetings with the customer in the last 14 days.",
    )]
    [told] = cast.manager.notifications.all()
    assert told.subject == "Initech payroll got more time"
    assert told.body == (
        "The deadline of “Initech payroll” in Discovering Problems, Impacts & Goals moved by "
        "14 days to 2026-06-17 08:30: 2 calls or meetings with the customer in the last 14 "
        "days.")
    assert not cast.other_manager.notifications.exists()
    assert not StageChange.objects.filter(opportunity=deal, to_stage=Stage.DEAD).exists()


@pytest.mark.parametrize(("age", "parked"), [
    (timedelta(days=14), 0),  # exactly 14 days before the sweep: still in the window
    (timedelta(days=14, seconds=1), 1),  # a second older: out of it
])
def test_the_14_day_window_counts_from_the_sweep_back_including_its_first_moment(
        clock, deal, age, parked):
    clock.set(SWEEP)
    done(deal, SWEEP - age)
    done(deal, SWEEP - timedelta(hours=1))

    assert park_overdue_opportunities() == parked

    assert stored(deal).stage == (Stage.DEAD if parked else Stage.DISCOVERING)


def test_one_call_is_not_enough(clock, deal):
    clock.set(SWEEP)
    done(deal, SWEEP - timedelta(days=2))
    assert park_overdue_opportunities() == 1
    assert stored(deal).stage == Stage.DEAD
    assert extensions(deal) == []


def test_e_mails_and_calls_not_done_are_not_significant_activity(clock, deal):
    clock.set(SWEEP - timedelta(days=2))
    planned = deal.log_activity(by=deal.owner, kind=ActivityKind.CALL, subject="Follow-up",
                                at=SWEEP + timedelta(days=1))
    cancelled = deal.log_activity(by=deal.owner, kind=ActivityKind.MEETING, subject="Demo",
                                  at=SWEEP - timedelta(days=1))
    deal.cancel_activity(cancelled.pk, by=deal.owner)
    clock.set(SWEEP)
    done(deal, SWEEP - timedelta(days=3), kind=ActivityKind.EMAIL)
    done(deal, SWEEP - timedelta(days=2), kind=ActivityKind.EMAIL)
    done(deal, SWEEP - timedelta(days=1))

    assert park_overdue_opportunities() == 1
    assert stored(deal).stage == Stage.DEAD
    assert planned.pk and extensions(deal) == []


def test_activity_extends_once_per_stage_visit(clock, deal):
    clock.set(SWEEP)
    done(deal, SWEEP - timedelta(days=2))
    done(deal, SWEEP - timedelta(days=1))
    assert park_overdue_opportunities() == 0

    second_sweep = clock.set(DEADLINE + timedelta(days=14, minutes=1))
    done(deal, second_sweep - timedelta(days=2))
    done(deal, second_sweep - timedelta(days=1))

    assert park_overdue_opportunities() == 1
    assert stored(deal).stage == Stage.DEAD
    assert [kind for kind, *_ in extensions(deal)] == [ExtensionKind.ACTIVITY]


def test_a_new_stage_visit_earns_the_activity_extension_again(clock, deal):
    clock.set(SWEEP)
    done(deal, SWEEP - timedelta(days=2))
    done(deal, SWEEP - timedelta(days=1))
    assert park_overdue_opportunities() == 0
    entered_validating = clock.set(SWEEP + timedelta(days=1))
    advance(deal, Stage.VALIDATING)

    overdue_again = clock.set(entered_validating + timedelta(days=30, minutes=1))
    done(deal, overdue_again - timedelta(days=2))
    done(deal, overdue_again - timedelta(days=1))

    assert park_overdue_opportunities() == 0
    assert stored(deal).stage == Stage.VALIDATING
    assert [(kind, days) for kind, days, *_ in extensions(deal)] == [
        (ExtensionKind.ACTIVITY, 14), (ExtensionKind.ACTIVITY, 14)]


def test_sales_ops_set_how_many_conversations_within_how_many_days_earn_how_long(
        clock, deal):
    ActivityRule.objects.update_or_create(pk=1, defaults={
        "conversations": 3, "within_days": 7, "extension_days": 10})
    clock.set(SWEEP)
    done(deal, SWEEP - timedelta(days=8))  # outside the 7 days
    done(deal, SWEEP - timedelta(days=6))
    done(deal, SWEEP - timedelta(days=5))
    second = OpportunityFactory(owner=deal.owner)
    clock.set(ENTERED)
    advance(second, Stage.DISCOVERING)
    clock.set(SWEEP)
    for days in (6, 5, 4):
        done(second, SWEEP - timedelta(days=days))

    assert park_overdue_opportunities() == 1

    assert stored(deal).stage == Stage.DEAD
    assert stored(second).stage_deadline == DEADLINE + timedelta(days=10)
    assert [reason for *_, reason in extensions(second)] == [
        "3 calls or meetings with the customer in the last 7 days."]


def test_the_activity_rule_shows_its_numbers():
    assert str(ActivityRule.current()) == "2 calls or meetings in 14 days"


def test_activity_before_the_deadline_extends_nothing_until_the_sweep_finds_it_overdue(
        clock, deal):
    clock.set(DEADLINE - timedelta(days=2))
    done(deal, DEADLINE - timedelta(days=3))
    done(deal, DEADLINE - timedelta(days=2))

    assert park_overdue_opportunities() == 0

    assert stored(deal).stage_deadline == DEADLINE
    assert extensions(deal) == []


def test_two_sweeps_at_once_extend_it_once(clock, deal):
    clock.set(SWEEP)
    done(deal, SWEEP - timedelta(days=2))
    done(deal, SWEEP - timedelta(days=1))
    rule = ActivityRule.current()

    assert Opportunity.extend_if_earned(deal.pk, SWEEP, rule) is True
    assert Opportunity.extend_if_earned(deal.pk, SWEEP, rule) is False
    assert len(extensions(deal)) == 1


def test_an_extension_earns_the_owner_a_new_warning_before_the_new_deadline(clock, deal):
    clock.set(DEADLINE - timedelta(days=3))
    assert warn_owners_of_deadlines() == 1
    clock.set(SWEEP)
    done(deal, SWEEP - timedelta(days=2))
    done(deal, SWEEP - timedelta(days=1))
    park_overdue_opportunities()
    assert stored(deal).deadline_warned_at is None

    clock.set(DEADLINE + timedelta(days=10))
    assert warn_owners_of_deadlines() == 1


# --- an amount that doubled ---


def test_an_amount_doubled_in_the_stage_extends_the_deadline_by_one_stage_timeout(
        clock, cast, deal):
    clock.set(ENTERED + timedelta(days=10))
    deal.update_details(by=cast.rep, amount=Decimal("100000.00"))

    assert stored(deal).stage_deadline == DEADLINE + timedelta(days=30)
    assert extensions(deal) == [(
        ExtensionKind.GROWTH, 30, DEADLINE, DEADLINE + timedelta(days=30), None,
        "The amount grew from 50,000.00 to 100,000.00 EUR since the stage was entered.",
    )]
    [told] = cast.manager.notifications.all()
    assert told.subject == "Initech payroll got more time"


def test_an_amount_just_short_of_double_extends_nothing(clock, cast, deal):
    deal.update_details(by=cast.rep, amount=Decimal("99999.99"))
    assert stored(deal).stage_deadline == DEADLINE
    assert extensions(deal) == []
    clock.set(SWEEP)
    assert park_overdue_opportunities() == 1


def test_growth_extends_once_per_stage_visit(clock, cast, deal):
    deal.update_details(by=cast.rep, amount=Decimal("100000.00"))
    deal.update_details(by=cast.rep, amount=Decimal("400000.00"))
    assert [kind for kind, *_ in extensions(deal)] == [ExtensionKind.GROWTH]
    assert stored(deal).stage_deadline == DEADLINE + timedelta(days=30)


def test_the_next_stage_measures_growth_from_the_amount_it_was_entered_with(
        clock, cast, deal):
    deal.update_details(by=cast.rep, amount=Decimal("100000.00"))
    clock.set(ENTERED + timedelta(days=5))
    advance(deal, Stage.VALIDATING)

    deal.update_details(by=cast.rep, amount=Decimal("150000.00"))
    assert [kind for kind, *_ in extensions(deal)] == [ExtensionKind.GROWTH]
    deal.update_details(by=cast.rep, amount=Decimal("200000.00"))
    assert [kind for kind, *_ in extensions(deal)] == [ExtensionKind.GROWTH] * 2


def test_an_offer_whose_total_doubles_the_amount_extends_the_deadline(clock, cast, deal):
    deal.save_offer(by=cast.rep, service_start=ENTERED.date(),
                    service_end=ENTERED.date() + timedelta(days=364), payment_terms="30 days")
    deal.add_offer_line(by=cast.rep, description="Seats", quantity=Decimal(200),
                        list_price=Decimal(500))
    assert stored(deal).amount == Decimal("100000.00")
    assert [(kind, days) for kind, days, *_ in extensions(deal)] == [
        (ExtensionKind.GROWTH, 30)]


def test_an_amount_entered_as_zero_has_no_double(clock, cast):
    opportunity = OpportunityFactory(owner=cast.rep, amount=Decimal(0))
    advance(opportunity, Stage.DISCOVERING)
    opportunity.update_details(by=cast.rep, amount=Decimal("80000.00"))
    assert extensions(opportunity) == []


def test_the_sweep_extends_an_amount_that_doubled_outside_the_app(clock, deal):
    Opportunity.objects.filter(pk=deal.pk).update(amount=Decimal("100000.00"))
    clock.set(SWEEP)

    assert park_overdue_opportunities() == 0

    assert stored(deal).stage_deadline == DEADLINE + timedelta(days=30)
    assert [kind for kind, *_ in extensions(deal)] == [ExtensionKind.GROWTH]


def test_a_doubled_amount_extended_once_is_parked_at_its_new_deadline(clock, cast, deal):
    deal.update_details(by=cast.rep, amount=Decimal("100000.00"))
    clock.set(DEADLINE + timedelta(days=30, minutes=1))

    assert park_overdue_opportunities() == 1
    assert stored(deal).stage == Stage.DEAD


def test_the_page_shows_an_extension_the_system_granted(client, clock, cast, deal):
    deal.update_details(by=cast.rep, amount=Decimal("100000.00"))
    client.force_login(cast.rep)
    html = client.get(f"/opportunities/{deal.pk}/").content.decode()
    assert ("30 more days for amount doubled: “The amount grew from 50,000.00 to 100,000.00 "
            "EUR since the stage was entered.”") in html


# --- sales ops keep the rule ---


def rule_change(client, user) -> int:
    user.is_staff = True  # so the admin answers with the role's verdict, not a login
    user.save()
    client.force_login(user)
    return client.post("/admin/pipeline/activityrule/1/change/", {
        "conversations": 3, "within_days": 10, "extension_days": 7}).status_code


def test_sales_ops_change_the_activity_rule_in_the_admin(client, cast):
    assert rule_change(client, cast.sales_ops) == 302
    rule = ActivityRule.current()
    assert (rule.conversations, rule.within_days, rule.extension_days, rule.updated_by) == (
        3, 10, 7, cast.sales_ops)


@pytest.mark.parametrize("who", ["rep", "manager", "bdr"])
def test_nobody_else_changes_the_activity_rule(client, cast, who):
    assert rule_change(client, getattr(cast, who)) == 403
    rule = ActivityRule.current()
    assert (rule.conversations, rule.within_days, rule.extension_days) == (2, 14, 14)
