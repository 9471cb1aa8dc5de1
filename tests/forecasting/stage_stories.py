"""A small history for the funnel and calibration: two quarters of moves by two reps of
one team and one rep of another, crossing the 2026-Q2/Q3 boundary, with a reopen, two
undos (made through the real undo) and stage revisits. Fiscal years follow the calendar.

Days in stage (whole days, noon to noon, UTC):
  Acme   (Anna, won)   created 03-20; 1 5d, 2 10d, 3 30d, 4 30d, 5 40d (06-03 to 07-13),
                       6 10d, 7 2d, closed 07-25
  Beta   (Anna, dead)  created 04-01; 1 10d, 2 30d (a move to 3 on 04-21 undone a minute
                       later), 3 20d, back to 2 10d, 3 20d, dead 06-30
  Gamma  (Anna, open)  created 2025-12-01; 1 40d, 2 30d, dead 02-09, reopened 04-15,
                       1 30d, in 2 since 05-15
  Delta  (Anna, open)  created 06-25; moved to 2 on 06-26 and undone a minute later
  Echo   (Ben, won)    created 2025-08-01; 1 10d, 2 60d, 3 90d, 4 100d, 5 2d, 6 1d,
                       7 1d, closed 2026-04-22
  Foxtrot (Ben, dead)  created 2025-09-01; 1 1d, 2 45d, dead 2025-10-17
  Golf   (Olga, other team, open) created 2026-04-02; in 2 since 04-12
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from crm.models import User
from pipeline.models import Opportunity, StageChange, Via
from pipeline.process import DeadReason, Stage
from tests.factories import ManagerFactory, OpportunityFactory, RepFactory, satisfy_gate

S = Stage


def noon(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T12:00:00+00:00")


def story(owner: User, name: str, created: str, *moves: tuple[str, Stage]) -> Opportunity:
    """An opportunity created on `created` that moved as told: history rows written
    directly, seed-style, with the stage they leave it in."""
    opportunity = OpportunityFactory(owner=owner, name=name, created_at=noon(created))
    return moved(opportunity, *moves)


def moved(opportunity: Opportunity, *moves: tuple[str, Stage]) -> Opportunity:
    stage = Stage(opportunity.stage)
    for day, target in moves:
        StageChange.objects.create(
            opportunity=opportunity, from_stage=stage, to_stage=target, changed_at=noon(day),
            changed_by=opportunity.owner, via=Via.PAGE, reason="as it went",
            dead_reason=DeadReason.NO_BUDGET if target == Stage.DEAD else "")
        stage = target
    Opportunity.objects.filter(pk=opportunity.pk).update(stage=stage)
    opportunity.reload()
    return opportunity


def moved_and_undone(opportunity: Opportunity, day: str, target: Stage) -> None:
    """A real move on the board at noon, taken back with the real undo a minute later."""
    back = Stage(opportunity.stage)
    satisfy_gate(opportunity)
    opportunity.move_to(target, by=opportunity.owner, via=Via.BOARD, now=noon(day))
    opportunity.move_to(back, by=opportunity.owner, via=Via.BOARD, reason="Wrong column",
                        is_undo=True, now=noon(day) + timedelta(minutes=1))


@dataclass
class Cast:
    manager: User
    anna: User
    ben: User
    olga: User
    opportunities: dict[str, Opportunity]


def stage_stories() -> Cast:
    manager = ManagerFactory()
    anna = RepFactory(team=manager.team, first_name="Anna", last_name="Adler")
    ben = RepFactory(team=manager.team, first_name="Ben", last_name="Berg")
    olga = RepFactory(first_name="Olga", last_name="Ost")
    found = {}
    found["acme"] = story(
        anna, "Acme", "2026-03-20", ("2026-03-25", S.DISCOVERING), ("2026-04-04", S.VALIDATING),
        ("2026-05-04", S.CONFIRMING), ("2026-06-03", S.NEGOTIATING),
        ("2026-07-13", S.FINALIZING), ("2026-07-23", S.PENDING), ("2026-07-25", S.CLOSED))
    beta = story(anna, "Beta", "2026-04-01", ("2026-04-11", S.DISCOVERING))
    moved_and_undone(beta, "2026-04-21", S.VALIDATING)
    found["beta"] = moved(beta, ("2026-05-11", S.VALIDATING), ("2026-05-31", S.DISCOVERING),
                          ("2026-06-10", S.VALIDATING), ("2026-06-30", S.DEAD))
    found["gamma"] = story(
        anna, "Gamma", "2025-12-01", ("2026-01-10", S.DISCOVERING), ("2026-02-09", S.DEAD),
        ("2026-04-15", S.IDENTIFYING), ("2026-05-15", S.DISCOVERING))
    delta = story(anna, "Delta", "2026-06-25")
    moved_and_undone(delta, "2026-06-26", S.DISCOVERING)
    found["delta"] = delta
    found["echo"] = story(
        ben, "Echo", "2025-08-01", ("2025-08-11", S.DISCOVERING), ("2025-10-10", S.VALIDATING),
        ("2026-01-08", S.CONFIRMING), ("2026-04-18", S.NEGOTIATING),
        ("2026-04-20", S.FINALIZING), ("2026-04-21", S.PENDING), ("2026-04-22", S.CLOSED))
    found["foxtrot"] = story(ben, "Foxtrot", "2025-09-01", ("2025-09-02", S.DISCOVERING),
                             ("2025-10-17", S.DEAD))
    found["golf"] = story(olga, "Golf", "2026-04-02", ("2026-04-12", S.DISCOVERING))
    return Cast(manager, anna, ben, olga, found)
