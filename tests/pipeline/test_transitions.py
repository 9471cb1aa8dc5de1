"""Which stage can follow which, and who may make each move.

The matrix is typed from process.md and the issue's rules, never derived from the code.
"""

import pytest

from pipeline.models import (
    ChangeForbidden,
    ChangeRefused,
    Opportunity,
    ReviewCheck,
    StageChange,
    Via,
)
from pipeline.process import ORDERED_STAGES, DeadReason, Stage
from tests.factories import (
    BdrFactory,
    Cast,
    OpportunityFactory,
    advance,
    approve,
    make_cast,
    satisfy_gate,
    stored_state,
)

pytestmark = pytest.mark.django_db

STAGES = [
    "identifying", "discovering", "validating", "confirming", "negotiating",
    "finalizing", "pending", "closed", "dead",
]

# Rows: from; columns: to, in the order of STAGES.
# Forward one or several stages up to Pending, each step gated: the purchase order is
# recorded at Finalizing, so no jump from an earlier stage passes into Pending; back from
# 2-6 to any earlier stage with a reason; Dead from 1-6 (owner) and from Pending
# (manager); Pending leads to Closed (approve) or Finalizing (reject) by sales ops' review;
# Dead, a moment after dying in Discovering, reopens there only (docs/decisions.md,
# "Reopening from the dead pool"); Closed is final; staying put is no move.
MATRIX = {
    #               identifyi  discoveri  validatin  confirmin  negotiati  finalizin  pending    closed     dead  # noqa: E501
    "identifying": ["refused", "moves",   "moves",   "moves",   "moves",   "moves",   "refused", "refused", "moves"],  # noqa: E501
    "discovering": ["moves",   "refused", "moves",   "moves",   "moves",   "moves",   "refused", "refused", "moves"],  # noqa: E501
    "validating":  ["moves",   "moves",   "refused", "moves",   "moves",   "moves",   "refused", "refused", "moves"],  # noqa: E501
    "confirming":  ["moves",   "moves",   "moves",   "refused", "moves",   "moves",   "refused", "refused", "moves"],  # noqa: E501
    "negotiating": ["moves",   "moves",   "moves",   "moves",   "refused", "moves",   "refused", "refused", "moves"],  # noqa: E501
    "finalizing":  ["moves",   "moves",   "moves",   "moves",   "moves",   "refused", "moves",   "refused", "moves"],  # noqa: E501
    "pending":     ["refused", "refused", "refused", "refused", "refused", "moves",   "refused", "moves",   "moves"],  # noqa: E501
    "closed":      ["refused", "refused", "refused", "refused", "refused", "refused", "refused", "refused", "refused"],  # noqa: E501
    "dead":        ["refused", "moves",   "refused", "refused", "refused", "refused", "refused", "refused", "refused"],  # noqa: E501
}
CELLS = [(source, target) for source in STAGES for target in STAGES]


def arrange(source: str, cast: Cast) -> Opportunity:
    """An opportunity owned by the rep, brought into `source` the real way, with the gates
    of `source` and every later stage already met."""
    opportunity = OpportunityFactory(owner=cast.rep)
    if source == "dead":
        advance(opportunity, Stage.DISCOVERING)
        opportunity.move_to(Stage.DEAD, by=cast.rep, via=Via.BOARD,
                            dead_reason=DeadReason.NO_DECISION, reason="No decision this year")
    elif source == "closed":
        approve(advance(opportunity, Stage.PENDING), cast.sales_ops)
    else:
        advance(opportunity, Stage(source))
        for stage in ORDERED_STAGES[ORDERED_STAGES.index(Stage(source)): 6]:
            satisfy_gate(opportunity, stage)
    opportunity.reload()
    return opportunity


def actor_for(source: str, target: str, cast: Cast):
    """Someone allowed to make this kind of move: the team's manager parks a pending order,
    sales ops decides on it (and, having closed it, handles a closed one), the owner rep
    makes every other move."""
    if source == "pending":
        return cast.manager if target == "dead" else cast.sales_ops
    if source == "closed":
        return cast.sales_ops
    return cast.rep


def decide(opportunity: Opportunity, *, target: str, by, **move) -> None:
    """A move, or sales ops' review where the opportunity waits for one."""
    if opportunity.stage == Stage.PENDING and target == "closed":
        opportunity.approve_order(by=by, confirmed=set(ReviewCheck.values))
    elif opportunity.stage == Stage.PENDING and target == "finalizing":
        opportunity.reject_order(by=by, failed={ReviewCheck.PRICES}, note=move["reason"])
    else:
        opportunity.move_to(target, by=by, **move)


def steps(source: str, target: str) -> int:
    """History rows a successful move writes: one per stage for a forward move."""
    ordered = [stage.value for stage in ORDERED_STAGES]
    if source in ordered[:6] and target in ordered[:7]:
        return max(1, ordered.index(target) - ordered.index(source))
    return 1


def test_the_matrix_has_every_pair_of_stages():
    assert len(CELLS) == 81
    assert all(len(row) == 9 for row in MATRIX.values())
    assert sorted(MATRIX) == sorted(STAGES) == sorted(stage.value for stage in Stage)


@pytest.mark.parametrize(("source", "target"), CELLS)
def test_move_between_stages_follows_the_process(source, target):
    cast = make_cast()
    opportunity = arrange(source, cast)
    assert opportunity.stage == source
    before = stored_state(opportunity)
    expected = MATRIX[source][STAGES.index(target)]

    try:
        decide(
            opportunity, target=target, by=actor_for(source, target, cast), via=Via.BOARD,
            reason="Stated reason", dead_reason=DeadReason.OTHER if target == "dead" else "",
        )
    except ChangeRefused as refusal:
        outcome, message = "refused", refusal.message
    else:
        outcome, message = "moves", ""

    assert outcome == expected, message
    if outcome == "refused":
        assert stored_state(opportunity) == before
        return
    stored = Opportunity.objects.get(pk=opportunity.pk)
    assert stored.stage == target
    assert stored.version == before["row"]["version"] + 1
    rows = list(StageChange.objects.filter(opportunity=opportunity)
                .exclude(pk__in=[row["id"] for row in before["stage_changes"]]).order_by("pk"))
    assert len(rows) == steps(source, target)
    assert (rows[0].from_stage, rows[-1].to_stage) == (source, target)
    assert all(a.to_stage == b.from_stage for a, b in zip(rows, rows[1:], strict=False))


# --- who may make which move ---

# (from, to, who, outcome): "moves" or "forbidden" (ChangeForbidden, nothing changed).
PERMISSIONS = [
    ("identifying", "discovering", "owner rep", "moves"),
    ("identifying", "discovering", "team manager", "moves"),
    ("identifying", "discovering", "colleague", "forbidden"),
    ("identifying", "discovering", "team bdr", "forbidden"),
    ("identifying", "discovering", "sales ops", "forbidden"),
    ("identifying", "discovering", "other manager", "forbidden"),
    ("confirming", "discovering", "owner rep", "moves"),
    ("confirming", "discovering", "team manager", "moves"),
    ("confirming", "discovering", "colleague", "forbidden"),
    ("confirming", "discovering", "sales ops", "forbidden"),
    ("confirming", "discovering", "other manager", "forbidden"),
    ("negotiating", "dead", "owner rep", "moves"),
    ("negotiating", "dead", "team manager", "moves"),
    ("negotiating", "dead", "system", "moves"),
    ("negotiating", "dead", "colleague", "forbidden"),
    ("negotiating", "dead", "team bdr", "forbidden"),
    ("negotiating", "dead", "sales ops", "forbidden"),
    ("negotiating", "dead", "other manager", "forbidden"),
    ("finalizing", "pending", "owner rep", "moves"),
    ("finalizing", "pending", "sales ops", "forbidden"),
    ("pending", "closed", "sales ops", "moves"),
    ("pending", "closed", "owner rep", "forbidden"),
    ("pending", "closed", "team manager", "forbidden"),
    ("pending", "finalizing", "sales ops", "moves"),
    ("pending", "finalizing", "owner rep", "forbidden"),
    ("pending", "finalizing", "team manager", "forbidden"),
    ("pending", "dead", "team manager", "moves"),
    ("pending", "dead", "owner rep", "forbidden"),
    ("pending", "dead", "sales ops", "forbidden"),
    ("pending", "dead", "other manager", "forbidden"),
    ("dead", "discovering", "team bdr", "moves"),
    ("dead", "discovering", "other team's bdr", "moves"),
    ("dead", "discovering", "owner rep", "moves"),
    ("dead", "discovering", "team manager", "moves"),
    ("dead", "discovering", "colleague", "forbidden"),
    ("dead", "discovering", "sales ops", "forbidden"),
    ("dead", "discovering", "other manager", "forbidden"),
    ("closed", "finalizing", "owner rep", "forbidden"),
    ("closed", "finalizing", "team manager", "forbidden"),
    ("closed", "finalizing", "sales ops", "forbidden"),
]


def person(who: str, cast: Cast):
    return {
        "owner rep": lambda: cast.rep,
        "team manager": lambda: cast.manager,
        "colleague": lambda: cast.colleague,
        "team bdr": lambda: cast.bdr,
        "other team's bdr": lambda: BdrFactory(),
        "sales ops": lambda: cast.sales_ops,
        "other manager": lambda: cast.other_manager,
        "system": lambda: None,
    }[who]()


@pytest.mark.parametrize(("source", "target", "who", "expected"), PERMISSIONS)
def test_who_may_make_a_move(source, target, who, expected):
    cast = make_cast()
    opportunity = arrange(source, cast)
    before = stored_state(opportunity)
    move = {
        "target": target, "by": person(who, cast), "via": Via.BOARD, "reason": "Stated reason",
        "dead_reason": DeadReason.OTHER if target == "dead" else "",
    }

    if expected == "forbidden":
        with pytest.raises(ChangeForbidden):
            decide(opportunity, **move)
        assert stored_state(opportunity) == before
    else:
        decide(opportunity, **move)
        assert opportunity.stage == target


def test_a_bdr_moves_only_their_own_opportunities_out_of_identifying():
    cast = make_cast()
    opportunity = OpportunityFactory(owner=cast.bdr)
    satisfy_gate(opportunity, by=cast.bdr)

    with pytest.raises(ChangeForbidden):
        opportunity.move_to(Stage.DISCOVERING, by=BdrFactory(team=cast.rep.team),
                            via=Via.BOARD, account_executive=cast.rep)
    opportunity.move_to(Stage.DISCOVERING, by=cast.bdr, via=Via.BOARD,
                        account_executive=cast.rep)

    assert (opportunity.stage, opportunity.owner) == (Stage.DISCOVERING, cast.rep)
