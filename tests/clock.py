"""Frozen time for rules about days and deadlines: `timezone.now()` answers what the test
set, everywhere the app asks, until the test moves it on."""

from datetime import datetime, timedelta

from django.utils import timezone


class Clock:
    def __init__(self, monkeypatch, at: datetime):
        self.at = at
        monkeypatch.setattr(timezone, "now", lambda: self.at)

    def set(self, at: datetime) -> datetime:
        self.at = at
        return at

    def advance(self, **delta) -> datetime:
        return self.set(self.at + timedelta(**delta))
