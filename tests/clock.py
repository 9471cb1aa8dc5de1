"""Frozen time for rules about days and deadlines: `timezone.now()` answers what the test
set, everywhere the app asks, until the test moves it on."""

from datetime import UTC, datetime, timedelta

from django.utils import timezone

# Where a frozen clock starts (tests/pipeline/conftest.py's `clock`).
MOMENT = datetime(2026, 5, 4, 8, 30, tzinfo=UTC)


class Clock:
    def __init__(self, monkeypatch, at: datetime):
        self.at = at
        monkeypatch.setattr(timezone, "now", lambda: self.at)

    def set(self, at: datetime) -> datetime:
        self.at = at
        return at

    def advance(self, **delta) -> datetime:
        return self.set(self.at + timedelta(**delta))
