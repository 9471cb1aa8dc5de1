"""Calibration: of the opportunities that stood in a stage during four quarters and were
decided since, the share won, beside the process's probability, and by days spent in the
stage; too little history is said, not guessed (fixture: stage_stories.py)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from forecasting import calibration
from tests.factories import BdrFactory
from tests.forecasting.stage_stories import S, stage_stories, story
from tests.forecasting.test_funnel import table

pytestmark = pytest.mark.django_db

# Four quarters ending with 2026-Q2: 2025-07-01 up to 2026-07-01.
WINDOW = {"quarter": "2026-Q2"}


@pytest.fixture(autouse=True)
def calendar_quarters(settings):
    settings.FISCAL_YEAR_START_MONTH = 1
    settings.TIME_ZONE = "UTC"


@pytest.fixture
def cast():
    return stage_stories()


@pytest.fixture
def three_are_enough(monkeypatch):
    """The fixture is small: three decided opportunities make a share here."""
    monkeypatch.setattr(calibration, "MINIMUM_SAMPLE", 3)


def test_with_too_little_history_no_share_is_shown(client, cast):
    client.force_login(cast.manager)

    page = client.get("/forecast/calibration/", WINDOW).content.decode()

    assert "from 2025-Q3 to 2026-Q2" in page
    # Stage, probability, won (or why not), still open.
    assert table(page, "calibration")["identifying"] == [
        "Identifying Opportunity", "10 %", "Too little history: 4 decided, 20 needed", "2"]
    assert table(page, "calibration")["pending"] == [
        "Pending (sales-ops review)", "95 %", "Too little history: 1 decided, 20 needed", "0"]
    assert " % (" not in page.split('data-table="calibration"')[1]


def test_the_share_won_per_stage_beside_the_process(client, cast, three_are_enough):
    client.force_login(cast.manager)

    page = client.get("/forecast/calibration/", WINDOW).content.decode()

    assert table(page, "calibration") == {
        # Acme and Echo won, Beta and Foxtrot died; Gamma (reopened) and Delta are open.
        "identifying": ["Identifying Opportunity", "10 %", "50 % (2 of 4 won)", "2"],
        "discovering": ["Discovering Problems, Impacts & Goals", "25 %", "50 % (2 of 4 won)",
                        "1"],
        "validating": ["Validating Benefits & Values", "40 %", "67 % (2 of 3 won)", "0"],
        "confirming": ["Confirming Value with Power", "60 %",
                       "Too little history: 2 decided, 3 needed", "0"],
        # Acme's stay from 06-03 counts: it overlaps the window.
        "negotiating": ["Negotiating & Mutual Plan", "75 %",
                        "Too little history: 2 decided, 3 needed", "0"],
        # Acme reached Finalizing after the window: only Echo.
        "finalizing": ["Finalizing Closure", "90 %",
                       "Too little history: 1 decided, 3 needed", "0"],
        "pending": ["Pending (sales-ops review)", "95 %",
                    "Too little history: 1 decided, 3 needed", "0"],
    }


def test_the_share_won_by_days_spent_in_the_stage(client, cast, three_are_enough):
    client.force_login(cast.manager)

    page = client.get("/forecast/calibration/", WINDOW).content.decode()

    rows = table(page, "calibration_days")
    few = "Too little history: {} decided, 3 needed".format
    # 0-30, 31-60, 61-90 and over 90 days.
    assert rows["identifying"][2:] == ["50 % (2 of 4 won)", few(0), few(0), few(0)]
    # Acme 10 days; Beta 40 (30 + 10, the undone minute not splitting it), Echo 60
    # (won) and Foxtrot 45.
    assert rows["discovering"][2:] == [few(1), "33 % (1 of 3 won)", few(0), few(0)]


def test_the_calibration_tables_download_as_csv(client, cast, three_are_enough):
    client.force_login(cast.manager)

    by_stage = client.get("/forecast/calibration/",
                          {**WINDOW, "format": "csv", "table": "calibration"})
    by_days = client.get("/forecast/calibration/",
                         {**WINDOW, "format": "csv", "table": "calibration_days"})

    assert by_stage["Content-Disposition"] == (
        'attachment; filename="calibration-2026-Q2.csv"')
    assert by_stage.content.decode().splitlines() == [
        "Stage,Probability (%),Won,Decided,Still open,Won share (%),Note",
        "Identifying Opportunity,10,2,4,2,50,",
        '"Discovering Problems, Impacts & Goals",25,2,4,1,50,',
        "Validating Benefits & Values,40,2,3,0,67,",
        "Confirming Value with Power,60,2,2,0,,too little history",
        "Negotiating & Mutual Plan,75,2,2,0,,too little history",
        "Finalizing Closure,90,1,1,0,,too little history",
        "Pending (sales-ops review),95,1,1,0,,too little history",
    ]
    lines = by_days.content.decode().splitlines()
    assert lines[0] == "Stage,Days in the stage,Probability (%),Won,Decided,Won share (%),Note"
    # Validating: Acme 30 days (won), Beta 40 (dead), Echo 90 (won); Confirming: Acme 30,
    # Echo 100, both won.
    assert lines[9:17] == [
        "Validating Benefits & Values,0–30 days,40,1,1,,too little history",
        "Validating Benefits & Values,31–60 days,40,0,1,,too little history",
        "Validating Benefits & Values,61–90 days,40,1,1,,too little history",
        "Validating Benefits & Values,over 90 days,40,0,0,,too little history",
        "Confirming Value with Power,0–30 days,60,1,1,,too little history",
        "Confirming Value with Power,31–60 days,60,0,0,,too little history",
        "Confirming Value with Power,61–90 days,60,0,0,,too little history",
        "Confirming Value with Power,over 90 days,60,1,1,,too little history",
    ]
    assert len(lines) == 1 + 7 * 4


def test_a_rep_calibrates_on_their_own_opportunities(client, cast, three_are_enough):
    client.force_login(cast.anna)

    page = client.get("/forecast/calibration/", WINDOW).content.decode()

    # Acme won, Beta died; Gamma and Delta open.
    assert table(page, "calibration")["identifying"][2:] == [
        "Too little history: 2 decided, 3 needed", "2"]


def test_who_may_see_the_calibration(client, cast):
    def status(user, **query):
        client.force_login(user)
        return client.get("/forecast/calibration/", {**WINDOW, **query}).status_code

    assert status(BdrFactory(team=cast.manager.team)) == 403
    assert status(cast.anna, rep=cast.ben.pk) == 404
    assert status(cast.manager, team=cast.olga.team_id) == 404
    assert status(cast.anna) == 200


def test_the_calibration_query_count_does_not_grow_with_the_history(client, cast):
    client.force_login(cast.manager)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/forecast/calibration/", WINDOW).status_code == 200
        return len(captured)

    small = queries()
    for number in range(20):
        story(cast.ben, f"More {number}", "2025-11-03", ("2025-11-13", S.DISCOVERING),
              ("2026-01-13", S.DEAD))
    large = queries()

    assert (small, large) == (13, 13)  # 3 of them renew the session (idle expiry)


def test_the_analysis_speaks_german(client, cast, three_are_enough):
    client.force_login(cast.manager)
    german = {"accept-language": "de"}

    funnel = client.get("/forecast/funnel/", WINDOW, headers=german).content.decode()
    calibrated = client.get("/forecast/calibration/", WINDOW, headers=german).content.decode()
    csv = client.get("/forecast/calibration/", {**WINDOW, "format": "csv"}, headers=german)

    assert "Wer die nächste Phase erreichte" in funnel
    assert table(funnel, "funnel")["identifying"][1:] == ["3", "2", "67 %", "1", "20"]
    assert table(calibrated, "calibration")["validating"][1:] == [
        "40 %", "67 % (2 von 3 gewonnen)", "0"]
    assert "Zu wenig Verlauf: 2 entschieden, 3 nötig" in calibrated
    assert csv.content.decode().splitlines()[0] == (
        "Phase,Wahrscheinlichkeit (%),Gewonnen,Entschieden,Noch offen,Anteil gewonnen (%),"
        "Notiz")
