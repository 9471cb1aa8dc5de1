"""Two people moving one card at the same moment: the row lock lets exactly one through.

Needs PostgreSQL's row locks (the `postgresql` fixture skips elsewhere, with the reason),
and real commits, hence transaction=True; serialized_rollback brings back the role groups
the flush at the end of a transactional test removes.
"""

import threading
import time

import pytest
from django.db import connection
from django_fsm.signals import post_transition

from crm.models import User
from pipeline.models import (
    ChangeForbidden,
    ChangeRefused,
    Conflict,
    InvalidChange,
    Opportunity,
    StageChange,
    Via,
)
from pipeline.process import Stage
from tests.factories import OpportunityFactory, advance, make_cast, satisfy_gate

concurrent = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def wait_until_another_session_waits_for_my_lock(patience: float = 10.0) -> None:
    """Poll PostgreSQL until some other session is blocked by this one (or give up)."""
    deadline = time.monotonic() + patience
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.01)


def race(moves: list[tuple[User, dict]], opportunity: Opportunity) -> list:
    """Run each (user, move_to arguments) in its own thread, released together; return
    what each got: "moved" or the refusal.

    Whoever takes the row lock first is held inside its transaction, right after its
    transition, until the other is waiting for the lock: the race is then certain to
    overlap instead of depending on the scheduler.
    """
    barrier = threading.Barrier(len(moves), timeout=30)
    outcomes: list = [None] * len(moves)
    held = threading.Event()

    def hold_the_first_transition(sender, **kwargs) -> None:
        if not held.is_set():
            held.set()
            wait_until_another_session_waits_for_my_lock()

    def contender(index: int, user: User, arguments: dict) -> None:
        try:
            # Each person loaded the card before the race, as a browser would have.
            mine = Opportunity.objects.get(pk=opportunity.pk)
            barrier.wait()
            mine.move_to(by=user, via=Via.BOARD, **arguments)
            outcomes[index] = "moved"
        except ChangeRefused as refusal:
            outcomes[index] = refusal
        except Exception as error:  # surfaced by the assertions in the test
            outcomes[index] = error
        finally:
            connection.close()

    threads = [
        threading.Thread(target=contender, args=(index, user, arguments))
        for index, (user, arguments) in enumerate(moves)
    ]
    post_transition.connect(hold_the_first_transition, sender=Opportunity)
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        post_transition.disconnect(hold_the_first_transition, sender=Opportunity)
    assert not any(thread.is_alive() for thread in threads), "a contender never finished"
    assert held.is_set(), "nobody moved"
    return outcomes


def negotiating_opportunity(cast) -> Opportunity:
    opportunity = advance(OpportunityFactory(owner=cast.rep), Stage.NEGOTIATING)
    satisfy_gate(opportunity)
    # The last change before the race came from an import, not from either contender.
    opportunity.update_details(by=None, via=Via.IMPORT, next_step="Imported next step")
    opportunity.reload()
    return opportunity


@concurrent
def test_two_people_moving_one_card_from_the_same_version_one_wins(postgresql):
    cast = make_cast()
    opportunity = negotiating_opportunity(cast)
    version = opportunity.version
    history = StageChange.objects.filter(opportunity=opportunity).count()

    outcomes = race(
        [
            (cast.rep, {"target": Stage.FINALIZING, "expected_version": version}),
            (cast.manager, {"target": Stage.CONFIRMING, "expected_version": version,
                            "reason": "The board wants another round"}),
        ],
        opportunity,
    )

    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["Conflict", "str"], outcomes
    winner_index = outcomes.index("moved")
    winner = (cast.rep, cast.manager)[winner_index]
    target = (Stage.FINALIZING, Stage.CONFIRMING)[winner_index]
    conflict = outcomes[1 - winner_index]
    assert isinstance(conflict, Conflict)
    assert winner.get_full_name() in conflict.message
    stored = Opportunity.objects.get(pk=opportunity.pk)
    assert (stored.stage, stored.version, stored.changed_by) == (target, version + 1, winner)
    assert StageChange.objects.filter(opportunity=opportunity).count() == history + 1


@concurrent
def test_two_people_making_the_same_forward_move_one_moves_the_other_is_told(postgresql):
    cast = make_cast()
    opportunity = negotiating_opportunity(cast)
    version = opportunity.version
    history = StageChange.objects.filter(opportunity=opportunity).count()

    outcomes = race(
        [(cast.rep, {"target": Stage.FINALIZING}),
         (cast.manager, {"target": Stage.FINALIZING})],
        opportunity,
    )

    assert outcomes.count("moved") == 1, outcomes
    refusal = next(outcome for outcome in outcomes if outcome != "moved")
    assert isinstance(refusal, InvalidChange), refusal
    assert "already in" in refusal.message
    stored = Opportunity.objects.get(pk=opportunity.pk)
    assert (stored.stage, stored.version) == (Stage.FINALIZING, version + 1)
    assert StageChange.objects.filter(opportunity=opportunity).count() == history + 1


@concurrent
def test_a_handover_racing_the_same_move_leaves_the_other_with_a_clear_refusal(postgresql):
    cast = make_cast()
    opportunity = OpportunityFactory(owner=cast.bdr)
    satisfy_gate(opportunity, by=cast.bdr)
    history = StageChange.objects.filter(opportunity=opportunity).count()

    outcomes = race(
        [(cast.bdr, {"target": Stage.DISCOVERING, "account_executive": cast.rep}),
         (cast.manager, {"target": Stage.DISCOVERING, "account_executive": cast.rep})],
        opportunity,
    )

    assert outcomes.count("moved") == 1, outcomes
    winner_index = outcomes.index("moved")
    refusal = outcomes[1 - winner_index]
    if winner_index == 0:
        # The manager still works the opportunity; it simply is there already.
        assert isinstance(refusal, InvalidChange), repr(refusal)
        assert "already in" in refusal.message
    else:
        # The BDR handed it over in the meantime: past stage 1 it is the rep's.
        assert isinstance(refusal, ChangeForbidden), repr(refusal)
    stored = Opportunity.objects.get(pk=opportunity.pk)
    assert (stored.stage, stored.owner) == (Stage.DISCOVERING, cast.rep)
    assert StageChange.objects.filter(opportunity=opportunity).count() == history + 1
