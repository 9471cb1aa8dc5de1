"""`manage.py seed_forecast`: quotas, calls, weekly snapshots and this week's changes for
the demo, after `seed_demo` (forecasting/demo.py says how each is made)."""

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from forecasting.demo import demo_reps, make_calls, set_quotas, this_weeks_changes
from forecasting.demo_history import rebuild_snapshot, weekly_slots
from forecasting.entering import forget_stored_quarters
from forecasting.models import ForecastCall, Quota, Snapshot

WEEKS = 8


class Command(BaseCommand):
    help = _("Load the forecast demo: quotas, calls, weekly snapshots (after seed_demo).")

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true",
                            help=_("Do nothing when any quota, call or snapshot exists."))

    def handle(self, *args, **options):
        if options["if_empty"] and (Quota.objects.exists() or ForecastCall.objects.exists()
                                    or Snapshot.objects.exists()):
            self.stdout.write(gettext("Forecast data exists already: nothing loaded."))
            return
        now = timezone.now()
        reps = demo_reps()
        with transaction.atomic():
            # seed_demo wrote its history in the past, where no stored quarter holds it.
            forget_stored_quarters()
            quotas = set_quotas(reps, timezone.localdate(now))
            calls = make_calls(reps, now)
            snapshots = [rebuild_snapshot(slot) for slot in weekly_slots(now, WEEKS)]
        changes = this_weeks_changes(timezone.localdate(now))
        self.stdout.write(gettext(
            "Loaded %(quotas)d quotas, %(calls)d forecast calls, %(snapshots)d weekly "
            "snapshots and %(changes)d changes since the latest one.") % {
            "quotas": quotas, "calls": calls, "changes": changes,
            "snapshots": sum(snapshot is not None for snapshot in snapshots)})
