"""Opportunity.move_to: all or nothing, versioned, and every move leaves a full history row."""

from datetime import UTC, datetime, timedelta

import pytest

from crm.models import Notification
from pipeline.models import (
    ChangeForbidden,
    ChangeRefused,
    CommitteeMember,
    Conflict,
    CriterionTick,
    GateNotMet,
    InvalidChange,
    Opportunity,
    ReviewCheck,
    StageChange,
    Via,
)
from pipeline.process import CRITERIA, ORDERED_STAGES, PROCESS, DeadReason, Stage
from tests.factories import (
    BdrFactory,
    Cast,
    OpportunityFactory,
    RepFactory,
    advance,
    approve,
    make_cast,
    satisfy_gate,
    stored_state,
)

pytestmark = pytest.mark.django_db

MOMENT = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)


@pytest.fixture
def cast() -> Cast:
    return make_cast()


def in_confirming(cast: Cast) -> Opportunity:
    """An opportunity in Confirming with history, ticks and a confirmed committee member,
    but no accepted close plan yet."""
    opportunity = advance(OpportunityFactory(owner=cast.rep), Stage.CONFIRMING)
    opportunity.tick("confirming.offer_in_ballpark", by=cast.rep, note="Within budget")
    member = opportunity.active_committee()[0]
    opportunity.record_preferred_vendor(member.contact, by=cast.rep)
    opportunity.reload()
    return opportunity


# --- refusals change nothing ---


REFUSED_MOVES = {
    "gate not met": lambda o, cast: o.move_to(Stage.NEGOTIATING, by=cast.rep, via=Via.BOARD),
    "forbidden to a colleague": lambda o, cast: o.move_to(
        Stage.DISCOVERING, by=cast.colleague, via=Via.BOARD, reason="Budget cut"
    ),
    "stale version": lambda o, cast: o.move_to(
        Stage.DISCOVERING, by=cast.rep, via=Via.BOARD, reason="Budget cut",
        expected_version=o.version - 1,
    ),
    "back without a reason": lambda o, cast: o.move_to(
        Stage.DISCOVERING, by=cast.rep, via=Via.BOARD
    ),
    "straight to closed": lambda o, cast: o.move_to(Stage.CLOSED, by=cast.rep, via=Via.BOARD),
    "dead without a note": lambda o, cast: o.move_to(
        Stage.DEAD, by=cast.rep, via=Via.BOARD, dead_reason=DeadReason.NO_BUDGET
    ),
    "sideways to the same stage": lambda o, cast: o.move_to(
        Stage.CONFIRMING, by=cast.rep, via=Via.BOARD
    ),
}
EXPECTED_REFUSAL = {
    "gate not met": GateNotMet,
    "forbidden to a colleague": ChangeForbidden,
    "stale version": Conflict,
    "back without a reason": InvalidChange,
    "straight to closed": InvalidChange,
    "dead without a note": InvalidChange,
    "sideways to the same stage": InvalidChange,
}


@pytest.mark.parametrize("refusal", REFUSED_MOVES)
def test_refused_move_changes_nothing(cast, refusal):
    opportunity = in_confirming(cast)
    before = stored_state(opportunity)
    version = opportunity.version

    with pytest.raises(EXPECTED_REFUSAL[refusal]):
        REFUSED_MOVES[refusal](opportunity, cast)

    assert stored_state(opportunity) == before
    assert (opportunity.stage, opportunity.version) == (Stage.CONFIRMING, version)


def test_move_with_an_old_version_is_a_conflict_naming_who_changed_it(cast):
    opportunity = in_confirming(cast)
    loaded_version = opportunity.version
    # The manager changes it on their screen after the rep loaded the page.
    Opportunity.objects.get(pk=opportunity.pk).update_details(
        by=cast.manager, next_step="The manager calls the CFO")
    before = stored_state(opportunity)

    with pytest.raises(Conflict) as refusal:
        opportunity.move_to(Stage.NEGOTIATING, by=cast.rep, via=Via.BOARD,
                            expected_version=loaded_version)

    assert cast.manager.get_full_name()
    assert cast.manager.get_full_name() in refusal.value.message
    assert refusal.value.opportunity.version == loaded_version + 1
    assert stored_state(opportunity) == before


def test_conflict_after_a_system_change_names_the_system(cast):
    opportunity = in_confirming(cast)
    loaded_version = opportunity.version
    Opportunity.objects.get(pk=opportunity.pk).update_details(by=None, next_step="Call back")

    with pytest.raises(Conflict) as refusal:
        opportunity.move_to(Stage.DISCOVERING, by=cast.rep, via=Via.BOARD,
                            reason="Budget cut", expected_version=loaded_version)

    assert "the system" in refusal.value.message


def test_move_with_the_current_version_goes_through(cast):
    opportunity = in_confirming(cast)
    opportunity.move_to(Stage.DISCOVERING, by=cast.rep, via=Via.BOARD, reason="Budget cut",
                        expected_version=opportunity.version)
    assert opportunity.stage == Stage.DISCOVERING


def test_every_change_bumps_the_version_once(cast):
    opportunity = OpportunityFactory(owner=cast.rep)
    contact = opportunity.account.contacts.create(first_name="Ada", last_name="Park")
    changes = [
        lambda: opportunity.tick("identifying.problem_described", by=cast.rep, note="Call"),
        lambda: opportunity.untick("identifying.problem_described", by=cast.rep),
        lambda: opportunity.name_champion(contact, by=cast.rep),
        lambda: opportunity.add_committee_member(contact, by=cast.rep),
        lambda: opportunity.record_preferred_vendor(contact, by=cast.rep),
        lambda: opportunity.remove_committee_member(contact, by=cast.rep),
        lambda: opportunity.update_details(by=cast.rep, next_step="Send the deck"),
    ]
    for number, change in enumerate(changes, start=2):
        change()
        assert Opportunity.objects.get(pk=opportunity.pk).version == number
    satisfy_gate(opportunity)
    version = opportunity.version
    opportunity.move_to(Stage.DISCOVERING, by=cast.rep, via=Via.BOARD)
    assert Opportunity.objects.get(pk=opportunity.pk).version == version + 1


# --- forward over several stages ---


def test_moving_several_stages_writes_one_history_row_per_gated_step(cast):
    opportunity = OpportunityFactory(owner=cast.rep)
    for stage in ORDERED_STAGES[:6]:
        satisfy_gate(opportunity, stage)
    version = opportunity.version

    # As far as the purchase order, which is recorded once there.
    changes = opportunity.move_to(Stage.FINALIZING, by=cast.rep, via=Via.BOARD)

    rows = list(opportunity.stage_changes.order_by("pk"))
    assert changes == rows
    assert [(row.from_stage, row.to_stage) for row in rows] == [
        ("identifying", "discovering"),
        ("discovering", "validating"),
        ("validating", "confirming"),
        ("confirming", "negotiating"),
        ("negotiating", "finalizing"),
    ]
    assert opportunity.stage == Stage.FINALIZING
    assert opportunity.version == version + 1
    for row in rows:
        criteria = row.checklist["criteria"]
        assert all(criteria[c.key]["met"] for c in PROCESS[Stage(row.from_stage)].exit_criteria)


def test_moving_several_stages_stops_at_the_first_unmet_gate_and_moves_nothing(cast):
    opportunity = OpportunityFactory(owner=cast.rep)
    satisfy_gate(opportunity, Stage.IDENTIFYING)
    satisfy_gate(opportunity, Stage.DISCOVERING)
    # Validating lacks the champion's commitment; Confirming lacks everything.
    opportunity.name_champion(
        opportunity.account.contacts.create(first_name="Ada", last_name="Park"), by=cast.rep
    )
    opportunity.add_committee_member(
        opportunity.account.contacts.create(first_name="Bo", last_name="Chen"), by=cast.rep
    )
    before = stored_state(opportunity)

    with pytest.raises(GateNotMet) as refusal:
        opportunity.move_to(Stage.NEGOTIATING, by=cast.rep, via=Via.BOARD)

    assert refusal.value.stage == Stage.VALIDATING
    assert refusal.value.missing == [CRITERIA["validating.champion_committed"]]
    assert stored_state(opportunity) == before
    assert opportunity.stage == Stage.IDENTIFYING


def test_forward_move_with_an_unmet_gate_names_what_is_missing_in_plain_words(cast):
    opportunity = OpportunityFactory(owner=cast.rep)
    opportunity.tick("identifying.problem_described", by=cast.rep, note="Call notes")

    with pytest.raises(GateNotMet) as refusal:
        opportunity.move_to(Stage.DISCOVERING, by=cast.rep, via=Via.BOARD)

    assert refusal.value.stage == Stage.IDENTIFYING
    assert "The customer committed to one to three further detail sessions" in str(
        refusal.value
    )
    assert "The next call is scheduled" in str(refusal.value)
    assert "problem or project is described" not in str(refusal.value)


# --- backward ---


def test_moving_back_reopens_the_target_stage_and_every_later_one(cast):
    opportunity = advance(OpportunityFactory(owner=cast.rep), Stage.NEGOTIATING)
    opportunity.tick("negotiating.risk_assessment", by=cast.rep, note="Passed")
    ticks_before = {tick.pk: tick.criterion for tick in opportunity.ticks.all()}
    champion = opportunity.champion

    opportunity.move_to(Stage.VALIDATING, by=cast.rep, via=Via.PAGE,
                        reason="The champion left the company", now=MOMENT)

    ticks = {tick.pk: tick for tick in CriterionTick.objects.filter(opportunity=opportunity)}
    assert set(ticks) == set(ticks_before), "old tick rows remain"
    still_counting = sorted(t.criterion for t in ticks.values() if t.revoked_at is None)
    assert still_counting == sorted(
        [c.key for c in PROCESS[Stage.IDENTIFYING].exit_criteria if c.kind == "ticked"]
        + [c.key for c in PROCESS[Stage.DISCOVERING].exit_criteria]
    )
    for tick in ticks.values():
        if tick.revoked_at is not None:
            assert (tick.revoked_at, tick.revoked_by) == (MOMENT, cast.rep)
    assert {t.criterion for t in ticks.values() if t.revoked_at is not None} == {
        "validating.champion_committed",
        "confirming.offer_in_ballpark",
        "negotiating.risk_assessment",
    }
    assert opportunity.close_plan.rep_accepted_at is None  # accepted again, by both sides
    assert opportunity.champion == champion
    assert opportunity.champion_confirmed_at is None
    assert opportunity.champion_confirmed_by is None
    assert [member.confirmed_on for member in opportunity.active_committee()] == [None]
    assert [c.key for c in opportunity.missing_criteria()] == [
        "validating.champion_confirmed",
        "validating.champion_committed",
    ]


def test_moving_back_to_confirming_keeps_the_champion_but_resets_committee_confirmations(cast):
    opportunity = advance(OpportunityFactory(owner=cast.rep), Stage.NEGOTIATING)
    confirmed_at = opportunity.champion_confirmed_at

    opportunity.move_to(Stage.CONFIRMING, by=cast.rep, via=Via.PAGE,
                        reason="A new board member must approve")

    assert opportunity.champion_confirmed_at == confirmed_at
    assert opportunity.missing_criteria(Stage.VALIDATING) == []
    assert [member.confirmed_on for member in opportunity.active_committee()] == [None]
    assert CommitteeMember.objects.filter(opportunity=opportunity).count() == 1
    assert [c.key for c in opportunity.missing_criteria()] == [
        "confirming.committee_preferred_vendor",
        "confirming.offer_in_ballpark",
        "confirming.close_plan_accepted",
    ]


def test_moving_back_to_identifying_reopens_the_first_gate(cast):
    opportunity = advance(OpportunityFactory(owner=cast.rep), Stage.DISCOVERING)

    opportunity.move_to(Stage.IDENTIFYING, by=cast.rep, via=Via.PAGE,
                        reason="They are not ready to talk yet")

    # The ticks reopen; the call planned with the customer is still planned, so "the next
    # call is scheduled" (derived from it) holds.
    assert [criterion.key for criterion in opportunity.missing_criteria()] == [
        "identifying.problem_described", "identifying.detail_sessions_committed"]
    assert opportunity.ticks.filter(revoked_at__isnull=True).count() == 0
    assert opportunity.ticks.count() == 2


@pytest.mark.parametrize("reason", ["", "   "])
def test_moving_back_needs_a_reason(cast, reason):
    opportunity = advance(OpportunityFactory(owner=cast.rep), Stage.VALIDATING)
    before = stored_state(opportunity)

    with pytest.raises(InvalidChange, match="Say why"):
        opportunity.move_to(Stage.DISCOVERING, by=cast.rep, via=Via.PAGE, reason=reason)

    assert stored_state(opportunity) == before


# --- leaving stage 1: the BDR hands over to an account executive ---


def bdr_opportunity(cast: Cast) -> Opportunity:
    opportunity = OpportunityFactory(owner=cast.bdr)
    satisfy_gate(opportunity, by=cast.bdr)
    return opportunity


def test_leaving_identifying_from_a_bdr_owned_opportunity_needs_an_account_executive(cast):
    opportunity = bdr_opportunity(cast)
    before = stored_state(opportunity)

    with pytest.raises(InvalidChange, match="account executive"):
        opportunity.move_to(Stage.DISCOVERING, by=cast.bdr, via=Via.BOARD)

    assert stored_state(opportunity) == before


@pytest.mark.parametrize("who", ["another BDR", "sales ops", "a former rep"])
def test_only_an_active_rep_can_take_over_as_account_executive(cast, who):
    opportunity = bdr_opportunity(cast)
    candidate = {
        "another BDR": lambda: BdrFactory(team=cast.rep.team),
        "sales ops": lambda: cast.sales_ops,
        "a former rep": lambda: RepFactory(team=cast.rep.team, is_active=False),
    }[who]()
    before = stored_state(opportunity)

    with pytest.raises(InvalidChange, match="not an account executive"):
        opportunity.move_to(Stage.DISCOVERING, by=cast.bdr, via=Via.BOARD,
                            account_executive=candidate)

    assert stored_state(opportunity) == before


def test_leaving_identifying_hands_the_opportunity_over_to_the_account_executive(cast):
    opportunity = bdr_opportunity(cast)

    changes = opportunity.move_to(Stage.DISCOVERING, by=cast.bdr, via=Via.BOARD,
                                  account_executive=cast.rep, now=MOMENT)

    assert opportunity.owner == cast.rep
    assert [change.handed_to for change in changes] == [cast.rep]
    owner_change = opportunity.field_changes.get()
    assert (owner_change.field, owner_change.changed_by, owner_change.changed_at) == (
        "owner", cast.bdr, MOMENT,
    )
    assert owner_change.old_value == f"{cast.bdr.pk}:{cast.bdr}"
    assert owner_change.new_value == f"{cast.rep.pk}:{cast.rep}"
    # Past stage 1 the BDR no longer works it.
    with pytest.raises(ChangeForbidden):
        opportunity.move_to(Stage.IDENTIFYING, by=cast.bdr, via=Via.BOARD, reason="Undo")


def test_an_owner_moving_their_own_card_out_of_identifying_hands_nothing_over(cast):
    opportunity = OpportunityFactory(owner=cast.rep)
    satisfy_gate(opportunity)

    changes = opportunity.move_to(Stage.DISCOVERING, by=cast.rep, via=Via.BOARD,
                                  account_executive=cast.rep)

    assert [change.handed_to for change in changes] == [None]
    assert not opportunity.field_changes.exists()


def test_handover_is_recorded_on_the_first_step_only_of_a_multi_stage_move(cast):
    opportunity = bdr_opportunity(cast)
    satisfy_gate(opportunity, Stage.DISCOVERING, by=cast.bdr)

    changes = opportunity.move_to(Stage.VALIDATING, by=cast.bdr, via=Via.BOARD,
                                  account_executive=cast.rep)

    assert [change.handed_to for change in changes] == [cast.rep, None]
    assert opportunity.owner == cast.rep


def test_a_failed_gate_after_naming_the_account_executive_keeps_the_bdr_as_owner(cast):
    opportunity = OpportunityFactory(owner=cast.bdr)
    before = stored_state(opportunity)

    with pytest.raises(GateNotMet):
        opportunity.move_to(Stage.DISCOVERING, by=cast.bdr, via=Via.BOARD,
                            account_executive=cast.rep)

    assert stored_state(opportunity) == before
    assert opportunity.owner == cast.bdr


# --- the history row ---


def test_history_row_records_who_when_from_to_via_reason_and_the_checklist(cast):
    opportunity = OpportunityFactory(owner=cast.rep)
    satisfy_gate(opportunity)

    opportunity.move_to(Stage.DISCOVERING, by=cast.rep, via=Via.BOARD,
                        reason="Qualified on the call", now=MOMENT)

    row = StageChange.objects.get(opportunity=opportunity)
    assert (row.changed_by, row.changed_at, row.from_stage, row.to_stage, row.via) == (
        cast.rep, MOMENT, "identifying", "discovering", "board",
    )
    assert (row.reason, row.dead_reason, row.is_undo) == ("Qualified on the call", "", False)
    assert row.who == str(cast.rep)
    criteria = row.checklist["criteria"]
    assert set(criteria) == set(CRITERIA)
    assert criteria["identifying.problem_described"] == {
        "met": True,
        "state": "met",
        "by": cast.rep.username,
        "at": criteria["identifying.problem_described"]["at"],
        "note": "evidence on file",
    }
    assert criteria["identifying.problem_described"]["at"]
    assert criteria["identifying.next_call_scheduled"] == {  # derived from a planned call
        "met": True, "state": None, "by": None, "at": None, "note": None,
    }
    assert criteria["discovering.goals_written"]["met"] is False
    assert (opportunity.stage_entered_at, opportunity.changed_at, opportunity.changed_by) == (
        MOMENT, MOMENT, cast.rep,
    )
    assert opportunity.stage_deadline == MOMENT + timedelta(days=30)


def test_history_snapshot_keeps_the_champion_and_committee_as_they_stood(cast):
    opportunity = advance(OpportunityFactory(owner=cast.rep), Stage.CONFIRMING)
    satisfy_gate(opportunity)

    opportunity.move_to(Stage.NEGOTIATING, by=cast.rep, via=Via.BOARD)

    row = opportunity.stage_changes.order_by("pk").last()
    member = opportunity.active_committee()[0]
    assert row.checklist["champion"] == opportunity.champion_id
    assert row.checklist["champion_confirmed_at"] == opportunity.champion_confirmed_at.isoformat()
    assert row.checklist["committee"] == [
        {"contact": member.contact_id, "confirmed_on": member.confirmed_on.isoformat()}
    ]


def test_system_move_is_recorded_as_the_system(cast):
    opportunity = advance(OpportunityFactory(owner=cast.rep), Stage.DISCOVERING)

    opportunity.move_to(Stage.DEAD, by=None, via=Via.TIMEOUT, dead_reason=DeadReason.TIMEOUT,
                        reason="No progress within 30 days")

    row = opportunity.stage_changes.order_by("pk").last()
    assert (row.changed_by, row.via, row.dead_reason, row.who) == (
        None, "timeout", "timeout", "system",
    )
    assert opportunity.changed_by is None
    assert (opportunity.dead_reason, opportunity.dead_note) == (
        "timeout", "No progress within 30 days",
    )


def test_undo_flag_is_stored_on_the_history_row(cast):
    opportunity = advance(OpportunityFactory(owner=cast.rep), Stage.DISCOVERING)

    opportunity.move_to(Stage.IDENTIFYING, by=cast.rep, via=Via.BOARD,
                        reason="Dropped on the wrong column", is_undo=True)

    rows = list(opportunity.stage_changes.order_by("pk"))
    assert [row.is_undo for row in rows] == [False, True]


def test_moving_to_pending_tells_sales_ops(cast):
    opportunity = advance(OpportunityFactory(owner=cast.rep), Stage.FINALIZING)
    satisfy_gate(opportunity)

    opportunity.move_to(Stage.PENDING, by=cast.rep, via=Via.BOARD)

    assert Notification.objects.filter(recipient=cast.sales_ops).count() == 1
    assert opportunity.stage_deadline is None


# --- dead, reopen, pending, closed ---


@pytest.mark.parametrize(
    ("dead_reason", "note"),
    [("", "Went with a competitor"), ("bored", "Went with a competitor"),
     (DeadReason.COMPETITOR, ""), (DeadReason.COMPETITOR, "  ")],
)
def test_parking_as_dead_needs_a_dead_reason_and_a_note(cast, dead_reason, note):
    opportunity = advance(OpportunityFactory(owner=cast.rep), Stage.VALIDATING)
    before = stored_state(opportunity)

    with pytest.raises(InvalidChange):
        opportunity.move_to(Stage.DEAD, by=cast.rep, via=Via.BOARD, dead_reason=dead_reason,
                            reason=note)

    assert stored_state(opportunity) == before


def killed(cast: Cast, stage: Stage = Stage.DISCOVERING) -> Opportunity:
    opportunity = advance(OpportunityFactory(owner=cast.rep), stage)
    opportunity.move_to(Stage.DEAD, by=cast.rep, via=Via.BOARD,
                        dead_reason=DeadReason.NO_BUDGET, reason="Budget frozen")
    return opportunity


def test_reopening_a_dead_opportunity_needs_a_reason(cast):
    opportunity = killed(cast)
    before = stored_state(opportunity)

    with pytest.raises(InvalidChange, match="Say why"):
        opportunity.move_to(Stage.IDENTIFYING, by=cast.rep, via=Via.BOARD)

    assert stored_state(opportunity) == before


def test_a_bdr_reopening_a_long_dead_opportunity_becomes_its_owner(cast):
    opportunity = killed(cast)
    a_month_later = opportunity.stage_entered_at + timedelta(days=30)

    opportunity.move_to(Stage.IDENTIFYING, by=cast.bdr, via=Via.BOARD,
                        reason="New budget year, campaign reply", now=a_month_later)

    assert opportunity.stage == Stage.IDENTIFYING
    assert opportunity.owner == cast.bdr
    assert (opportunity.dead_reason, opportunity.dead_note) == ("", "")
    assert opportunity.field_changes.get().field == "owner"
    row = opportunity.stage_changes.order_by("pk").last()
    assert (row.from_stage, row.to_stage, row.reason) == (
        "dead", "identifying", "New budget year, campaign reply",
    )


@pytest.mark.parametrize("who", ["rep", "manager", "bdr"])
def test_reopening_a_recent_loss_returns_it_to_its_owner_where_it_died(cast, who):
    opportunity = killed(cast)

    opportunity.move_to(Stage.DISCOVERING, by=getattr(cast, who), via=Via.BOARD,
                        reason="They called back")

    assert (opportunity.stage, opportunity.owner) == (Stage.DISCOVERING, cast.rep)


def in_pending(cast: Cast) -> Opportunity:
    opportunity = advance(OpportunityFactory(owner=cast.rep), Stage.PENDING)
    opportunity.reload()
    return opportunity


def test_sales_ops_rejecting_a_pending_order_must_say_why(cast):
    opportunity = in_pending(cast)
    before = stored_state(opportunity)

    with pytest.raises(InvalidChange, match="checks failed"):
        opportunity.reject_order(by=cast.sales_ops, failed={ReviewCheck.TERMS}, note=" ")
    with pytest.raises(InvalidChange, match="checks failed"):
        opportunity.reject_order(by=cast.sales_ops, failed=set(), note="Their own terms")

    assert stored_state(opportunity) == before
    opportunity.reject_order(by=cast.sales_ops, failed={ReviewCheck.TERMS},
                             note="Customer attached its own purchasing terms")
    assert opportunity.stage == Stage.FINALIZING


def test_sales_ops_approving_a_pending_order_closes_it(cast):
    opportunity = in_pending(cast)

    approve(opportunity, cast.sales_ops)

    row = opportunity.stage_changes.order_by("pk").last()
    assert (row.from_stage, row.to_stage, row.changed_by, row.via) == (
        "pending", "closed", cast.sales_ops, Via.REVIEW)
    assert (opportunity.probability, opportunity.is_open) == (100, False)


def test_a_pending_opportunity_goes_nowhere_else(cast):
    opportunity = in_pending(cast)
    before = stored_state(opportunity)
    admin = RepFactory(is_superuser=True)

    for target in ("identifying", "discovering", "negotiating"):
        with pytest.raises(InvalidChange, match="approved, rejected"):
            opportunity.move_to(target, by=admin, via=Via.ADMIN, reason="Try")

    assert stored_state(opportunity) == before


def test_closed_is_final_even_for_an_administrator(cast):
    opportunity = approve(in_pending(cast), cast.sales_ops)
    before = stored_state(opportunity)
    admin = RepFactory(is_superuser=True)

    for target in ("finalizing", "pending", "dead", "identifying"):
        with pytest.raises(InvalidChange, match="final"):
            opportunity.move_to(target, by=admin, via=Via.ADMIN, reason="Try",
                                dead_reason=DeadReason.OTHER)

    assert stored_state(opportunity) == before


def test_moving_to_the_stage_it_is_in_is_refused(cast):
    opportunity = advance(OpportunityFactory(owner=cast.rep), Stage.VALIDATING)

    with pytest.raises(InvalidChange, match="already in"):
        opportunity.move_to(Stage.VALIDATING, by=cast.rep, via=Via.BOARD)


def test_moving_to_a_stage_that_does_not_exist_is_refused(cast):
    opportunity = OpportunityFactory(owner=cast.rep)

    with pytest.raises(InvalidChange, match="There is no stage"):
        opportunity.move_to("won", by=cast.rep, via=Via.BOARD)


def test_every_refusal_is_a_change_refused_with_a_message(cast):
    opportunity = OpportunityFactory(owner=cast.rep)

    with pytest.raises(ChangeRefused) as refusal:
        opportunity.move_to(Stage.DISCOVERING, by=cast.rep, via=Via.BOARD)

    assert refusal.value.message
    assert refusal.value.status_code == 422
