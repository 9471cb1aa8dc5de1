"""The German translation: complete, compiled, current, and really used by the pages.

The catalogue is crm/locale/de/LC_MESSAGES/django.po; refresh it with `make messages`
after changing any string marked for translation, translate what is new, and commit the
.po together with the compiled .mo (a fresh machine has no gettext tools to compile it).
"""

from __future__ import annotations

import ast
import gettext
import os
import re
from dataclasses import dataclass
from functools import cache
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation.template import templatize

from pipeline.process import PROCESS, CriterionKind, Stage
from tests.factories import (
    AccountFactory,
    ContactFactory,
    OpportunityFactory,
    RepFactory,
    TeamFactory,
    advance,
    plan_call,
)

BASE_DIR = Path(settings.BASE_DIR)
MESSAGES = BASE_DIR / "crm" / "locale" / "de" / "LC_MESSAGES"
PO_FILE = MESSAGES / "django.po"
MO_FILE = MESSAGES / "django.mo"
# What `makemessages` reads: the Makefile's `messages` target skips the same folders.
IGNORED_FOLDERS = {".venv", "var", "tests", "bench", "node_modules", "staticfiles"}


# --- the catalogue ---


@dataclass(frozen=True)
class Entry:
    """One message of the .po file."""

    context: str | None
    msgid: str
    msgid_plural: str | None
    msgstrs: tuple[str, ...]
    flags: frozenset[str]

    @property
    def key(self) -> tuple[str | None, str]:
        return self.context, self.msgid

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """Each English form with its German form: one pair, two for a plural."""
        english = [self.msgid] if self.msgid_plural is None else [self.msgid, self.msgid_plural]
        return list(zip(english, self.msgstrs, strict=False))


def parse_po(text: str) -> tuple[Entry, list[Entry]]:
    """The header and the entries of a .po file; obsolete (#~) entries are left out."""
    entries = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [line for line in block.splitlines() if not line.startswith("#~")]
        if not any(line.startswith("msgid") for line in lines):
            continue
        fields: dict[str, str] = {}
        flags: set[str] = set()
        current = None
        for line in lines:
            if line.startswith("#,"):
                flags.update(flag.strip() for flag in line[2:].split(","))
            elif line.startswith("#"):
                continue
            elif line.startswith('"'):
                fields[current] += ast.literal_eval(line)
            else:
                current, _, value = line.partition(" ")
                fields[current] = ast.literal_eval(value)
        msgstrs = [fields[name] for name in sorted(fields) if name.startswith("msgstr")]
        entries.append(Entry(
            context=fields.get("msgctxt"), msgid=fields["msgid"],
            msgid_plural=fields.get("msgid_plural"), msgstrs=tuple(msgstrs),
            flags=frozenset(flags),
        ))
    header = entries.pop(0)
    assert header.msgid == "", "the .po file starts with its header"
    return header, entries


@cache
def catalogue() -> tuple[Entry, tuple[Entry, ...]]:
    header, entries = parse_po(PO_FILE.read_text(encoding="utf-8"))
    return header, tuple(entries)


def entries() -> tuple[Entry, ...]:
    return catalogue()[1]


PLACEHOLDER = re.compile(r"%\((?P<name>\w+)\)[-#0 +]*\d*(?:\.\d+)?[sdif]|%[sdif]|%%")


def placeholders(message: str) -> tuple[list[str], list[str]]:
    """Named placeholders (sorted) and the positional ones (in order) of a message."""
    named, positional = [], []
    for match in PLACEHOLDER.finditer(message):
        if match["name"]:
            named.append(match["name"])
        elif match.group() != "%%":
            positional.append(match.group())
    return sorted(set(named)), positional


def test_the_po_file_has_a_german_header():
    header, _ = catalogue()
    assert "fuzzy" not in header.flags
    assert "Language: de\n" in header.msgstrs[0]
    assert "charset=UTF-8" in header.msgstrs[0]
    assert "Plural-Forms: nplurals=2; plural=(n != 1);" in header.msgstrs[0]


def test_every_message_has_a_german_translation():
    untranslated = [entry.msgid for entry in entries()
                    if not entry.msgstrs or not all(entry.msgstrs)]
    fuzzy = [entry.msgid for entry in entries() if "fuzzy" in entry.flags]
    assert entries(), "the catalogue is empty"
    assert untranslated == [], "translate these in django.po, then compilemessages"
    assert fuzzy == [], "check these translations and remove their fuzzy flag"


def test_plurals_have_both_german_forms():
    for entry in entries():
        expected = 1 if entry.msgid_plural is None else 2
        assert len(entry.msgstrs) == expected, entry.msgid


def test_translations_keep_every_placeholder():
    for entry in entries():
        for english, german in entry.pairs:
            if entry.msgid_plural is not None:
                # A singular form may spell out "1" instead of %(count)s; never invent one.
                english_named, _ = placeholders(entry.msgid_plural)
                german_named, _ = placeholders(german)
                assert set(german_named) <= set(english_named), (english, german)
            else:
                assert placeholders(german) == placeholders(english), (english, german)


def test_the_compiled_catalogue_matches_the_po_file():
    with MO_FILE.open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)
    assert compiled.info()["language"] == "de"
    for entry in entries():
        if entry.msgid_plural is None:
            found = (compiled.pgettext(entry.context, entry.msgid) if entry.context
                     else compiled.gettext(entry.msgid))
            assert found == entry.msgstrs[0], f"{entry.msgid!r}: run compilemessages"
        else:
            for count, german in ((1, entry.msgstrs[0]), (2, entry.msgstrs[1])):
                found = (
                    compiled.npgettext(entry.context, entry.msgid, entry.msgid_plural, count)
                    if entry.context
                    else compiled.ngettext(entry.msgid, entry.msgid_plural, count)
                )
                assert found == german, f"{entry.msgid!r}: run compilemessages"


# --- the catalogue against the source ---

# (context argument, message argument) positions, as makemessages passes them to xgettext.
GETTEXT_FUNCTIONS = {
    "_": (None, 0), "gettext": (None, 0), "gettext_lazy": (None, 0),
    "gettext_noop": (None, 0), "ngettext": (None, 0), "ngettext_lazy": (None, 0),
    "pgettext": (0, 1), "pgettext_lazy": (0, 1), "npgettext": (0, 1), "npgettext_lazy": (0, 1),
}
STRING = r"""u?(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
TEMPLATIZED_CALL = re.compile(
    rf"\b(?P<function>npgettext|pgettext|ngettext|gettext|_)\("
    rf"(?P<arguments>\s*{STRING}(?:\s*,\s*{STRING})*)"
)


def source_files(*suffixes: str):
    for folder, subfolders, files in os.walk(BASE_DIR):
        subfolders[:] = [name for name in subfolders
                         if name not in IGNORED_FOLDERS and not name.startswith(".")]
        for name in files:
            if name.endswith(suffixes):
                yield Path(folder) / name


def message_key(function: str, arguments: list[str]) -> tuple[str | None, str]:
    context_at, message_at = GETTEXT_FUNCTIONS[function]
    return (None if context_at is None else arguments[context_at]), arguments[message_at]


def python_messages(path: Path) -> set[tuple[str | None, str]]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        function = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
        if function not in GETTEXT_FUNCTIONS:
            continue
        arguments = [arg.value if isinstance(arg, ast.Constant) else None for arg in node.args]
        key = message_key(function, arguments) if len(arguments) >= 1 else (None, None)
        if isinstance(key[1], str) and key[1]:
            found.add(key)
    return found


def template_messages(path: Path) -> set[tuple[str | None, str]]:
    """Django's own template-to-gettext conversion, as makemessages uses it."""
    code = templatize(path.read_text(encoding="utf-8"), origin=str(path))
    return {
        message_key(match["function"], list(ast.literal_eval(f"({match['arguments']},)")))
        for match in TEMPLATIZED_CALL.finditer(code)
    }


def test_the_catalogue_holds_exactly_the_strings_marked_in_the_source():
    in_source = set()
    for path in source_files(".py"):
        in_source |= python_messages(path)
    for path in source_files(".html", ".txt"):
        in_source |= template_messages(path)
    in_catalogue = {entry.key for entry in entries()}
    assert sorted(in_source - in_catalogue, key=str) == [], (
        "new strings: run `make messages` and translate them"
    )
    assert sorted(in_catalogue - in_source, key=str) == [], (
        "strings no longer in the source: run `make messages`"
    )


# --- the rendered pages ---


class VisibleText(HTMLParser):
    """Text a user reads: text nodes outside <script>/<style>, and the attributes that
    browsers and screen readers show."""

    SHOWN_ATTRIBUTES = {"placeholder", "title", "aria-label", "alt"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.hidden_depth = 0
        self.texts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.hidden_depth += 1
        attributes = dict(attrs)
        for name, value in attributes.items():
            shown = name in self.SHOWN_ATTRIBUTES or (
                name == "value" and tag == "input"
                and attributes.get("type") in ("submit", "button", "reset")
            )
            if shown and value and value.strip():
                self.texts.append(" ".join(value.split()))

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.hidden_depth = max(0, self.hidden_depth - 1)

    def handle_data(self, data):
        if not self.hidden_depth and data.strip():
            self.texts.append(" ".join(data.split()))


def visible_texts(html: str) -> list[str]:
    parser = VisibleText()
    parser.feed(html)
    parser.close()
    return parser.texts


def phrase(message: str) -> re.Pattern:
    """A message as a whole phrase in running text; placeholders match any value."""
    pattern, position = [], 0
    for match in PLACEHOLDER.finditer(message):
        pattern.append(re.escape(message[position:match.start()]))
        pattern.append("%" if match.group() == "%%" else ".+?")
        position = match.end()
    pattern.append(re.escape(message[position:]))
    return re.compile(r"(?<!\w)" + "".join(pattern) + r"(?!\w)")


def is_telling(message: str) -> bool:
    """Enough words of its own to be recognised: not only placeholders and symbols."""
    return len(re.findall(r"[^\W\d_]", PLACEHOLDER.sub("", message))) >= 2


@cache
def english_tells() -> dict[str, tuple[re.Pattern, ...]]:
    """msgid -> patterns of its English forms that would betray a missing translation.

    A form the German keeps unchanged ("Pipeline", "Champion") tells nothing, nor does one
    that appears inside some German translation ("opportunities" in "--opportunities ...",
    the seed command's option).
    """
    german = [PLACEHOLDER.sub(" ", text) for entry in entries() for text in entry.msgstrs]
    tells: dict[str, list[re.Pattern]] = {}
    for entry in entries():
        for english, translated in entry.pairs:
            if english == translated or not is_telling(english):
                continue
            pattern = phrase(english)
            if any(pattern.search(text) for text in german):
                continue
            tells.setdefault(entry.msgid, []).append(pattern)
    return {msgid: tuple(patterns) for msgid, patterns in tells.items()}


def english_strings_in(html: str) -> dict[str, str]:
    """Each catalogue msgid whose English shows on the page, with the text showing it."""
    found = {}
    for text in visible_texts(html):
        for msgid, patterns in english_tells().items():
            if msgid not in found and any(pattern.search(text) for pattern in patterns):
                found[msgid] = text
    return found


def german_of(msgid: str) -> tuple[re.Pattern, ...]:
    entry = next(entry for entry in entries() if entry.msgid == msgid and not entry.context)
    return tuple(phrase(text) for text in entry.msgstrs)


@pytest.fixture(autouse=True)
def _back_to_english_afterwards():
    # LocaleMiddleware activates the request's language in this thread and leaves it.
    yield
    translation.deactivate()


@pytest.fixture
def deal(db):
    """A rep's opportunity in Validating: closed checklists with evidence, a history,
    a champion and a committee member without confirmation, one criterion still to tick.
    Names are German so that no data can look like an English interface string."""
    rep = RepFactory(first_name="Jana", last_name="Becker", username="jbecker",
                     team=TeamFactory(name="Vertrieb Süd"))
    account = AccountFactory(name="Müller Maschinenbau GmbH", industry="Maschinenbau")
    opportunity = OpportunityFactory(account=account, owner=rep, name="Müller Erweiterung 2027")
    for stage in (Stage.IDENTIFYING, Stage.DISCOVERING):
        for criterion in PROCESS[stage].exit_criteria:
            if criterion.key == "identifying.next_call_scheduled":  # derived: a planned call
                plan_call(opportunity, by=rep, subject="Abstimmung mit dem Einkauf")
                continue
            assert criterion.kind == CriterionKind.TICKED
            opportunity.tick(criterion.key, by=rep, note="Gesprächsprotokoll vom Termin")
    advance(opportunity, Stage.VALIDATING)
    champion = ContactFactory(account=account, first_name="Petra", last_name="Schulz",
                              title="Leiterin Einkauf")
    opportunity.name_champion(champion, by=rep)
    opportunity.add_committee_member(
        ContactFactory(account=account, first_name="Lukas", last_name="Wagner",
                       title="IT-Leiter"),
        by=rep,
    )
    # A contact who left: the account page offers to restore them.
    ContactFactory(account=account, first_name="Otto", last_name="Krause",
                   archived_at=timezone.now())
    # A second card in dollars without an exchange rate: the column says it is left out.
    OpportunityFactory(account=account, owner=rep, name="Müller Wartungsvertrag",
                       currency="USD")
    return opportunity


def render_pages(client, opportunity, language: str) -> dict[str, str]:
    """The main pages, as a rep (and a visitor, for the login page) sees them."""
    headers = {"accept-language": language}
    pk = opportunity.pk
    pages = {}

    def page(name: str, response, *statuses: int) -> None:
        assert response.status_code in (statuses or (200,)), (name, response.status_code)
        pages[name] = response.content.decode()

    page("login", client.get("/login/", headers=headers))
    client.force_login(opportunity.owner)
    page("board", client.get("/board/", headers=headers))
    # A change first, so the opportunity page also shows its confirmation message.
    client.post(f"/opportunities/{pk}/committee/add/", {
        "first_name": "Sabine", "last_name": "Koch", "version": opportunity.version,
    }, headers=headers)
    page("opportunity", client.get(f"/opportunities/{pk}/", headers=headers))
    opportunity.reload()
    page("move menu", client.get(f"/opportunities/{pk}/move/?stage=dead", headers=headers))
    page("refused move", client.post(f"/opportunities/{pk}/move/", {
        "stage": Stage.CONFIRMING, "version": opportunity.version, "via": "board",
    }, headers={**headers, "hx-request": "true"}), 422)
    page("edit", client.get(f"/opportunities/{pk}/edit/", headers=headers))
    page("new opportunity", client.get("/opportunities/new/", headers=headers))
    page("accounts", client.get("/accounts/", headers=headers))
    page("account", client.get(f"/accounts/{opportunity.account_id}/", headers=headers))
    page("edit account", client.get(f"/accounts/{opportunity.account_id}/edit/",
                                    headers=headers))
    page("edit contact", client.get(f"/contacts/{opportunity.champion_id}/edit/",
                                    headers=headers))
    page("contact in use", client.post(f"/contacts/{opportunity.champion_id}/archive/",
                                       headers=headers), 409)
    page("notifications", client.get("/notifications/", headers=headers))
    page("forecast", client.get("/forecast/", headers=headers))
    page("not found", client.get("/opportunities/999999/", headers=headers), 404)
    return pages


# English strings each page must show: proof that the check below looks at real UI text.
SHOWN_ON = {
    "login": ["Log in", "Username", "Password"],
    "board": ["Identifying Opportunity", "Validating Benefits & Values", "Show dead", "All owners",
              "New opportunity"],
    "opportunity": [
        "History", "Exit criteria", "Committee member added.",
        "A champion is named and confirmed convinced",
        "The champion committed to involve every decision maker, with a joint plan to win "
        "the rest of the committee",
        "%(who)s moved it from %(from)s to %(to)s (%(via)s)",
    ],
    "move menu": ["Why is it dead?", "Lost to a competitor", "Dead (parked)"],
    "refused move": [
        "Close", "Validating Benefits & Values",
        "The champion committed to involve every decision maker, with a joint plan to win "
        "the rest of the committee",
    ],
    "edit": ["Edit “%(name)s”", "Expected close date"],
    "new opportunity": ["or a new account", "Creates the account when it does not exist yet.",
                        "New business"],
    "accounts": ["Search accounts", "New account"],
    "account": ["Add a contact", "Opportunities", "Edit", "Archive", "Restore",
                "%(count)s archived contact"],
    "edit account": ["Edit account", "Cancel"],
    "edit contact": ["Edit contact", "Cancel"],
    "contact in use": ["%(contact)s is still the champion or a committee member of open "
                       "opportunities: %(names)s. Name someone else there first."],
    "notifications": ["Nothing new.", "Mark all as read"],
    "forecast": ["Coverage needed", "Per rep", "Too little history to say", "Quota"],
    "not found": ["Page not found", "Back to the board"],
}


def test_pages_in_german_show_no_english_interface_text(client, deal):
    pages = render_pages(client, deal, "de")
    assert set(pages) == set(SHOWN_ON)
    leaks = {}
    for name, html in pages.items():
        assert ' lang="de"' in html or name in ("move menu", "refused move"), name
        for msgid, text in english_strings_in(html).items():
            leaks.setdefault(name, []).append(f"{msgid!r} in {text!r}")
    assert leaks == {}, "untranslated: fix django.po (or wrap the string in gettext)"


def test_pages_in_german_show_the_german_of_each_english_string(client, deal):
    pages = render_pages(client, deal, "de")
    for name, msgids in SHOWN_ON.items():
        texts = visible_texts(pages[name])
        for msgid in msgids:
            assert any(pattern.search(text) for pattern in german_of(msgid) for text in texts), (
                name, msgid,
            )


def test_pages_in_english_show_the_strings_the_german_check_looks_for(client, deal):
    pages = render_pages(client, deal, "en")
    for name, msgids in SHOWN_ON.items():
        assert ' lang="en"' in pages[name] or name in ("move menu", "refused move"), name
        shown = english_strings_in(pages[name])
        missing = [msgid for msgid in msgids if msgid not in shown]
        assert missing == [], name
