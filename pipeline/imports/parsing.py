"""From a read table to import rows: each cell parsed the way the file wrote it (US or
German dates, decimal points or commas), and each row's errors in plain words."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import lru_cache

from babel.numbers import NumberFormatError, parse_decimal
from dateutil import parser as date_parser
from django.utils.translation import gettext as _

from crm.currencies import ISO_4217
from crm.models import company_currency, one_line
from pipeline.imports.reading import Table
from pipeline.imports.vendors import LAYOUTS, Layout
from pipeline.models import OpportunityType, Source
from pipeline.process import Stage

GERMAN_DATE = re.compile(r"^\s*\d{1,2}\.\d{1,2}\.\d{2,4}")
ISO_DATE = re.compile(r"^\s*\d{4}-\d{1,2}-\d{1,2}")
# A currency written beside an amount, as Salesforce does in multi-currency reports.
CURRENCY_AROUND = re.compile(r"^\s*([A-Z]{3}|[$€£])?\s*(.*?)\s*([A-Z]{3}|[$€£])?\s*$")
SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP"}
LIMITS = {"name": 200, "account": 200, "next_step": 300}

# Words in a source's deal type or lead source that say which of ours it is.
TYPES = (("upsell", OpportunityType.UPSELL), ("upgrade", OpportunityType.UPSELL),
         ("expansion", OpportunityType.UPSELL), ("cross", OpportunityType.CROSS_SELL),
         ("existing", OpportunityType.UPSELL))
SOURCES = (("webinar", Source.WEBINAR), ("event", Source.EVENT), ("trade show", Source.EVENT),
           ("conference", Source.EVENT), ("partner", Source.PARTNER),
           ("existing", Source.EXISTING_CUSTOMER), ("outbound", Source.OUTBOUND),
           ("cold", Source.OUTBOUND))


@dataclass(frozen=True)
class Conventions:
    """How one file writes dates and numbers, decided once for the whole file."""

    day_first: bool  # 31.12.2026 (German) rather than 12/31/2026 (US)
    number_locale: str  # "de": 1.234,56; "en": 1,234.56


@dataclass
class Row:
    """One data row of the file, parsed; clean when it has no errors."""

    line: int
    source_id: str = ""
    name: str = ""
    account: str = ""
    account_id: str = ""
    source_stage: str = ""
    stage: Stage | None = None
    amount: Decimal | None = None
    currency: str = ""
    close_date: date | None = None
    owner: str = ""
    type: str = OpportunityType.NEW_BUSINESS
    source: str = Source.INBOUND
    next_step: str = ""
    contact_id: str = ""
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    title: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def is_clean(self) -> bool:
        return not self.errors


def stage_key(label: str) -> str:
    """A source stage's name as the mapping keys it: case and spacing do not matter."""
    return " ".join(label.lower().split())


def conventions_of(table: Table, columns: dict[str, int]) -> Conventions:
    """German when the dates are written day.month.year, or when the file is separated
    by semicolons: Excel writes semicolons exactly where the comma is the decimal sign."""
    position = columns["close_date"]
    dates = [cells[position] for _line, cells in table.rows[:500] if position < len(cells)]
    german_dates = any(GERMAN_DATE.match(value) for value in dates)
    german = german_dates or table.separator == ";"
    return Conventions(day_first=german, number_locale="de" if german else "en")


@lru_cache(maxsize=8192)
def date_of(text: str, day_first: bool) -> date | None:
    """The day written in `text`, None when it is none. ISO dates are year-month-day
    whatever the file's convention; dateutil would read 2026-03-05 day first."""
    if ISO_DATE.match(text):
        day_first = False
    try:
        return date_parser.parse(text, dayfirst=day_first).date()
    except (ValueError, OverflowError):
        return None


@lru_cache(maxsize=8192)
def amount_of(text: str, locale: str) -> tuple[Decimal | None, str]:
    """The amount and the currency written with it, if any; None for no number."""
    parts = CURRENCY_AROUND.match(text)
    written = parts.group(1) or parts.group(3) or ""
    try:
        amount = parse_decimal(parts.group(2), locale=locale, strict=True)
    except NumberFormatError:
        return None, ""
    return amount, SYMBOLS.get(written, written)


def kind_of(text: str, kinds, default):
    text = text.lower()
    return next((kind for word, kind in kinds if word in text), default)


def contact_of(text: str) -> tuple[str, str, str]:
    """First name, last name and e-mail of "Jane Doe (jane@example.com)", HubSpot's way of
    writing an associated contact; the first of several."""
    text = text.split(";")[0].strip()
    email = ""
    if text.endswith(")") and "(" in text:
        text, email = text[:-1].rsplit("(", 1)
    first, _space, last = one_line(text, 300).rpartition(" ")
    return first, last, email.strip()


class RowParser:
    """Parses the rows of one file with one stage mapping."""

    def __init__(self, table: Table, layout: Layout, stage_map: dict[str, str],
                 vendor: str):
        self.table = table
        self.layout = layout
        self.vendor = vendor
        self.columns = layout.find(table.header)
        self.conventions = conventions_of(table, self.columns)
        self.stage_map = {key: Stage(value) for key, value in stage_map.items() if value}
        self.width = len(table.header)

    def rows(self):
        for line, cells in self.table.rows:
            yield self.parse(line, cells)

    def cell(self, cells: list[str], name: str) -> str:
        position = self.columns.get(name)
        if position is None or position >= len(cells):
            return ""
        return " ".join(cells[position].split())

    def source_stage(self, cells: list[str]) -> str:
        status = self.cell(cells, "status")
        if status and stage_key(status) in self.layout.status_as_stage:
            return status
        return self.cell(cells, "stage")

    def parse(self, line: int, cells: list[str]) -> Row:
        row = Row(line=line)
        if len(cells) != self.width:
            row.errors.append(
                _("This row has %(cells)d of the file's %(columns)d columns: it was cut "
                  "short or broken up.") % {"cells": len(cells), "columns": self.width})
            return row
        text = lambda name: self.cell(cells, name)  # noqa: E731
        row.name, row.account, row.account_id = text("name"), text("account"), text("account_id")
        row.owner, row.next_step = text("owner"), text("next_step")
        row.type = kind_of(text("type"), TYPES, OpportunityType.NEW_BUSINESS)
        row.source = kind_of(text("lead_source"), SOURCES, Source.INBOUND)
        row.contact_id, row.email, row.title = text("contact_id"), text("email"), text("title")
        row.first_name, row.last_name = text("first_name"), text("last_name")
        if text("contact"):
            row.first_name, row.last_name, email = contact_of(text("contact"))
            row.email = row.email or email
        if not row.name:
            row.errors.append(_("The opportunity has no name."))
        if not row.account:
            row.errors.append(_("The opportunity has no account."))
        for name, limit in LIMITS.items():
            if len(getattr(row, name)) > limit:
                row.errors.append(_("“%(text)s…” is longer than %(limit)d characters.") % {
                    "text": getattr(row, name)[:30], "limit": limit})
        self.parse_stage(row, cells)
        self.parse_amount(row, text("amount"), text("currency"))
        self.parse_date(row, text("close_date"))
        row.source_id = text("id") or self.fallback_id(row)
        return row

    def parse_stage(self, row: Row, cells: list[str]) -> None:
        row.source_stage = self.source_stage(cells)
        row.stage = self.stage_map.get(stage_key(row.source_stage))
        if not row.source_stage:
            row.errors.append(_("The opportunity has no stage."))
        elif row.stage is None:
            row.errors.append(_("The stage “%s” is mapped to none of ours.")
                              % row.source_stage)

    def parse_amount(self, row: Row, text: str, currency: str) -> None:
        amount, written = amount_of(text, self.conventions.number_locale)
        row.currency = (currency or written or company_currency()).upper()
        if amount is None:
            row.errors.append(_("“%s” is not an amount.") % text if text
                              else _("The opportunity has no amount."))
        elif amount < 0:
            row.errors.append(_("The amount %s is negative.") % text)
        elif amount >= Decimal("1e12"):
            row.errors.append(_("The amount %s is too large.") % text)
        else:
            row.amount = amount.quantize(Decimal("0.01"))
        if row.currency not in ISO_4217:
            row.errors.append(_("“%s” is not an ISO 4217 currency code such as EUR.")
                              % row.currency)

    def parse_date(self, row: Row, text: str) -> None:
        row.close_date = date_of(text, self.conventions.day_first) if text else None
        if not text:
            row.errors.append(_("The opportunity has no close date."))
        elif row.close_date is None:
            row.errors.append(_("“%s” is not a date.") % text)

    def fallback_id(self, row: Row) -> str:
        """For a file without an id column: the account and the name, which are what a
        person would tell two deals apart by; the same row imported again finds it."""
        key = f"{stage_key(row.account)}\n{stage_key(row.name)}".encode()
        return "row:" + hashlib.sha1(key, usedforsecurity=False).hexdigest()


def parser_for(table: Table, vendor: str, stage_map: dict[str, str]) -> RowParser:
    return RowParser(table, LAYOUTS[vendor], stage_map, vendor)


def stage_labels(parser: RowParser) -> list[tuple[str, int]]:
    """Each stage name the file uses, with how many rows are in it, in order of first use."""
    counts: dict[str, int] = {}
    labels: dict[str, str] = {}
    for _line, cells in parser.table.rows:
        label = parser.source_stage(cells)
        if label:
            key = stage_key(label)
            labels.setdefault(key, label)
            counts[key] = counts.get(key, 0) + 1
    return [(labels[key], counts[key]) for key in labels]
