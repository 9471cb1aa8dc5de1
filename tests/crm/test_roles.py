"""The role table of issue #2, action by action, through the real views and the admin.

| role      | sees                              | changes                                    |
|-----------|-----------------------------------|--------------------------------------------|
| rep       | the opportunities of their team   | their own                                  |
| bdr       | stage 1 of their team, dead pool  | stage 1 they own; reopen from the pool     |
| manager   | their team's                      | their team's; extensions; quotas           |
| sales_ops | all                               | order review, stage timeouts, exch. rates  |
"""

from decimal import Decimal

import pytest

from crm.models import ExchangeRate
from forecasting.models import Quota
from pipeline.models import Opportunity, StageTimeout, Via
from pipeline.process import DeadReason, Stage
from tests.factories import (
    BdrFactory,
    ManagerFactory,
    OpportunityFactory,
    RepFactory,
    SalesOpsFactory,
    TeamFactory,
    advance,
    satisfy_gate,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    """Team North (manager, two reps, a BDR), team South (one rep), and sales ops."""
    north, south = TeamFactory(name="North"), TeamFactory(name="South")
    people = {
        "manager": ManagerFactory(team=north),
        "rep": RepFactory(team=north),
        "teammate": RepFactory(team=north),
        "bdr": BdrFactory(team=north),
        "stranger": RepFactory(team=south),
        "sales_ops": SalesOpsFactory(),
    }
    for person in people.values():
        person.is_staff = True  # so the admin answers with the role's verdict, not a login
        person.save()
    own = OpportunityFactory(owner=people["rep"], name="own")
    advance(own, Stage.DISCOVERING)
    satisfy_gate(own)
    teammates = OpportunityFactory(owner=people["teammate"], name="teammates")
    advance(teammates, Stage.DISCOVERING)
    satisfy_gate(teammates)
    bdr_stage_1 = OpportunityFactory(owner=people["bdr"], name="bdr stage 1")
    satisfy_gate(bdr_stage_1)
    other_team = OpportunityFactory(owner=people["stranger"], name="other team")
    advance(other_team, Stage.DISCOVERING)
    dead = OpportunityFactory(owner=people["stranger"], name="dead")
    dead.move_to(Stage.DEAD, by=people["stranger"], via=Via.PAGE, reason="no budget this year",
                 dead_reason=DeadReason.NO_BUDGET)
    pending = OpportunityFactory(owner=people["rep"], name="pending")
    advance(pending, Stage.PENDING)
    opportunities = {o.name: o for o in Opportunity.objects.all()}
    return people, opportunities, {"north": north, "south": south}


def act(client, action, opportunities, teams):
    """Perform one action; return the HTTP status the user got."""
    o = opportunities
    if action.startswith("see "):
        return client.get(f"/opportunities/{o[action[4:]].pk}/").status_code
    if action.startswith("edit "):
        target = o[action[5:]]
        return client.post(f"/opportunities/{target.pk}/edit/", {
            "name": target.name, "type": target.type, "source": target.source,
            "amount": "12345.00", "currency": target.currency,
            "expected_close_date": target.expected_close_date.isoformat(),
            "version": target.version,
        }).status_code
    if action.startswith("advance "):
        target = o[action[8:]]
        extra = {}
        if target.stage == Stage.IDENTIFYING and not target.owner.is_rep:
            extra["account_executive"] = Opportunity.objects.get(name="own").owner_id
        following = {"identifying": "discovering", "discovering": "validating"}[target.stage]
        return client.post(f"/opportunities/{target.pk}/move/",
                           {"stage": following, "version": target.version, **extra}).status_code
    if action.startswith("tick "):
        target = o[action[5:]]
        return client.post(f"/opportunities/{target.pk}/tick/", {
            "criterion": "validating.champion_committed", "note": "call notes",
            "version": target.version,
        }).status_code
    if action.startswith("extend "):
        target = o[action[7:]]
        return client.post(f"/opportunities/{target.pk}/extend/", {
            "days": 10, "reason": "customer board meets next month", "version": target.version,
        }).status_code
    if action == "reopen dead":
        return client.post(f"/opportunities/{o['dead'].pk}/move/", {
            "stage": "identifying", "reason": "new budget", "version": o["dead"].version,
        }).status_code
    if action == "approve pending":
        return client.post(f"/opportunities/{o['pending'].pk}/review/approve/", {
            "checks": ["terms", "prices", "periods", "coverage"],
            "version": o["pending"].version}).status_code
    if action == "reject pending":
        return client.post(f"/opportunities/{o['pending'].pk}/review/reject/", {
            "checks": ["prices", "periods", "coverage"], "note": "customer terms attached",
            "version": o["pending"].version}).status_code
    if action == "kill pending":
        return client.post(f"/opportunities/{o['pending'].pk}/move/", {
            "stage": "dead", "version": o["pending"].version, "reason": "board said no",
            "dead_reason": "no_decision"}).status_code
    if action == "set quota":
        return client.post("/forecast/quotas/", {
            "quarter": "2027-Q1", f"quota_{o['own'].owner_id}": "500000",
        }).status_code
    if action == "change stage timeout":
        return client.post("/admin/pipeline/stagetimeout/add/",
                           {"stage": "discovering", "days": 20}).status_code
    if action == "change exchange rate":
        return client.post("/admin/crm/exchangerate/add/",
                           {"currency": "JPY", "rate": "0.0061"}).status_code
    raise AssertionError(action)


def happened(action, opportunities) -> bool:
    """Whether the action left its mark in the database."""
    def fresh(name):
        return Opportunity.objects.get(pk=opportunities[name].pk)

    verb, _space, name = action.partition(" ")
    if verb == "see":
        return True
    if verb == "edit":
        return fresh(name).amount == Decimal("12345.00")
    if verb == "advance":
        return fresh(name).stage != opportunities[name].stage
    if verb == "tick":
        return fresh(name).ticks.filter(criterion="validating.champion_committed").exists()
    if verb == "extend":
        return fresh(name).extensions.exists()
    if action == "reopen dead":
        return fresh("dead").stage == Stage.IDENTIFYING
    if action == "approve pending":
        return fresh("pending").stage == Stage.CLOSED
    if action == "reject pending":
        return fresh("pending").stage == Stage.FINALIZING
    if action == "kill pending":
        return fresh("pending").stage == Stage.DEAD
    if action == "set quota":
        return Quota.objects.exists()
    if action == "change stage timeout":
        return StageTimeout.objects.exists()
    if action == "change exchange rate":
        return ExchangeRate.objects.filter(currency="JPY").exists()
    raise AssertionError(action)


ALLOWED, FORBIDDEN, HIDDEN = "allowed", "forbidden (403)", "hidden (404)"

ROLE_TABLE = [
    # rep: sees the team's, changes their own
    ("rep", "see own", ALLOWED),
    ("rep", "see teammates", ALLOWED),
    ("rep", "see other team", HIDDEN),
    ("rep", "edit own", ALLOWED),
    ("rep", "edit teammates", FORBIDDEN),
    ("rep", "advance own", ALLOWED),
    ("rep", "advance teammates", FORBIDDEN),
    ("rep", "tick own", ALLOWED),
    ("rep", "tick teammates", FORBIDDEN),
    ("rep", "extend own", FORBIDDEN),
    ("rep", "approve pending", FORBIDDEN),
    ("rep", "reject pending", FORBIDDEN),
    ("rep", "kill pending", FORBIDDEN),
    ("rep", "set quota", FORBIDDEN),
    ("rep", "change stage timeout", FORBIDDEN),
    ("rep", "change exchange rate", FORBIDDEN),
    # bdr: stage 1 of the team and the dead pool; changes stage 1 they own, reopens
    ("bdr", "see bdr stage 1", ALLOWED),
    ("bdr", "see own", HIDDEN),
    ("bdr", "see dead", ALLOWED),
    ("bdr", "edit bdr stage 1", ALLOWED),
    ("bdr", "advance bdr stage 1", ALLOWED),
    ("bdr", "reopen dead", ALLOWED),
    ("bdr", "set quota", FORBIDDEN),
    ("bdr", "change stage timeout", FORBIDDEN),
    ("bdr", "change exchange rate", FORBIDDEN),
    # manager: the team's; extensions; quotas
    ("manager", "see teammates", ALLOWED),
    ("manager", "see other team", HIDDEN),
    ("manager", "edit teammates", ALLOWED),
    ("manager", "advance teammates", ALLOWED),
    ("manager", "tick teammates", ALLOWED),
    ("manager", "extend teammates", ALLOWED),
    ("manager", "kill pending", ALLOWED),
    ("manager", "approve pending", FORBIDDEN),
    ("manager", "reject pending", FORBIDDEN),
    ("manager", "set quota", ALLOWED),
    ("manager", "change stage timeout", FORBIDDEN),
    ("manager", "change exchange rate", FORBIDDEN),
    # sales ops: sees all; reviews orders; stage timeouts; exchange rates
    ("sales_ops", "see other team", ALLOWED),
    ("sales_ops", "see own", ALLOWED),
    ("sales_ops", "approve pending", ALLOWED),
    ("sales_ops", "reject pending", ALLOWED),
    ("sales_ops", "kill pending", FORBIDDEN),
    ("sales_ops", "edit own", FORBIDDEN),
    ("sales_ops", "advance own", FORBIDDEN),
    ("sales_ops", "extend own", FORBIDDEN),
    ("sales_ops", "set quota", FORBIDDEN),
    ("sales_ops", "change stage timeout", ALLOWED),
    ("sales_ops", "change exchange rate", ALLOWED),
]


@pytest.mark.parametrize(("role", "action", "verdict"), ROLE_TABLE,
                         ids=[f"{r}: {a}" for r, a, _v in ROLE_TABLE])
def test_role_table(client, world, role, action, verdict):
    people, opportunities, teams = world
    client.force_login(people[role])
    status = act(client, action, opportunities, teams)
    if verdict == ALLOWED:
        assert status in (200, 302), status
        assert happened(action, opportunities)
    elif verdict == FORBIDDEN:
        assert status == 403
        assert action.startswith("see") or not happened(action, opportunities)
    else:
        assert status == 404
