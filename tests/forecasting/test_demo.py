"""`manage.py seed_forecast` after `seed_demo`: the demo manager finds every forecast
figure filled in."""

from io import StringIO

import pytest
from django.core.management import call_command

from pipeline.management.commands.seed_demo import DEMO_PASSWORD

SMALL = 60


@pytest.fixture
def demo_manager(client):
    call_command("seed_demo", opportunities=SMALL, stdout=StringIO())
    output = StringIO()
    call_command("seed_forecast", stdout=output)
    assert "18 quotas" in output.getvalue()  # three reps, six quarters
    assert client.login(username="max", password=DEMO_PASSWORD)
    return client


@pytest.mark.django_db
def test_the_demo_manager_sees_every_forecast_figure_filled_in(demo_manager):
    page = demo_manager.get("/forecast/").context_data
    assert page["target"] > page["total"].closed
    assert page["gap"] > 0
    assert page["coverage"] is not None
    assert page["history"].ratio is not None  # not "too little history"
    assert {row.quota is not None for row in page["rows"]} == {True}

    funnel = demo_manager.get("/forecast/funnel/").context_data
    assert funnel["rows"]
    calibration = demo_manager.get("/forecast/calibration/").context_data
    assert calibration["rows"]

    calls = demo_manager.get("/forecast/calls/").context_data
    assert {call.kind for call in calls["history"]} == {"rep", "adjustment", "team"}

    accuracy = demo_manager.get("/forecast/accuracy/").context_data
    assert accuracy["ended"]
    assert {row.kind for row in accuracy["rows"]} == {"rep", "adjustment", "team"}
    for row in accuracy["rows"]:  # each caller's first, mid-quarter and last call
        assert None not in [percent for _label, _call, percent in row.moments]

    changes = demo_manager.get("/forecast/changes/").context_data["changes"]
    assert len(changes.lists["amount_changed"]) == 1
    assert len(changes.lists["pushed_out"]) == 1


@pytest.mark.django_db
def test_seed_forecast_if_empty_leaves_loaded_forecast_data_alone(demo_manager):
    output = StringIO()
    call_command("seed_forecast", if_empty=True, stdout=output)
    assert output.getvalue() == "Forecast data exists already: nothing loaded.\n"
