"""A planned meeting as an iCalendar file (RFC 5545), so it lands in the rep's calendar.

Written by hand (no calendar library is a dependency): CRLF line ends, TEXT values
escaped (§3.3.11), lines folded at 75 octets without splitting a UTF-8 character
(§3.1), times in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.models import Activity

PRODUCT = "-//Progression//Progression CRM//EN"
LINE_OCTETS = 75


def escape_text(value: str) -> str:
    """A TEXT value: backslash, semicolon and comma escaped, line breaks as \\n."""
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    value = value.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return "".join(ch for ch in value if ch == "\t" or ord(ch) >= 0x20 and ord(ch) != 0x7F)


def parameter_value(value: str) -> str:
    """A quoted parameter value (a name): no double quotes or control characters fit."""
    cleaned = "".join(ch for ch in value if ch != '"' and ord(ch) >= 0x20 and ord(ch) != 0x7F)
    return f'"{cleaned}"'


def fold(line: str) -> str:
    """Split a content line into lines of at most 75 octets, each continuation starting
    with one space, never inside a UTF-8 character."""
    parts, current, size = [], [], 0
    for ch in line:
        width = len(ch.encode())
        # A continuation line's leading space counts towards its 75 octets.
        limit = LINE_OCTETS if not parts else LINE_OCTETS - 1
        if size + width > limit:
            parts.append("".join(current))
            current, size = [], 0
        current.append(ch)
        size += width
    parts.append("".join(current))
    return "\r\n ".join(parts)


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def meeting_calendar(activity: Activity, *, link: str, domain: str, now: datetime) -> str:
    """The meeting as a one-event calendar. `link`: the opportunity's address, in the
    description; `domain` makes the UID unique across installations."""
    opportunity = activity.opportunity
    contacts = list(activity.contacts.all())
    description = "\n".join(part for part in (
        f"{opportunity.name} ({opportunity.account.name})",
        ", ".join(str(contact) for contact in contacts),
        activity.notes,
        link,
    ) if part)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODUCT}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:activity-{activity.pk}@{domain}",
        f"DTSTAMP:{utc(now)}",
        f"DTSTART:{utc(activity.at)}",
        f"DTEND:{utc(activity.ends_at)}",
        f"SUMMARY:{escape_text(activity.subject)}",
        f"DESCRIPTION:{escape_text(description)}",
        f"URL:{link}",
        "STATUS:CONFIRMED",
        *(f"ATTENDEE;CN={parameter_value(str(contact))};ROLE=REQ-PARTICIPANT:"
          f"mailto:{contact.email}" for contact in contacts if contact.email),
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(fold(line) + "\r\n" for line in lines)
