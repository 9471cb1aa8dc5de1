"""How fast sales ops' queue of pending orders is, next to its floor.

With 1,000 pending opportunities, each with an offer and a purchase order (a third of them
differing from their offer), the demo sales ops user "sofia" opens /orders/pending/. The
floor lists the same opportunities in plain Django: one query with the account, the
owner and the latest order's number, and a plain template; no business days, no
mismatches, no translations. Both are timed in-process through Django's test client.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/progression_bench_orders \
        .venv/bin/python bench/orders.py

Creates the pending opportunities when fewer are there (as seed code does, in bulk). The
target (issue 10): within 2x of the floor.
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
from pipeline.management.demo_orders import create_orders  # noqa: E402
from pipeline.models import Opportunity, PurchaseOrder  # noqa: E402
from pipeline.process import Stage  # noqa: E402

SALES_OPS = "sofia"
RATIO_TARGET = 2

FLOOR_TEMPLATE = engines["django"].from_string(
    "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Orders</title>"
    "</head><body><table>{% for row in rows %}<tr data-opportunity-id=\"{{ row.pk }}\">"
    "<td><a href=\"/opportunities/{{ row.pk }}/review/\">{{ row.name }}</a><br>"
    "{{ row.account__name }}</td><td>{{ row.owner__first_name }} {{ row.owner__last_name }}"
    "</td><td>{{ row.amount }} {{ row.currency }}</td>"
    "<td>{{ row.stage_entered_at|date:\"SHORT_DATE_FORMAT\" }}</td>"
    "<td>{{ row.order_number|default:\"none\" }}</td></tr>{% endfor %}</table></body></html>"
)


@login_required
def floor_queue(request):
    latest = PurchaseOrder.objects.filter(opportunity=OuterRef("pk")).order_by(
        "-recorded_at", "-pk").values("number")[:1]
    rows = (Opportunity.objects.filter(stage=Stage.PENDING)
            .annotate(order_number=Subquery(latest))
            .order_by("stage_entered_at", "pk")
            .values("pk", "name", "account__name", "owner__first_name", "owner__last_name",
                    "amount", "currency", "stage_entered_at", "order_number"))
    return HttpResponse(FLOOR_TEMPLATE.render({"rows": rows}, request))


urlpatterns = benchmark_urls([path("floor/orders/", floor_queue)])


def ensure_pending(wanted: int) -> None:
    """Pending opportunities with offers and orders, written in bulk like seed code."""
    if not User.objects.filter(username=SALES_OPS).exists():
        call_command("seed_demo", opportunities=0, verbosity=0)
    present = Opportunity.objects.filter(stage=Stage.PENDING).count()
    if present >= wanted:
        return
    print(f"{present} pending opportunities, {wanted} wanted: adding them", flush=True)
    rng = random.Random(10)
    owners = list(User.objects.filter(groups__name="rep"))
    account = Account.objects.create(name="Benchmark Bank AG")
    now = timezone.now()
    Opportunity.objects.bulk_create([
        Opportunity(account=account, owner=rng.choice(owners), name=f"Order {number}",
                    source="inbound", amount=Decimal(rng.randint(10, 400) * 1000),
                    amount_at_stage_entry=Decimal(1), currency="EUR",
                    expected_close_date=now.date() + timedelta(days=rng.randint(0, 60)),
                    stage=Stage.PENDING,
                    stage_entered_at=now - timedelta(hours=rng.randint(1, 200)))
        for number in range(wanted - present)
    ], batch_size=2000)
    create_orders(rng, User.objects.get(username=SALES_OPS).pk)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pending", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    arguments = parser.parse_args()
    ensure_pending(arguments.pending)
    print_environment()
    client = Client()
    client.force_login(User.objects.get(username=SALES_OPS))
    with override_settings(ROOT_URLCONF=__name__):
        figures = measure([
            Subject("queue (GET /orders/pending/)",
                    lambda number: client.get("/orders/pending/", secure=True)),
            Subject("floor queue", lambda number: client.get("/floor/orders/", secure=True)),
        ], rounds=arguments.rounds, warmup=arguments.warmup)
    for result in figures.values():
        print(result.line())
    queue, floor = figures.values()
    ratio = queue.median / floor.median
    print(f"queue / floor: {ratio:.2f}x (target: at most {RATIO_TARGET}x) -> "
          f"{'met' if ratio <= RATIO_TARGET else 'missed'}")


if __name__ == "__main__":
    main()
