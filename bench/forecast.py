"""How long the forecast dashboard and one snapshot take, each next to its floor.

    createdb -h 127.0.0.1 -U postgres bench_forecast_1m
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_forecast_1m
    .venv/bin/python manage.py migrate
    .venv/bin/python bench/seed.py --opportunities 1000000       # seed_demo's data
    .venv/bin/python bench/forecast.py --rounds 5

The dashboard: GET /forecast/ as the demo superuser "admin" (the company scope, the
current quarter), through Django's test client. Its floor: a view of the least raw SQL
that computes every figure the page shows, rendered by a plain template: the quarter's
figures per rep and category in the company currency (one grouped query joining the
rates), the quotas per rep, the reps' names, the pipeline that entered each of the last
four quarters, read from the stored quarters as the app reads them once stored
(--rebuilding-floor: rebuilt from the change history, one statement for the four
quarters: indexed LIMIT 1 look-ups of the last standing change before each start, else
the first after; the first request, which stores them, is timed alone first), what
closed in each of them (one grouped query), and the hygiene list with its count (the
quarter's pushes grouped once, joined; the count by a window). The snapshot and its floor
are bench/forecast_snapshot.py's (one INSERT … SELECT). Targets (issue 12): within 2x of
the floor, and a query count that does not grow with the data (run it at two sizes).
Works on SQLite too for the page (the floor's SQL is PostgreSQL's).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import timedelta
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
from django.template import engines  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.urls import path  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.forecast_snapshot import app_snapshot, floor_snapshot  # noqa: E402
from crm.models import (  # noqa: E402
    User,
    company_currency,
    fiscal_quarter,
    fiscal_quarter_bounds,
    fiscal_quarter_moments,
)
from forecasting.coverage import QUARTERS_LOOKED_BACK, previous_quarters  # noqa: E402
from forecasting.models import EnteringOpportunity, Snapshot  # noqa: E402
from pipeline.models import Opportunity  # noqa: E402
from pipeline.models.hygiene import PUSHES_FLAGGED, three_months_after  # noqa: E402
from pipeline.models.queries import FORECAST_OPEN  # noqa: E402
from pipeline.process import PROCESS, ForecastCategory, category_stages  # noqa: E402

USER = "admin"
RATIO_TARGET = 2
# The app reads the past quarters' entering pipeline from stored rows once a first request
# has stored them; the floor does the same work unless told to rebuild it every time.
FLOOR_READS_STORED = True

FLOOR_TEMPLATE = engines["django"].from_string(
    "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Forecast</title>"
    "</head><body><table>{% for row in reps %}<tr>{% for value in row %}<td>{{ value }}</td>"
    "{% endfor %}</tr>{% endfor %}</table><table>{% for row in history %}<tr>"
    "{% for value in row %}<td>{{ value }}</td>{% endfor %}</tr>{% endfor %}</table>"
    "<p>{{ flagged_count }}</p><table>{% for row in flagged %}<tr>{% for value in row %}"
    "<td>{{ value }}</td>{% endfor %}</tr>{% endfor %}</table></body></html>"
)


def stage_list(stages) -> str:
    return ", ".join(f"'{stage}'" for stage in stages)


def category_case() -> str:
    return "CASE o.stage " + " ".join(
        f"WHEN '{stage.value}' THEN '{rule.category.value}'" for stage, rule in PROCESS.items()
    ) + " END"


def probability_case() -> str:
    return "CASE o.stage " + " ".join(
        f"WHEN '{stage.value}' THEN {rule.probability}" for stage, rule in PROCESS.items()
    ) + " END"


OPEN_STAGES = stage_list(stage for category in FORECAST_OPEN
                         for stage in category_stages(category))

FIGURES = f"""
SELECT o.owner_id, {category_case()} AS category,
       SUM(o.amount * r.rate) AS amount,
       SUM(o.amount * r.rate * {probability_case()} / 100) AS weighted,
       COUNT(*) FILTER (WHERE r.rate IS NULL) AS unconverted
FROM pipeline_opportunity o
LEFT JOIN (SELECT currency, rate FROM crm_exchangerate
           UNION ALL SELECT %(company)s, 1) r ON r.currency = o.currency
WHERE (o.stage = 'closed' AND o.stage_entered_at >= %(start)s AND o.stage_entered_at < %(end)s)
   OR (o.stage IN ({OPEN_STAGES}) AND o.expected_close_date >= %(first)s
       AND o.expected_close_date < %(after)s)
GROUP BY 1, 2
"""

QUOTAS = """
SELECT q.rep_id, u.first_name, u.last_name, SUM(q.amount) FROM forecasting_quota q
JOIN crm_user u ON u.id = q.rep_id
WHERE q.fiscal_year = %(year)s AND q.quarter = %(quarter)s GROUP BY 1, 2, 3
"""

NAMES = "SELECT id, first_name, last_name FROM crm_user WHERE id = ANY(%(ids)s)"



def field_then(field: str, cast: str) -> str:
    """The field's value at the moment: the last change before it, else the first after."""
    return (f"COALESCE((SELECT f.new_value::{cast} FROM pipeline_fieldchange f "
            f"WHERE f.opportunity_id = o.id AND f.field = '{field}' AND f.changed_at < m.moment "
            f"ORDER BY f.changed_at DESC, f.id DESC LIMIT 1), "
            f"(SELECT f.old_value::{cast} FROM pipeline_fieldchange f "
            f"WHERE f.opportunity_id = o.id AND f.field = '{field}' "
            f"AND f.changed_at >= m.moment ORDER BY f.changed_at, f.id LIMIT 1), "
            f"o.{field})")


# A move stands when it is no undo and the next later change of its opportunity is none.
STANDS = """NOT s.is_undo AND NOT COALESCE((SELECT n.is_undo FROM pipeline_stagechange n
    WHERE n.opportunity_id = s.opportunity_id AND n.changed_at > s.changed_at
    ORDER BY n.changed_at, n.id LIMIT 1), false)"""

# The state at each of the four quarters' starts, as forecasting/coverage.py defines it,
# in one statement: per opportunity and quarter, indexed LIMIT 1 look-ups of the last
# standing change before the moment, else the first after, else the current value. (A
# set-based version, DISTINCT ON over the whole history for the four moments, took 13 s
# at 100,000 against these look-ups' 3 s.)
COVERAGE = f"""
WITH m(name, moment, first_day, after_day) AS (VALUES {{moments}})
SELECT st.name, SUM(st.amount * r.rate) FROM (
    SELECT m.name, m.first_day, m.after_day,
        COALESCE((SELECT s.to_stage FROM pipeline_stagechange s
                  WHERE s.opportunity_id = o.id AND s.changed_at < m.moment AND {STANDS}
                  ORDER BY s.changed_at DESC, s.id DESC LIMIT 1),
                 (SELECT s.from_stage FROM pipeline_stagechange s
                  WHERE s.opportunity_id = o.id AND s.changed_at >= m.moment AND {STANDS}
                  ORDER BY s.changed_at, s.id LIMIT 1), o.stage) AS stage,
        {field_then("amount", "numeric")} AS amount,
        {field_then("currency", "text")} AS currency,
        {field_then("expected_close_date", "date")} AS close_date
    FROM pipeline_opportunity o JOIN m ON o.created_at < m.moment) st
JOIN (SELECT currency, rate FROM crm_exchangerate
      UNION ALL SELECT %(company)s, 1) r ON r.currency = st.currency
WHERE st.stage IN ({{open_stages}})
  AND st.close_date >= st.first_day AND st.close_date < st.after_day
GROUP BY 1
"""

# The same figures read from the stored quarters (forecasting/entering.py), as the app
# reads them once they are stored: the company scope needs no join to the opportunities.
STORED_COVERAGE = """
SELECT sq.fiscal_year || '-Q' || sq.quarter, SUM(e.amount * r.rate)
FROM forecasting_storedquarter sq
JOIN forecasting_enteringopportunity e ON e.stored_quarter_id = sq.id
JOIN (SELECT currency, rate FROM crm_exchangerate
      UNION ALL SELECT %(company)s, 1) r ON r.currency = e.currency
WHERE (sq.fiscal_year, sq.quarter) IN ({quarters})
GROUP BY 1
"""

CLOSED = """
WITH m(name, moment, next_moment) AS (VALUES {moments})
SELECT m.name, SUM(o.amount * r.rate), (SELECT MIN(created_at) FROM pipeline_opportunity)
FROM m LEFT JOIN pipeline_opportunity o ON o.stage = 'closed'
    AND o.stage_entered_at >= m.moment AND o.stage_entered_at < m.next_moment
LEFT JOIN (SELECT currency, rate FROM crm_exchangerate
           UNION ALL SELECT %(company)s, 1) r ON r.currency = o.currency
GROUP BY 1
"""

FLAGGED = f"""
WITH pushed AS (
    SELECT opportunity_id, COUNT(*) AS pushes FROM pipeline_fieldchange
    WHERE field = 'expected_close_date' AND changed_at >= %(quarter_start)s
      AND new_value > old_value
    GROUP BY 1),
flagged AS (
    SELECT o.id, o.name, o.account_id, o.owner_id, o.stage, o.amount, o.currency,
           o.expected_close_date, COALESCE(p.pushes, 0) AS pushes
    FROM pipeline_opportunity o LEFT JOIN pushed p ON p.opportunity_id = o.id
    WHERE o.stage NOT IN ('closed', 'dead') AND (
        (o.stage IN ({stage_list(category_stages(ForecastCategory.BEST_CASE))})
         AND o.expected_close_date > %(far_out)s)
     OR (o.stage IN ({stage_list(category_stages(ForecastCategory.COMMIT))})
         AND o.expected_close_date < %(today)s)
     OR p.pushes >= {PUSHES_FLAGGED}))
SELECT f.*, a.name, u.first_name, u.last_name, COUNT(*) OVER ()
FROM flagged f JOIN crm_account a ON a.id = f.account_id JOIN crm_user u ON u.id = f.owner_id
ORDER BY f.expected_close_date, f.id LIMIT 50
"""


def moments_sql(cursor, rows) -> str:
    return ", ".join(cursor.mogrify("(%s, %s::timestamptz, %s::date, %s::date)", row)
                     if len(row) == 4 else
                     cursor.mogrify("(%s, %s::timestamptz, %s::timestamptz)", row)
                     for row in rows)


def floor_figures() -> dict:
    """Every figure the dashboard shows, in the fewest plain SQL queries."""
    today = timezone.localdate()
    year, quarter = fiscal_quarter(today)
    start, end = fiscal_quarter_moments(year, quarter)
    first, after = fiscal_quarter_bounds(year, quarter)
    company = company_currency()
    past = previous_quarters(year, quarter, QUARTERS_LOOKED_BACK)
    with connection.cursor() as cursor:
        cursor.execute(FIGURES, {"company": company, "start": start, "end": end,
                                 "first": first, "after": after})
        figures = cursor.fetchall()
        cursor.execute(QUOTAS, {"year": year, "quarter": quarter})
        quotas = cursor.fetchall()
        cursor.execute(NAMES, {"ids": sorted({row[0] for row in figures})})
        names = {row[0]: row[1:] for row in cursor.fetchall()}
        if FLOOR_READS_STORED:
            cursor.execute(STORED_COVERAGE.format(
                quarters=", ".join(f"({y}, {q})" for y, q in past)), {"company": company})
        else:
            coverage_moments = [(f"{y}-Q{q}", fiscal_quarter_moments(y, q)[0],
                                 *fiscal_quarter_bounds(y, q)) for y, q in past]
            cursor.execute(COVERAGE.format(moments=moments_sql(cursor.connection.cursor(),
                                                               coverage_moments),
                                           open_stages=OPEN_STAGES),
                           {"company": company})
        entering = dict(cursor.fetchall())
        closed_moments = [(f"{y}-Q{q}", *fiscal_quarter_moments(y, q)) for y, q in past]
        cursor.execute(CLOSED.format(moments=moments_sql(cursor.connection.cursor(),
                                                         closed_moments)),
                       {"company": company})
        closed = cursor.fetchall()
        cursor.execute(FLAGGED, {"quarter_start": start, "today": today,
                                 "far_out": three_months_after(today)})
        flagged = cursor.fetchall()
    reps = [(*names.get(owner, ("?", "?")), category, amount, weighted, unconverted)
            for owner, category, amount, weighted, unconverted in figures]
    history = [(name, entering.get(name), amount, first_record)
               for name, amount, first_record in closed]
    return {"reps": reps + quotas, "history": history, "flagged": flagged,
            "flagged_count": flagged[0][-1] if flagged else 0}


@login_required
def floor_dashboard(request):
    return HttpResponse(FLOOR_TEMPLATE.render(floor_figures(), request))


urlpatterns = benchmark_urls([path("floor/forecast/", floor_dashboard)])


def time_snapshots(rounds: int, warmup: int) -> dict[str, list[float]]:
    """bench/forecast_snapshot.py's app and floor, alternating, each round's rows
    deleted untimed."""
    open_count = Opportunity.objects.open().count()
    base = Snapshot.week_slot() - timedelta(days=7 * 5300)  # slots no real run uses
    times = {"app": [], "floor": []}
    for number in range(warmup + rounds):
        for name, take in (("app", app_snapshot), ("floor", floor_snapshot)):
            slot = base + timedelta(minutes=2 * number + (name == "floor"))
            started = time.perf_counter()
            rows = take(slot)
            elapsed = (time.perf_counter() - started) * 1000
            assert rows == open_count, (name, rows, open_count)
            Snapshot.objects.filter(slot=slot).delete()
            if number >= warmup:
                times[name].append(elapsed)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--no-snapshot", action="store_true")
    parser.add_argument("--rebuilding-floor", action="store_true",
                        help="the floor rebuilds the past quarters from the history")
    arguments = parser.parse_args()
    global FLOOR_READS_STORED
    FLOOR_READS_STORED = not arguments.rebuilding_floor
    print_environment()
    print(f"{Opportunity.objects.count():,} opportunities, "
          f"{Opportunity.objects.open().count():,} open")
    client = Client()
    client.force_login(User.objects.get(username=USER))
    with connection.cursor() as cursor:  # the first request of a new quarter, timed alone
        cursor.execute("TRUNCATE forecasting_enteringopportunity, forecasting_storedquarter")
    with override_settings(ROOT_URLCONF=__name__):
        started = time.perf_counter()
        client.get("/forecast/", secure=True)
        print(f"first dashboard, storing the four past quarters: "
              f"{(time.perf_counter() - started) * 1000:8.1f} ms "
              f"({EnteringOpportunity.objects.count():,} entering opportunities stored)")
    subjects = [Subject("dashboard (GET /forecast/)",
                        lambda number: client.get("/forecast/", secure=True))]
    if connection.vendor == "postgresql":
        subjects.append(Subject("floor dashboard",
                                lambda number: client.get("/floor/forecast/", secure=True)))
    with override_settings(ROOT_URLCONF=__name__):
        figures = measure(subjects, rounds=arguments.rounds, warmup=arguments.warmup)
    for result in figures.values():
        print(result.line())
    if len(figures) == 2:
        page, floor = figures.values()
        ratio = page.median / floor.median
        print(f"dashboard / floor: {ratio:.2f}x (target: at most {RATIO_TARGET}x) -> "
              f"{'met' if ratio <= RATIO_TARGET else 'missed'}")
    if connection.vendor == "postgresql" and not arguments.no_snapshot:
        times = time_snapshots(arguments.rounds, arguments.warmup)
        for name, measured in times.items():
            print(f"snapshot {name:<6} median {statistics.median(measured):8.1f} ms   "
                  f"min {min(measured):8.1f} ms   ({len(measured)} rounds)")
        ratio = statistics.median(times["app"]) / statistics.median(times["floor"])
        print(f"snapshot / floor: {ratio:.2f}x (target: at most {RATIO_TARGET}x) -> "
              f"{'met' if ratio <= RATIO_TARGET else 'missed'}")
    print(f"measured {timezone.now():%Y-%m-%d %H:%M} UTC")


if __name__ == "__main__":
    main()
