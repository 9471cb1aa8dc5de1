"""How long one forecast snapshot takes, next to its floor.

    createdb -h 127.0.0.1 -U postgres progression_bench
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/progression_bench
    .venv/bin/python manage.py migrate
    .venv/bin/python bench/seed.py --opportunities 100000     # seed_demo's data
    .venv/bin/python bench/forecast_snapshot.py --rounds 10

The app: `Snapshot.take()`, as beat and the manager's button run it (the slot check, the
snapshot row, the INSERT … SELECT built by the ORM, the row count, one transaction). The
floor: the least that writes the same rows, one snapshot row and one hand-written
`INSERT … SELECT` joining the exchange rates, in one transaction. Rounds alternate between
the two so that the machine's load hits both alike; each round's rows are deleted untimed
afterwards, so every round inserts into a table of the same size. Prints the ratio of the
medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import print_environment, setup_django  # noqa: E402

setup_django()

from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from crm.models import company_currency  # noqa: E402
from forecasting.models import Snapshot  # noqa: E402
from pipeline.models import Opportunity  # noqa: E402
from pipeline.process import PROCESS  # noqa: E402

FLOOR = """
INSERT INTO forecasting_snapshotrow (snapshot_id, opportunity_id, owner_id, stage,
    category, amount, currency, amount_company, expected_close_date)
SELECT %(snapshot)s, o.id, o.owner_id, o.stage,
       CASE o.stage {categories} END,
       o.amount, o.currency,
       CASE WHEN o.currency = %(company)s THEN o.amount ELSE o.amount * r.rate END,
       o.expected_close_date
FROM pipeline_opportunity o LEFT JOIN crm_exchangerate r ON r.currency = o.currency
WHERE o.stage NOT IN ('closed', 'dead')
"""


def floor_snapshot(slot) -> int:
    categories = " ".join(f"WHEN '{stage.value}' THEN '{rule.category.value}'"
                          for stage, rule in PROCESS.items())
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute('INSERT INTO forecasting_snapshot (slot, taken_at, "rows") '
                       "VALUES (%s, now(), 0) RETURNING id", [slot])
        snapshot = cursor.fetchone()[0]
        cursor.execute(FLOOR.format(categories=categories),
                       {"snapshot": snapshot, "company": company_currency()})
        return cursor.rowcount


def app_snapshot(slot) -> int:
    snapshot, taken = Snapshot.take(slot)
    assert taken
    return snapshot.rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    arguments = parser.parse_args()
    print_environment()
    open_count = Opportunity.objects.open().count()
    print(f"{Opportunity.objects.count():,} opportunities, {open_count:,} open")
    base = Snapshot.week_slot() - timedelta(days=7 * 5200)  # slots no real run uses
    times = {"app": [], "floor": []}
    for number in range(arguments.warmup + arguments.rounds):
        for name, take in (("app", app_snapshot), ("floor", floor_snapshot)):
            slot = base + timedelta(minutes=2 * number + (name == "floor"))
            started = time.perf_counter()
            rows = take(slot)
            elapsed = (time.perf_counter() - started) * 1000
            assert rows == open_count, (name, rows, open_count)
            Snapshot.objects.filter(slot=slot).delete()  # untimed: the next round alike
            if number >= arguments.warmup:
                times[name].append(elapsed)
    for name, measured in times.items():
        print(f"{name:<6} median {statistics.median(measured):8.1f} ms   "
              f"min {min(measured):8.1f} ms   ({len(measured)} rounds, {open_count:,} rows)")
    ratio = statistics.median(times["app"]) / statistics.median(times["floor"])
    print(f"ratio app / floor (medians): {ratio:.2f}")
    print(f"measured {timezone.now():%Y-%m-%d %H:%M} UTC")


if __name__ == "__main__":
    main()
