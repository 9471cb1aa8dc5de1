"""`manage.py seed_demo`: demo users for every role, accounts with contacts, and
opportunities in every stage with a back-filled history over the last four fiscal quarters.

The rows are written with bulk inserts, which bypass the state machine: stack-notes allow
that for seed code only, knowingly. So this module builds every opportunity the way the
process would have left it: each gate it passed holds (ticks, champion, committee), its
StageChange rows replay from Identifying to its current stage one forward step at a time,
and its stage timestamps and deadline follow the timeouts in force.

Everything random comes from one `random.Random(seed)`, and every time is counted from the
start of today, so the same seed on the same day gives the same data.
"""

from __future__ import annotations

import math
import random
import time as clock
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

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
from pipeline.models import (
    CommitteeMember,
    CriterionTick,
    FieldChange,
    Opportunity,
    OpportunityType,
    Source,
    StageChange,
    StageTimeout,
    Via,
)
from pipeline.process import (
    ORDERED_STAGES,
    PROCESS,
    TIMED_STAGES,
    CriterionKind,
    DeadReason,
    Stage,
    next_stage,
)

# For local use only: printed at the end of the command and documented in the README.
DEMO_PASSWORD = "progression-demo"
TEAM_NAME = "Enterprise Sales"
BATCH_SIZE = 2000


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
# Where dead opportunities died: mostly early, where most deals are lost.
DIED_FROM_WEIGHTS: dict[Stage, int] = {
    Stage.IDENTIFYING: 25,
    Stage.DISCOVERING: 25,
    Stage.VALIDATING: 20,
    Stage.CONFIRMING: 15,
    Stage.NEGOTIATING: 10,
    Stage.FINALIZING: 5,
}
# Expected close date of an open opportunity, in days from today: late stages close sooner.
CLOSE_IN_DAYS: dict[Stage, tuple[int, int]] = {
    Stage.IDENTIFYING: (90, 270),
    Stage.DISCOVERING: (60, 240),
    Stage.VALIDATING: (45, 180),
    Stage.CONFIRMING: (30, 120),
    Stage.NEGOTIATING: (10, 60),
    Stage.FINALIZING: (3, 30),
    Stage.PENDING: (0, 7),
}
# Value of one unit in euros; the rates stored are relative to the company currency.
EURO_VALUE = {"EUR": 1.0, "USD": 0.92, "GBP": 1.17, "CHF": 1.04}
RATED_CURRENCIES = ("USD", "GBP")
UNRATED_CURRENCY = "CHF"  # deliberately without a rate: the "no rate" warning shows it

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
LARGE_DEAL_INDUSTRIES = {"Banking", "Insurance", "Financial services"}
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
PRODUCTS = (
    "Pipeline platform", "Analytics suite", "Compliance module", "Treasury workflow",
    "Customer portal", "Data integration", "Reporting rollout", "Risk engine",
    "Onboarding automation", "Forecasting workspace",
)
NEXT_STEPS = (
    "Call with the CFO", "Send the written summary", "Demo for the IT team",
    "Workshop on the close plan", "Security questionnaire review", "Pricing call",
    "Reference call with an existing customer", "Contract redlines review",
    "Steering committee presentation", "Follow up on the purchase order",
)
TICK_NOTES = (
    "Confirmed in the call, see the meeting notes.",
    "Written up and shared in the deal room.",
    "Customer confirmed by e-mail.",
    "Agreed in the workshop with their team.",
    "Documented in the account plan.",
)
NOT_REQUIRED_NOTE = "Not required: the customer waived it for this contract size."
DEAD_NOTES: dict[DeadReason, tuple[str, ...]] = {
    DeadReason.COMPETITOR: (
        "They chose a competitor after the final presentation.",
        "Lost on price against the incumbent vendor.",
    ),
    DeadReason.NO_BUDGET: (
        "Budget cut for this fiscal year.",
        "The project lost its funding in the budget review.",
    ),
    DeadReason.NO_DECISION: (
        "The committee could not agree; the project is on hold.",
        "Our champion left the company and nobody took over.",
    ),
    DeadReason.TIMEOUT: ("No progress within the stage's timeout.",),
    DeadReason.OTHER: (
        "Merger announced; all purchases frozen.",
        "The customer decided to build it in-house.",
    ),
}
DEAD_REASON_WEIGHTS: dict[DeadReason, int] = {
    DeadReason.COMPETITOR: 25,
    DeadReason.NO_BUDGET: 20,
    DeadReason.NO_DECISION: 20,
    DeadReason.TIMEOUT: 25,
    DeadReason.OTHER: 10,
}
REOPEN_REASONS = (
    "New budget approved for next year.",
    "The champion is back and wants to restart.",
    "The competitor's project failed; they called us again.",
    "Campaign response: interested again after the webinar.",
)
REJECT_REASONS = (
    "The customer attached its own purchasing terms instead of the agreed terms.",
    "The discount on the purchase order differs from the offer.",
    "The services offer is missing from the purchase order.",
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


# --- the time frame ---


def previous_quarter(year: int, quarter: int) -> tuple[int, int]:
    return (year, quarter - 1) if quarter > 1 else (year - 1, 4)


def start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def history_quarters(today: date) -> list[tuple[datetime, datetime]]:
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


def money(value: float) -> Decimal:
    return Decimal(int(value)).quantize(Decimal("0.01"))


# --- one opportunity's story ---


@dataclass
class Story:
    """The visits of one opportunity, oldest first: the stage and when it was entered."""

    stages: list[Stage]
    entered: list[datetime] = field(default_factory=list)
    end: datetime | None = None  # the moment the story is told: now, or the final move

    def stay(self, index: int) -> tuple[datetime, datetime]:
        """When the opportunity entered visit `index`, and when it left (or the end)."""
        left = self.entered[index + 1] if index + 1 < len(self.stages) else self.end
        return self.entered[index], left

    def first_forward_stays(self) -> dict[Stage, tuple[datetime, datetime]]:
        """For every stage left forward, its first such stay: the gate's ticks fall in it."""
        stays = {}
        for index, stage in enumerate(self.stages[:-1]):
            if self.stages[index + 1] == next_stage(stage) and stage not in stays:
                stays[stage] = self.stay(index)
        return stays


class DemoData:
    """Builds accounts, contacts and opportunities in memory, then bulk-inserts them."""

    def __init__(self, rng: random.Random, users: dict[str, User]):
        self.rng = rng
        self.reps = [users[demo.username] for demo in DEMO_USERS if demo.role == Role.REP]
        self.bdr = next(users[demo.username] for demo in DEMO_USERS if demo.role == Role.BDR)
        self.sales_ops = next(users[demo.username] for demo in DEMO_USERS
                              if demo.role == Role.SALES_OPS)
        self.now = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
        self.today = self.now.date()
        self.quarters = history_quarters(self.today)
        self.history_start = self.quarters[0][0]
        self.timeouts = timeouts_in_force()
        self.company_currency = settings.COMPANY_CURRENCY
        self.snapshots: dict[tuple, dict] = {}
        self.opportunities: list[Opportunity] = []
        self.stage_changes: list[StageChange] = []
        self.field_changes: list[FieldChange] = []
        self.ticks: list[CriterionTick] = []
        self.committee: list[CommitteeMember] = []

    # --- helpers on the one random source ---

    def pick(self, weights: dict) -> Any:
        return self.rng.choices(list(weights), weights=list(weights.values()))[0]

    def moment(self, start: datetime, end: datetime) -> datetime:
        """A moment between start and end, to the second."""
        seconds = max((end - start).total_seconds(), 0)
        return start + timedelta(seconds=int(self.rng.random() * seconds))

    def days(self, low: float, high: float) -> timedelta:
        return timedelta(seconds=int(self.rng.uniform(low, high) * 86400))

    # --- accounts and contacts ---

    def create_accounts(self, count: int) -> list[tuple[Account, list[Contact]]]:
        combinations = [(prefix, kind) for prefix in ACCOUNT_PREFIXES for kind in ACCOUNT_KINDS]
        self.rng.shuffle(combinations)
        accounts, contacts_of = [], []
        for index in range(count):
            prefix, (kind, industry) = combinations[index % len(combinations)]
            name = f"{prefix} {kind}"
            round_number = index // len(combinations)
            if round_number:
                region = REGIONS[(round_number - 1) % len(REGIONS)]
                repeat = (round_number - 1) // len(REGIONS)
                name = f"{name} {region}" + (f" {repeat + 1}" if repeat else "")
            domain = name.lower().replace(" ", "-") + ".example"
            accounts.append(Account(
                name=name, website=f"https://www.{domain}", industry=industry,
                created_at=self.moment(self.history_start - timedelta(days=365),
                                       self.history_start),
            ))
            contacts_of.append([
                self.new_contact(domain) for _number in range(self.rng.randint(3, 6))
            ])
        Account.objects.bulk_create(accounts, batch_size=BATCH_SIZE)
        for account, contacts in zip(accounts, contacts_of, strict=True):
            for contact in contacts:
                contact.account = account
        Contact.objects.bulk_create(
            [contact for contacts in contacts_of for contact in contacts], batch_size=BATCH_SIZE
        )
        return list(zip(accounts, contacts_of, strict=True))

    def new_contact(self, domain: str) -> Contact:
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        return Contact(
            first_name=first, last_name=last, title=self.rng.choice(TITLES),
            email=f"{first}.{last}@{domain}".lower(),
            phone=f"+41 44 {self.rng.randint(200, 999)} {self.rng.randint(10, 99)} "
                  f"{self.rng.randint(10, 99)}",
        )

    # --- opportunities ---

    def create_opportunities(self, count: int) -> None:
        accounts = self.create_accounts(max(1, math.ceil(count / 5)) if count else 0)
        ended_per_stage = {Stage.CLOSED: 0, Stage.DEAD: 0}
        for index, stage in enumerate(spread_stages(count, self.rng)):
            # Every account gets one; the rest land anywhere.
            if index < len(accounts):
                account, contacts = accounts[index]
            else:
                account, contacts = self.rng.choice(accounts)
            quarter = None
            if stage in ended_per_stage:
                # Closings and deaths go round the quarters so each one has some.
                quarter = self.quarters[ended_per_stage[stage] % len(self.quarters)]
                ended_per_stage[stage] += 1
            self.add_opportunity(account, contacts, stage, quarter)
        self.insert()

    def add_opportunity(self, account: Account, contacts: list[Contact], stage: Stage,
                        quarter: tuple[datetime, datetime] | None) -> None:
        rng = self.rng
        kind = self.pick({OpportunityType.NEW_BUSINESS: 60, OpportunityType.UPSELL: 25,
                          OpportunityType.CROSS_SELL: 15})
        amount, large = self.amount(account, kind)
        story, died_from, dead_reason = self.story(stage, large, quarter)
        # A BDR keeps only what never left Identifying; leaving it hands over to a rep.
        qualifying = story.stages == [Stage.IDENTIFYING]
        owner = self.bdr if qualifying and rng.random() < 0.4 else rng.choice(self.reps)
        entered = story.entered[-1]
        timeout = self.timeouts.get(stage)
        opportunity = Opportunity(
            account=account, owner=owner, name=self.opportunity_name(account, kind),
            type=kind, source=self.source(kind), amount=amount, currency=self.currency(),
            stage=stage, stage_entered_at=entered,
            stage_deadline=entered + timedelta(days=timeout) if timeout else None,
            created_at=story.entered[0], changed_by=owner,
        )
        self.opportunities.append(opportunity)
        self.set_close_date(opportunity, stage, died_from, entered)
        if stage == Stage.DEAD:
            opportunity.dead_reason = dead_reason
            opportunity.dead_note = rng.choice(DEAD_NOTES[dead_reason])
        elif stage != Stage.CLOSED:
            opportunity.next_step = rng.choice(NEXT_STEPS)
            opportunity.next_step_date = self.today + timedelta(days=rng.randint(1, 14))

        working_stage = died_from or stage  # where the checklist was left partly done
        working_stay = story.stay(len(story.stages) - (2 if died_from else 1))
        ticks, members = self.fill_checklist(opportunity, contacts, story, working_stage,
                                             working_stay)
        moves = self.record_moves(opportunity, story, dead_reason, ticks, members)
        field_changes = self.record_field_changes(opportunity, story)
        latest = max([entered, *(tick.ticked_at for tick in ticks.values())])
        opportunity.changed_at = min(latest, self.now)
        opportunity.version = 1 + moves + field_changes + len(ticks)

    def amount(self, account: Account, kind: str) -> tuple[Decimal, bool]:
        """From a few seats to a large bank deal; returns the amount and whether it is large."""
        rng = self.rng
        big_customer = account.industry in LARGE_DEAL_INDUSTRIES
        weights = {"seats": 35, "mid": 40, "large": 20 if big_customer else 12,
                   "bank": 8 if big_customer else 0}
        if kind == OpportunityType.UPSELL:
            weights["seats"] += 30
        tier = self.pick(weights)
        if tier == "seats":
            return money(rng.randint(2, 25) * rng.randint(6, 12) * 100), False
        if tier == "mid":
            return money(rng.randint(40, 400) * 500), False
        if tier == "large":
            return money(rng.randint(40, 240) * 5000), True
        return money(rng.randint(30, 120) * 50000), True

    def currency(self) -> str:
        roll = self.rng.random()
        if roll < 0.12 and self.company_currency != "USD":
            return "USD"
        if roll < 0.20 and self.company_currency != "GBP":
            return "GBP"
        if roll < 0.215 and self.company_currency != UNRATED_CURRENCY:
            return UNRATED_CURRENCY
        return self.company_currency

    def source(self, kind: str) -> str:
        if kind != OpportunityType.NEW_BUSINESS and self.rng.random() < 0.8:
            return Source.EXISTING_CUSTOMER
        return self.pick({Source.WEBINAR: 20, Source.EVENT: 15, Source.INBOUND: 20,
                          Source.OUTBOUND: 15, Source.PARTNER: 10})

    def opportunity_name(self, account: Account, kind: str) -> str:
        if kind == OpportunityType.UPSELL:
            return f"{account.name} – {self.rng.randint(2, 40) * 5} more seats"
        if kind == OpportunityType.CROSS_SELL:
            return f"{account.name} – {self.rng.choice(PRODUCTS)} add-on"
        return f"{account.name} – {self.rng.choice(PRODUCTS)}"

    def set_close_date(self, opportunity: Opportunity, stage: Stage, died_from: Stage | None,
                       entered: datetime) -> None:
        if stage == Stage.CLOSED:
            opportunity.expected_close_date = timezone.localdate(entered)
            return
        low, high = CLOSE_IN_DAYS[died_from or stage]
        start = timezone.localdate(entered) if died_from else self.today
        opportunity.expected_close_date = start + timedelta(days=self.rng.randint(low, high))

    # --- the story: which stages, and when ---

    def story(self, stage: Stage, large: bool, quarter: tuple[datetime, datetime] | None
              ) -> tuple[Story, Stage | None, str]:
        """The stages visited, oldest first, with their entry times."""
        rng = self.rng
        died_from = None
        dead_reason = ""
        if stage == Stage.DEAD:
            died_from = self.pick(DIED_FROM_WEIGHTS)
            dead_reason = self.pick(DEAD_REASON_WEIGHTS)
            if dead_reason == DeadReason.TIMEOUT and died_from not in self.timeouts:
                dead_reason = DeadReason.NO_DECISION
            last = died_from
        else:
            last = stage
        path = list(ORDERED_STAGES[: ORDERED_STAGES.index(last) + 1])
        if stage in (Stage.PENDING, Stage.CLOSED) and rng.random() < 0.15:
            # Sales ops rejected the first purchase order; the rep fixed it.
            at = path.index(Stage.PENDING)
            path[at + 1:at + 1] = [Stage.FINALIZING, Stage.PENDING]
        if stage != Stage.DEAD and rng.random() < 0.12:
            # Parked once, reopened from the dead pool later.
            first_pass = ORDERED_STAGES[: rng.randint(1, 4)]
            path = [*first_pass, Stage.DEAD, *path]
        if stage == Stage.DEAD:
            path.append(Stage.DEAD)

        durations = [self.duration(visited, following, large, dead_reason)
                     for visited, following in zip(path, path[1:], strict=False)]
        if quarter is not None:
            final_entry = self.moment(*quarter)
        else:
            final_entry = self.now - self.current_stay(stage)
        durations, final_entry = self.fit_into_history(durations, final_entry, dead_reason)
        total = sum(durations, timedelta())
        story = Story(stages=path, end=self.now if quarter is None else final_entry)
        moment = final_entry - total
        for duration in durations:
            story.entered.append(moment)
            moment += duration
        story.entered.append(final_entry)
        return story, died_from, dead_reason

    def fit_into_history(self, durations: list[timedelta], final_entry: datetime,
                         dead_reason: str) -> tuple[list[timedelta], datetime]:
        """Squeeze a story that would start before the history window into it. A timeout
        death keeps its full last stay: the death comes later instead, if it must."""
        fixed = durations[-1] if dead_reason == DeadReason.TIMEOUT else timedelta()
        squeezable = durations[:-1] if fixed else durations
        earliest_end = self.history_start + fixed + timedelta(days=1)
        if final_entry < earliest_end:
            final_entry = min(earliest_end, self.now)
        room = final_entry - fixed - self.history_start
        total = sum(squeezable, timedelta())
        if total > room:
            squeezable = [duration * (room * 0.95 / total) for duration in squeezable]
        return [*squeezable, fixed] if fixed else squeezable, final_entry

    def duration(self, stage: Stage, following: Stage, large: bool,
                 dead_reason: str) -> timedelta:
        """How long a visit lasted, within the stage's timeout."""
        if stage == Stage.DEAD:
            return self.days(20, 150)
        if stage == Stage.PENDING:
            return self.days(0.2, 3)
        if stage == Stage.FINALIZING and following == Stage.PENDING and self.rng.random() < 0.1:
            return self.days(0.5, 2)
        if following == Stage.DEAD and dead_reason == DeadReason.TIMEOUT:
            return timedelta(days=self.timeouts[stage])
        timeout = self.timeouts.get(stage) or 40
        high = timeout * (0.9 if large else 0.5)
        return self.days(0.3, high)

    def current_stay(self, stage: Stage) -> timedelta:
        """How long an open opportunity has been in its stage, some of them close to their
        deadline (it is at least a day away: none is overdue when the demo starts)."""
        if stage == Stage.PENDING:
            return self.days(0, 3)
        timeout = self.timeouts.get(stage)
        if timeout is None:
            return self.days(0, 60)
        if self.rng.random() < 0.2:
            return max(timedelta(days=timeout) - self.days(1.2, 5), timedelta())
        return self.days(0, max(timeout - 5, 1))

    # --- the checklist: passed gates hold, the working stage is partly done ---

    def fill_checklist(self, opportunity: Opportunity, contacts: list[Contact], story: Story,
                       working_stage: Stage, partial_stay: tuple[datetime, datetime]
                       ) -> tuple[dict[str, CriterionTick], list[CommitteeMember]]:
        """Ticks, champion and committee matching the story: every gate passed holds, the
        working stage is partly done. Returns the ticks by criterion, and the committee."""
        rng = self.rng
        passed = story.first_forward_stays()
        ticks: dict[str, CriterionTick] = {}
        for stage, stay in passed.items():
            for criterion in PROCESS[stage].exit_criteria:
                if criterion.kind == CriterionKind.TICKED:
                    ticks[criterion.key] = self.tick(opportunity, criterion, stay)
        working_criteria = [criterion for criterion in PROCESS[working_stage].exit_criteria
                            if criterion.kind == CriterionKind.TICKED]
        if working_criteria and working_stage not in passed:
            done = len(working_criteria) if rng.random() < 0.15 \
                else rng.randint(0, len(working_criteria) - 1)
            for criterion in rng.sample(working_criteria, done):
                ticks[criterion.key] = self.tick(opportunity, criterion, partial_stay)

        owner = opportunity.owner
        members: list[CommitteeMember] = []
        if Stage.VALIDATING in passed or working_stage == Stage.VALIDATING:
            in_validating = passed.get(Stage.VALIDATING, partial_stay)
            complete = Stage.VALIDATING in passed
            if complete or rng.random() < 0.6:
                opportunity.champion = rng.choice(contacts)
                if complete or rng.random() < 0.6:
                    opportunity.champion_confirmed_at = self.moment(*in_validating)
                    opportunity.champion_confirmed_by = owner
            if complete or rng.random() < 0.5:
                size = rng.randint(1, min(4, len(contacts)))
                for contact in rng.sample(contacts, size):
                    members.append(CommitteeMember(
                        opportunity=opportunity, contact=contact,
                        added_at=self.moment(*in_validating), added_by=owner,
                    ))
        if Stage.CONFIRMING in passed or working_stage == Stage.CONFIRMING:
            in_confirming = passed.get(Stage.CONFIRMING, partial_stay)
            confirmed = members if Stage.CONFIRMING in passed else \
                rng.sample(members, rng.randint(0, len(members)))
            for member in confirmed:
                member.confirmed_on = timezone.localdate(self.moment(*in_confirming))
                member.confirmed_by = owner
        self.committee.extend(members)
        self.ticks.extend(ticks.values())
        return ticks, members

    def tick(self, opportunity: Opportunity, criterion, stay: tuple[datetime, datetime]
             ) -> CriterionTick:
        not_required = criterion.may_be_not_required and self.rng.random() < 0.3
        return CriterionTick(
            opportunity=opportunity, criterion=criterion.key,
            state=CriterionTick.State.NOT_REQUIRED if not_required
            else CriterionTick.State.MET,
            note=NOT_REQUIRED_NOTE if not_required else self.rng.choice(TICK_NOTES),
            ticked_at=self.moment(*stay), ticked_by=opportunity.owner,
        )

    # --- history ---

    def record_moves(self, opportunity: Opportunity, story: Story, dead_reason: str,
                     ticks: dict[str, CriterionTick], members: list[CommitteeMember]) -> int:
        """One StageChange per move of the story; returns how many."""
        owner = opportunity.owner
        moves = list(zip(story.stages, story.stages[1:], story.entered[1:], strict=False))
        for number, (source, target, at) in enumerate(moves):
            is_last = number == len(moves) - 1
            change = StageChange(
                opportunity=opportunity, from_stage=source, to_stage=target, changed_at=at,
                changed_by=owner, via=Via.SEED,
            )
            if target == next_stage(source):
                change.checklist = self.passed_snapshot(source, ticks)
                if source == Stage.IDENTIFYING:
                    change.handed_to = owner
                if source == Stage.PENDING:
                    change.changed_by = self.sales_ops  # only sales ops approve
            elif target == Stage.DEAD:
                final = is_last  # an earlier death is the one it was reopened from
                reason = DeadReason(dead_reason) if final else DeadReason.NO_DECISION
                change.dead_reason = reason
                change.reason = opportunity.dead_note if final else \
                    self.rng.choice(DEAD_NOTES[reason])
                change.checklist = (
                    self.working_snapshot(source, ticks, opportunity, members) if final
                    else self.working_snapshot(source, {}, None, [])
                )
                if reason == DeadReason.TIMEOUT:
                    change.changed_by = None  # the timeout sweep
            elif source == Stage.DEAD:
                change.reason = self.rng.choice(REOPEN_REASONS)
                change.checklist = {"criteria": {}}
            else:  # pending back to finalizing: sales ops rejected the order
                change.reason = self.rng.choice(REJECT_REASONS)
                change.changed_by = self.sales_ops
                change.checklist = {"criteria": {}}
            self.stage_changes.append(change)
        return len(moves)

    def passed_snapshot(self, stage: Stage, ticks: dict[str, CriterionTick]) -> dict:
        """The compact checklist of a stage left forward: every criterion met. Shared by
        every row with the same not-required marks, so it is built once."""
        states = tuple(
            ticks[criterion.key].state if criterion.key in ticks else None
            for criterion in PROCESS[stage].exit_criteria
        )
        key = (stage, states)
        if key not in self.snapshots:
            self.snapshots[key] = {"criteria": {
                criterion.key: {"met": True, "state": state}
                for criterion, state in zip(PROCESS[stage].exit_criteria, states, strict=True)
            }}
        return self.snapshots[key]

    def working_snapshot(self, stage: Stage, ticks: dict[str, CriterionTick],
                         opportunity: Opportunity | None, members: list[CommitteeMember]
                         ) -> dict:
        """The compact checklist of a stage left without passing its gate."""
        derived = {
            "validating.champion_confirmed":
                opportunity is not None and opportunity.champion_confirmed_at is not None,
            "validating.committee_identified": bool(members),
            "confirming.committee_preferred_vendor":
                bool(members) and all(member.confirmed_on for member in members),
        }
        criteria = {}
        for criterion in PROCESS[stage].exit_criteria:
            tick = ticks.get(criterion.key)
            met = derived[criterion.key] if criterion.kind == CriterionKind.DERIVED \
                else tick is not None
            criteria[criterion.key] = {"met": met, "state": tick.state if tick else None}
        return {"criteria": criteria}

    def record_field_changes(self, opportunity: Opportunity, story: Story) -> int:
        """Some amounts and close dates changed along the way; returns how many rows."""
        rng = self.rng
        owner = opportunity.owner
        start, end = story.entered[0], story.end
        entered = story.entered[-1]
        opportunity.amount_at_stage_entry = opportunity.amount
        count = 0
        if rng.random() < 0.25:
            grew_in_stage = opportunity.stage in self.timeouts and rng.random() < 0.3
            factor = 0.5 if grew_in_stage else rng.uniform(0.6, 1.4)
            old = money(float(opportunity.amount) * factor)
            at = self.moment(entered, end) if grew_in_stage else self.moment(start, end)
            if at >= entered:
                # The amount changed while in the current stage: it entered with the old one.
                opportunity.amount_at_stage_entry = old
            self.field_changes.append(FieldChange(
                opportunity=opportunity, field="amount", old_value=str(old),
                new_value=str(opportunity.amount), changed_at=at, changed_by=owner,
                via=Via.SEED,
            ))
            count += 1
        if rng.random() < 0.2:
            new = opportunity.expected_close_date
            old = new - timedelta(days=rng.randint(14, 60))  # the usual: it slipped
            self.field_changes.append(FieldChange(
                opportunity=opportunity, field="expected_close_date",
                old_value=old.isoformat(), new_value=new.isoformat(),
                changed_at=self.moment(start, end), changed_by=owner, via=Via.SEED,
            ))
            count += 1
        return count

    # --- writing ---

    def insert(self) -> None:
        """Opportunities first (their keys come back), then every row that points to one."""
        Opportunity.objects.bulk_create(self.opportunities, batch_size=BATCH_SIZE)
        for rows in (self.committee, self.ticks, self.stage_changes, self.field_changes):
            if rows:
                type(rows[0]).objects.bulk_create(rows, batch_size=BATCH_SIZE)

    def counts(self) -> dict[str, int]:
        return {
            "opportunities": len(self.opportunities),
            "stage_changes": len(self.stage_changes),
            "criterion_ticks": len(self.ticks),
            "committee_members": len(self.committee),
            "field_changes": len(self.field_changes),
        }


def seed_demo(opportunities: int, seed: int) -> dict[str, int]:
    """Load the demo users and `opportunities` opportunities; returns the row counts."""
    with transaction.atomic():
        users = ensure_demo_users()
        ensure_exchange_rates(users["sofia"])
        data = DemoData(random.Random(seed), users)
        data.create_opportunities(opportunities)
    return data.counts()


class Command(BaseCommand):
    help = _(
        "Load demo data: a user for every role, accounts with contacts, and opportunities "
        "in every stage with a history over the last four fiscal quarters."
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
