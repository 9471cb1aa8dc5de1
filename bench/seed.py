"""Time `manage.py seed_demo` against the configured database (DATABASE_URL).

    createdb -h 127.0.0.1 -U postgres progression_bench
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/progression_bench
    .venv/bin/python manage.py migrate
    .venv/bin/python bench/seed.py --opportunities 100000

It empties the database first (`manage.py flush`), so it refuses any database whose name
does not contain "bench" unless told otherwise.
"""

import argparse
import os
import sys
import time
from io import StringIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from pipeline.models import (  # noqa: E402
    CommitteeMember,
    CriterionTick,
    FieldChange,
    Opportunity,
    StageChange,
)

COUNTED = {
    "opportunities": Opportunity,
    "stage changes": StageChange,
    "criterion ticks": CriterionTick,
    "committee members": CommitteeMember,
    "field changes": FieldChange,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opportunities", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--any-database", action="store_true",
                        help="flush even a database whose name does not contain 'bench'")
    arguments = parser.parse_args()

    name = str(connection.settings_dict["NAME"])
    if "bench" not in Path(name).name and not arguments.any_database:
        sys.exit(f"Refusing to flush {connection.vendor} database {name!r}: its name does not "
                 "contain 'bench' (pass --any-database to insist).")

    call_command("flush", interactive=False, verbosity=0)
    started = time.perf_counter()
    call_command("seed_demo", opportunities=arguments.opportunities, seed=arguments.seed,
                 stdout=StringIO())
    seconds = time.perf_counter() - started

    print(f"database: {connection.vendor} {name}")
    print(f"seed_demo --opportunities {arguments.opportunities} --seed {arguments.seed}: "
          f"{seconds:.1f} s")
    total = 0
    for label, model in COUNTED.items():
        rows = model.objects.count()
        total += rows
        print(f"  {label:<18} {rows:>9,} rows {rows / seconds:>10,.0f} rows/s")
    print(f"  {'all of these':<18} {total:>9,} rows {total / seconds:>10,.0f} rows/s")


if __name__ == "__main__":
    main()
