"""Schemathesis against the API's own schema, once per role with that role's token: no
input, however malformed, gets a 500, and every endpoint answers at least one 2xx in the
run (except where the role may never succeed, which must then answer 403).

The schema is the one served at /api/schema/, with the ids of this test's data put in as
the examples of path parameters and request bodies, so the examples phase reaches real
records; the generated phases then send both fitting and malformed input."""

import copy
import re
from collections import defaultdict
from contextlib import contextmanager
from datetime import timedelta

import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.specs.openapi.checks import response_schema_conformance

from crm.tokens import ApiToken
from pipeline.api_schemas import TICKED
from pipeline.models import Terms, Via
from pipeline.process import Stage
from tests.factories import (
    PDF,
    ContactFactory,
    OpportunityFactory,
    advance,
    make_cast,
    plan_call,
    record_order,
)

# Generated cases per operation and mode: the run stays well under a minute for all roles.
CASES = 4

# What the app's rules never let a role do: these must be refused (403), not succeed.
CHANGES_A_DEAL = {
    "PUT /api/opportunities/{opportunity_id}/champion",
    "POST /api/opportunities/{opportunity_id}/committee",
    "POST /api/opportunities/{opportunity_id}/committee/{contact_id}/preferred-vendor",
    "POST /api/opportunities/{opportunity_id}/committee/{contact_id}/remove",
    "PUT /api/opportunities/{opportunity_id}/offer",
    "POST /api/opportunities/{opportunity_id}/offer/lines",
    "POST /api/opportunities/{opportunity_id}/offer/lines/{line_id}/remove",
    "POST /api/opportunities/{opportunity_id}/purchase-orders",
    "PUT /api/opportunities/{opportunity_id}/close-plan",
    "POST /api/opportunities/{opportunity_id}/close-plan/steps",
    "PATCH /api/opportunities/{opportunity_id}/close-plan/steps/{step_id}",
    "POST /api/opportunities/{opportunity_id}/close-plan/steps/{step_id}/remove",
    "POST /api/opportunities/{opportunity_id}/close-plan/accept",
    "POST /api/opportunities/{opportunity_id}/close-plan/links",
    "POST /api/opportunities/{opportunity_id}/close-plan/links/{link_id}/revoke",
}
REVIEWS = {
    "POST /api/opportunities/{opportunity_id}/purchase-orders/approve",
    "POST /api/opportunities/{opportunity_id}/purchase-orders/reject",
}
NEVER = {
    "rep": REVIEWS,
    "manager": REVIEWS,
    "sales_ops": {
        "POST /api/opportunities", "PATCH /api/opportunities/{opportunity_id}",
        "POST /api/opportunities/{opportunity_id}/move",
        "POST /api/opportunities/{opportunity_id}/ticks",
        "POST /api/opportunities/{opportunity_id}/ticks/{criterion}/withdraw",
        "POST /api/opportunities/{opportunity_id}/activities",
        "POST /api/opportunities/{opportunity_id}/activities/{activity_id}/done",
        "POST /api/opportunities/{opportunity_id}/activities/{activity_id}/cancel",
        *CHANGES_A_DEAL,
    },
    "bdr": {"GET /api/forecast", *REVIEWS},
}
# What a role may do but never reaches in this run, answered with a 4xx other than 403:
# a BDR sees stage 1 and the dead pool only, and an order is recorded in Finalizing.
OUT_OF_REACH = {
    "bdr": {"POST /api/opportunities/{opportunity_id}/purchase-orders"},
}


@contextmanager
def in_process_requests():
    """Requests reach Django in this thread, inside the test's transaction: as the test
    client does, keep Django from closing the connection at the end of each."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def further_on(cast):
    """An opportunity in Finalizing with an accepted close plan, an offer and an order."""
    rich = advance(OpportunityFactory(owner=cast.rep), Stage.NEGOTIATING)
    today = timezone.localdate()
    rich.save_offer(by=cast.rep, service_start=today, service_end=today + timedelta(days=364),
                    payment_terms="30 days net", terms=Terms.OURS)
    rich.add_offer_line(by=cast.rep, description="Licences", quantity=10,
                        list_price=1000, discount_percent=0)
    advance(rich, Stage.FINALIZING)
    rich.reload()
    record_order(rich)
    rich.reload()
    return rich


def world(cast, role: str, rich) -> dict:
    """The records each path's examples name, for one role: an opportunity it works on,
    one it may kill, and `rich` to read a close plan, an offer and orders from."""
    user = getattr(cast, role)
    owner = cast.bdr if role == "bdr" else cast.rep
    worked = OpportunityFactory(owner=owner)
    later = timezone.now() + timedelta(days=3)
    planned = [plan_call(worked, by=owner, at=later + timedelta(hours=hour))
               for hour in (1, 2)]
    today = timezone.localdate()
    worked.save_offer(by=owner, service_start=today, service_end=today + timedelta(days=364),
                      payment_terms="30 days net")
    line = worked.add_offer_line(by=owner, description="Setup", quantity=1, list_price=500)
    contact = ContactFactory(account=worked.account)
    worked.save_close_plan(by=owner, target_signature_date=today + timedelta(days=60))
    steps = [worked.add_plan_step(by=owner, title=title, owner_contact=contact,
                                  due_date=today + timedelta(days=30))
             for title in ("Order signed", "Legal review")]
    link, _token = worked.share_close_plan(contact, by=owner)
    pending = {}
    if role == "sales_ops":  # one order to approve, one to reject
        pending = {decision: advance(OpportunityFactory(owner=cast.rep), Stage.PENDING)
                   for decision in ("approve", "reject")}
    return {
        "user": user, "worked": worked, "doomed": OpportunityFactory(owner=owner),
        "rich": rich, "done": planned[0], "cancel": planned[1], "line": line,
        "contact": contact, "pending": pending, "steps": steps,
        "link": link,
        "owner": cast.rep if role == "manager" else None,
    }


def on_which(path: str, method: str, data: dict):
    """The opportunity a path's examples name: one to read the later records from, one
    to kill, one pending order per decision, and the one worked on for the rest."""
    if path.endswith("/move"):
        return data["doomed"]
    if path.endswith(("/approve", "/reject")) and data["pending"]:
        return data["pending"][path.rsplit("/", 1)[-1]]
    if path.endswith(("/history", "/purchase-orders", "/approve", "/reject")):
        return data["rich"]
    if path.endswith(("/offer", "/close-plan")) and method == "get":
        return data["rich"]
    return data["worked"]


def with_examples(raw: dict, data: dict) -> dict:
    """The served schema with this run's ids as examples."""
    for path, methods in raw["paths"].items():
        for method, operation in methods.items():
            opportunity = on_which(path, method, data)
            values = {"opportunity_id": opportunity.pk,
                      "account_id": data["worked"].account_id,
                      "contact_id": data["contact"].pk, "line_id": data["line"].pk,
                      "step_id": data["steps"][path.endswith("/remove")].pk,
                      "link_id": data["link"].pk,
                      "activity_id": data["done" if path.endswith("/done") else "cancel"].pk,
                      "criterion": TICKED[0]}
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] in values:
                    parameter["example"] = values[parameter["name"]]
    schemas = raw["components"]["schemas"]
    schemas["OpportunityIn"]["properties"]["account"]["examples"] = [data["worked"].account_id]
    schemas["ContactIn"]["properties"]["account"]["examples"] = [data["worked"].account_id]
    for name in ("ChampionIn", "CommitteeIn", "ShareLinkIn"):
        schemas[name]["properties"]["contact"]["examples"] = [data["contact"].pk]
    schemas["PlanStepIn"]["properties"]["owner_contact"]["examples"] = [data["contact"].pk]
    order = raw["paths"]["/api/opportunities/{opportunity_id}/purchase-orders"]["post"]
    document = order["requestBody"]["content"]["multipart/form-data"]["schema"]
    document["properties"]["document"]["examples"] = [PDF.decode()]
    if data["owner"] is not None:
        owner = schemas["OpportunityIn"]["properties"]["owner"]
        owner["examples"] = [data["owner"].pk]
    return raw


def operations(schema):
    for result in schema.get_all_operations():
        yield result.ok()


def exercise(operation, token: str, statuses: dict) -> None:
    strategies = [
        *operation.get_strategies_from_examples(),
        operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE),
    ]
    label = f"{operation.method.upper()} {operation.path}"

    for strategy in strategies:
        @given(case=strategy)
        @settings(max_examples=CASES, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        def call(case):
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            statuses[label].add(response.status_code)
            assert response.status_code < 500, (label, case.as_curl_command(),
                                                response.text[:500])
            if 200 <= response.status_code < 300:
                case.validate_response(response, checks=[response_schema_conformance])

        call()


def run(raw: dict, data: dict) -> dict[str, set[int]]:
    """Each operation's status codes, called with the role's token."""
    _token, secret = ApiToken.issue(data["user"], "schemathesis")
    schema = schemathesis.openapi.from_dict(with_examples(copy.deepcopy(raw), data))
    statuses = defaultdict(set)
    with in_process_requests() as app:
        schema.app = app
        for operation in operations(schema):
            exercise(operation, secret, statuses)
    return statuses


def test_every_endpoint_refuses_bad_input_with_a_4xx_and_serves_every_role(db):
    """One test for the four roles: they share the opportunity that takes long to build."""
    raw = Client().get("/api/schema/").json()
    every = {f"{method.upper()} {path}" for path, methods in raw["paths"].items()
             for method in methods}
    cast = make_cast()
    rich = further_on(cast)
    for role in ("rep", "manager", "sales_ops", "bdr"):
        if role == "bdr":  # BDRs see the dead pool, not deals further on
            rich.move_to(Stage.DEAD, by=cast.manager, via=Via.PAGE, reason="Budget cut",
                         dead_reason="no_budget")
        statuses = run(raw, world(cast, role, rich))
        never = NEVER.get(role, set())
        assert set(statuses) == every, role
        without_success = {label for label, codes in statuses.items()
                           if not any(200 <= code < 300 for code in codes)}
        assert without_success == never | OUT_OF_REACH.get(role, set()), (
            role, {label: statuses[label] for label in without_success})
        assert all(403 in statuses[label] for label in never), (role, statuses)


def test_the_schema_is_openapi_3_and_the_docs_page_runs_only_our_own_static_scripts(client,
                                                                                     db):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and schema.json()["openapi"].startswith("3.")
    page = client.get("/api/docs/").content.decode()
    scripts = re.findall(r"<script([^>]*)>", page)
    assert scripts and all('src="/static/' in attributes or 'application/json' in attributes
                           for attributes in scripts)
    assert "http" not in " ".join(re.findall(r'(?:src|href)="([^"]*)"', page))
