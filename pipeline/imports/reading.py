"""From the uploaded bytes to a header and rows: the encoding, the separator and the footer
lines other CRMs add, each found by a library rather than guessed here."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import charset_normalizer
from django.utils.translation import gettext as _

# What the three exports are written in: UTF-8 (with or without a byte order mark) or, from
# Excel on Windows, Windows-1252. Telling charset-normalizer to choose between just these
# keeps it from reading a short German file as, say, Latin-2.
ENCODINGS = ["utf_8", "cp1252"]
SEPARATORS = ",;\t"
SNIFFED_CHARACTERS = 64 * 1024


class UnreadableFile(ValueError):
    """The file as a whole cannot be imported; the message says why, for the user."""


@dataclass
class Table:
    """A CSV file as read: its header, its data rows with their line numbers, and what it
    was written with."""

    header: list[str]
    rows: list[tuple[int, list[str]]]
    encoding: str
    separator: str


def decode(data: bytes) -> tuple[str, str]:
    """The text of the file and the encoding it was written in."""
    if not data.strip():
        raise UnreadableFile(_("The file is empty."))
    match = charset_normalizer.from_bytes(data, cp_isolation=ENCODINGS).best()
    if match is None:
        raise UnreadableFile(_("This is not a text file in UTF-8 or Windows-1252; export it "
                               "again as CSV."))
    return str(match).removeprefix("\ufeff"), match.encoding


def dialect_of(text: str) -> type[csv.Dialect]:
    """The separator and quoting, sniffed from the start of the file."""
    try:
        dialect = csv.Sniffer().sniff(text[:SNIFFED_CHARACTERS], delimiters=SEPARATORS)
    except csv.Error:
        dialect = csv.excel  # one column, or no separator it recognised: the default
    # The sniffer cannot tell doubled quotes inside a field from none at all; all three
    # systems double them, as RFC 4180 says.
    dialect.doublequote = True
    return dialect


def read_table(data: bytes) -> Table:
    """The file's rows, without the blank lines and footer lines after the data."""
    text, encoding = decode(data)
    dialect = dialect_of(text)
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        header = [title.strip() for title in next(reader)]
        rows = []
        for cells in reader:
            rows.append((reader.line_num, cells))
    except StopIteration:
        raise UnreadableFile(_("The file has no lines.")) from None
    except csv.Error as error:
        raise UnreadableFile(_("Line %(line)d cannot be read as CSV: %(error)s") % {
            "line": reader.line_num, "error": error}) from None
    return Table(header=header, rows=without_footer(rows), encoding=encoding,
                 separator=dialect.delimiter)


def without_footer(rows: list[tuple[int, list[str]]]) -> list[tuple[int, list[str]]]:
    """The data rows: Salesforce ends a report with a blank line and lines of one cell
    each (the company, the copyright, "Confidential Information", who generated it); any
    export may end in blank lines. A one-cell line not after a blank one stays: it is a
    row cut short, which the preview reports."""
    end = len(rows)
    while end and not any(cell.strip() for cell in rows[end - 1][1]):
        end -= 1
    for index in range(end - 1, -1, -1):
        cells = rows[index][1]
        if not any(cell.strip() for cell in cells):  # the blank line before the footer
            return [row for row in rows[:index] if any(cell.strip() for cell in row[1])]
        if len(cells) > 1:
            break
    return [row for row in rows[:end] if any(cell.strip() for cell in row[1])]
