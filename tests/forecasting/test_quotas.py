"""Quotas per rep and quarter, set by their manager; targets are their sums."""

from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from forecasting.models import Quota
from pipeline.models import ChangeForbidden
from tests.factories import BdrFactory, ManagerFactory, RepFactory, UserFactory
from tests.forecasting.conftest import figure

pytestmark = pytest.mark.django_db


def test_a_teams_target_is_its_reps_quotas_and_the_companys_its_teams(client, quarterly):
    client.force_login(quarterly.manager)
    assert figure(client.get("/forecast/").content.decode(), "target") == "100,000 EUR"
    client.force_login(UserFactory(is_superuser=True))
    assert figure(client.get("/forecast/").content.decode(), "target") == "100,999 EUR"
    assert figure(client.get(f"/forecast/?rep={quarterly.ben.pk}").content.decode(),
                  "target") == "40,000 EUR"


def test_a_manager_sets_the_quarters_quotas_of_their_reps(client, team):
    manager, anna, ben = team
    client.force_login(manager)
    quarter = "2027-Q2"

    page = client.get(f"/forecast/quotas/?quarter={quarter}").content.decode()
    assert f'data-rep-id="{anna.pk}"' in page and f'data-rep-id="{ben.pk}"' in page
    response = client.post("/forecast/quotas/", {
        "quarter": quarter, f"quota_{anna.pk}": "70000", f"quota_{ben.pk}": "30000.50"})

    assert response.status_code == 302
    assert sorted(Quota.objects.values_list("rep", "fiscal_year", "quarter", "amount",
                                            "set_by", "team")) == sorted([
        (anna.pk, 2027, 2, Decimal("70000.00"), manager.pk, manager.team_id),
        (ben.pk, 2027, 2, Decimal("30000.50"), manager.pk, manager.team_id)])
    page = client.get(response["Location"]).content.decode()
    assert "100,001 EUR" in page  # the team's target, rounded as shown


def test_a_refused_quota_changes_none_of_them(client, team):
    manager, anna, ben = team
    client.force_login(manager)
    response = client.post("/forecast/quotas/", {
        "quarter": "2027-Q2", f"quota_{anna.pk}": "70000", f"quota_{ben.pk}": "-1"})
    assert response.status_code == 400
    assert "Ensure this value is greater than or equal to 0." in response.content.decode()
    assert not Quota.objects.exists()


def test_only_the_reps_manager_sets_a_quota(client, team):
    manager, anna, ben = team
    other_manager = ManagerFactory()
    with pytest.raises(ChangeForbidden):
        Quota.set(rep=anna, fiscal_year=2027, quarter=1, amount=1, by=other_manager)
    with pytest.raises(ChangeForbidden):
        Quota.set(rep=anna, fiscal_year=2027, quarter=1, amount=1, by=ben)
    for user in (anna, BdrFactory(team=manager.team), UserFactory()):
        client.force_login(user)
        assert client.get("/forecast/quotas/").status_code == 403
        assert client.post("/forecast/quotas/", {
            "quarter": "2027-Q1", f"quota_{anna.pk}": "1"}).status_code == 403
    client.force_login(other_manager)
    response = client.post("/forecast/quotas/", {"quarter": "2027-Q1",
                                                 f"quota_{anna.pk}": "1"})
    assert f'data-rep-id="{anna.pk}"' not in response.content.decode()
    assert not Quota.objects.exists()


def test_the_former_targets_page_leads_to_the_quotas(client, team):
    client.force_login(team[0])
    response = client.get("/forecasting/targets/")
    assert (response.status_code, response["Location"]) == (302, "/forecast/quotas/")


# Serialized like the other transactional tests: a plain one's closing flush refills the
# content types, and the next serialized test's loading of them then collides.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_team_targets_become_their_reps_quotas_to_the_cent():
    executor = MigrationExecutor(connection)
    executor.migrate([("forecasting", "0001_initial")])
    old = executor.loader.project_state([("forecasting", "0001_initial")]).apps
    manager = ManagerFactory()
    reps = [RepFactory(team=manager.team) for _ in range(3)]
    RepFactory(team=manager.team, is_active=False)
    empty_team_manager = ManagerFactory()
    Target = old.get_model("forecasting", "Target")
    Target.objects.create(team_id=manager.team_id, fiscal_year=2026, quarter=3,
                          amount=Decimal("100000.00"), set_by_id=manager.pk)
    Target.objects.create(team_id=empty_team_manager.team_id, fiscal_year=2026, quarter=3,
                          amount=Decimal("5000.00"))

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert list(Quota.objects.order_by("rep").values_list("rep", "amount", "team")) == [
        (reps[0].pk, Decimal("33333.34"), manager.team_id),
        (reps[1].pk, Decimal("33333.33"), manager.team_id),
        (reps[2].pk, Decimal("33333.33"), manager.team_id)]
    assert Quota.objects.of_quarter(2026, 3).target() == Decimal("100000.00")
    assert not Quota.objects.filter(team=empty_team_manager.team).exists()
