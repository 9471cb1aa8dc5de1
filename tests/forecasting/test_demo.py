"""`manage.py seed_forecast` after `seed_demo`: the demo manager finds every forecast
figure filled in."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.http import HttpRequest

from pipeline.management.commands.seed_demo import DEMO_PASSWORD

SMALL = 60


def seed(**options) -> str:
    call_command("seed_demo", stdout=StringIO(), **options)
    output = StringIO()
    call_command("seed_forecast", stdout=output)
    return output.getvalue()


@pytest.fixture
def demo_manager(client):
    """The demo at its default size, as `make run` loads it: calibration needs as many
    decided opportunities per stage as a smaller one does not have."""
    output = seed()
    assert output.startswith("Loaded 18 quotas, ")  # three reps, six quarters each
    # how many calls depends on how many weeks of this quarter are over
    assert output.endswith(" 8 weekly snapshots and 2 changes since the latest one.\n")
    # django-axes watches every login and needs the request it came with.
    assert client.login(request=HttpRequest(), username="max", password=DEMO_PASSWORD)
    return client


@pytest.mark.django_db
def test_the_demo_manager_sees_every_forecast_figure_filled_in(demo_manager):
    page = demo_manager.get("/forecast/").context_data
    assert page["target"] > page["total"].closed
    assert page["gap"] > 0
    assert page["coverage"] is not None
    assert page["history"].ratio is not None  # not "too little history"
    assert {row.quota is not None for row in page["rows"]} == {True}

    funnel = demo_manager.get("/forecast/funnel/").context_data["rows"]
    assert any(row.share is not None and row.median_days is not None for row in funnel)
    calibration = demo_manager.get("/forecast/calibration/").context_data["rows"]
    assert any(row.total.share is not None for row in calibration)  # enough decided

    calls = demo_manager.get("/forecast/calls/").context_data
    assert {call.kind for call in calls["history"]} == {"rep", "adjustment", "team"}

    accuracy = demo_manager.get("/forecast/accuracy/").context_data
    assert accuracy["ended"]
    assert {row.kind for row in accuracy["rows"]} == {"rep", "adjustment", "team"}
    for row in accuracy["rows"]:  # each caller's first, mid-quarter and last call
        assert None not in [percent for _label, _call, percent in row.moments]

    changes = demo_manager.get("/forecast/changes/").context_data["changes"]
    # at least the two changes seed_forecast made since the latest snapshot
    assert changes.lists["amount_changed"]
    assert changes.lists["pushed_out"]


@pytest.mark.django_db
def test_seed_forecast_if_empty_leaves_loaded_forecast_data_alone():
    seed(opportunities=SMALL)
    output = StringIO()
    call_command("seed_forecast", if_empty=True, stdout=output)
    assert output.getvalue() == "Forecast data exists already: nothing loaded.\n"
