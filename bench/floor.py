"""The floor: the least a board and a move can cost in plain Django on the same data.

The board is one grouped query for the column headers (count and sum per stage, of what
the manager may see: opportunities owned in his team), one query per column (its first
cards by expected close date, with account and owner, and the stage's ticked criteria
counted in the same query), and a plain template. The move
locks the row, updates the stage and inserts a StageChange, in one transaction.

No gates, no permissions beyond visibility, no currency conversion, no re-rendered
columns: what the real board and move cost above this is their price for those.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/progression_bench_board \
        .venv/bin/python bench/floor.py

bench/board.py runs the same measurements and prints both, with the ratios.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Subject, benchmark_urls, measure, setup_django  # noqa: E402

setup_django()

from django.conf import settings  # noqa: E402
from django.contrib.auth.decorators import login_required  # noqa: E402
from django.db import transaction  # noqa: E402
from django.db.models import Count, F, OuterRef, Q, Subquery, Sum  # noqa: E402
from django.db.models.functions import Coalesce  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.shortcuts import get_object_or_404  # noqa: E402
from django.template import engines  # noqa: E402
from django.urls import path  # noqa: E402
from django.utils import timezone  # noqa: E402
from django.views.decorators.http import require_POST  # noqa: E402

from crm.models import User, fiscal_quarter, fiscal_quarter_bounds  # noqa: E402
from pipeline.models import CriterionTick, Opportunity, StageChange, Via  # noqa: E402
from pipeline.process import ORDERED_STAGES, PROCESS, Stage  # noqa: E402

MANAGER = "max"
CARDS_PER_COLUMN = settings.BOARD_COLUMN_SIZE
# The forward move both benchmarks time: Discovering to Validating, its gate holding.
MOVE_FROM, MOVE_TO = Stage.DISCOVERING, Stage.VALIDATING

# The same card fields as the real board's card, without its tags and translations.
FLOOR_TEMPLATE = engines["django"].from_string("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Board</title></head><body>
<main class="board">{% for column in columns %}
<section class="column" data-stage="{{ column.stage.value }}">
<h2>{{ column.stage.label }}</h2>
<p>{{ column.probability }} % · {{ column.count }} cards</p>
<p>{{ column.amount|floatformat:"0g" }} {{ currency }} · {{ column.weighted|floatformat:"0g" }} {{ currency }} weighted</p>
<ol>{% for card in column.cards %}{% with opportunity=card.opportunity %}
<li class="card" id="card-{{ opportunity.pk }}" data-version="{{ opportunity.version }}">
<a href="/opportunities/{{ opportunity.pk }}/">{{ opportunity.name }}</a>
<span>{{ opportunity.account.name }}</span>
<span>{{ opportunity.amount }} {{ opportunity.currency }}</span>
<span>{{ opportunity.expected_close_date|date:"SHORT_DATE_FORMAT" }} · {{ opportunity.owner }} · {{ opportunity.get_type_display }}</span>
<span>{% if card.total %}{{ card.met }}/{{ card.total }} criteria{% endif %}{% if card.timeout %} {{ card.days }}/{{ card.timeout }} days{% endif %}</span>
</li>{% endwith %}{% endfor %}</ol>
</section>{% endfor %}</main></body></html>""")  # noqa: E501


def visible(user: User):
    """What a manager sees: opportunities owned in a team he leads, and his own."""
    return Opportunity.objects.filter(Q(owner__team__manager=user) | Q(owner=user))


def on_board(user: User):
    """Open ones, and those closed this quarter, as on the real board's default view."""
    quarter_start = fiscal_quarter_bounds(*fiscal_quarter(timezone.localdate()))[0]
    return visible(user).filter(stage__in=ORDERED_STAGES).exclude(
        stage=Stage.CLOSED, stage_entered_at__date__lt=quarter_start
    )


def ticked_in_stage(stage: Stage):
    """Active ticks of the stage's criteria, counted in the column's own query."""
    ticks = (
        CriterionTick.objects.filter(
            opportunity=OuterRef("pk"), revoked_at__isnull=True,
            criterion__startswith=f"{stage.value}.",
        )
        .order_by()
        .values("opportunity")
        .annotate(count=Count("*"))
        .values("count")
    )
    return Coalesce(Subquery(ticks), 0)


def floor_card(opportunity: Opportunity, now) -> dict:
    timeout = None
    if opportunity.stage_deadline is not None:
        timeout = (opportunity.stage_deadline - opportunity.stage_entered_at).days
    return {
        "opportunity": opportunity,
        "met": opportunity.ticked,
        "total": len(PROCESS[Stage(opportunity.stage)].exit_criteria),
        "days": (now - opportunity.stage_entered_at).days,
        "timeout": timeout,
    }


@login_required
def floor_board(request) -> HttpResponse:
    opportunities = on_board(request.user)
    headers = {
        row["stage"]: row
        for row in opportunities.order_by().values("stage").annotate(
            count=Count("*"), amount=Sum("amount")
        )
    }
    now = timezone.now()
    columns = []
    for stage in ORDERED_STAGES:
        cards = (
            opportunities.filter(stage=stage)
            .select_related("account", "owner")
            .annotate(ticked=ticked_in_stage(stage))
            .order_by("expected_close_date", "pk")[:CARDS_PER_COLUMN]
        )
        header = headers.get(stage, {"count": 0, "amount": 0})
        amount = header["amount"] or 0
        columns.append({
            "stage": stage,
            "probability": PROCESS[stage].probability,
            "count": header["count"],
            "amount": amount,
            "weighted": amount * PROCESS[stage].probability / 100,
            "cards": [floor_card(opportunity, now) for opportunity in cards],
        })
    return HttpResponse(FLOOR_TEMPLATE.render(
        {"columns": columns, "currency": settings.COMPANY_CURRENCY}, request
    ))


@require_POST
@login_required
def floor_move(request, pk: int) -> HttpResponse:
    target = Stage(request.POST["stage"])
    with transaction.atomic():
        opportunity = get_object_or_404(
            visible(request.user).select_for_update(of=("self",)), pk=pk
        )
        source = opportunity.stage
        # A bench may bypass the state machine knowingly (stack-notes); this is the floor.
        Opportunity.objects.filter(pk=pk).update(stage=target, version=F("version") + 1)
        StageChange.objects.create(
            opportunity=opportunity, from_stage=source, to_stage=target,
            changed_at=timezone.now(), changed_by=request.user, via=Via.BOARD,
        )
    return HttpResponse(f'<li id="card-{pk}" data-stage="{target.value}"></li>')


urlpatterns = benchmark_urls([
    path("floor/board/", floor_board, name="floor_board"),
    path("floor/opportunities/<int:pk>/move/", floor_move, name="floor_move"),
])
URLCONF = "bench.floor"


# --- shared with bench/board.py ---


def manager() -> User:
    return User.objects.get(username=MANAGER)


def movable_opportunities(user: User, count: int) -> list[int]:
    """Open opportunities in MOVE_FROM whose exit criteria all hold, so the forward move
    succeeds; each round moves one forward and puts it back untimed."""
    criteria = PROCESS[MOVE_FROM].exit_criteria
    candidates = (
        Opportunity.objects.visible_to(user).filter(stage=MOVE_FROM)
        .annotate(ticked=ticked_in_stage(MOVE_FROM)).filter(ticked=len(criteria))
        .order_by("pk")
    )
    chosen = [opportunity.pk for opportunity in candidates.with_checklist()[: count * 2]
              if opportunity.gate_is_met()][:count]
    if len(chosen) < count:
        raise SystemExit(f"Only {len(chosen)} opportunities in {MOVE_FROM.label} can move "
                         f"forward; seed more (bench/board.py seeds when needed).")
    return chosen


def logged_in_client(user: User):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def floor_subjects(client, pks: list[int]) -> list[Subject]:
    """The floor's board and move, to be timed like the real ones in bench/board.py."""

    def board(number: int):
        return client.get("/floor/board/", secure=True)

    def move(number: int):
        pk = pks[number % len(pks)]
        return client.post(f"/floor/opportunities/{pk}/move/", {"stage": MOVE_TO.value},
                           secure=True)

    def put_back(number: int) -> None:
        pk = pks[number % len(pks)]
        response = client.post(f"/floor/opportunities/{pk}/move/", {"stage": MOVE_FROM.value},
                               secure=True)
        if response.status_code != 200:
            raise SystemExit(f"floor move back of {pk} answered {response.status_code}")

    return [Subject("floor board", board), Subject("floor move", move, reset=put_back)]


def main() -> None:
    from django.test.utils import override_settings

    from bench.common import print_environment

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    arguments = parser.parse_args()
    print_environment()
    user = manager()
    with override_settings(ROOT_URLCONF=URLCONF):
        subjects = floor_subjects(logged_in_client(user), movable_opportunities(user, 5))
        figures = measure(subjects, rounds=arguments.rounds, warmup=arguments.warmup)
    for result in figures.values():
        print(result.line())


if __name__ == "__main__":
    main()
