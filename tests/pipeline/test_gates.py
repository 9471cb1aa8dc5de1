"""Every exit criterion guards its stage: alone unmet, it blocks the move and is named."""

import pytest

from pipeline.models import CriterionTick, GateNotMet, InvalidChange, Opportunity, Via
from pipeline.process import CRITERIA, PROCESS, CriterionKind, Stage, next_stage
from tests.factories import (
    ContactFactory,
    OpportunityFactory,
    RepFactory,
    accept_close_plan,
    advance,
    plan_call,
    record_order,
    satisfy_gate,
    stored_state,
)

pytestmark = pytest.mark.django_db

# process.md, "Exit criteria", stages 1 to 6: 3 + 5 + 3 + 3 + 4 + 2.
ALL_CRITERIA = [
    "identifying.problem_described",
    "identifying.detail_sessions_committed",
    "identifying.next_call_scheduled",
    "discovering.goals_written",
    "discovering.budget_and_intent",
    "discovering.timeline_known",
    "discovering.summary_confirmed",
    "discovering.solution_outline",
    "validating.champion_confirmed",
    "validating.committee_identified",
    "validating.champion_committed",
    "confirming.committee_preferred_vendor",
    "confirming.offer_in_ballpark",
    "confirming.close_plan_accepted",
    "negotiating.risk_assessment",
    "negotiating.security_assessment",
    "negotiating.alignment_complete",
    "negotiating.commercials_complete",
    "finalizing.customer_signed",
    "finalizing.purchase_order_recorded",
]
NOT_REQUIRED_ALLOWED = ["negotiating.risk_assessment", "negotiating.security_assessment"]


def meet(opportunity: Opportunity, key: str) -> None:
    """Meet one criterion the way a person would."""
    rep = opportunity.owner
    if key == "validating.champion_confirmed":
        opportunity.name_champion(ContactFactory(account=opportunity.account), by=rep)
    elif key == "validating.committee_identified":
        opportunity.add_committee_member(ContactFactory(account=opportunity.account), by=rep)
    elif key == "confirming.committee_preferred_vendor":
        for member in opportunity.active_committee():
            opportunity.record_preferred_vendor(member.contact, by=rep)
    elif key == "finalizing.purchase_order_recorded":
        record_order(opportunity, by=rep)
    elif key == "confirming.close_plan_accepted":
        accept_close_plan(opportunity, by=rep)
    elif key == "identifying.next_call_scheduled":
        plan_call(opportunity, by=rep)
    else:
        opportunity.tick(key, by=rep, note="Evidence on file")
    opportunity.reload()


def in_stage_with_all_but(key: str) -> Opportunity:
    """An opportunity in the criterion's stage with every other criterion of it met."""
    criterion = CRITERIA[key]
    opportunity = advance(OpportunityFactory(owner=RepFactory()), criterion.stage)
    for other in PROCESS[criterion.stage].exit_criteria:
        if other != criterion:
            meet(opportunity, other.key)
    return opportunity


def test_the_criteria_tested_here_are_every_criterion_of_the_process():
    assert sorted(ALL_CRITERIA) == sorted(CRITERIA)


@pytest.mark.parametrize("key", ALL_CRITERIA)
def test_each_criterion_alone_unmet_blocks_leaving_its_stage_and_is_named(key):
    criterion = CRITERIA[key]
    stage = criterion.stage
    opportunity = in_stage_with_all_but(key)
    assert opportunity.missing_criteria() == [criterion]
    before = stored_state(opportunity)

    with pytest.raises(GateNotMet) as refusal:
        opportunity.move_to(next_stage(stage), by=opportunity.owner, via=Via.BOARD)

    assert refusal.value.stage == stage
    assert refusal.value.missing == [criterion]
    assert str(criterion.label) in refusal.value.message
    assert stored_state(opportunity) == before


@pytest.mark.parametrize("key", ALL_CRITERIA)
def test_meeting_the_last_criterion_opens_the_gate(key):
    criterion = CRITERIA[key]
    stage = criterion.stage
    opportunity = in_stage_with_all_but(key)

    meet(opportunity, key)
    opportunity.move_to(next_stage(stage), by=opportunity.owner, via=Via.BOARD)

    assert opportunity.stage == next_stage(stage)


def test_assessments_marked_not_required_satisfy_the_negotiating_gate():
    opportunity = advance(OpportunityFactory(owner=RepFactory()), Stage.NEGOTIATING)
    rep = opportunity.owner
    for key in NOT_REQUIRED_ALLOWED:
        opportunity.tick(key, by=rep, note="Small add-on, the customer waives it",
                         not_required=True)
    satisfy_gate(opportunity)
    assert opportunity.ticks.filter(state=CriterionTick.State.NOT_REQUIRED).count() == 2

    opportunity.move_to(Stage.FINALIZING, by=rep, via=Via.BOARD)

    row = opportunity.stage_changes.order_by("pk").last()
    for key in NOT_REQUIRED_ALLOWED:
        assert row.checklist["criteria"][key]["met"] is True
        assert row.checklist["criteria"][key]["state"] == "not_required"


@pytest.mark.parametrize(
    "key",
    [key for key in ALL_CRITERIA
     if key not in NOT_REQUIRED_ALLOWED and CRITERIA[key].kind == CriterionKind.TICKED],
)
def test_other_ticked_criteria_cannot_be_marked_not_required(key):
    opportunity = OpportunityFactory(owner=RepFactory())
    before = stored_state(opportunity)

    with pytest.raises(InvalidChange, match="cannot be marked not required"):
        opportunity.tick(key, by=opportunity.owner, note="Not needed", not_required=True)

    assert stored_state(opportunity) == before


@pytest.mark.parametrize(
    "key", [key for key in ALL_CRITERIA if CRITERIA[key].kind == CriterionKind.DERIVED]
)
def test_criteria_derived_from_data_cannot_be_ticked_or_waived(key):
    opportunity = OpportunityFactory(owner=RepFactory())

    for not_required in (False, True):
        with pytest.raises(InvalidChange, match="not a criterion a person ticks"):
            opportunity.tick(key, by=opportunity.owner, note="Trust me",
                             not_required=not_required)

    assert opportunity.ticks.count() == 0


def test_a_tick_needs_evidence():
    opportunity = OpportunityFactory(owner=RepFactory())

    with pytest.raises(InvalidChange, match="evidence"):
        opportunity.tick("identifying.problem_described", by=opportunity.owner, note="  ")

    assert opportunity.ticks.count() == 0


def test_missing_criteria_answers_in_plain_words():
    opportunity = OpportunityFactory(owner=RepFactory())
    opportunity.tick("identifying.detail_sessions_committed", by=opportunity.owner,
                     note="Two sessions booked")

    assert [str(criterion) for criterion in opportunity.missing_criteria()] == [
        "The customer's problem or project is described",
        "The next call is scheduled",
    ]
    assert [str(criterion) for criterion in opportunity.missing_criteria(Stage.VALIDATING)] == [
        "A champion is named and confirmed convinced",
        "The decision committee is identified",
        "The champion committed to involve every decision maker, with a joint plan to win "
        "the rest of the committee",
    ]


def test_a_champion_named_but_not_convinced_does_not_count():
    opportunity = advance(OpportunityFactory(owner=RepFactory()), Stage.VALIDATING)
    opportunity.name_champion(ContactFactory(account=opportunity.account),
                              by=opportunity.owner, confirmed=False)

    assert CRITERIA["validating.champion_confirmed"] in opportunity.missing_criteria()


def test_a_contact_of_another_account_cannot_be_champion_or_committee_member():
    opportunity = OpportunityFactory(owner=RepFactory())
    stranger = ContactFactory()

    with pytest.raises(InvalidChange, match="is not a contact of"):
        opportunity.name_champion(stranger, by=opportunity.owner)
    with pytest.raises(InvalidChange, match="is not a contact of"):
        opportunity.add_committee_member(stranger, by=opportunity.owner)


def test_the_committee_gate_needs_every_active_member_to_confirm():
    opportunity = advance(OpportunityFactory(owner=RepFactory()), Stage.VALIDATING)
    rep = opportunity.owner
    convinced, undecided = ContactFactory.create_batch(2, account=opportunity.account)
    opportunity.add_committee_member(convinced, by=rep)
    opportunity.add_committee_member(undecided, by=rep)
    opportunity.record_preferred_vendor(convinced, by=rep)
    key = "confirming.committee_preferred_vendor"
    assert CRITERIA[key] in opportunity.missing_criteria(Stage.CONFIRMING)

    # A member who left the committee no longer holds the gate closed.
    opportunity.remove_committee_member(undecided, by=rep)

    assert CRITERIA[key] not in opportunity.missing_criteria(Stage.CONFIRMING)


def test_criteria_of_a_stage_already_left_cannot_be_changed():
    opportunity = advance(OpportunityFactory(owner=RepFactory()), Stage.DISCOVERING)
    before = stored_state(opportunity)

    with pytest.raises(InvalidChange, match="can no longer be changed"):
        opportunity.untick("identifying.problem_described", by=opportunity.owner)

    assert stored_state(opportunity) == before


def test_the_gates_of_later_stages_can_be_prepared_ahead():
    opportunity = OpportunityFactory(owner=RepFactory())
    for stage in (Stage.IDENTIFYING, Stage.DISCOVERING):
        satisfy_gate(opportunity, stage)

    opportunity.move_to(Stage.VALIDATING, by=opportunity.owner, via=Via.BOARD)

    assert opportunity.stage == Stage.VALIDATING
    assert len(PROCESS[Stage.VALIDATING].exit_criteria) == len(opportunity.missing_criteria())
