"""The dead pool's rules: where a reopened opportunity returns (the 30-day window), what
evidence it keeps, who owns it afterwards, who may reopen it, and BDRs' claims."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from pipeline.models import (
    ChangeForbidden,
    Conflict,
    DeadPoolClaim,
    FieldChange,
    InvalidChange,
    Opportunity,
    StageChange,
    Via,
)
from pipeline.process import DeadReason, Stage
from tests.factories import (
    BdrFactory,
    Cast,
    OpportunityFactory,
    advance,
    make_cast,
    stored_state,
)

pytestmark = pytest.mark.django_db

JUST_UNDER_30_DAYS = timedelta(days=29, hours=23)


@pytest.fixture
def cast() -> Cast:
    return make_cast()


class Clock:
    """`timezone.now()` for the code under test, set by the test."""

    def __init__(self, monkeypatch):
        self.now = timezone.now()
        monkeypatch.setattr(timezone, "now", lambda: self.now)

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return Clock(monkeypatch)


def died(cast: Cast, stage: Stage, *, owner=None) -> Opportunity:
    """An opportunity brought to `stage` the real way, then parked as dead there."""
    opportunity = advance(OpportunityFactory(owner=owner or cast.rep), stage)
    killer = cast.manager if stage == Stage.PENDING else opportunity.owner
    opportunity.move_to(Stage.DEAD, by=killer, via=Via.BOARD, reason="Budget frozen",
                        dead_reason=DeadReason.NO_BUDGET)
    opportunity.reload()
    return opportunity


def history(opportunity: Opportunity) -> list[tuple[str, str, str]]:
    return list(opportunity.stage_changes.order_by("pk")
                .values_list("from_stage", "to_stage", "reason"))


# --- where it goes: the 30-day window ---


def test_dead_for_29_days_23_hours_it_reopens_in_the_stage_it_died_in(cast, clock):
    opportunity = died(cast, Stage.VALIDATING)
    rows_before = opportunity.stage_changes.count()
    clock.advance(JUST_UNDER_30_DAYS)

    opportunity.reopen(by=cast.bdr, reason="Champion is back from leave")

    assert opportunity.stage == Stage.VALIDATING
    assert opportunity.owner == cast.rep  # a BDR owns no deal past stage 1
    assert history(opportunity)[rows_before:] == [
        ("dead", "validating", "Champion is back from leave")]
    assert not opportunity.field_changes.filter(field="owner").exists()


def test_dead_for_30_days_it_reopens_in_identifying_owned_by_the_bdr(cast, clock):
    opportunity = died(cast, Stage.VALIDATING)
    rows_before = opportunity.stage_changes.count()
    clock.advance(timedelta(days=30))

    opportunity.reopen(by=cast.bdr, reason="Replied to the spring campaign")

    assert opportunity.stage == Stage.IDENTIFYING
    assert opportunity.owner == cast.bdr
    assert history(opportunity)[rows_before:] == [
        ("dead", "identifying", "Replied to the spring campaign")]
    change = opportunity.field_changes.get(field="owner")
    assert (change.old_value, change.new_value) == (
        f"{cast.rep.pk}:{cast.rep}", f"{cast.bdr.pk}:{cast.bdr}")


def test_the_window_is_a_setting(cast, clock, settings):
    settings.PROGRESSION_REOPEN_WINDOW_DAYS = 7
    recent, old = died(cast, Stage.DISCOVERING), died(cast, Stage.DISCOVERING)
    clock.advance(timedelta(days=6, hours=23))
    recent.reopen(by=cast.manager, reason="Budget approved")
    clock.advance(timedelta(hours=1))
    old.reopen(by=cast.manager, reason="Budget approved")

    assert (recent.stage, old.stage) == (Stage.DISCOVERING, Stage.IDENTIFYING)


def test_a_deal_that_died_waiting_for_review_reopens_in_finalizing(cast, clock):
    opportunity = died(cast, Stage.PENDING)
    clock.advance(timedelta(days=3))

    opportunity.reopen(by=cast.manager, reason="The steering committee signed after all")

    assert opportunity.stage == Stage.FINALIZING
    assert history(opportunity)[-2:] == [
        ("pending", "dead", "Budget frozen"),
        ("dead", "finalizing", "The steering committee signed after all")]


def test_a_reopened_deal_gets_the_full_timeout_of_its_stage(cast, clock):
    opportunity = died(cast, Stage.CONFIRMING)
    clock.advance(timedelta(days=10))

    opportunity.reopen(by=cast.bdr, reason="New CFO")

    assert opportunity.stage_entered_at == clock.now
    assert opportunity.stage_deadline == clock.now + timedelta(days=45)


# --- what it keeps ---


def active_ticks(opportunity: Opportunity) -> set[str]:
    return set(opportunity.ticks.filter(revoked_at__isnull=True)
               .values_list("criterion", flat=True))


def test_reopening_where_it_died_keeps_the_earlier_gates_and_reopens_that_stage(cast, clock):
    opportunity = advance(OpportunityFactory(owner=cast.rep), Stage.CONFIRMING)
    opportunity.tick("confirming.offer_in_ballpark", by=cast.rep, note="Within budget")
    opportunity.record_preferred_vendor(opportunity.active_committee()[0].contact,
                                        by=cast.rep)
    opportunity.move_to(Stage.DEAD, by=cast.rep, via=Via.PAGE, reason="Board froze spend",
                        dead_reason=DeadReason.NO_DECISION)
    earlier = active_ticks(opportunity) - {"confirming.offer_in_ballpark"}
    clock.advance(timedelta(days=12))

    opportunity.reopen(by=cast.bdr, reason="Spend unfrozen")

    assert opportunity.stage == Stage.CONFIRMING
    assert active_ticks(opportunity) == earlier
    assert {"identifying.problem_described", "discovering.timeline_known",
            "validating.champion_committed"} <= earlier
    assert opportunity.missing_criteria(Stage.VALIDATING) == []  # champion still confirmed
    assert [c.key for c in opportunity.missing_criteria()] == [
        "confirming.committee_preferred_vendor", "confirming.offer_in_ballpark",
        "confirming.close_plan_accepted"]
    assert opportunity.ticks.get(criterion="confirming.offer_in_ballpark").revoked_by == cast.bdr


def test_reopening_an_old_one_reopens_every_criterion_and_keeps_the_old_ticks_as_rows(
        cast, clock):
    opportunity = died(cast, Stage.CONFIRMING)
    ticked = opportunity.ticks.count()
    clock.advance(timedelta(days=31))

    opportunity.reopen(by=cast.bdr, reason="New project announced")

    assert active_ticks(opportunity) == set()
    assert opportunity.champion_confirmed_at is None
    assert opportunity.ticks.count() == ticked
    reopening = opportunity.stage_changes.order_by("pk").last()
    assert reopening.checklist["criteria"]["validating.champion_committed"]["met"] is True


# --- who may reopen ---


def test_a_rep_reopens_their_own_recent_loss(cast, clock):
    opportunity = died(cast, Stage.NEGOTIATING)
    clock.advance(JUST_UNDER_30_DAYS)

    opportunity.reopen(by=cast.rep, reason="Legal came back with our terms")

    assert (opportunity.stage, opportunity.owner) == (Stage.NEGOTIATING, cast.rep)


def test_a_rep_may_not_reopen_their_own_old_loss(cast, clock):
    opportunity = died(cast, Stage.NEGOTIATING)
    clock.advance(timedelta(days=30))
    before = stored_state(opportunity)

    with pytest.raises(ChangeForbidden):
        opportunity.reopen(by=cast.rep, reason="They called back")

    assert stored_state(opportunity) == before
    assert opportunity.move_targets_for(cast.rep) == []


def test_a_rep_may_not_reopen_a_colleagues_loss(cast, clock):
    opportunity = died(cast, Stage.DISCOVERING)
    before = stored_state(opportunity)

    with pytest.raises(ChangeForbidden):
        opportunity.reopen(by=cast.colleague, reason="I know them")

    assert stored_state(opportunity) == before


def test_a_manager_reopens_any_of_their_team_and_the_owner_stays(cast, clock):
    old = died(cast, Stage.VALIDATING)
    clock.advance(timedelta(days=45))
    recent = died(cast, Stage.VALIDATING)
    clock.advance(timedelta(days=2))

    recent.reopen(by=cast.manager, reason="Champion back")
    old.reopen(by=cast.manager, reason="Reorganised, new sponsor")

    assert (recent.stage, recent.owner) == (Stage.VALIDATING, cast.rep)
    assert (old.stage, old.owner) == (Stage.IDENTIFYING, cast.rep)


def test_another_teams_manager_may_not_reopen(cast):
    opportunity = died(cast, Stage.DISCOVERING)
    before = stored_state(opportunity)

    with pytest.raises(ChangeForbidden):
        opportunity.reopen(by=cast.other_manager, reason="Mine now")

    assert stored_state(opportunity) == before


def test_reopening_into_another_stage_than_the_rule_says_is_refused(cast, clock):
    opportunity = died(cast, Stage.VALIDATING)
    clock.advance(timedelta(days=5))
    before = stored_state(opportunity)

    with pytest.raises(InvalidChange, match="died 5 days ago: it reopens in Validating"):
        opportunity.move_to(Stage.IDENTIFYING, by=cast.bdr, via=Via.BOARD, reason="Again")

    assert stored_state(opportunity) == before
    assert opportunity.move_targets_for(cast.bdr) == [Stage.VALIDATING]


def test_reopening_a_deal_reopened_meanwhile_is_a_conflict_not_a_move_back(cast):
    opportunity = died(cast, Stage.VALIDATING)
    stale = Opportunity.objects.get(pk=opportunity.pk)
    opportunity.reopen(by=cast.manager, reason="Champion back")
    before = stored_state(opportunity)

    with pytest.raises(Conflict, match="since you loaded it; it is now in Validating"):
        stale.reopen(by=cast.bdr, reason="Campaign reply")

    assert stored_state(opportunity) == before


def test_reopening_needs_a_reason(cast):
    opportunity = died(cast, Stage.DISCOVERING)
    before = stored_state(opportunity)

    with pytest.raises(InvalidChange, match="Say why"):
        opportunity.reopen(by=cast.bdr, reason="   ")

    assert stored_state(opportunity) == before


# --- who sees the pool ---


def test_the_pools_visibility_is_visible_to_restricted_to_dead_rows(cast):
    ours = died(cast, Stage.DISCOVERING)
    theirs = died(cast, Stage.DISCOVERING, owner=OpportunityFactory().owner)
    open_one = advance(OpportunityFactory(owner=cast.rep), Stage.DISCOVERING)
    inactive = BdrFactory(is_active=False)

    for user in (cast.rep, cast.colleague, cast.manager, cast.bdr, cast.sales_ops,
                 cast.other_manager, inactive):
        pool = set(Opportunity.objects.dead_visible_to(user))
        assert pool == set(Opportunity.objects.visible_to(user).dead_pool()), user
        assert open_one not in pool
    assert set(Opportunity.objects.dead_visible_to(cast.bdr)) == {ours, theirs}
    assert set(Opportunity.objects.dead_visible_to(cast.manager)) == {ours}


# --- claims ---


def test_a_bdr_claims_a_dead_deal_and_their_name_shows(cast):
    opportunity = died(cast, Stage.DISCOVERING)

    opportunity.claim(by=cast.bdr)

    listed = Opportunity.objects.in_pool().get(pk=opportunity.pk)
    assert listed.claimer_name == str(cast.bdr)
    assert opportunity.is_claimed_by(cast.bdr)
    assert not opportunity.is_claimed_by(cast.rep)
    assert Opportunity.objects.get(pk=opportunity.pk).is_claimed_by(cast.bdr)


@pytest.mark.parametrize("who", ["rep", "manager", "sales_ops"])
def test_only_bdrs_claim(cast, who):
    opportunity = died(cast, Stage.DISCOVERING)

    with pytest.raises(ChangeForbidden, match="Only BDRs claim"):
        opportunity.claim(by=getattr(cast, who))

    assert not DeadPoolClaim.objects.exists()


def test_an_open_opportunity_cannot_be_claimed(cast):
    opportunity = advance(OpportunityFactory(owner=cast.rep), Stage.DISCOVERING)

    with pytest.raises(InvalidChange, match="Only a dead opportunity"):
        opportunity.claim(by=cast.bdr)

    assert not DeadPoolClaim.objects.exists()


def test_one_claimer_at_a_time_the_second_learns_who_holds_it(cast):
    opportunity = died(cast, Stage.DISCOVERING)
    opportunity.claim(by=cast.bdr)
    second = BdrFactory(team=cast.rep.team)

    with pytest.raises(Conflict, match=f"already claimed by {cast.bdr}"):
        Opportunity.objects.get(pk=opportunity.pk).claim(by=second)
    with pytest.raises(InvalidChange, match="You already claimed"):
        Opportunity.objects.get(pk=opportunity.pk).claim(by=cast.bdr)

    assert list(DeadPoolClaim.objects.values_list("claimed_by", flat=True)) == [cast.bdr.pk]


def test_claiming_and_releasing_is_recorded_and_leaves_the_deal_as_it_was(cast):
    opportunity = died(cast, Stage.DISCOVERING)
    version = opportunity.version

    opportunity.claim(by=cast.bdr)
    opportunity.release_claim(by=cast.bdr)

    claim = DeadPoolClaim.objects.get()
    assert (claim.claimed_by, claim.released_by) == (cast.bdr, cast.bdr)
    assert claim.released_at is not None
    assert not opportunity.is_claimed_by(cast.bdr)
    assert Opportunity.objects.get(pk=opportunity.pk).version == version
    opportunity.claim(by=cast.bdr)  # free to claim again
    assert DeadPoolClaim.objects.count() == 2


def test_only_the_claimer_or_their_manager_releases(cast):
    opportunity = died(cast, Stage.DISCOVERING)
    opportunity.claim(by=cast.bdr)

    for someone in (BdrFactory(), cast.rep, cast.other_manager, cast.sales_ops):
        with pytest.raises(ChangeForbidden):
            Opportunity.objects.get(pk=opportunity.pk).release_claim(by=someone)
    Opportunity.objects.get(pk=opportunity.pk).release_claim(by=cast.manager)

    assert DeadPoolClaim.objects.get().released_by == cast.manager


def test_releasing_an_unclaimed_deal_is_refused(cast):
    opportunity = died(cast, Stage.DISCOVERING)

    with pytest.raises(InvalidChange, match="is not claimed"):
        opportunity.release_claim(by=cast.bdr)


def test_another_bdr_may_not_reopen_a_claimed_deal(cast):
    opportunity = died(cast, Stage.DISCOVERING)
    opportunity.claim(by=cast.bdr)
    before = stored_state(opportunity)

    with pytest.raises(ChangeForbidden, match=f"{cast.bdr} claimed"):
        Opportunity.objects.get(pk=opportunity.pk).reopen(by=BdrFactory(), reason="Mine")

    assert stored_state(opportunity) == before


def test_reopening_ends_the_claim(cast):
    opportunity = died(cast, Stage.DISCOVERING)
    opportunity.claim(by=cast.bdr)

    opportunity.reopen(by=cast.bdr, reason="Nurtured back to life")

    claim = DeadPoolClaim.objects.get()
    assert (claim.released_by, claim.released_at) == (cast.bdr, opportunity.changed_at)
    assert not opportunity.is_claimed_by(cast.bdr)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_bdrs_claiming_at_once_one_wins_and_the_other_gets_a_conflict(postgresql):
    cast = make_cast()
    opportunity = died(cast, Stage.DISCOVERING)
    rows = StageChange.objects.filter(opportunity=opportunity).count()
    rivals = [cast.bdr, BdrFactory(team=cast.rep.team)]
    start = threading.Barrier(2)
    outcomes = {}

    def claim(bdr):
        try:
            start.wait()
            Opportunity.objects.get(pk=opportunity.pk).claim(by=bdr)
            outcomes[bdr.pk] = "claimed"
        except Conflict as conflict:
            outcomes[bdr.pk] = conflict.message
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(bdr,)) for bdr in rivals]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    winner = DeadPoolClaim.objects.get()
    loser = next(bdr for bdr in rivals if bdr.pk != winner.claimed_by_id)
    assert outcomes[winner.claimed_by_id] == "claimed"
    assert outcomes[loser.pk].startswith(
        f"“{opportunity.name}” is already claimed by {winner.claimed_by}")
    assert StageChange.objects.filter(opportunity=opportunity).count() == rows
    assert not FieldChange.objects.filter(opportunity=opportunity).exists()
