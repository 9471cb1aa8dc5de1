"""Random lives of one opportunity: whatever people do, the process invariants hold.

Hypothesis drives ticks, champion and committee changes, forward moves (one or several
stages), moves back, kills, reopens, approvals and rejections, by the right people and
by the wrong ones. Each example runs inside its own savepoint, rolled back at teardown.
"""

import hypothesis
import pytest
from django.db import transaction
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from pipeline.models import ChangeRefused, Opportunity, ReviewCheck, StageChange, Via
from pipeline.process import ORDERED_STAGES, PROCESS, DeadReason, Stage, probability_case
from tests.factories import (
    ALL_TICKED_CRITERIA,
    Cast,
    ContactFactory,
    OpportunityFactory,
    advance,
    make_cast,
    satisfy_gate,
    stored_state,
)

# process.md, "Stages": probability and forecast category of each stage.
PROBABILITY = {
    "identifying": 10, "discovering": 25, "validating": 40, "confirming": 60,
    "negotiating": 75, "finalizing": 90, "pending": 95, "closed": 100, "dead": 0,
}
CATEGORY = {
    "identifying": "omitted", "discovering": "pipeline", "validating": "pipeline",
    "confirming": "best_case", "negotiating": "commit", "finalizing": "commit",
    "pending": "commit", "closed": "closed", "dead": "omitted",
}
WORKED = [stage.value for stage in ORDERED_STAGES[:6]]  # identifying .. finalizing

PEOPLE = ["rep", "colleague", "manager", "bdr", "sales_ops", "other_manager", "system"]
people = st.sampled_from(PEOPLE)
# Mostly valid, sometimes missing: refusals are part of the life too.
reasons = st.sampled_from(["", "  ", "The champion left", "Budget cut", "New budget year"])
dead_reasons = st.sampled_from(["", "bored", *DeadReason.values])
# Where an example's opportunity starts: new (owned by a BDR or a rep), or further on.
STARTS = ["new for a bdr", *WORKED, "pending"]
killers = st.sampled_from(["rep", "manager", "system", "colleague", "sales_ops"])


class OpportunityLife(RuleBasedStateMachine):
    # Made once per test run, outside the examples' savepoints: the people, and one
    # opportunity per starting point, each brought there the real way.
    cast: Cast
    starts: dict[str, int]

    def __init__(self):
        super().__init__()
        self.savepoint = transaction.atomic()
        self.savepoint.__enter__()
        self.opportunity = None
        self.version = None
        self.summed_in = None  # the stage whose SQL probability was last checked

    def teardown(self):
        transaction.set_rollback(True)
        self.savepoint.__exit__(None, None, None)

    # --- helpers ---

    def person(self, who: str):
        return None if who == "system" else getattr(self.cast, who)

    def stored(self) -> Opportunity:
        return Opportunity.objects.get(pk=self.opportunity.pk)

    def attempt(self, change) -> bool:
        """Run one change; a refusal must leave everything as it was. True if it went
        through, in which case the version went up by exactly one."""
        before = stored_state(self.opportunity)
        try:
            change()
        except ChangeRefused:
            assert stored_state(self.opportunity) == before
            return False
        finally:
            self.opportunity.reload()
        self.version += 1  # checked against the row by the invariant after this step
        return True

    def move(self, target: str, who: str, change=None, **arguments) -> bool:
        """A move to `target`, or the `change` (sales ops' review) that makes it."""
        rows_before = StageChange.objects.filter(opportunity=self.opportunity).count()
        source = self.opportunity.stage
        moved = self.attempt(change or (lambda: self.opportunity.move_to(
            target, by=self.person(who), via=Via.BOARD, **arguments
        )))
        rows = list(StageChange.objects.filter(opportunity=self.opportunity).order_by("pk"))
        if moved:
            assert self.opportunity.stage == target
            assert len(rows) > rows_before
            assert (rows[rows_before].from_stage, rows[-1].to_stage) == (source, target)
        else:
            assert len(rows) == rows_before
        return moved

    @property
    def stage(self) -> str:
        return self.opportunity.stage

    # --- the opportunity is born ---

    @initialize(start=st.sampled_from(STARTS))
    def open_an_opportunity(self, start):
        """A new opportunity, or one its rep already brought further the real way."""
        self.opportunity = Opportunity.objects.get(pk=self.starts[start])
        self.version = self.opportunity.version

    # --- the checklist ---

    @rule(key=st.sampled_from(ALL_TICKED_CRITERIA), who=people, not_required=st.booleans())
    def tick(self, key, who, not_required):
        by = self.person(who) or self.cast.rep
        self.attempt(lambda: self.opportunity.tick(key, by=by, note="Evidence",
                                                   not_required=not_required))

    @rule(key=st.sampled_from(ALL_TICKED_CRITERIA), who=people)
    def untick(self, key, who):
        by = self.person(who) or self.cast.rep
        self.attempt(lambda: self.opportunity.untick(key, by=by))

    @rule(who=people, confirmed=st.booleans())
    def name_a_champion(self, who, confirmed):
        contact = ContactFactory(account=self.opportunity.account)
        by = self.person(who) or self.cast.rep
        self.attempt(lambda: self.opportunity.name_champion(contact, by=by, confirmed=confirmed))

    @rule(who=people)
    def add_a_committee_member(self, who):
        contact = ContactFactory(account=self.opportunity.account)
        by = self.person(who) or self.cast.rep
        self.attempt(lambda: self.opportunity.add_committee_member(contact, by=by))

    @rule(who=people, index=st.integers(0, 3))
    def remove_a_committee_member(self, who, index):
        members = self.opportunity.active_committee()
        if members:
            contact = members[index % len(members)].contact
            by = self.person(who) or self.cast.rep
            self.attempt(lambda: self.opportunity.remove_committee_member(contact, by=by))

    @rule(who=people, index=st.integers(0, 3))
    def record_a_preferred_vendor(self, who, index):
        members = self.opportunity.active_committee()
        if members:
            contact = members[index % len(members)].contact
            by = self.person(who) or self.cast.rep
            self.attempt(lambda: self.opportunity.record_preferred_vendor(contact, by=by))

    @precondition(lambda self: self.stage in WORKED)
    @rule()
    def owner_meets_the_current_gate(self):
        satisfy_gate(self.opportunity)
        self.version = self.stored().version

    @precondition(lambda self: self.stage in WORKED)
    @rule()
    def owner_meets_the_gate_and_moves_on(self):
        satisfy_gate(self.opportunity)
        self.version = self.stored().version
        following = ORDERED_STAGES[ORDERED_STAGES.index(Stage(self.stage)) + 1]
        owner = "bdr" if self.opportunity.owner == self.cast.bdr else "rep"

        assert self.move(following, owner, account_executive=self.cast.rep)

    # --- moves ---

    @precondition(lambda self: self.stage in WORKED)
    @rule(steps=st.integers(1, 3), who=st.sampled_from(["rep", "manager", "colleague", "bdr"]))
    def move_forward(self, steps, who):
        ordered = [stage.value for stage in ORDERED_STAGES]
        position = ordered.index(self.stage)
        target = ordered[min(position + steps, ordered.index("pending"))]
        passed = ordered[position:ordered.index(target)]
        gates_met = all(not self.opportunity.missing_criteria(Stage(s)) for s in passed)
        handover = {}
        if self.stage == "identifying" and self.opportunity.owner == self.cast.bdr:
            handover = {"account_executive": self.cast.rep}
        may_move = self.opportunity.owner == self.person(who) or who == "manager"

        moved = self.move(target, who, **handover)

        assert moved == (gates_met and may_move)

    @precondition(lambda self: self.stage in WORKED[1:])
    @rule(data=st.data(), who=st.sampled_from(["rep", "manager", "colleague"]), reason=reasons)
    def move_back(self, data, who, reason):
        earlier = WORKED[: WORKED.index(self.stage)]
        target = data.draw(st.sampled_from(earlier))
        moved = self.move(target, who, reason=reason)
        if moved:
            later = [s for s in ORDERED_STAGES if s.order >= Stage(target).order]
            active = self.opportunity.active_tick_map()
            assert not [key for key in active if Stage(key.split(".")[0]) in later]

    @rule(who=killers, reason=reasons, dead_reason=dead_reasons)
    def kill(self, who, reason, dead_reason):
        self.move("dead", who, reason=reason, dead_reason=dead_reason)

    @precondition(lambda self: self.stage == "dead")
    @rule(who=st.sampled_from(["bdr", "rep", "manager", "colleague", "sales_ops"]),
          reason=reasons)
    def reopen(self, who, reason):
        self.move(self.opportunity.reopen_stage(), who, reason=reason)

    @precondition(lambda self: self.stage == "pending")
    @rule(who=st.sampled_from(["sales_ops", "sales_ops", "rep", "manager", "system"]))
    def approve(self, who):
        self.move("closed", who, lambda: self.opportunity.approve_order(
            by=self.person(who), confirmed=set(ReviewCheck.values)))

    @precondition(lambda self: self.stage == "pending")
    @rule(who=st.sampled_from(["sales_ops", "sales_ops", "rep", "manager", "system"]),
          reason=reasons)
    def reject(self, who, reason):
        self.move("finalizing", who, lambda: self.opportunity.reject_order(
            by=self.person(who), failed={ReviewCheck.TERMS}, note=reason))

    @rule(stage=st.sampled_from(Stage.values), who=people, reason=reasons,
          dead_reason=dead_reasons, stale=st.booleans())
    def any_move(self, stage, who, reason, dead_reason, stale):
        version = self.version - 1 if stale else self.version
        self.move(stage, who, reason=reason, dead_reason=dead_reason,
                  account_executive=self.cast.rep, expected_version=version)

    # --- what must always hold ---

    @invariant()
    def the_process_holds(self):
        stored = self.stored()
        history = list(StageChange.objects.filter(opportunity=stored).order_by("pk"))
        self.history_replays_to_the_current_stage(history, stored)
        self.every_forward_step_passed_a_met_gate(history)
        self.probability_and_forecast_category_follow_the_stage(stored)
        assert stored.version == self.version, "every write bumps the version once"

    def history_replays_to_the_current_stage(self, history, stored):
        stage = "identifying"
        for row in history:
            assert row.from_stage == stage
            stage = row.to_stage
        assert stage == stored.stage

    def every_forward_step_passed_a_met_gate(self, history):
        for row in history:
            source, target = Stage(row.from_stage), Stage(row.to_stage)
            if source.order and target.order and target.order > source.order:
                criteria = row.checklist["criteria"]
                assert all(criteria[c.key]["met"] for c in PROCESS[source].exit_criteria), row

    def probability_and_forecast_category_follow_the_stage(self, stored):
        assert stored.probability == PROBABILITY[stored.stage]
        assert stored.forecast_category == CATEGORY[stored.stage]
        if stored.stage != self.summed_in:
            # The forecast sums probabilities in SQL; it must agree with the table too.
            annotated = Opportunity.objects.annotate(p=probability_case()).get(pk=stored.pk).p
            assert annotated == PROBABILITY[stored.stage]
            self.summed_in = stored.stage


@pytest.mark.django_db
def test_random_lives_of_an_opportunity_keep_the_process_invariants():
    cast = make_cast()
    OpportunityLife.cast = cast
    OpportunityLife.starts = {"new for a bdr": OpportunityFactory(owner=cast.bdr).pk}
    for start in STARTS[1:]:
        opportunity = advance(OpportunityFactory(owner=cast.rep), Stage(start))
        OpportunityLife.starts[start] = opportunity.pk
    run_state_machine_as_test(
        OpportunityLife,
        settings=hypothesis.settings(
            max_examples=30, stateful_step_count=20, deadline=None, database=None,
            suppress_health_check=[hypothesis.HealthCheck.too_slow],
        ),
    )
