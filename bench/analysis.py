"""How fast the forecast's funnel and calibration are, next to their floor.

On seed_demo's data (its stage history over the past quarters), the demo's sales ops
user "sofia" opens /forecast/funnel/ and /forecast/calibration/ for the whole company, and
the demo manager "max" for his team. The floor is the least SQL that computes the same
kind of figures, company-wide: one window over the stage changes and the creation
entries (every opportunity enters Identifying when created, as the demo's do), leaving
out only the undo rows themselves (not the moves they took back), a second one for how
far each opportunity went from each row on, grouped per stage, PostgreSQL's own
percentile_cont for the median, rendered as bare text. Both are timed in-process
through Django's test client.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/progression_bench \
        .venv/bin/python bench/analysis.py --quarter 2026-Q3 --last 2026-Q3

Seed first (bench/seed.py). Targets (issue 12): within 2x of the floor, and a query count
that does not grow with the data.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    Subject,
    benchmark_urls,
    measure,
    print_environment,
    setup_django,
)

setup_django()

from django.contrib.auth.decorators import login_required  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.urls import path  # noqa: E402

from crm.models import User, fiscal_quarter_bounds, quarter_from_text  # noqa: E402
from forecasting.stage_history import local_midnight  # noqa: E402

RATIO_TARGET = 2

VISITS = """
WITH visits AS (
    SELECT opportunity_id, to_stage AS stage, changed_at AS entered_at,
           LEAD(changed_at) OVER (PARTITION BY opportunity_id ORDER BY changed_at, id)
               AS left_at,
           MAX(CASE to_stage WHEN 'identifying' THEN 1 WHEN 'discovering' THEN 2
                   WHEN 'validating' THEN 3 WHEN 'confirming' THEN 4
                   WHEN 'negotiating' THEN 5 WHEN 'finalizing' THEN 6 WHEN 'pending' THEN 7
                   WHEN 'closed' THEN 8 END) OVER (
               PARTITION BY opportunity_id ORDER BY changed_at DESC, id DESC
               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS furthest
    FROM (SELECT opportunity_id, to_stage, changed_at, id FROM pipeline_stagechange
          WHERE NOT is_undo
          UNION ALL
          SELECT id, 'identifying', created_at, 0 FROM pipeline_opportunity) AS history
)"""

FLOOR_FUNNEL = VISITS + """,
entered AS (
    SELECT opportunity_id, stage, MAX(furthest) AS furthest,
           SUM(EXTRACT(EPOCH FROM left_at - entered_at)) AS seconds,
           COUNT(*) - COUNT(left_at) AS still_in
    FROM visits WHERE entered_at >= %s AND entered_at < %s
    GROUP BY opportunity_id, stage
)
SELECT stage, COUNT(*), COUNT(*) FILTER (WHERE furthest > CASE stage
           WHEN 'identifying' THEN 1 WHEN 'discovering' THEN 2 WHEN 'validating' THEN 3
           WHEN 'confirming' THEN 4 WHEN 'negotiating' THEN 5 WHEN 'finalizing' THEN 6
           WHEN 'pending' THEN 7 END),
       COUNT(*) FILTER (WHERE still_in > 0),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY floor(seconds / 86400))
           FILTER (WHERE still_in = 0)
FROM entered GROUP BY stage
"""

FLOOR_CALIBRATION = VISITS + """,
stood AS (
    SELECT opportunity_id, stage,
           floor(SUM(EXTRACT(EPOCH FROM left_at - entered_at)) / 86400) AS days
    FROM visits
    WHERE stage NOT IN ('closed', 'dead') AND entered_at < %s
          AND (left_at IS NULL OR left_at > %s)
    GROUP BY opportunity_id, stage
)
SELECT stood.stage, LEAST(width_bucket(days, 0, 120, 4), 4),
       COUNT(*) FILTER (WHERE outcome.stage = 'closed'),
       COUNT(*) FILTER (WHERE outcome.stage IN ('closed', 'dead')), COUNT(*)
FROM stood JOIN pipeline_opportunity outcome ON outcome.id = stood.opportunity_id
GROUP BY 1, 2
"""


def floor_page(sql: str, bounds):
    @login_required
    def view(request):
        first, after = bounds(request.GET["quarter"])
        with connection.cursor() as cursor:
            cursor.execute(sql, [first, after])
            rows = cursor.fetchall()
        return HttpResponse("\n".join(" ".join(map(str, row)) for row in rows))
    return view


def funnel_bounds(quarter: str):
    first, after = fiscal_quarter_bounds(*quarter_from_text(quarter))
    return local_midnight(first), local_midnight(after)


def calibration_bounds(quarter: str):
    year, number = quarter_from_text(quarter)
    index = year * 4 + number - 1 - 3
    first = fiscal_quarter_bounds(index // 4, index % 4 + 1)[0]
    return local_midnight(fiscal_quarter_bounds(year, number)[1]), local_midnight(first)


urlpatterns = benchmark_urls([
    path("floor/funnel/", floor_page(FLOOR_FUNNEL, funnel_bounds)),
    path("floor/calibration/", floor_page(FLOOR_CALIBRATION, calibration_bounds)),
])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quarter", required=True, help="the funnel's quarter, 2026-Q3")
    parser.add_argument("--last", required=True,
                        help="the calibration's last quarter of four, 2026-Q3")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    arguments = parser.parse_args()
    print_environment()
    with connection.cursor() as cursor:
        cursor.execute("SELECT (SELECT COUNT(*) FROM pipeline_opportunity), "
                       "(SELECT COUNT(*) FROM pipeline_stagechange)")
        opportunities, changes = cursor.fetchone()
    print(f"{opportunities} opportunities, {changes} stage changes")
    sofia, max_ = Client(), Client()
    sofia.force_login(User.objects.get(username="sofia"))
    max_.force_login(User.objects.get(username="max"))
    funnel = {"quarter": arguments.quarter}
    calibration = {"quarter": arguments.last}
    with override_settings(ROOT_URLCONF=__name__):
        figures = measure([
            Subject("funnel, company", lambda n: sofia.get("/forecast/funnel/", funnel,
                                                           secure=True)),
            Subject("floor funnel", lambda n: sofia.get("/floor/funnel/", funnel,
                                                        secure=True)),
            Subject("calibration, company",
                    lambda n: sofia.get("/forecast/calibration/", calibration, secure=True)),
            Subject("floor calibration",
                    lambda n: sofia.get("/floor/calibration/", calibration, secure=True)),
            Subject("funnel, max's team",
                    lambda n: max_.get("/forecast/funnel/", funnel, secure=True)),
            Subject("calibration, max's team",
                    lambda n: max_.get("/forecast/calibration/", calibration, secure=True)),
        ], rounds=arguments.rounds, warmup=arguments.warmup)
    for result in figures.values():
        print(result.line())
    for page, floor in (("funnel, company", "floor funnel"),
                        ("calibration, company", "floor calibration")):
        ratio = figures[page].median / figures[floor].median
        print(f"{page} / floor: {ratio:.2f}x (target: at most {RATIO_TARGET}x) -> "
              f"{'met' if ratio <= RATIO_TARGET else 'missed'}")


if __name__ == "__main__":
    main()
