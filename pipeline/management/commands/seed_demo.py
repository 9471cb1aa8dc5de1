"""`manage.py seed_demo`: demo users for every role, accounts with contacts, and
opportunities in every stage with a back-filled history over the last four fiscal quarters.

The rows are written in bulk, which bypasses the state machine: stack-notes allow that for
seed code only, knowingly. So this module builds every opportunity the way the process
would have left it: each gate it passed holds (ticks, champion, committee), its StageChange
rows replay from Identifying to its current stage one forward step at a time, and its stage
timestamps and deadline follow the timeouts in force.

Everything random comes from one `random.Random(seed)`, and every time is counted from the
start of today, so the same seed on the same day gives the same data.

The story of each opportunity (its stages, ticks, committee and history rows) is built by
`pipeline.management.demo_history`.

Speed (100,000 opportunities, 1.6 million rows, well under a minute on PostgreSQL): rows
are plain tuples, not model instances; PostgreSQL gets binary COPY from a writer thread
while the next rows are built, with the foreign keys checked once at the end; SQLite, the
demo's few hundred opportunities, gets bulk_create. See docs/benchmarks.md.
"""

from __future__ import annotations

import math
import random
import time as clock
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, models, transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.bulk import reserve_ids
from crm.models import (
    Account,
    Contact,
    ExchangeRate,
    Role,
    Team,
    User,
    fiscal_quarter,
    fiscal_quarter_bounds,
)
from pipeline.management.bulk_rows import (
    Rows,
    RowWriter,
    foreign_keys_checked_at_the_end,
)
from pipeline.management.demo_activities import create_activities
from pipeline.management.demo_history import DAY, DemoAccount, OpportunityHistory
from pipeline.management.demo_orders import create_orders
from pipeline.models import (
    CommitteeMember,
    CriterionTick,
    FieldChange,
    Opportunity,
    StageChange,
    StageTimeout,
)
from pipeline.process import (
    TIMED_STAGES,
    Stage,
)

# For local use only: printed at the end of the command and documented in the README.
DEMO_PASSWORD = "progression-demo"
TEAM_NAME = "Enterprise Sales"
OPPORTUNITIES_PER_BATCH = 5000  # handed to the writer at once, with their rows


@dataclass(frozen=True)
class DemoUser:
    username: str
    first_name: str
    last_name: str
    role: Role | None  # None: the superuser, who has no role group
    is_staff: bool = False
    in_team: bool = True


DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("anna", "Anna", "Keller", Role.REP),
    DemoUser("ben", "Ben", "Okafor", Role.REP),
    DemoUser("carla", "Carla", "Mendes", Role.REP),
    DemoUser("dario", "Dario", "Rossi", Role.BDR),
    DemoUser("sofia", "Sofia", "Lindqvist", Role.SALES_OPS, is_staff=True, in_team=False),
    DemoUser("max", "Max", "Brandt", Role.MANAGER, is_staff=True),
    DemoUser("admin", "Ada", "Admin", None, is_staff=True, in_team=False),
)

# How the current stages are spread, in per cent of the opportunities.
STAGE_SHARES: dict[Stage, int] = {
    Stage.IDENTIFYING: 13,
    Stage.DISCOVERING: 14,
    Stage.VALIDATING: 12,
    Stage.CONFIRMING: 10,
    Stage.NEGOTIATING: 8,
    Stage.FINALIZING: 6,
    Stage.PENDING: 3,
    Stage.CLOSED: 19,
    Stage.DEAD: 15,
}
# Value of one unit in euros; the rates stored are relative to the company currency.
EURO_VALUE = {"EUR": 1.0, "USD": 0.92, "GBP": 1.17, "CHF": 1.04}
RATED_CURRENCIES = ("USD", "GBP")

ACCOUNT_PREFIXES = (
    "Alpen", "Baltic", "Cedar", "Danube", "Elbe", "Fjord", "Granite", "Harbor", "Iberia",
    "Jura", "Kestrel", "Lumen", "Meridian", "Nordic", "Orion", "Pioneer", "Quartz", "Rhine",
    "Summit", "Tauern", "Unity", "Vantage", "Westgate", "Zenith", "Atlas", "Beacon",
    "Cobalt", "Delta", "Ember", "Falcon", "Glacier", "Helix", "Juniper", "Keystone",
    "Lakeside", "Monarch", "Northwind", "Oakridge", "Polaris", "Riverside",
)
ACCOUNT_KINDS = (
    ("Bank", "Banking"), ("Private Bank", "Banking"), ("Insurance", "Insurance"),
    ("Logistics", "Logistics"), ("Pharma", "Pharmaceuticals"), ("Energy", "Energy"),
    ("Retail", "Retail"), ("Telecom", "Telecommunications"), ("Software", "Software"),
    ("Manufacturing", "Manufacturing"), ("Health", "Healthcare"), ("Foods", "Food"),
    ("Capital", "Financial services"), ("Mobility", "Transport"), ("Media", "Media"),
    ("Chemicals", "Chemicals"), ("Engineering", "Engineering"), ("Airlines", "Aviation"),
    ("Hotels", "Hospitality"), ("Consulting", "Professional services"),
)
REGIONS = (
    "Europe", "Americas", "Asia", "Nordics", "Iberia", "Benelux", "Alps", "Baltics",
    "Balkans", "Middle East", "Africa", "Oceania",
)
FIRST_NAMES = (
    "Alice", "Bruno", "Chiara", "David", "Elena", "Felix", "Greta", "Hugo", "Ines", "Jonas",
    "Katja", "Luca", "Marta", "Nils", "Olivia", "Paul", "Rosa", "Samuel", "Tanja", "Victor",
    "Yasmin", "Zoe", "Amir", "Beatriz", "Chen", "Daniela", "Emil", "Fatima", "Gustav",
    "Hannah", "Ivan", "Julia", "Kenji", "Lena", "Mateo", "Nora", "Oskar", "Priya",
)
LAST_NAMES = (
    "Andersen", "Bauer", "Costa", "Dubois", "Eriksson", "Fischer", "Garcia", "Hoffmann",
    "Ivanova", "Jensen", "Kowalski", "Lehmann", "Moreau", "Novak", "Olsen", "Petrov",
    "Quinn", "Richter", "Schmid", "Tanaka", "Urban", "Vogel", "Weber", "Young", "Zimmermann",
    "Brennan", "Castillo", "Dahl", "Engel", "Ferrari", "Gallagher", "Huber", "Ibrahim",
)
TITLES = (
    "Chief Financial Officer", "Chief Information Officer", "Head of Procurement",
    "Head of Sales Operations", "IT Security Officer", "Chief Operating Officer",
    "Head of Finance", "Project Lead", "Legal Counsel", "Chief Executive Officer",
    "Head of Customer Service", "Enterprise Architect",
)
# --- users ---


def ensure_demo_users() -> dict[str, User]:
    """The demo users, their role groups and the one team; existing users are kept as
    they are (their password included), so running the command twice never fails."""
    groups = {role: Group.objects.get_or_create(name=role)[0] for role in Role}
    team, _created = Team.objects.get_or_create(name=TEAM_NAME)
    existing = {user.username: user for user in
                User.objects.filter(username__in=[demo.username for demo in DEMO_USERS])}
    # Hashing is slow on purpose; one hash serves every demo account.
    password = make_password(DEMO_PASSWORD) if len(existing) < len(DEMO_USERS) else None
    users = {}
    for demo in DEMO_USERS:
        user = existing.get(demo.username)
        if user is None:
            user = User.objects.create(
                username=demo.username, first_name=demo.first_name,
                last_name=demo.last_name, email=f"{demo.username}@example.com",
                password=password, is_staff=demo.is_staff,
                is_superuser=demo.role is None, team=team if demo.in_team else None,
            )
        if demo.role is not None:
            user.groups.add(groups[demo.role])
        users[demo.username] = user
    manager = next(users[demo.username] for demo in DEMO_USERS if demo.role == Role.MANAGER)
    if team.manager_id is None:
        team.manager = manager
        team.save(update_fields=["manager"])
    return users


def ensure_exchange_rates(updated_by: User) -> None:
    """Rates for USD and GBP (never overwriting sales ops' own), none for CHF."""
    company = settings.COMPANY_CURRENCY
    company_value = EURO_VALUE.get(company, 1.0)
    for currency in RATED_CURRENCIES:
        if currency == company:
            continue
        rate = Decimal(str(round(EURO_VALUE[currency] / company_value, 6)))
        ExchangeRate.objects.get_or_create(
            currency=currency, defaults={"rate": rate, "updated_by": updated_by}
        )


# --- the time frame: whole seconds since the epoch, converted only when a row is written ---


def previous_quarter(year: int, quarter: int) -> tuple[int, int]:
    return (year, quarter - 1) if quarter > 1 else (year - 1, 4)


def start_of(day: date) -> int:
    return int(timezone.make_aware(datetime.combine(day, time.min)).timestamp())


def history_quarters(today: date) -> list[tuple[int, int]]:
    """The four fiscal quarters before the current one, then the current one, as
    (start, end) moments; the end of the current quarter is the start of today."""
    year, quarter = fiscal_quarter(today)
    quarters = [(year, quarter)]
    for _step in range(4):
        quarters.insert(0, previous_quarter(*quarters[0]))
    bounds = []
    for year, quarter in quarters:
        first, after = fiscal_quarter_bounds(year, quarter)
        bounds.append((start_of(first), start_of(min(after, today))))
    return bounds


def timeouts_in_force() -> dict[Stage, int]:
    """Days per timed stage: sales ops' overrides, else process.md's defaults."""
    return {stage: StageTimeout.days_for(stage) for stage in TIMED_STAGES}


def spread_stages(count: int, rng: random.Random) -> list[Stage]:
    """`count` stages in the shares of STAGE_SHARES (largest remainder), every stage at
    least once when there are enough, in a random order."""
    total = sum(STAGE_SHARES.values())
    exact = {stage: count * share / total for stage, share in STAGE_SHARES.items()}
    counts = {stage: math.floor(value) for stage, value in exact.items()}
    if count >= len(STAGE_SHARES):
        for stage in counts:
            counts[stage] = max(counts[stage], 1)
    by_remainder = sorted(exact, key=lambda stage: exact[stage] - math.floor(exact[stage]),
                          reverse=True)
    index = 0
    while sum(counts.values()) < count:
        counts[by_remainder[index % len(by_remainder)]] += 1
        index += 1
    while sum(counts.values()) > count:  # the minimum of one overshot: take from the largest
        largest = max(counts, key=counts.get)
        counts[largest] -= 1
    stages = [stage for stage, number in counts.items() for _i in range(number)]
    rng.shuffle(stages)
    return stages


# The columns each table's rows are built with, in the order they are built.
COLUMNS: dict[type[models.Model], tuple[str, ...]] = {
    Account: ("id", "name", "website", "industry", "created_at", "archived_at"),
    Contact: ("id", "account_id", "first_name", "last_name", "title", "email", "phone",
              "archived_at"),
    Opportunity: (
        "id", "account_id", "owner_id", "name", "type", "source", "amount", "currency",
        "expected_close_date", "next_step", "next_step_date", "stage", "stage_entered_at",
        "stage_deadline", "amount_at_stage_entry", "champion_id", "champion_confirmed_at",
        "champion_confirmed_by_id", "dead_reason", "dead_note", "created_at", "version",
        "changed_at", "changed_by_id",
    ),
    CommitteeMember: ("opportunity_id", "contact_id", "added_at", "added_by_id",
                      "confirmed_on", "confirmed_by_id", "removed_at", "removed_by_id"),
    CriterionTick: ("opportunity_id", "criterion", "state", "note", "ticked_at",
                    "ticked_by_id", "revoked_at", "revoked_by_id"),
    StageChange: ("opportunity_id", "from_stage", "to_stage", "changed_at", "changed_by_id",
                  "via", "reason", "dead_reason", "handed_to_id", "is_undo", "checklist"),
    FieldChange: ("opportunity_id", "field", "old_value", "new_value", "changed_at",
                  "changed_by_id", "via"),
}


class DemoData(OpportunityHistory):
    """Builds accounts, contacts and opportunities with their history as rows (each
    opportunity's story comes from OpportunityHistory), and hands them to the writer in
    batches."""

    def __init__(self, rng: random.Random, users: dict[str, User]):
        self.rng = rng
        self.random = rng.random
        self.rep_ids = [users[demo.username].pk for demo in DEMO_USERS if demo.role == Role.REP]
        self.bdr_id = next(users[demo.username].pk for demo in DEMO_USERS
                           if demo.role == Role.BDR)
        self.sales_ops_id = next(users[demo.username].pk for demo in DEMO_USERS
                                 if demo.role == Role.SALES_OPS)
        self.zone = timezone.get_current_timezone()
        self.today = timezone.localdate()
        self.now = start_of(self.today)  # the start of today: the same data all day
        self.quarters = history_quarters(self.today)
        self.history_start = self.quarters[0][0]
        self.timeouts = timeouts_in_force()
        self.company_currency = settings.COMPANY_CURRENCY
        self.snapshots: dict[tuple, dict] = {}
        self.written: Counter[type[models.Model]] = Counter()
        self.tables: tuple[Rows, ...] = ()
        self.take_rows()

    def take_rows(self) -> list[Rows]:
        """The rows built since the last call, to be written; starts afresh."""
        taken = [rows for rows in self.tables if rows.rows]
        for rows in taken:
            self.written[rows.model] += len(rows)
        self.accounts = Rows(Account, COLUMNS[Account])
        self.contacts = Rows(Contact, COLUMNS[Contact])
        self.opportunities = Rows(Opportunity, COLUMNS[Opportunity])
        self.committee = Rows(CommitteeMember, COLUMNS[CommitteeMember])
        self.ticks = Rows(CriterionTick, COLUMNS[CriterionTick])
        self.stage_changes = Rows(StageChange, COLUMNS[StageChange])
        self.field_changes = Rows(FieldChange, COLUMNS[FieldChange])
        self.tables = (self.accounts, self.contacts, self.opportunities, self.committee,
                       self.ticks, self.stage_changes, self.field_changes)
        return taken

    # --- accounts and contacts ---

    def create_accounts(self, count: int) -> list[DemoAccount]:
        rng = self.rng
        combinations = [(prefix, kind) for prefix in ACCOUNT_PREFIXES for kind in ACCOUNT_KINDS]
        rng.shuffle(combinations)
        account_ids = reserve_ids(Account, count)
        contact_counts = [rng.randint(3, 6) for _account in range(count)]
        contact_ids = iter(reserve_ids(Contact, sum(contact_counts)))
        accounts = []
        for index, account_id in enumerate(account_ids):
            prefix, (kind, industry) = combinations[index % len(combinations)]
            name = f"{prefix} {kind}"
            round_number = index // len(combinations)
            if round_number:
                region = REGIONS[(round_number - 1) % len(REGIONS)]
                repeat = (round_number - 1) // len(REGIONS)
                name = f"{name} {region}" + (f" {repeat + 1}" if repeat else "")
            domain = name.lower().replace(" ", "-") + ".example"
            created = self.moment(self.history_start - 365 * DAY, self.history_start)
            self.accounts.append((account_id, name, f"https://www.{domain}", industry,
                                  self.at(created), None))
            contacts = [next(contact_ids) for _contact in range(contact_counts[index])]
            for contact_id in contacts:
                self.add_contact(contact_id, account_id, domain)
            accounts.append(DemoAccount(account_id, name, industry, contacts))
        return accounts

    def add_contact(self, contact_id: int, account_id: int, domain: str) -> None:
        rng = self.rng
        first, last = self.choose(FIRST_NAMES), self.choose(LAST_NAMES)
        phone = f"+41 44 {rng.randint(200, 999)} {rng.randint(10, 99)} {rng.randint(10, 99)}"
        self.contacts.append((contact_id, account_id, first, last, self.choose(TITLES),
                              f"{first}.{last}@{domain}".lower(), phone, None))

    # --- opportunities ---

    def create_opportunities(self, count: int) -> None:
        accounts = self.create_accounts(max(1, math.ceil(count / 5)) if count else 0)
        opportunity_ids = reserve_ids(Opportunity, count)
        ended_per_stage = {Stage.CLOSED: 0, Stage.DEAD: 0}
        stages = spread_stages(count, self.rng)
        with foreign_keys_checked_at_the_end(list(COLUMNS)), RowWriter() as writer:
            writer.write(self.take_rows())  # the accounts and contacts
            for index, (opportunity_id, stage) in enumerate(zip(opportunity_ids, stages,
                                                                strict=True)):
                # Every account gets one; the rest land anywhere.
                account = accounts[index] if index < len(accounts) else self.choose(accounts)
                quarter = None
                if stage in ended_per_stage:
                    # Closings and deaths go round the quarters so each one has some.
                    quarter = self.quarters[ended_per_stage[stage] % len(self.quarters)]
                    ended_per_stage[stage] += 1
                self.add_opportunity(opportunity_id, account, stage, quarter)
                if (index + 1) % OPPORTUNITIES_PER_BATCH == 0:
                    writer.write(self.take_rows())
            writer.write(self.take_rows())


    def counts(self) -> dict[str, int]:
        return {
            "opportunities": self.written[Opportunity],
            "stage_changes": self.written[StageChange],
            "criterion_ticks": self.written[CriterionTick],
            "committee_members": self.written[CommitteeMember],
            "field_changes": self.written[FieldChange],
        }


def seed_demo(opportunities: int, seed: int) -> dict[str, int]:
    """Load the demo users and `opportunities` opportunities; returns the row counts."""
    with transaction.atomic():
        users = ensure_demo_users()
        ensure_exchange_rates(next(users[demo.username] for demo in DEMO_USERS
                                   if demo.role == Role.SALES_OPS))
        data = DemoData(random.Random(seed), users)
        data.create_opportunities(opportunities)
        orders = create_orders(data.rng, data.sales_ops_id)
        orders.update(create_activities(data.rng))
    if connection.vendor == "postgresql":
        # Fresh statistics, or the planner guesses a dozen rows per stage and sorts whole
        # columns instead of reading the first cards off the index (docs/benchmarks.md).
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return {**data.counts(), **orders}


class Command(BaseCommand):
    @property
    def help(self) -> str:  # argparse cannot take a lazy string
        return gettext(
            "Load demo data: a user for every role, accounts with contacts, and "
            "opportunities in every stage with a history over the last four fiscal quarters."
        )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--opportunities", type=int, default=400,
                            help=_("How many opportunities to create (default 400)."))
        parser.add_argument("--seed", type=int, default=1,
                            help=_("Seed of the random data: the same seed, the same data."))
        parser.add_argument("--if-empty", action="store_true",
                            help=_("Do nothing when any opportunity exists already."))

    def handle(self, *args, opportunities: int, seed: int, if_empty: bool, **options) -> None:
        if opportunities < 0:
            raise CommandError(gettext("--opportunities cannot be negative."))
        if if_empty and Opportunity.objects.exists():
            self.stdout.write(gettext("Opportunities exist already; no demo data loaded."))
            return
        started = clock.perf_counter()
        counts = seed_demo(opportunities, seed)
        seconds = clock.perf_counter() - started
        self.stdout.write(
            gettext("Loaded %(opportunities)d opportunities, %(stage_changes)d stage changes, "
                    "%(criterion_ticks)d criterion ticks, %(committee_members)d committee "
                    "members and %(field_changes)d field changes in %(seconds).1f s.")
            % {**counts, "seconds": seconds}
        )
        self.print_logins(DEMO_USERS)

    def print_logins(self, demo_users: Sequence[DemoUser]) -> None:
        self.stdout.write(gettext("Demo logins (local use only), password for all: %s")
                          % DEMO_PASSWORD)
        for demo in demo_users:
            role = demo.role.label if demo.role else gettext("Superuser")
            self.stdout.write(f"  {demo.username:<8} {role}")
