"""The sales process of process.md, defined once: stages, probabilities, forecast
categories, default timeouts and exit criteria. Everything else reads this table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.db import models
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from pipeline.models import Opportunity


class Stage(models.TextChoices):
    IDENTIFYING = "identifying", _("Identifying Opportunity")
    DISCOVERING = "discovering", _("Discovering Problems, Impacts & Goals")
    VALIDATING = "validating", _("Validating Benefits & Values")
    CONFIRMING = "confirming", _("Confirming Value with Power")
    NEGOTIATING = "negotiating", _("Negotiating & Mutual Plan")
    FINALIZING = "finalizing", _("Finalizing Closure")
    PENDING = "pending", _("Pending (sales-ops review)")
    CLOSED = "closed", _("Closed (won)")
    DEAD = "dead", _("Dead (parked)")

    @property
    def rule(self) -> StageRule:
        return PROCESS[self]

    @property
    def order(self) -> int | None:
        """1 to 8 along the process; None for Dead, which stands outside it."""
        return self.rule.order


class ForecastCategory(models.TextChoices):
    OMITTED = "omitted", _("Omitted")
    PIPELINE = "pipeline", _("Pipeline")
    BEST_CASE = "best_case", _("Best Case")
    COMMIT = "commit", _("Commit")
    CLOSED = "closed", _("Closed")


class CriterionKind(models.TextChoices):
    TICKED = "ticked", _("ticked by a person")
    DERIVED = "derived", _("derived from data")


@dataclass(frozen=True)
class Criterion:
    """One exit criterion. `key` is unique across the process (stage.criterion)."""

    key: str
    label: str
    kind: CriterionKind = CriterionKind.TICKED
    may_be_not_required: bool = False
    derived_check: Callable[[Opportunity], bool] | None = field(default=None, compare=False)

    @property
    def stage(self) -> Stage:
        return Stage(self.key.split(".", 1)[0])

    def __str__(self) -> str:
        return str(self.label)


def champion_confirmed(opportunity: Opportunity) -> bool:
    return opportunity.champion_id is not None and opportunity.champion_confirmed_at is not None


def committee_identified(opportunity: Opportunity) -> bool:
    return opportunity.committee_counts()[0] > 0


def committee_confirmed_preferred_vendor(opportunity: Opportunity) -> bool:
    members, unconfirmed = opportunity.committee_counts()
    return members > 0 and unconfirmed == 0


def next_call_scheduled(opportunity: Opportunity) -> bool:
    """A call or meeting with the customer is planned in the future (an activity)."""
    return opportunity.has_conversation_ahead()


def close_plan_accepted(opportunity: Opportunity) -> bool:
    return opportunity.has_accepted_close_plan()


def purchase_order_recorded(opportunity: Opportunity) -> bool:
    return opportunity.has_valid_purchase_order()


@dataclass(frozen=True)
class StageRule:
    order: int | None
    probability: int
    category: ForecastCategory
    default_timeout_days: int | None
    exit_criteria: tuple[Criterion, ...] = ()


def _ticked(key: str, label, **options) -> Criterion:
    return Criterion(key=key, label=label, **options)


def _derived(key: str, label, check: Callable[[Opportunity], bool]) -> Criterion:
    return Criterion(key=key, label=label, kind=CriterionKind.DERIVED, derived_check=check)


PROCESS: dict[Stage, StageRule] = {
    Stage.IDENTIFYING: StageRule(
        1, 10, ForecastCategory.OMITTED, None,
        (
            _ticked("identifying.problem_described",
                    _("The customer's problem or project is described")),
            _ticked("identifying.detail_sessions_committed",
                    _("The customer committed to one to three further detail sessions")),
            _derived("identifying.next_call_scheduled", _("The next call is scheduled"),
                     next_call_scheduled),
        ),
    ),
    Stage.DISCOVERING: StageRule(
        2, 25, ForecastCategory.PIPELINE, 30,
        (
            _ticked("discovering.goals_written",
                    _("Goals, needs and pains are written down")),
            _ticked("discovering.budget_and_intent",
                    _("A budget exists and a clear buying intent is stated")),
            _ticked("discovering.timeline_known", _("The timeline is known")),
            _ticked("discovering.summary_confirmed",
                    _("The written summary was sent to the customer and confirmed by them")),
            _ticked("discovering.solution_outline",
                    _("A rough outline of the solution and its return on investment exists")),
        ),
    ),
    Stage.VALIDATING: StageRule(
        3, 40, ForecastCategory.PIPELINE, 30,
        (
            _derived("validating.champion_confirmed",
                     _("A champion is named and confirmed convinced"), champion_confirmed),
            _derived("validating.committee_identified",
                     _("The decision committee is identified"), committee_identified),
            _ticked("validating.champion_committed",
                    _("The champion committed to involve every decision maker, with a joint "
                      "plan to win the rest of the committee")),
        ),
    ),
    Stage.CONFIRMING: StageRule(
        4, 60, ForecastCategory.BEST_CASE, 45,
        (
            _derived("confirming.committee_preferred_vendor",
                     _("Every member of the decision committee verbally confirmed us as the "
                       "preferred vendor"), committee_confirmed_preferred_vendor),
            _ticked("confirming.offer_in_ballpark",
                    _("The commercial offer has early approval (in the ballpark)")),
            _derived("confirming.close_plan_accepted",
                     _("A close plan exists and both sides accepted it"),
                     close_plan_accepted),
        ),
    ),
    Stage.NEGOTIATING: StageRule(
        5, 75, ForecastCategory.COMMIT, 45,
        (
            _ticked("negotiating.risk_assessment", _("The risk assessment passed"),
                    may_be_not_required=True),
            _ticked("negotiating.security_assessment", _("The security assessment passed"),
                    may_be_not_required=True),
            _ticked("negotiating.alignment_complete",
                    _("Functional and technical alignment is complete")),
            _ticked("negotiating.commercials_complete",
                    _("Commercial negotiation is complete and a signable document exists")),
        ),
    ),
    Stage.FINALIZING: StageRule(
        6, 90, ForecastCategory.COMMIT, 30,
        (
            _ticked("finalizing.customer_signed",
                    _("All documents are signed on the customer's side")),
            _derived("finalizing.purchase_order_recorded",
                     _("The purchase order was received and recorded"),
                     purchase_order_recorded),
        ),
    ),
    Stage.PENDING: StageRule(7, 95, ForecastCategory.COMMIT, None),
    Stage.CLOSED: StageRule(8, 100, ForecastCategory.CLOSED, None),
    Stage.DEAD: StageRule(None, 0, ForecastCategory.OMITTED, None),
}

# Stages in process order, Dead excluded.
ORDERED_STAGES: tuple[Stage, ...] = tuple(
    sorted((stage for stage in Stage if PROCESS[stage].order), key=lambda s: PROCESS[s].order)
)
# Stages that time out: 2 to 6.
TIMED_STAGES: tuple[Stage, ...] = tuple(
    stage for stage in ORDERED_STAGES if PROCESS[stage].default_timeout_days
)
# Stages from which an owner or their manager may park an opportunity as Dead.
KILLABLE_STAGES: tuple[Stage, ...] = ORDERED_STAGES[: ORDERED_STAGES.index(Stage.PENDING)]
CRITERIA: dict[str, Criterion] = {
    criterion.key: criterion for rule in PROCESS.values() for criterion in rule.exit_criteria
}


def next_stage(stage: Stage) -> Stage | None:
    order = PROCESS[stage].order
    if order is None or order >= len(ORDERED_STAGES):
        return None
    return ORDERED_STAGES[order]


def stages_from(stage: Stage) -> tuple[Stage, ...]:
    """This stage and every later one along the process."""
    return ORDERED_STAGES[PROCESS[stage].order - 1 :]


def probability_case(field_name: str = "stage") -> models.Case:
    """SQL expression for an opportunity's probability, for annotations and sums."""
    return models.Case(
        *(models.When(**{field_name: stage}, then=models.Value(rule.probability))
          for stage, rule in PROCESS.items()),
        output_field=models.IntegerField(),
    )


def category_stages(category: ForecastCategory) -> list[Stage]:
    return [stage for stage, rule in PROCESS.items() if rule.category == category]


class DeadReason(models.TextChoices):
    COMPETITOR = "competitor", _("Lost to a competitor")
    NO_BUDGET = "no_budget", _("No budget")
    NO_DECISION = "no_decision", _("No decision")
    TIMEOUT = "timeout", _("Timeout")
    OTHER = "other", _("Other")
