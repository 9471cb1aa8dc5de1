"""Every table of the forecast as CSV, the one way: a spreadsheet reads figures as plain
numbers, an unknown figure as an empty cell, and never runs a text cell as a formula."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from decimal import Decimal

from django.core.exceptions import BadRequest
from django.http import HttpResponse
from django.utils.translation import gettext as _

from crm.models import spreadsheet_text


def spreadsheet_value(value):
    """Numbers stay numbers (a negative gap must not turn into text); any other value is
    written as text, with the dead pool's guard against formulas."""
    if value is None:
        return ""
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return value
    return spreadsheet_text(value)


def csv_response(name: str, header: list, rows: Iterable[list]) -> HttpResponse:
    """A table as an attachment named `name`.csv."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    writer = csv.writer(response)
    writer.writerow([spreadsheet_value(title) for title in header])
    writer.writerows([[spreadsheet_value(value) for value in row] for row in rows])
    return response


def wanted_table(request, tables: Iterable[str]) -> str | None:
    """The table asked for as CSV (`?format=csv&table=`, the first by default), None
    for the page itself; 400 for a table the page does not have."""
    if request.GET.get("format") != "csv":
        return None
    names = list(tables)
    wanted = request.GET.get("table") or names[0]
    if wanted not in names:
        raise BadRequest(_("This page has no table “%s”.") % wanted[:40])
    return wanted
