"""How fast `manage.py seed_demo` loads demo data into the configured database.

    createdb -h 127.0.0.1 -U postgres progression_bench
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/progression_bench
    .venv/bin/python manage.py migrate
    .venv/bin/python bench/seed.py --opportunities 100000

It empties the database first (`manage.py flush`), so it refuses any database whose name
does not contain "bench" unless told otherwise. Target (the issue): 100,000 opportunities
in under a minute on PostgreSQL. Besides the wall-clock time it prints the CPU time of
this process and, for a PostgreSQL server on this machine, of its backend: other work on
a shared machine stretches the wall clock much more than the CPU times.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from io import StringIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import print_environment, setup_django  # noqa: E402

setup_django()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from crm.models import Account, Contact  # noqa: E402
from pipeline.models import (  # noqa: E402
    ClosePlan,
    ClosePlanStep,
    CommitteeMember,
    CriterionTick,
    FieldChange,
    HandoffTask,
    Offer,
    OfferLine,
    Opportunity,
    PurchaseOrder,
    StageChange,
)

COUNTED = {
    "accounts": Account,
    "contacts": Contact,
    "opportunities": Opportunity,
    "stage changes": StageChange,
    "criterion ticks": CriterionTick,
    "committee members": CommitteeMember,
    "field changes": FieldChange,
    "close plans": ClosePlan,
    "close plan steps": ClosePlanStep,
    "offers": Offer,
    "offer lines": OfferLine,
    "purchase orders": PurchaseOrder,
    "hand-off tasks": HandoffTask,
}


def server_cpu_seconds() -> float | None:
    """CPU time of this connection's PostgreSQL backend, when it runs on this machine."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    print_environment()
    server_before = server_cpu_seconds()
    client_before = time.process_time()
    started = time.perf_counter()
    call_command("seed_demo", opportunities=arguments.opportunities, seed=arguments.seed,
                 stdout=StringIO())
    seconds = time.perf_counter() - started
    client = time.process_time() - client_before
    server_after = server_cpu_seconds()

    print(f"seed_demo --opportunities {arguments.opportunities} --seed {arguments.seed} "
          f"into {connection.vendor} {name}: {seconds:.1f} s")
    cpu = f"  cpu: this process {client:.1f} s"
    if server_before is not None and server_after is not None:
        cpu += f", database backend {server_after - server_before:.1f} s"
    print(cpu)
    total = 0
    for label, model in COUNTED.items():
        rows = model.objects.count()
        total += rows
        print(f"  {label:<18} {rows:>9,} rows {rows / seconds:>10,.0f} rows/s")
    print(f"  {'all of these':<18} {total:>9,} rows {total / seconds:>10,.0f} rows/s")


if __name__ == "__main__":
    main()
