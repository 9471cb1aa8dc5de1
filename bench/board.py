"""How fast the manager's board and a move are, next to their floor (bench/floor.py).

With about 10,000 open opportunities from seed_demo, the demo manager "max" opens his full
board (GET /board/, every column, as a browser does) and moves one card whose gate holds
(POST /opportunities/<id>/move/ from the board, with htmx, as a drag does). Each is timed
in-process through Django's test client: median and 90th percentile of the server time,
and the query count. The floor's board and move run the same way; the ratios are printed.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/progression_bench_board \
    REDIS_URL=redis://127.0.0.1:6379/8 .venv/bin/python bench/board.py

Seeds first when the database has fewer open opportunities than asked (seed_demo adds;
it never deletes). Targets (the issue): board under 100 ms and within 2x of the floor,
move under 30 ms. Card markup is memoised by content (pipeline.board_views.card_html), so the
board is also timed with that memo emptied before each request ("cold"). --profile shows
where the board's time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import math
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    Subject,
    calibration_ms,
    measure,
    print_environment,
    setup_django,
)

setup_django()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402
from django_htmx.middleware import HtmxDetails  # noqa: E402

from bench import floor  # noqa: E402
from crm.models import User  # noqa: E402
from pipeline import board_views, opportunity_views  # noqa: E402
from pipeline.management.commands.seed_demo import STAGE_SHARES  # noqa: E402
from pipeline.models import Opportunity, Via  # noqa: E402
from pipeline.process import Stage  # noqa: E402

BOARD_TARGET_MS = 100
BOARD_FLOOR_RATIO_TARGET = 2
MOVE_TARGET_MS = 30
MOVED_CARDS = 5  # rotated through, so no round moves the card the previous one did
BOARD = "board (GET /board/)"
COLD_BOARD = "board, card markup cold"
MOVE = "move (POST, htmx board)"


# --- the data ---


def open_count() -> int:
    return Opportunity.objects.open().count()


def seed_total_for(missing: int) -> int:
    """How many opportunities seed_demo must create for `missing` open ones: it spreads
    them over every stage, closed and dead included. Rounded up to a hundred."""
    open_share = sum(share for stage, share in STAGE_SHARES.items()
                     if stage not in (Stage.CLOSED, Stage.DEAD)) / sum(STAGE_SHARES.values())
    return math.ceil(missing / open_share / 100) * 100


def ensure_data(wanted_open: int, seed: int) -> None:
    present = open_count()
    if present >= wanted_open:
        return
    total = seed_total_for(wanted_open - present)
    print(f"{present} open opportunities, {wanted_open} wanted: "
          f"manage.py seed_demo --opportunities {total} --seed {seed}", flush=True)
    call_command("seed_demo", opportunities=total, seed=seed, verbosity=0)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # fresh statistics, as autovacuum would leave them


# --- the real board and move, through the test client ---

HTMX = {"HX-Request": "true"}


def version_of(pk: int) -> int:
    return Opportunity.objects.values_list("version", flat=True).get(pk=pk)


def board_subjects(client, pks: list[int]) -> list[Subject]:
    versions = {pk: version_of(pk) for pk in pks}

    def board(number: int):
        return client.get("/board/", secure=True)

    def cold_board(number: int):
        """The board with no card markup memoised: it renders every card (the memo holds
        only a few hundred entries here, so emptying it costs microseconds)."""
        board_views.card_html.cache_clear()
        return client.get("/board/", secure=True)

    def move(number: int):
        pk = pks[number % len(pks)]
        return client.post(f"/opportunities/{pk}/move/", {
            "stage": floor.MOVE_TO.value, "version": versions[pk], "via": "board", "filters": "",
        }, headers=HTMX, secure=True)

    def undo(number: int) -> None:
        """The board's Undo, untimed: the card is back and its ticks still hold."""
        pk = pks[number % len(pks)]
        response = client.post(f"/opportunities/{pk}/move/", {
            "stage": floor.MOVE_FROM.value, "version": version_of(pk), "undo": "on",
            "via": "board", "filters": "",
        }, headers=HTMX, secure=True)
        if response.status_code != 200:
            raise SystemExit(f"undo of {pk} answered {response.status_code}")
        versions[pk] = version_of(pk)

    # The cold board first: it leaves the memo filled for the board that follows.
    return [Subject(COLD_BOARD, cold_board), Subject(BOARD, board),
            Subject(MOVE, move, reset=undo)]


# --- where the time goes: view (queries and Python) against template rendering ---


def fresh_request(factory: RequestFactory, method: str, path: str, user_pk: int,
                  data: dict | None = None, htmx: bool = False):
    """A request as the middleware would leave it, with the user read anew, so nothing the
    previous round cached on the user object (roles, teams) is reused."""
    headers = HTMX if htmx else {}
    request = getattr(factory, method)(path, data or {}, headers=headers, secure=True)
    request.user = User.objects.get(pk=user_pk)
    request.session = {}
    request.htmx = HtmxDetails(request)
    return request


def split(name: str, call, rounds: int, reset=None) -> str:
    """Median milliseconds and queries of the view (until it returns its unrendered
    TemplateResponse) and of rendering it."""
    view_ms, render_ms, view_queries, render_queries = [], [], 0, 0
    for number in range(rounds + 2):
        request_call = call(number)
        with CaptureQueriesContext(connection) as in_view:
            started = time.perf_counter()
            response = request_call()
            viewed = time.perf_counter()
            view_queries = len(in_view.captured_queries)
        with CaptureQueriesContext(connection) as in_render:
            rendering = time.perf_counter()
            response.render()
            rendered = time.perf_counter()
            render_queries = len(in_render.captured_queries)
        if response.status_code != 200:
            raise SystemExit(f"{name}: {response.status_code}")
        if number >= 2:  # the first two warm up
            view_ms.append((viewed - started) * 1000)
            render_ms.append((rendered - rendering) * 1000)
        if reset is not None:
            reset(number)
    return (f"{name:<28} view {statistics.median(view_ms):6.2f} ms ({view_queries} queries)"
            f"   render {statistics.median(render_ms):6.2f} ms ({render_queries} queries)"
            f"   {len(response.content) // 1024} KiB")


def breakdown(user: User, pks: list[int], rounds: int) -> list[str]:
    factory = RequestFactory()
    lines = [split("board", lambda number: lambda: board_views.board(
        fresh_request(factory, "get", "/board/", user.pk)), rounds)]

    def move(number: int):
        pk = pks[number % len(pks)]
        data = {"stage": floor.MOVE_TO.value, "version": version_of(pk), "via": "board",
                "filters": ""}
        return lambda: opportunity_views.opportunity_move(
            fresh_request(factory, "post", f"/opportunities/{pk}/move/", user.pk, data,
                          htmx=True), pk)

    def undo(number: int) -> None:
        pk = pks[number % len(pks)]
        Opportunity.objects.get(pk=pk).move_to(floor.MOVE_FROM, by=user, via=Via.BOARD,
                                               reason="undo", is_undo=True)

    lines.append(split("move (htmx board)", move, rounds, reset=undo))

    # The model's own share of a move: lock, gate, transition, save, history, notification.
    times, queries = [], 0
    for number in range(rounds + 2):
        pk = pks[number % len(pks)]
        # As the view reads it; the mover fresh, so reading his roles and teams counts.
        opportunity = Opportunity.objects.select_related("account", "owner").get(pk=pk)
        mover = User.objects.get(pk=user.pk)
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            opportunity.move_to(floor.MOVE_TO, by=mover, via=Via.BOARD)
            elapsed = (time.perf_counter() - started) * 1000
            queries = len(captured.captured_queries)
        if number >= 2:
            times.append(elapsed)
        undo(number)
    lines.append(f"{'  of which move_to()':<28} {statistics.median(times):6.2f} ms "
                 f"({queries} queries, the mover's roles and teams included)")
    return lines


def profile_board(client, requests: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for _number in range(requests):
        client.get("/board/", secure=True)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(30)
    return out.getvalue()


# --- report ---


def verdict(met: bool) -> str:
    return "meets" if met else "MISSES"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--open", type=int, default=10_000,
                        help="open opportunities wanted; seeds the difference")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also profile N board requests with cProfile")
    arguments = parser.parse_args()

    ensure_data(arguments.open, arguments.seed)
    print_environment()
    print(f"{open_count()} open opportunities")
    user = floor.manager()
    # Separate cards for the real and the floor's moves: each keeps its own versions.
    movable = floor.movable_opportunities(user, 2 * MOVED_CARDS)
    pks, floor_pks = movable[:MOVED_CARDS], movable[MOVED_CARDS:]
    rounds, warmup = arguments.rounds, arguments.warmup
    with override_settings(ROOT_URLCONF=floor.URLCONF):
        client = floor.logged_in_client(user)
        # Interleaved: board, floor board, move, floor move, then the next round.
        cold_board, real_board, real_move = board_subjects(client, pks)
        floor_board, floor_move = floor.floor_subjects(client, floor_pks)
        figures = measure([cold_board, real_board, floor_board, real_move, floor_move],
                          rounds=rounds, warmup=warmup)
        parts = breakdown(user, pks, rounds)
        profile = profile_board(client, arguments.profile) if arguments.profile else ""
    print(f"after: load average {' '.join(f'{load:.2f}' for load in os.getloadavg())}, "
          f"calibration {calibration_ms():.1f} ms")
    print()
    for result in figures.values():
        print(result.line())
    board, move = figures[BOARD], figures[MOVE]
    board_ratio = board.median / figures["floor board"].median
    move_ratio = move.median / figures["floor move"].median
    print()
    cold_ratio = figures[COLD_BOARD].median / figures["floor board"].median
    print(f"board / floor: {board_ratio:.2f}x (median; {cold_ratio:.2f}x with the card "
          f"markup cold)    move / floor: {move_ratio:.2f}x")
    print(f"board under {BOARD_TARGET_MS} ms: "
          f"{verdict(board.median < BOARD_TARGET_MS)}; "
          f"within {BOARD_FLOOR_RATIO_TARGET}x of the floor: "
          f"{verdict(board_ratio <= BOARD_FLOOR_RATIO_TARGET)}; "
          f"move under {MOVE_TARGET_MS} ms: {verdict(move.median < MOVE_TARGET_MS)}")
    print()
    print("Where the time goes (RequestFactory, no middleware; medians):")
    for line in parts:
        print(line)
    if profile:
        print()
        print(profile)


if __name__ == "__main__":
    main()
