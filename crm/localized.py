"""Dates and times written the reader's way, the same way everywhere: in messages,
notifications and e-mails as in the templates' `date:"SHORT_DATETIME_FORMAT"`.

The language is the active one (a notification is written inside the recipient's), the
time zone the app's (TIME_ZONE).
"""

from __future__ import annotations

from datetime import date, datetime

from django.utils import timezone
from django.utils.formats import date_format


def moment(value: datetime) -> str:
    """A point in time: "12/05/2026 5:45 p.m." in English, "05.12.2026 17:45" in German."""
    return date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT")


def day(value: date | datetime) -> str:
    """A day: "12/05/2026" in English, "05.12.2026" in German."""
    if isinstance(value, datetime):
        value = timezone.localtime(value).date()
    return date_format(value, "SHORT_DATE_FORMAT")
