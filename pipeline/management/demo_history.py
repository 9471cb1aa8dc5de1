"""One demo opportunity and its back-filled history, as rows: which stages it visited and
when (its story), the ticks, champion and committee that its passed gates needed, one
StageChange per move, and some amount and close-date changes on the way.

`seed_demo` builds the users, accounts and contacts and writes the rows in batches;
`OpportunityHistory` is the part of its builder that tells each opportunity's story. The
rows bypass the state machine, which stack-notes allow for seed code only, knowingly; so
every story is replayed the way the process would have left it.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import models

from pipeline.management.bulk_rows import Rows
from pipeline.models import CriterionTick, OpportunityType, Source, Via
from pipeline.process import (
    ORDERED_STAGES,
    PROCESS,
    Criterion,
    CriterionKind,
    DeadReason,
    Stage,
    next_stage,
)

DAY = 86400
MET = CriterionTick.State.MET.value
NOT_REQUIRED = CriterionTick.State.NOT_REQUIRED.value
SEED = Via.SEED.value
EMPTY_CHECKLIST: dict = {"criteria": {}}

# Where dead opportunities died: mostly early, where most deals are lost.
DIED_FROM_WEIGHTS: dict[Stage, int] = {
    Stage.IDENTIFYING: 25,
    Stage.DISCOVERING: 25,
    Stage.VALIDATING: 20,
    Stage.CONFIRMING: 15,
    Stage.NEGOTIATING: 10,
    Stage.FINALIZING: 5,
}
# Expected close date of an open opportunity, in days from today: late stages close sooner.
CLOSE_IN_DAYS: dict[Stage, tuple[int, int]] = {
    Stage.IDENTIFYING: (90, 270),
    Stage.DISCOVERING: (60, 240),
    Stage.VALIDATING: (45, 180),
    Stage.CONFIRMING: (30, 120),
    Stage.NEGOTIATING: (10, 60),
    Stage.FINALIZING: (3, 30),
    Stage.PENDING: (0, 7),
}
UNRATED_CURRENCY = "CHF"  # deliberately without a rate: the "no rate" warning shows it

LARGE_DEAL_INDUSTRIES = {"Banking", "Insurance", "Financial services"}
PRODUCTS = (
    "Pipeline platform", "Analytics suite", "Compliance module", "Treasury workflow",
    "Customer portal", "Data integration", "Reporting rollout", "Risk engine",
    "Onboarding automation", "Forecasting workspace",
)
NEXT_STEPS = (
    "Call with the CFO", "Send the written summary", "Demo for the IT team",
    "Workshop on the close plan", "Security questionnaire review", "Pricing call",
    "Reference call with an existing customer", "Contract redlines review",
    "Steering committee presentation", "Follow up on the purchase order",
)
TICK_NOTES = (
    "Confirmed in the call, see the meeting notes.",
    "Written up and shared in the deal room.",
    "Customer confirmed by e-mail.",
    "Agreed in the workshop with their team.",
    "Documented in the account plan.",
)
NOT_REQUIRED_NOTE = "Not required: the customer waived it for this contract size."
DEAD_NOTES: dict[DeadReason, tuple[str, ...]] = {
    DeadReason.COMPETITOR: (
        "They chose a competitor after the final presentation.",
        "Lost on price against the incumbent vendor.",
    ),
    DeadReason.NO_BUDGET: (
        "Budget cut for this fiscal year.",
        "The project lost its funding in the budget review.",
    ),
    DeadReason.NO_DECISION: (
        "The committee could not agree; the project is on hold.",
        "Our champion left the company and nobody took over.",
    ),
    DeadReason.TIMEOUT: ("No progress within the stage's timeout.",),
    DeadReason.OTHER: (
        "Merger announced; all purchases frozen.",
        "The customer decided to build it in-house.",
    ),
}
DEAD_REASON_WEIGHTS: dict[DeadReason, int] = {
    DeadReason.COMPETITOR: 25,
    DeadReason.NO_BUDGET: 20,
    DeadReason.NO_DECISION: 20,
    DeadReason.TIMEOUT: 25,
    DeadReason.OTHER: 10,
}
REOPEN_REASONS = (
    "New budget approved for next year.",
    "The champion is back and wants to restart.",
    "The competitor's project failed; they called us again.",
    "Campaign response: interested again after the webinar.",
)
REJECT_REASONS = (
    "The customer attached its own purchasing terms instead of the agreed terms.",
    "The discount on the purchase order differs from the offer.",
    "The services offer is missing from the purchase order.",
)


def money(value: float) -> Decimal:
    return Decimal(int(value)).quantize(Decimal("0.01"))


class Weighted:
    """A weighted choice table, prepared once: picking from it is one bisect."""

    def __init__(self, weights: dict[Any, int]):
        self.values = [value for value, weight in weights.items() if weight > 0]
        self.cumulative = list(itertools.accumulate(weights[value] for value in self.values))

    def pick(self, rng: random.Random) -> Any:
        return self.values[bisect.bisect(self.cumulative, rng.random() * self.cumulative[-1])]


TYPES = Weighted({OpportunityType.NEW_BUSINESS.value: 60, OpportunityType.UPSELL.value: 25,
                  OpportunityType.CROSS_SELL.value: 15})
SOURCES = Weighted({Source.WEBINAR.value: 20, Source.EVENT.value: 15, Source.INBOUND.value: 20,
                    Source.OUTBOUND.value: 15, Source.PARTNER.value: 10})
DIED_FROM = Weighted(DIED_FROM_WEIGHTS)
DEAD_REASONS = Weighted({reason.value: weight for reason, weight in DEAD_REASON_WEIGHTS.items()})
SIZES = {
    (big_customer, upsell): Weighted({
        "seats": 35 + (30 if upsell else 0), "mid": 40, "large": 20 if big_customer else 12,
        "bank": 8 if big_customer else 0,
    })
    for big_customer in (False, True) for upsell in (False, True)
}


# --- one opportunity's story ---


@dataclass
class Story:
    """The visits of one opportunity, oldest first: the stage and when it was entered."""

    stages: list[Stage]
    entered: list[int] = field(default_factory=list)
    end: int = 0  # the moment the story is told: now, or the final move

    def stay(self, index: int) -> tuple[int, int]:
        """When the opportunity entered visit `index`, and when it left (or the end)."""
        left = self.entered[index + 1] if index + 1 < len(self.stages) else self.end
        return self.entered[index], left

    def first_forward_stays(self) -> dict[Stage, tuple[int, int]]:
        """For every stage left forward, its first such stay: the gate's ticks fall in it."""
        stays = {}
        for index, stage in enumerate(self.stages[:-1]):
            if self.stages[index + 1] == NEXT.get(stage) and stage not in stays:
                stays[stage] = self.stay(index)
        return stays


NEXT = {stage: next_stage(stage) for stage in ORDERED_STAGES}
MAY_BE_NOT_REQUIRED = {stage for stage, rule in PROCESS.items()
                       if any(criterion.may_be_not_required for criterion in rule.exit_criteria)}
TICKED = {stage: [criterion for criterion in rule.exit_criteria
                  if criterion.kind == CriterionKind.TICKED]
          for stage, rule in PROCESS.items()}


@dataclass(frozen=True)
class DemoAccount:
    id: int
    name: str
    industry: str
    contact_ids: list[int]



class OpportunityHistory:
    """Builds one opportunity with its story, checklist and history as rows. The class
    that uses it (seed_demo's DemoData) sets the attributes below and the Rows tables."""

    rng: random.Random
    random: Any  # rng.random, looked up once: it runs for every one of a million rows
    zone: Any
    today: date
    now: int
    quarters: list[tuple[int, int]]
    history_start: int
    timeouts: dict[Stage, int]
    company_currency: str
    rep_ids: list[int]
    bdr_id: int
    sales_ops_id: int
    snapshots: dict[tuple, dict]
    written: Counter[type[models.Model]]
    opportunities: Rows
    committee: Rows
    ticks: Rows
    stage_changes: Rows
    field_changes: Rows

    # --- time and chance ---

    @staticmethod
    def at(moment: int) -> datetime:
        return datetime.fromtimestamp(moment, UTC)

    def day(self, moment: int) -> date:
        return datetime.fromtimestamp(moment, self.zone).date()

    def moment(self, start: int, end: int) -> int:
        """A moment between start and end (never before start), to the second."""
        return start + int(self.random() * (end - start))

    def choose(self, values: Sequence) -> Any:
        """Like rng.choice, faster: it runs for every one of a million rows."""
        return values[int(self.random() * len(values))]

    def days(self, low: float, high: float) -> int:
        """Some seconds: between low and high days."""
        return int(self.rng.uniform(low, high) * DAY)

    # --- opportunities ---

    def add_opportunity(self, opportunity_id: int, account: DemoAccount, stage: Stage,
                        quarter: tuple[int, int] | None) -> None:
        rng = self.rng
        kind = TYPES.pick(rng)
        amount, large = self.amount(account, kind)
        story, died_from, dead_reason = self.story(stage, large, quarter)
        # A BDR keeps only what never left Identifying; leaving it hands over to a rep.
        qualifying = story.stages == [Stage.IDENTIFYING]
        owner_id = self.bdr_id if qualifying and rng.random() < 0.4 \
            else self.choose(self.rep_ids)
        entered = story.entered[-1]
        timeout = self.timeouts.get(stage)
        opportunity = {
            "id": opportunity_id, "account_id": account.id, "owner_id": owner_id,
            "name": self.opportunity_name(account, kind), "type": kind,
            "source": self.source(kind), "amount": amount, "currency": self.currency(),
            "expected_close_date": self.close_date(stage, died_from, entered),
            "next_step": "", "next_step_date": None, "stage": stage.value,
            "stage_entered_at": self.at(entered),
            "stage_deadline": self.at(entered + timeout * DAY) if timeout else None,
            "champion_id": None, "champion_confirmed_at": None,
            "champion_confirmed_by_id": None, "dead_reason": dead_reason,
            "dead_note": self.choose(DEAD_NOTES[dead_reason]) if dead_reason else "",
            "created_at": self.at(story.entered[0]), "changed_by_id": owner_id,
        }
        if stage not in (Stage.CLOSED, Stage.DEAD):
            opportunity["next_step"] = self.choose(NEXT_STEPS)
            opportunity["next_step_date"] = self.today + timedelta(days=rng.randint(1, 14))

        working_stage = died_from or stage  # where the checklist was left partly done
        working_stay = story.stay(len(story.stages) - (2 if died_from else 1))
        ticks, members = self.fill_checklist(opportunity, account, story, working_stage,
                                             working_stay)
        moves = self.record_moves(opportunity, story, ticks, members)
        field_changes = self.record_field_changes(opportunity, story)
        latest = max([entered, *(moment for _state, moment in ticks.values())])
        opportunity["changed_at"] = self.at(min(latest, self.now))
        opportunity["version"] = 1 + moves + field_changes + len(ticks)
        self.opportunities.add(opportunity)

    def amount(self, account: DemoAccount, kind: str) -> tuple[Decimal, bool]:
        """From a few seats to a large bank deal; returns the amount and whether it is large."""
        rng = self.rng
        sizes = SIZES[account.industry in LARGE_DEAL_INDUSTRIES, kind == OpportunityType.UPSELL]
        size = sizes.pick(rng)
        if size == "seats":
            return money(rng.randint(2, 25) * rng.randint(6, 12) * 100), False
        if size == "mid":
            return money(rng.randint(40, 400) * 500), False
        if size == "large":
            return money(rng.randint(40, 240) * 5000), True
        return money(rng.randint(30, 120) * 50000), True

    def currency(self) -> str:
        roll = self.rng.random()
        if roll < 0.12 and self.company_currency != "USD":
            return "USD"
        if roll < 0.20 and self.company_currency != "GBP":
            return "GBP"
        if roll < 0.215 and self.company_currency != UNRATED_CURRENCY:
            return UNRATED_CURRENCY
        return self.company_currency

    def source(self, kind: str) -> str:
        if kind != OpportunityType.NEW_BUSINESS and self.rng.random() < 0.8:
            return Source.EXISTING_CUSTOMER.value
        return SOURCES.pick(self.rng)

    def opportunity_name(self, account: DemoAccount, kind: str) -> str:
        if kind == OpportunityType.UPSELL:
            return f"{account.name} – {self.rng.randint(2, 40) * 5} more seats"
        if kind == OpportunityType.CROSS_SELL:
            return f"{account.name} – {self.choose(PRODUCTS)} add-on"
        return f"{account.name} – {self.choose(PRODUCTS)}"

    def close_date(self, stage: Stage, died_from: Stage | None, entered: int) -> date:
        """Closed: the day it closed. Otherwise ahead of the stage: late stages close sooner
        (for a dead one, as it stood when it died)."""
        if stage == Stage.CLOSED:
            return self.day(entered)
        low, high = CLOSE_IN_DAYS[died_from or stage]
        start = self.day(entered) if died_from else self.today
        return start + timedelta(days=self.rng.randint(low, high))

    # --- the story: which stages, and when ---

    def story(self, stage: Stage, large: bool, quarter: tuple[int, int] | None
              ) -> tuple[Story, Stage | None, str]:
        """The stages visited, oldest first, with their entry times; for a dead one also
        the stage it died in and why."""
        rng = self.rng
        died_from = None
        dead_reason = ""
        if stage == Stage.DEAD:
            died_from = DIED_FROM.pick(rng)
            dead_reason = DEAD_REASONS.pick(rng)
            if dead_reason == DeadReason.TIMEOUT and died_from not in self.timeouts:
                dead_reason = DeadReason.NO_DECISION.value
        path = list(ORDERED_STAGES[: ORDERED_STAGES.index(died_from or stage) + 1])
        if stage in (Stage.PENDING, Stage.CLOSED) and rng.random() < 0.15:
            # Sales ops rejected the first purchase order; the rep fixed it.
            at = path.index(Stage.PENDING)
            path[at + 1:at + 1] = [Stage.FINALIZING, Stage.PENDING]
        if stage != Stage.DEAD and rng.random() < 0.12:
            # Parked once, reopened from the dead pool later.
            first_pass = ORDERED_STAGES[: rng.randint(1, 4)]
            path = [*first_pass, Stage.DEAD, *path]
        if stage == Stage.DEAD:
            path.append(Stage.DEAD)

        durations = [self.duration(visited, following, large, dead_reason)
                     for visited, following in zip(path, path[1:], strict=False)]
        if quarter is not None:
            final_entry = self.moment(*quarter)
        else:
            final_entry = self.now - self.current_stay(stage)
        durations, final_entry = self.fit_into_history(durations, final_entry, dead_reason)
        story = Story(stages=path, end=self.now if quarter is None else final_entry)
        moment = final_entry - sum(durations)
        for duration in durations:
            story.entered.append(moment)
            moment += duration
        story.entered.append(final_entry)
        return story, died_from, dead_reason

    def fit_into_history(self, durations: list[int], final_entry: int,
                         dead_reason: str) -> tuple[list[int], int]:
        """Squeeze a story that would start before the history window into it. A timeout
        death keeps its full last stay: the death comes later instead, if it must."""
        fixed = durations[-1] if dead_reason == DeadReason.TIMEOUT else 0
        squeezable = durations[:-1] if fixed else durations
        final_entry = max(final_entry, min(self.history_start + fixed + DAY, self.now))
        room = final_entry - fixed - self.history_start
        total = sum(squeezable)
        if total > room:
            squeezable = [int(duration * room * 0.95 / total) for duration in squeezable]
        return [*squeezable, fixed] if fixed else squeezable, final_entry

    def duration(self, stage: Stage, following: Stage, large: bool, dead_reason: str) -> int:
        """How long a visit lasted, within the stage's timeout."""
        if stage == Stage.DEAD:
            return self.days(20, 150)
        if stage == Stage.PENDING:
            return self.days(0.2, 3)
        if following == Stage.DEAD and dead_reason == DeadReason.TIMEOUT:
            return self.timeouts[stage] * DAY
        timeout = self.timeouts.get(stage) or 40
        return self.days(0.3, timeout * (0.9 if large else 0.5))

    def current_stay(self, stage: Stage) -> int:
        """How long an open opportunity has been in its stage, some of them close to their
        deadline (at least a day away: none is overdue when the demo starts)."""
        if stage == Stage.PENDING:
            return self.days(0, 3)
        timeout = self.timeouts.get(stage)
        if timeout is None:
            return self.days(0, 60)
        if self.random() < 0.1:
            return max(timeout * DAY - self.days(1.2, 5), 0)
        return self.days(0, max(timeout - 5, 1))

    # --- the checklist: passed gates hold, the working stage is partly done ---

    def fill_checklist(self, opportunity: dict, account: DemoAccount, story: Story,
                       working_stage: Stage, working_stay: tuple[int, int]
                       ) -> tuple[dict[str, tuple[str, int]], list[list]]:
        """Ticks, champion and committee matching the story: every gate passed holds, the
        working stage is partly done. Returns the ticks as criterion: (state, when), and
        the committee as [contact, added, confirmed on]."""
        rng = self.rng
        passed = story.first_forward_stays()
        ticks: dict[str, tuple[str, int]] = {}
        for stage, stay in passed.items():
            for criterion in TICKED[stage]:
                ticks[criterion.key] = self.tick(criterion, stay)
        working_criteria = TICKED[working_stage]
        if working_criteria and working_stage not in passed:
            done = len(working_criteria) if rng.random() < 0.15 \
                else rng.randint(0, len(working_criteria) - 1)
            for criterion in rng.sample(working_criteria, done):
                ticks[criterion.key] = self.tick(criterion, working_stay)

        owner_id = opportunity["owner_id"]
        contacts = account.contact_ids
        members: list[list] = []
        if Stage.VALIDATING in passed or working_stage == Stage.VALIDATING:
            in_validating = passed.get(Stage.VALIDATING, working_stay)
            complete = Stage.VALIDATING in passed
            if complete or rng.random() < 0.6:
                opportunity["champion_id"] = self.choose(contacts)
                if complete or rng.random() < 0.6:
                    opportunity["champion_confirmed_at"] = self.at(self.moment(*in_validating))
                    opportunity["champion_confirmed_by_id"] = owner_id
            if complete or rng.random() < 0.5:
                size = rng.randint(1, min(4, len(contacts)))
                members = [[contact, self.moment(*in_validating), None]
                           for contact in rng.sample(contacts, size)]
        if Stage.CONFIRMING in passed or working_stage == Stage.CONFIRMING:
            in_confirming = passed.get(Stage.CONFIRMING, working_stay)
            confirmed = members if Stage.CONFIRMING in passed else \
                rng.sample(members, rng.randint(0, len(members)))
            for member in confirmed:
                member[2] = self.day(self.moment(*in_confirming))

        opportunity_id = opportunity["id"]
        for contact, added, confirmed_on in members:
            self.committee.append((opportunity_id, contact, self.at(added), owner_id,
                                   confirmed_on, owner_id if confirmed_on else None, None, None))
        for key, (state, moment) in ticks.items():
            note = NOT_REQUIRED_NOTE if state == NOT_REQUIRED else self.choose(TICK_NOTES)
            self.ticks.append((opportunity_id, key, state, note, self.at(moment), owner_id,
                               None, None))
        return ticks, members

    def tick(self, criterion: Criterion, stay: tuple[int, int]) -> tuple[str, int]:
        not_required = criterion.may_be_not_required and self.random() < 0.3
        start, end = stay
        return NOT_REQUIRED if not_required else MET, start + int(self.random() * (end - start))

    # --- history ---

    def record_moves(self, opportunity: dict, story: Story,
                     ticks: dict[str, tuple[str, int]], members: list[list]) -> int:
        """One StageChange per move of the story; returns how many."""
        opportunity_id, owner_id = opportunity["id"], opportunity["owner_id"]
        moves = list(zip(story.stages, story.stages[1:], story.entered[1:], strict=False))
        for number, (source, target, moment) in enumerate(moves):
            changed_by, reason, dead_reason, handed_to = owner_id, "", "", None
            if target == NEXT.get(source):
                checklist = self.passed_snapshot(source, ticks)
                if source == Stage.PENDING:
                    changed_by = self.sales_ops_id  # only sales ops approve an order
            elif target == Stage.DEAD:
                if number == len(moves) - 1:
                    dead_reason, reason = opportunity["dead_reason"], opportunity["dead_note"]
                    checklist = self.working_snapshot(
                        source, ticks, opportunity["champion_confirmed_at"] is not None,
                        members,
                    )
                else:  # the death it was reopened from, before any tick of that stage
                    dead_reason = DeadReason.NO_DECISION.value
                    reason = self.choose(DEAD_NOTES[DeadReason.NO_DECISION])
                    checklist = self.working_snapshot(source, {}, False, [])
                if dead_reason == DeadReason.TIMEOUT:
                    changed_by = None  # the timeout sweep
            elif source == Stage.DEAD:
                reason = self.choose(REOPEN_REASONS)
                checklist = EMPTY_CHECKLIST
            else:  # pending back to finalizing: sales ops rejected the order
                reason = self.choose(REJECT_REASONS)
                changed_by = self.sales_ops_id
                checklist = EMPTY_CHECKLIST
            self.stage_changes.append((
                opportunity_id, source.value, target.value, self.at(moment), changed_by, SEED,
                reason, dead_reason, handed_to, False, checklist,
            ))
        return len(moves)

    def passed_snapshot(self, stage: Stage, ticks: dict[str, tuple[str, int]]) -> dict:
        """The compact checklist of a stage left forward: every criterion met. Shared by
        every row with the same not-required marks, so it is built (and dumped) once."""
        criteria = PROCESS[stage].exit_criteria
        states = tuple(ticks[c.key][0] if c.key in ticks else None for c in criteria) \
            if stage in MAY_BE_NOT_REQUIRED else ()
        key = (stage, states)
        if key not in self.snapshots:
            self.snapshots[key] = {"criteria": {
                criterion.key: {
                    "met": True,
                    "state": ticks[criterion.key][0] if criterion.key in ticks else None,
                }
                for criterion in criteria
            }}
        return self.snapshots[key]

    def working_snapshot(self, stage: Stage, ticks: dict[str, tuple[str, int]],
                         champion_confirmed: bool, members: list[list]) -> dict:
        """The compact checklist of a stage left without passing its gate."""
        derived = {
            "identifying.next_call_scheduled": False,  # the demo plans no activities
            "validating.champion_confirmed": champion_confirmed,
            "validating.committee_identified": bool(members),
            "confirming.committee_preferred_vendor":
                bool(members) and all(member[2] for member in members),
            "confirming.close_plan_accepted": False,  # died with the plan in the works
            "finalizing.purchase_order_recorded": False,  # died before recording one
        }
        criteria = {}
        for criterion in PROCESS[stage].exit_criteria:
            tick = ticks.get(criterion.key)
            met = derived[criterion.key] if criterion.kind == CriterionKind.DERIVED \
                else tick is not None
            criteria[criterion.key] = {"met": met, "state": tick[0] if tick else None}
        return {"criteria": criteria}

    def record_field_changes(self, opportunity: dict, story: Story) -> int:
        """Some amounts and close dates changed along the way; returns how many rows."""
        rng = self.rng
        opportunity_id, owner_id = opportunity["id"], opportunity["owner_id"]
        start, end = story.entered[0], story.end
        entered = story.entered[-1]
        amount = opportunity["amount"]
        opportunity["amount_at_stage_entry"] = amount
        count = 0
        if rng.random() < 0.25:
            # Some grew a lot in their current stage: the timeout sweep should spare them.
            grew_in_stage = opportunity["stage"] in self.timeouts and rng.random() < 0.3
            old = money(float(amount) * (0.5 if grew_in_stage else rng.uniform(0.6, 1.4)))
            moment = self.moment(entered, end) if grew_in_stage else self.moment(start, end)
            if moment >= entered:
                opportunity["amount_at_stage_entry"] = old
            self.field_changes.append((opportunity_id, "amount", str(old), str(amount),
                                       self.at(moment), owner_id, SEED))
            count += 1
        if rng.random() < 0.2:
            new = opportunity["expected_close_date"]
            old = new - timedelta(days=rng.randint(14, 60))  # the usual story: it slipped
            self.field_changes.append((opportunity_id, "expected_close_date", old.isoformat(),
                                       new.isoformat(), self.at(self.moment(start, end)),
                                       owner_id, SEED))
            count += 1
        return count
