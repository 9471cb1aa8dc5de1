"""Every view, every role, arbitrary input: never a server error, and a refusal writes
nothing.

The views are read from the URL configuration, so a new one is covered the day it is
added. Each request runs in a savepoint rolled back afterwards: every example starts
from the same world, and hypothesis can shrink what it finds.
"""

import os
import re
from dataclasses import dataclass

import pytest
from django import forms
from django.contrib import admin
from django.db import connection, transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crm.forms
import forecasting.call_forms
import forecasting.forms
import pipeline.forms
from crm.models import (
    Account,
    Contact,
    ContactErasure,
    ExchangeRate,
    Notification,
    Team,
    User,
)
from crm.tokens import ApiToken
from forecasting.models import ForecastCall, Quota, Snapshot, SnapshotRow, Target
from pipeline.models import (
    Activity,
    ActivityRule,
    ClosePlan,
    ClosePlanEvent,
    ClosePlanStep,
    CommitteeMember,
    CriterionTick,
    DeadlineExtension,
    FieldChange,
    HandoffTask,
    Offer,
    OfferLine,
    Opportunity,
    PurchaseOrder,
    ShareLink,
    StageChange,
    StageTimeout,
)
from pipeline.process import CRITERIA, DeadReason, Stage
from tests.factories import (
    ContactFactory,
    ExchangeRateFactory,
    OpportunityFactory,
    UserFactory,
    advance,
    make_cast,
    plan_call,
    satisfy_gate,
)

pytestmark = pytest.mark.django_db

WRITTEN = [Opportunity, StageChange, FieldChange, CriterionTick, CommitteeMember,
           DeadlineExtension, StageTimeout, Notification, Account, Contact, ExchangeRate,
           Team, User, Target, Quota, Offer, OfferLine, PurchaseOrder, HandoffTask, ClosePlan,
           ClosePlanStep, ShareLink, ClosePlanEvent, ForecastCall, Snapshot, SnapshotRow,
           Activity, ActivityRule, ContactErasure, ApiToken]


def app_routes() -> list[str]:
    """Every route of the app outside the admin, e.g. "opportunities/<int:pk>/tick/"."""

    def walk(patterns, prefix: str):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                if not route.startswith("admin/"):
                    yield from walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                yield route

    return sorted(set(walk(get_resolver().url_patterns, "")))


def admin_routes() -> list[str]:
    """The admin's lists (search, filters, ordering) and change forms of every model."""
    routes = []
    for model in admin.site._registry:
        base = f"admin/{model._meta.app_label}/{model._meta.model_name}/"
        routes += [base, base + "add/", base + "<int:pk>/change/"]
    return routes


def field_names() -> list[str]:
    """The name of every field of every form of the app, and the parameters views read."""
    names = {"via", "filters", "retry_target", "after", "language", "next", "o", "p", "e",
             "_save", "username", "password", "loaded_version", "stage__exact", "apply",
             "action", "_selected_action", "index", "changed_at__year", "rep", "team",
             "since", "quarter"}
    for module in (pipeline.forms, crm.forms, forecasting.forms, forecasting.call_forms):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, forms.BaseForm):
                names |= set(value.base_fields)
                names |= set(getattr(getattr(value, "_meta", None), "fields", None) or ())
    names |= {"owner"}  # added per request for managers
    return sorted(names)


@dataclass
class World:
    sessions: dict[str, str | None]  # role -> session key; None: not signed in
    ids: dict[str, list[int]]  # first part of a route -> ids of its objects


@pytest.fixture
def world(client) -> World:
    cast = make_cast()
    people = {
        "rep": cast.rep, "colleague": cast.colleague, "manager": cast.manager,
        "bdr": cast.bdr, "sales_ops": cast.sales_ops, "other_manager": cast.other_manager,
        "no_role": UserFactory(), "admin": UserFactory(is_superuser=True, is_staff=True),
    }
    for person in ("manager", "sales_ops", "rep"):
        User.objects.filter(pk=people[person].pk).update(is_staff=True)
    ExchangeRateFactory()
    opportunities = [OpportunityFactory(owner=cast.bdr), OpportunityFactory(owner=cast.rep)]
    satisfy_gate(opportunities[1])
    opportunities.append(advance(OpportunityFactory(owner=cast.rep), Stage.CONFIRMING))
    pending = advance(OpportunityFactory(owner=cast.rep), Stage.PENDING)
    opportunities.append(pending)
    dead = OpportunityFactory(owner=cast.colleague)
    dead.move_to(Stage.DEAD, by=cast.manager, via="page", reason="No budget",
                 dead_reason=DeadReason.NO_BUDGET)
    opportunities.append(dead)
    opportunities.append(OpportunityFactory())  # another team's
    for kind in ("meeting", "call"):  # to mark done, cancel, or download
        plan_call(opportunities[1], by=cast.rep, kind=kind)
    archived = ContactFactory(account=opportunities[1].account)
    archived.archived_at = archived.account.created_at
    archived.save()
    Notification.send(cast.rep, "Moved", "It moved", f"/opportunities/{pending.pk}/")
    sessions = {"anonymous": None}
    for role, person in people.items():
        browser = Client()
        browser.force_login(person)
        sessions[role] = browser.cookies["sessionid"].value
    return World(sessions=sessions, ids={
        "opportunities": [o.pk for o in opportunities],
        "accounts": list(Account.objects.values_list("pk", flat=True)),
        "contacts": list(Contact.objects.values_list("pk", flat=True)),
        "notifications": list(Notification.objects.values_list("pk", flat=True)),
        "users": list(User.objects.values_list("pk", flat=True)),
        "teams": list(Team.objects.values_list("pk", flat=True)),
    })


ROUTES = app_routes() + admin_routes()
# The API answers a session's requests with 401 whatever they hold; tests/test_api_schema.py
# sweeps it with each role's token. Here it is left to the random test below, which draws
# from every route at a fixed cost, instead of adding a fifth to the sweep's time.
SWEPT = [route for route in ROUTES if not route.startswith("api/")]
NAMES = field_names()
REAL_VALUES = [
    *Stage.values, *CRITERIA, *DeadReason.values, "true", "on", "1", "0", "-1", "",
    "2027-03-31", "9999-12-31", "0000-01-01", "2027-Q1", "0000-Q1", "9999-Q4", "EUR",
    "USD", "XYZ", "eur", "new_business", "webinar", "board", "mine", "team", "all", "de",
    "en", "?quarter=9999-Q4", "?q=%00", "2026-12-01/000000000001", "abc/def", "1e3",
    "1.5", "NaN", "Infinity", "99999999999999999999", "2147483648", "9999", "x" * 3000,
    "\x00", "a\r\nb",
]
printable = st.characters(exclude_categories=("Cs",))  # what a browser can encode
values = st.one_of(
    st.sampled_from(REAL_VALUES),
    st.text(printable, max_size=40),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats().map(str),
    st.text("0123456789-Q/:.e+ ", max_size=14),
)


def route_to_path(route: str, draw, world: World) -> str:
    """Fill a route's parameters with ids of real objects, mostly, or with junk."""
    kind = route.split("/")[0] if not route.startswith("admin/") else route.split("/")[2] + "s"
    known = world.ids.get(kind) or world.ids["users"]

    def fill(match: re.Match) -> str:
        if match.group(1) == "int":
            return str(draw(st.one_of(st.sampled_from(known), st.integers(0, 2**63 - 1))))
        return draw(st.one_of(st.sampled_from(Stage.values),
                              st.text(st.characters(exclude_categories=("Cs",),
                                                    exclude_characters="/?#%"),
                                      min_size=1, max_size=12)))

    return "/" + re.sub(r"<(\w+):\w+>", fill, route)


def state() -> dict | tuple:
    """Every row of every table a view may write, to compare before and after a request.

    On PostgreSQL the server renders each table as one text in a single query: reading
    the rows through the ORM took three quarters of this file's time.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(STATE_SQL)
            return cursor.fetchone()
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in WRITTEN}


STATE_SQL = "SELECT " + ", ".join(
    f"(SELECT string_agg(t::text, '|' ORDER BY t.{model._meta.pk.column}) "
    f"FROM {model._meta.db_table} t)"
    for model in WRITTEN
)


def send(world: World, role: str, method: str, path: str, data: dict, htmx: bool):
    browser = Client()
    if world.sessions[role]:
        browser.cookies["sessionid"] = world.sessions[role]
    headers = {"HX-Request": "true"} if htmx else {}
    if method == "GET":
        return browser.get(path, data, headers=headers)
    return browser.post(path, data, headers=headers)


def assert_answered_without_error_or_writes(world, role, method, path, data, htmx):
    with transaction.atomic():
        before = state()
        response = send(world, role, method, path, data, htmx)
        assert response.status_code < 500, (role, method, path, data)
        if response.status_code >= 400:
            assert state() == before, (
                f"{role} {method} {path} {data} answered {response.status_code} "
                "but wrote")
        transaction.set_rollback(True)


ROLES = ["rep", "colleague", "manager", "bdr", "sales_ops", "other_manager", "no_role",
         "admin", "anonymous"]


@pytest.mark.parametrize("role", ROLES)
def test_every_view_answers_empty_and_junk_input_without_a_server_error(world, role):
    """Each view once with nothing and once with every field given twice, junk and a
    number: the sweep that makes sure no view is left out."""
    junk = {name: ["\u202e<script>\r\n", "1"] for name in NAMES}
    for route in SWEPT:
        path = "/" + re.sub(r"<int:\w+>", str(world.ids["opportunities"][1]),
                            re.sub(r"<str:\w+>", "discovering", route))
        for method in ("GET", "POST"):
            for data in ({}, junk):
                assert_answered_without_error_or_writes(world, role, method, path, data,
                                                        htmx=False)


# FUZZ_EXAMPLES=20000 for a longer hunt than CI's.
@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "600")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_arbitrary_input_to_every_view_gets_no_server_error_and_a_refusal_writes_nothing(
        world, data):
    role = data.draw(st.sampled_from(ROLES), label="role")
    route = data.draw(st.sampled_from(ROUTES), label="route")
    path = route_to_path(route, data.draw, world)
    method = data.draw(st.sampled_from(["GET", "POST"]), label="method")
    names = data.draw(st.lists(st.sampled_from(NAMES), max_size=8, unique=True))
    fields = {name: data.draw(st.lists(values, min_size=1, max_size=3), label=name)
              for name in names}
    htmx = data.draw(st.booleans(), label="htmx")
    assert_answered_without_error_or_writes(world, role, method, path, fields, htmx)
