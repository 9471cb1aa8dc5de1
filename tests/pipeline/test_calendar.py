"""The .ics file of a planned meeting follows RFC 5545: CRLF line ends, escaped text,
lines folded at 75 octets without splitting a character."""

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.calendar import escape_text, fold, meeting_calendar
from tests.factories import ContactFactory, OpportunityFactory

NOW = datetime(2026, 5, 4, 8, 30, tzinfo=UTC)


def unfold(text: str) -> list[str]:
    """The content lines as a calendar reader sees them (§3.1)."""
    return text.replace("\r\n ", "").split("\r\n")


def test_text_values_escape_backslashes_semicolons_commas_and_line_breaks():
    assert escape_text("a\\b;c,d\ne\r\nf") == r"a\\b\;c\,d\ne\nf"


def test_control_characters_are_left_out_of_text():
    assert escape_text("bell\x07 tab\t") == "bell tab\t"


def test_a_short_line_is_not_folded():
    assert fold("SUMMARY:Call") == "SUMMARY:Call"


def test_a_line_of_exactly_75_octets_is_not_folded():
    line = "X" * 75
    assert fold(line) == line


def test_a_long_line_folds_at_75_octets_with_a_space_starting_each_continuation():
    line = "DESCRIPTION:" + "x" * 200
    folded = fold(line)
    parts = folded.split("\r\n")
    assert [len(part.encode()) for part in parts] == [75, 75, 64]  # 212 = 75 + 74 + 63
    assert all(part.startswith(" ") for part in parts[1:])
    assert folded.replace("\r\n ", "") == line


def test_folding_never_splits_a_multibyte_character():
    line = "SUMMARY:" + "Größenänderung " * 10
    parts = fold(line).split("\r\n")
    assert all(len(part.encode()) <= 75 for part in parts)
    for part in parts:
        part.encode().decode("utf-8")  # each line is whole UTF-8 on its own
    assert fold(line).replace("\r\n ", "") == line


@pytest.mark.django_db
def test_a_meeting_calendar_has_one_event_with_its_times_subject_and_people():
    opportunity = OpportunityFactory(name="Umbrella CRM", account__name="Umbrella, Inc.")
    ada = ContactFactory(account=opportunity.account, first_name='Ada "The Countess"',
                         last_name="Lovelace", email="ada@umbrella.example")
    bob = ContactFactory(account=opportunity.account, first_name="Bob", last_name="NoMail",
                         email="")
    meeting = opportunity.log_activity(
        by=opportunity.owner, kind="meeting", at=datetime(2030, 1, 7, 9, 0, tzinfo=UTC),
        subject="Workshop: scope, ROI; next steps", notes="Bring\nthe sheet", minutes=45,
        contacts=[ada, bob])

    text = meeting_calendar(meeting, link="https://crm.example/opportunities/1/",
                            domain="crm.example", now=NOW)

    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    lines = unfold(text)
    assert lines == [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Progression//Progression CRM//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:activity-{meeting.pk}@crm.example",
        "DTSTAMP:20260504T083000Z",
        "DTSTART:20300107T090000Z",
        "DTEND:20300107T094500Z",
        r"SUMMARY:Workshop: scope\, ROI\; next steps",
        r'DESCRIPTION:Umbrella CRM (Umbrella\, Inc.)\nAda "The Countess" Lovelace\, Bob '
        r"NoMail\nBring\nthe sheet\nhttps://crm.example/opportunities/1/",
        "URL:https://crm.example/opportunities/1/",
        "STATUS:CONFIRMED",
        'ATTENDEE;CN="Ada The Countess Lovelace";ROLE=REQ-PARTICIPANT:'
        "mailto:ada@umbrella.example",
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ]
    assert meeting.ends_at == meeting.at + timedelta(minutes=45)
