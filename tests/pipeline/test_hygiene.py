"""Hygiene flags: a Best Case too far out, a Commit past its close date, a close date
pushed twice this quarter; on the opportunity, in a query, and on the board's card."""

from datetime import date, timedelta

import pytest
from django.utils import timezone

from pipeline.models import FieldChange, HygieneFlag, Opportunity, Via
from pipeline.models.hygiene import quarter_start, three_months_after
from pipeline.process import Stage
from tests.factories import OpportunityFactory, RepFactory

pytestmark = pytest.mark.django_db


def on(stage, closes, owner=None):
    return OpportunityFactory(stage=stage, expected_close_date=closes,
                              **({"owner": owner} if owner else {}))


def test_three_months_after_keeps_the_day_or_the_months_last():
    assert three_months_after(date(2026, 11, 30)) == date(2027, 2, 28)
    assert three_months_after(date(2026, 5, 15)) == date(2026, 8, 15)


def test_best_case_more_than_three_months_out_is_flagged():
    today = timezone.localdate()
    far = on(Stage.CONFIRMING, three_months_after(today) + timedelta(days=1))
    near = on(Stage.CONFIRMING, three_months_after(today))
    pipeline_far = on(Stage.DISCOVERING, today + timedelta(days=200))
    assert far.hygiene_flags() == [HygieneFlag.BEST_CASE_FAR_OUT]
    assert near.hygiene_flags() == []
    assert pipeline_far.hygiene_flags() == []


def test_commit_past_its_close_date_is_flagged_until_it_closes():
    yesterday = timezone.localdate() - timedelta(days=1)
    late = on(Stage.NEGOTIATING, yesterday)
    won = on(Stage.CLOSED, yesterday)
    due_today = on(Stage.PENDING, timezone.localdate())
    assert late.hygiene_flags() == [HygieneFlag.COMMIT_OVERDUE]
    assert won.hygiene_flags() == due_today.hygiene_flags() == []


def test_a_close_date_pushed_twice_this_quarter_is_flagged():
    today = timezone.localdate()
    pushed = on(Stage.DISCOVERING, today + timedelta(days=10))
    pushed.update_details(by=pushed.owner, expected_close_date=today + timedelta(days=20))
    assert pushed.hygiene_flags() == []
    pushed.update_details(by=pushed.owner, expected_close_date=today + timedelta(days=30))
    # Pulled in, then out again: one push.
    moved = on(Stage.DISCOVERING, today + timedelta(days=10))
    moved.update_details(by=moved.owner, expected_close_date=today + timedelta(days=5))
    moved.update_details(by=moved.owner, expected_close_date=today + timedelta(days=9))
    # Pushed once last quarter, once this one.
    older = on(Stage.DISCOVERING, today + timedelta(days=10))
    FieldChange.objects.create(opportunity=older, field="expected_close_date",
                               old_value="2020-01-01", new_value="2020-02-01", via=Via.PAGE,
                               changed_at=quarter_start(today) - timedelta(minutes=1))
    older.update_details(by=older.owner, expected_close_date=today + timedelta(days=20))

    assert pushed.hygiene_flags() == [HygieneFlag.PUSHED_AGAIN]
    assert moved.hygiene_flags() == older.hygiene_flags() == []
    assert list(Opportunity.objects.needing_attention()) == [pushed]
    annotated = Opportunity.objects.with_close_date_pushes().get(pk=pushed.pk)
    assert annotated.close_date_pushes == 2


def test_the_board_card_shows_its_flags(client):
    rep = RepFactory()
    late = on(Stage.NEGOTIATING, timezone.localdate() - timedelta(days=1), owner=rep)
    fine = on(Stage.NEGOTIATING, timezone.localdate() + timedelta(days=5), owner=rep)
    client.force_login(rep)

    page = client.get("/board/?closed=all").content.decode()

    card = page[page.index(f'data-opportunity-id="{late.pk}"'):]
    assert '<span class="hygiene-flag">Commit, close date passed</span>' in card[
        :card.index("</li>")]
    card = page[page.index(f'data-opportunity-id="{fine.pk}"'):]
    assert "hygiene-flag" not in card[:card.index("</li>")]
