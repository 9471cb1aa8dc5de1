"""How fast the dead pool's page and its CSV export are, next to their floor.

With 100,000 dead opportunities (each with the history row of its death, a tenth of them
claimed by a BDR), the demo BDR "dario" opens /dead-pool/ (first page, 50 rows) and the
same page filtered to unclaimed deals dead for 30 days to a year. The floor lists the
same first 50 dead rows in plain Django: one query with the account, the owner and the
stage of death, a plain template; no count, no claims, no permissions, no filter form.
The export is timed on its own, streamed to the end. All in-process through Django's
test client.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/progression_bench_pool \
        .venv/bin/python bench/dead_pool.py

Creates the dead opportunities when fewer are there (as seed code does, in bulk); use a
database of its own. Target: within 2x of the floor, the same number of queries at any
size of the pool.
"""

from __future__ import annotations

import argparse
import random
import sys
from datetime import timedelta
from decimal import Decimal
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
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import OuterRef, Subquery  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.template import engines  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.urls import path  # noqa: E402
from django.utils import timezone  # noqa: E402

from crm.models import Account, User  # noqa: E402
from pipeline.models import DeadPoolClaim, Opportunity, StageChange, Via  # noqa: E402
from pipeline.process import KILLABLE_STAGES, DeadReason, Stage  # noqa: E402

BDR = "dario"
RATIO_TARGET = 2

FLOOR_TEMPLATE = engines["django"].from_string(
    "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Pool</title>"
    "</head><body><table>{% for row in rows %}<tr data-opportunity-id=\"{{ row.pk }}\">"
    "<td><a href=\"/opportunities/{{ row.pk }}/\">{{ row.name }}</a></td>"
    "<td>{{ row.account__name }}</td><td>{{ row.owner__first_name }} "
    "{{ row.owner__last_name }}</td><td>{{ row.died_in }}</td><td>{{ row.dead_reason }}</td>"
    "<td>{{ row.stage_entered_at|date:\"SHORT_DATE_FORMAT\" }}</td></tr>{% endfor %}"
    "</table></body></html>"
)


@login_required
def floor_pool(request):
    deaths = StageChange.objects.filter(opportunity=OuterRef("pk"), to_stage=Stage.DEAD
                                        ).order_by("-changed_at", "-pk").values("from_stage")
    rows = (Opportunity.objects.filter(stage=Stage.DEAD)
            .annotate(died_in=Subquery(deaths[:1]))
            .order_by("-stage_entered_at", "-pk")
            .values("pk", "name", "account__name", "owner__first_name", "owner__last_name",
                    "died_in", "dead_reason", "stage_entered_at")[:50])
    return HttpResponse(FLOOR_TEMPLATE.render({"rows": rows}, request))


urlpatterns = benchmark_urls([path("floor/dead-pool/", floor_pool)])


def ensure_dead(wanted: int) -> None:
    """Dead opportunities with their death's history row, a tenth claimed, in bulk."""
    if not User.objects.filter(username=BDR).exists():
        call_command("seed_demo", opportunities=0, verbosity=0)
    present = Opportunity.objects.filter(stage=Stage.DEAD).count()
    if present >= wanted:
        return
    print(f"{present} dead opportunities, {wanted} wanted: adding them", flush=True)
    rng = random.Random(11)
    owners = list(User.objects.filter(groups__name="rep"))
    bdr = User.objects.get(username=BDR)
    accounts = Account.objects.bulk_create([Account(name=f"Pool account {n}")
                                            for n in range(500)])
    now = timezone.now()
    for start in range(0, wanted - present, 10_000):
        batch = Opportunity.objects.bulk_create([
            Opportunity(account=rng.choice(accounts), owner=rng.choice(owners),
                        name=f"Dead {start + n}", source="inbound",
                        amount=Decimal(rng.randint(10, 400) * 1000),
                        amount_at_stage_entry=Decimal(1), currency="EUR",
                        expected_close_date=now.date(), stage=Stage.DEAD,
                        stage_entered_at=now - timedelta(hours=rng.randint(1, 24 * 700)),
                        dead_reason=rng.choice(DeadReason.values), dead_note="Parked")
            for n in range(min(10_000, wanted - present - start))
        ], batch_size=2000)
        StageChange.objects.bulk_create([
            StageChange(opportunity=o, from_stage=rng.choice(KILLABLE_STAGES),
                        to_stage=Stage.DEAD, changed_at=o.stage_entered_at, via=Via.SEED,
                        reason="Parked", dead_reason=o.dead_reason, checklist={})
            for o in batch
        ], batch_size=2000)
        DeadPoolClaim.objects.bulk_create([
            DeadPoolClaim(opportunity=o, claimed_by=bdr) for o in batch if rng.random() < 0.1
        ], batch_size=2000)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dead", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    arguments = parser.parse_args()
    ensure_dead(arguments.dead)
    print_environment()
    client = Client()
    client.force_login(User.objects.get(username=BDR))
    filtered = "/dead-pool/?claimed=unclaimed&age=older"

    def export(number):
        response = client.get("/dead-pool/export/?age=recent", secure=True)
        response.content_bytes = sum(len(chunk) for chunk in response.streaming_content)
        return response

    with override_settings(ROOT_URLCONF=__name__):
        figures = measure([
            Subject("pool (GET /dead-pool/)",
                    lambda number: client.get("/dead-pool/", secure=True)),
            Subject("pool, filtered", lambda number: client.get(filtered, secure=True)),
            Subject("floor pool", lambda number: client.get("/floor/dead-pool/", secure=True)),
            Subject("CSV, dead < 30 days", export),
        ], rounds=arguments.rounds, warmup=arguments.warmup)
    for result in figures.values():
        print(result.line())
    pool, filtered_pool, floor, _export = figures.values()
    for name, figure in (("pool", pool), ("filtered pool", filtered_pool)):
        ratio = figure.median / floor.median
        print(f"{name} / floor: {ratio:.2f}x (target: at most {RATIO_TARGET}x) -> "
              f"{'met' if ratio <= RATIO_TARGET else 'missed'}")
    recent = Opportunity.objects.filter(
        stage=Stage.DEAD, stage_entered_at__gt=timezone.now() - timedelta(days=30)).count()
    print(f"CSV rows exported: {recent}")


if __name__ == "__main__":
    main()
