"""`manage.py seed_forecast`: quotas, calls, weekly snapshots and this week's changes for
the demo, after `seed_demo` (forecasting/demo.py says how each is made)."""

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from forecasting.demo import demo_reps, make_calls, set_quotas, this_weeks_changes
from forecasting.demo_history import rebuild_snapshot, weekly_slots
from forecasting.models import ForecastCall, Quota, Snapshot

WEEKS = 8


class Command(BaseCommand):
    help = "Load the forecast demo: quotas, calls, weekly snapshots (after seed_demo)."

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true",
                            help="Do nothing when any quota, call or snapshot exists.")

    def handle(self, *args, **options):
        if options["if_empty"] and (Quota.objects.exists() or ForecastCall.objects.exists()
                                    or Snapshot.objects.exists()):
            self.stdout.write("Forecast data exists already: nothing loaded.")
            return
        now = timezone.now()
        reps = demo_reps()
        with transaction.atomic():
            quotas = set_quotas(reps, timezone.localdate(now))
            calls = make_calls(reps, now)
            snapshots = [rebuild_snapshot(slot) for slot in weekly_slots(now, WEEKS)]
        changes = this_weeks_changes(timezone.localdate(now))
        self.stdout.write(
            f"Loaded {quotas} quotas, {calls} forecast calls, "
            f"{sum(snapshot is not None for snapshot in snapshots)} weekly snapshots and "
            f"{changes} changes since the latest one.")
