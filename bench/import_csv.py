"""The import of a 100,000-row Salesforce opportunity report, next to its floor.

Generates the file (US dates and amounts, 5,000 accounts with a contact each, every stage,
a tenth won and a tenth lost, Salesforce's footer), uploads it as sales ops would (an
ImportBatch), times the preview (read, parse, check every row) and the commit the worker
runs (`run_import`: one transaction of set-based inserts in batches), and compares the
commit with the floor: PostgreSQL's COPY of the same file into a table of text columns,
the least it takes to get these bytes into the database at all.

    createdb -h 127.0.0.1 -U postgres progression_bench_import
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/progression_bench_import
    .venv/bin/python manage.py migrate
    .venv/bin/python bench/import_csv.py --rows 100000

Each run first removes what an earlier run imported (opportunities, accounts and contacts
from "salesforce") from that database, so every run imports every row.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import setup_django  # noqa: E402

setup_django()

from django.contrib.auth.models import Group  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from crm.models import Account, Contact, Role, User  # noqa: E402
from pipeline.imports.commit import run_import  # noqa: E402
from pipeline.imports.preview import file_stages, first_mapping, preview  # noqa: E402
from pipeline.models import ImportBatch, ImportStatus, Opportunity, StageChange  # noqa: E402

HEADER = ["Opportunity Owner", "Account Name", "Opportunity Name", "Type", "Lead Source",
          "Amount", "Close Date", "Next Step", "Stage", "Opportunity ID", "Account ID",
          "First Name", "Last Name", "Email", "Title"]
STAGES = ["Prospecting", "Qualification", "Needs Analysis", "Value Proposition",
          "Perception Analysis", "Proposal/Price Quote", "Negotiation/Review",
          "Closed Won", "Closed Lost", "Qualification"]
FOOTER = '\r\n"Bench Inc."\r\n"Copyright (c) 2000-2026 salesforce.com, inc. All rights ' \
         'reserved."\r\n"Confidential Information - Do Not Distribute"\r\n'


def generate(rows: int, owner: str) -> bytes:
    rng = random.Random(13)
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(HEADER)
    start = date(2026, 1, 1)
    for number in range(rows):
        account = number % 5000
        close = start + timedelta(days=rng.randrange(540))
        writer.writerow([
            owner, f"Account {account}", f"Deal {number}", "New Customer", "Web",
            f"{rng.randrange(1000, 500000):,}.{rng.randrange(100):02d}",
            f"{close.month}/{close.day}/{close.year}", "Call back",
            STAGES[number % len(STAGES)], f"006B{number:014d}", f"001B{account:014d}",
            "Jane", f"Doe{account}", f"jane{account}@example.com", "Buyer",
        ])
    return (out.getvalue() + FOOTER).encode()


def person(username: str, role: Role, **names) -> User:
    user, _created = User.objects.get_or_create(username=username, defaults=names)
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def forget_earlier_runs() -> None:
    """Plain DELETE statements: this database is the benchmark's own, and Django's
    collector would load every row first."""
    imported = Opportunity.objects.filter(source_system="salesforce")
    StageChange.objects.filter(opportunity__in=imported)._raw_delete(connection.alias)
    imported._raw_delete(connection.alias)
    Contact.objects.filter(source_system="salesforce")._raw_delete(connection.alias)
    Account.objects.filter(source_system="salesforce")._raw_delete(connection.alias)
    ImportBatch.objects.all()._raw_delete(connection.alias)


def floor(content: bytes) -> float:
    """COPY of the same bytes into a table of text columns, in one transaction."""
    columns = ", ".join(f"c{index} text" for index in range(len(HEADER)))
    body = content.split(FOOTER.encode())[0]
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE import_floor ({columns}) ON COMMIT DROP")
        with cursor.copy("COPY import_floor FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
            copy.write(body)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    arguments = parser.parse_args()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    ops = person("bench-ops", Role.SALES_OPS)
    rep = person("bench-rep", Role.REP, first_name="Rita", last_name="Rep")
    forget_earlier_runs()
    content = generate(arguments.rows, "Rita Rep")
    print(f"file: {arguments.rows:,} rows, {len(content) / 1e6:.1f} MB")

    batch = ImportBatch.objects.create(created_by=ops, file_name="bench.csv", content=content,
                                       vendor="salesforce", default_owner=rep)
    batch.stage_map = first_mapping("salesforce", file_stages(batch))
    batch.save()

    started = time.perf_counter()
    shown = preview(batch)
    preview_seconds = time.perf_counter() - started
    print(f"preview: {preview_seconds:.1f} s ({shown.clean:,} clean rows)")

    batch.queue()
    started = time.perf_counter()
    run_import(batch.pk)
    commit_seconds = time.perf_counter() - started
    batch.refresh_from_db()
    assert batch.status == ImportStatus.DONE, batch.failure
    print(f"commit (the worker's task): {commit_seconds:.1f} s, {batch.imported:,} imported")

    floor_seconds = floor(content)
    print(f"floor (COPY of the same rows): {floor_seconds:.2f} s")
    print(f"ratio commit/floor: {commit_seconds / floor_seconds:.1f}x")
    print(f"upload to done (preview + commit): {preview_seconds + commit_seconds:.1f} s "
          "(target: under 60 s)")


if __name__ == "__main__":
    main()
