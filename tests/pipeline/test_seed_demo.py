"""`manage.py seed_demo`: demo data that follows the process, the same for the same seed."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.http import HttpRequest
from django.utils import timezone

from crm.models import ExchangeRate, Team, User, fiscal_quarter, fiscal_quarter_bounds
from pipeline.management.commands.seed_demo import DEMO_PASSWORD, DEMO_USERS
from pipeline.models import (
    Activity,
    ActivityStatus,
    CommitteeMember,
    CriterionTick,
    FieldChange,
    Opportunity,
    StageChange,
    StageTimeout,
    Via,
)
from pipeline.process import ORDERED_STAGES, PROCESS, TIMED_STAGES, Stage, next_stage
from tests.conftest import on_postgresql

SMALL = 60


def seed(**options) -> str:
    output = StringIO()
    call_command("seed_demo", stdout=output, **{"opportunities": SMALL, **options})
    return output.getvalue()


def story_of(opportunity: Opportunity) -> list[StageChange]:
    return list(opportunity.stage_changes.order_by("changed_at", "pk"))


def fingerprint(opportunities) -> list[tuple]:
    return [
        (o.account.name, o.owner.username, o.name, o.type, o.source, o.amount, o.currency,
         o.stage, o.expected_close_date, o.stage_entered_at, o.champion_id is not None,
         o.ticks.count(), [(c.from_stage, c.to_stage, c.changed_at) for c in story_of(o)])
        for o in opportunities.select_related("account", "owner").order_by("pk")
    ]


def last_quarters(count: int) -> list[tuple]:
    """The `count` fiscal quarters before the current one, oldest first, as date bounds."""
    year, quarter = fiscal_quarter(timezone.localdate())
    quarters = []
    for _step in range(count):
        year, quarter = (year, quarter - 1) if quarter > 1 else (year - 1, 4)
        quarters.insert(0, fiscal_quarter_bounds(year, quarter))
    return quarters


@pytest.mark.django_db
def test_every_role_has_a_demo_user_who_logs_in_with_the_demo_password(client):
    output = seed()

    for demo in DEMO_USERS:
        user = User.objects.get(username=demo.username)
        assert client.login(  # django-axes needs the request a login came with
            request=HttpRequest(), username=demo.username, password=DEMO_PASSWORD), demo.username
        assert user.is_staff == demo.is_staff
        if demo.role is None:
            assert user.is_superuser
        else:
            assert user.roles == {demo.role}
        assert demo.username in output
    assert DEMO_PASSWORD in output
    staff = set(User.objects.filter(is_staff=True).values_list("username", flat=True))
    assert staff == {"sofia", "max", "admin"}


@pytest.mark.django_db
def test_the_manager_leads_the_team_of_the_reps_and_the_bdr():
    seed()

    team = Team.objects.get()
    assert team.manager.username == "max"
    members = {user.username: user for user in team.members.all()}
    assert {"anna", "ben", "carla", "dario"} <= set(members)
    assert sum(user.is_rep for user in members.values()) == 3
    assert members["dario"].is_bdr


@pytest.mark.django_db
def test_every_stage_has_opportunities():
    seed()

    stages = set(Opportunity.objects.values_list("stage", flat=True))
    assert stages == set(Stage.values)
    assert Opportunity.objects.count() == SMALL


@pytest.mark.django_db
def test_every_gate_an_opportunity_passed_still_holds():
    seed()

    checked = 0
    for opportunity in Opportunity.objects.with_checklist():
        working = Stage(opportunity.stage)
        if working == Stage.DEAD:  # the gates before the stage it died in
            working = Stage(story_of(opportunity)[-1].from_stage)
        for stage in ORDERED_STAGES[: ORDERED_STAGES.index(working)]:
            # "The next call is scheduled" tells the present: the call it saw has taken
            # place since (the history's snapshot keeps that it was met).
            missing = [criterion.key for criterion in opportunity.missing_criteria(stage)
                       if criterion.key != "identifying.next_call_scheduled"]
            assert missing == [], (opportunity, stage)
            checked += 1
    assert checked > SMALL


@pytest.mark.django_db
def test_the_current_stage_is_only_partly_ticked_for_some():
    seed()

    progress = [
        opportunity.criteria_progress()
        for opportunity in Opportunity.objects.with_checklist().filter(stage__in=ORDERED_STAGES[:6])
    ]
    assert any(0 < met < total for met, total in progress)
    assert any(met == 0 for met, total in progress)
    states = set(CriterionTick.objects.values_list("state", flat=True))
    assert states == {CriterionTick.State.MET, CriterionTick.State.NOT_REQUIRED}


@pytest.mark.django_db
def test_replaying_the_history_ends_at_the_current_stage():
    seed()

    for opportunity in Opportunity.objects.all():
        stage = Stage.IDENTIFYING
        previous_moment = opportunity.created_at
        for change in story_of(opportunity):
            assert change.from_stage == stage, opportunity
            assert change.changed_at > previous_moment
            assert change.via == Via.SEED
            source, target = Stage(change.from_stage), Stage(change.to_stage)
            assert target != source, change
            if target.order and source.order and target.order > source.order:
                assert target == next_stage(source), change
                # The snapshot kept with a forward move shows the gate it passed.
                criteria = change.checklist["criteria"]
                assert set(criteria) == {c.key for c in PROCESS[source].exit_criteria}
                assert all(criterion["met"] for criterion in criteria.values()), change
            stage, previous_moment = target, change.changed_at
        assert stage == opportunity.stage, opportunity
        assert opportunity.stage_entered_at == previous_moment


@pytest.mark.django_db
def test_history_has_closings_deaths_and_reopenings_with_their_reasons():
    seed()

    closings = StageChange.objects.filter(from_stage=Stage.PENDING, to_stage=Stage.CLOSED)
    assert closings.count() == Opportunity.objects.filter(stage=Stage.CLOSED).count()
    assert all(change.changed_by.is_sales_ops for change in closings)
    for opportunity in Opportunity.objects.filter(stage=Stage.DEAD):
        assert opportunity.dead_reason and opportunity.dead_note
        assert story_of(opportunity)[-1].dead_reason == opportunity.dead_reason
    reopenings = StageChange.objects.filter(from_stage=Stage.DEAD, to_stage=Stage.IDENTIFYING)
    assert reopenings.exists()
    assert all(change.reason for change in reopenings)
    assert Opportunity.objects.filter(field_changes__field="amount").exists()
    assert Opportunity.objects.filter(field_changes__field="expected_close_date").exists()


@pytest.mark.django_db
def test_deadlines_follow_the_timeouts_and_none_is_overdue_yet():
    StageTimeout.objects.create(stage=Stage.DISCOVERING, days=20)
    seed()

    now = timezone.now()
    soon = 0
    for opportunity in Opportunity.objects.all():
        stage = Stage(opportunity.stage)
        if stage in TIMED_STAGES:
            days = StageTimeout.days_for(stage)
            assert opportunity.stage_deadline == opportunity.stage_entered_at + timedelta(days=days)
            assert opportunity.stage_deadline > now
            soon += opportunity.stage_deadline < now + timedelta(days=5)
        else:
            assert opportunity.stage_deadline is None
    assert soon > 0
    assert not Opportunity.objects.overdue().exists()


@pytest.mark.django_db
def test_some_amounts_are_in_foreign_currencies_and_chf_has_no_rate():
    call_command("seed_demo", stdout=StringIO())  # the default size has a handful of CHF

    rated = set(ExchangeRate.objects.values_list("currency", flat=True))
    assert {"USD", "GBP"} <= rated
    assert "CHF" not in rated
    currencies = set(Opportunity.objects.values_list("currency", flat=True))
    assert {"EUR", "USD", "GBP", "CHF"} <= currencies
    totals = Opportunity.objects.company_totals()
    assert totals.unconverted_currencies == ("CHF",)


@pytest.mark.django_db
@pytest.mark.parametrize("fiscal_year_start_month", [1, 4])
def test_the_history_spans_the_last_four_fiscal_quarters(settings, fiscal_year_start_month):
    settings.FISCAL_YEAR_START_MONTH = fiscal_year_start_month
    seed()

    moves = StageChange.objects.all()
    closings = moves.filter(to_stage=Stage.CLOSED)
    quarters = last_quarters(4)
    for first, after in quarters:
        assert moves.filter(changed_at__date__gte=first, changed_at__date__lt=after).exists()
        assert closings.filter(changed_at__date__gte=first, changed_at__date__lt=after).exists()
    assert not moves.filter(changed_at__date__lt=quarters[0][0]).exists()
    assert not moves.filter(changed_at__gt=timezone.now()).exists()


@pytest.mark.django_db
def test_the_same_seed_gives_the_same_data_and_a_second_run_adds_more():
    seed(seed=7)
    first_run = set(Opportunity.objects.values_list("pk", flat=True))
    seed(seed=7)  # the users exist now: the second run must not fail on them

    again = Opportunity.objects.exclude(pk__in=first_run)
    assert again.count() == SMALL
    assert fingerprint(again) == fingerprint(Opportunity.objects.filter(pk__in=first_run))
    assert User.objects.filter(username="anna").count() == 1


@pytest.mark.django_db
def test_another_seed_gives_other_data():
    seed(seed=1)
    first_run = set(Opportunity.objects.values_list("pk", flat=True))
    seed(seed=2)

    other = Opportunity.objects.exclude(pk__in=first_run)
    assert fingerprint(other) != fingerprint(Opportunity.objects.filter(pk__in=first_run))


@pytest.mark.django_db
def test_if_empty_loads_once_then_does_nothing():
    seed(if_empty=True)
    output = seed(if_empty=True)

    assert Opportunity.objects.count() == SMALL
    assert "no demo data loaded" in output


@pytest.mark.django_db
def test_loading_keeps_every_foreign_key_of_the_tables_it_fills():
    tables = [model._meta.db_table for model in (
        Opportunity, StageChange, CriterionTick, CommitteeMember, FieldChange,
    )]

    def foreign_keys() -> dict:
        with connection.cursor() as cursor:
            if on_postgresql():  # the whole definition, deferrable included
                cursor.execute(
                    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                    "FROM pg_constraint WHERE contype = 'f' AND conrelid = ANY(%s::regclass[])",
                    [tables],
                )
                return {(table, name): definition for table, name, definition in cursor}
            return {
                (table, name): (info["columns"], info["foreign_key"])
                for table in tables
                for name, info in connection.introspection.get_constraints(cursor, table).items()
                if info["foreign_key"]
            }

    before = foreign_keys()
    seed()

    assert before and foreign_keys() == before


@pytest.mark.django_db
def test_a_negative_number_of_opportunities_is_refused():
    with pytest.raises(CommandError):
        seed(opportunities=-1)
    assert not Opportunity.objects.exists()


@pytest.mark.django_db
def test_a_failure_while_loading_leaves_nothing_behind(monkeypatch):
    from pipeline.management import bulk_rows
    from pipeline.management.commands import seed_demo

    def fail_on_ticks(original):
        def write(rows, *args):
            if rows.model is CriterionTick:
                raise RuntimeError("disk full")
            return original(rows, *args)
        return write

    monkeypatch.setattr(bulk_rows, "copy_rows", fail_on_ticks(bulk_rows.copy_rows))
    monkeypatch.setattr(bulk_rows, "insert_rows", fail_on_ticks(bulk_rows.insert_rows))
    monkeypatch.setattr(seed_demo, "OPPORTUNITIES_PER_BATCH", 20)  # fails mid-way

    with pytest.raises(RuntimeError, match="disk full"):
        seed()
    assert not Opportunity.objects.exists()
    assert not StageChange.objects.exists()
    assert not User.objects.filter(username="anna").exists()


@pytest.mark.django_db
def test_open_opportunities_have_calls_done_and_planned_and_closed_ones_none():
    seed()

    now = timezone.now()
    activities = Activity.objects.select_related("opportunity")
    assert not activities.filter(opportunity__stage__in=[Stage.CLOSED, Stage.DEAD]).exists()
    assert not activities.filter(status=ActivityStatus.DONE, at__gt=now).exists()
    assert not activities.filter(status=ActivityStatus.PLANNED, at__lte=now).exists()
    identifying = Opportunity.objects.filter(stage=Stage.IDENTIFYING)
    planned = identifying.filter(activities__status=ActivityStatus.PLANNED).distinct().count()
    assert 0 < planned < identifying.count()
    assert activities.filter(status=ActivityStatus.DONE).exists()
