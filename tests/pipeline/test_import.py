"""Importing opportunities from Salesforce, HubSpot and Pipedrive exports: each system's
quirks, the preview's row errors, a refused file, a repeated import, the worker's commit;
and the board's list as CSV."""

import csv
import io
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from crm.celery import app as celery_app
from crm.models import Account, Contact
from pipeline.imports.commit import progress_of, run_import
from pipeline.models import (
    CriterionTick,
    ImportBatch,
    ImportStatus,
    Opportunity,
    StageChange,
    Via,
)
from pipeline.process import Stage
from tests.celery_worker import (
    broker,
    celery_worker,
    flush_redis,
    needs_postgresql_and_redis,
    wait_until,
)
from tests.factories import AccountFactory, OpportunityFactory, RepFactory, make_cast

pytestmark = pytest.mark.django_db

SAMPLES = Path(__file__).parent / "import_samples"


@pytest.fixture
def cast():
    cast = make_cast()
    # The samples name this owner.
    cast.rep.first_name, cast.rep.last_name = "Rita", "Rep"
    cast.rep.save()
    return cast


@pytest.fixture
def eager(django_capture_on_commit_callbacks):
    """The worker's task run in this process, once the commit that queues it is done."""
    was = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield django_capture_on_commit_callbacks
    celery_app.conf.task_always_eager = was


def upload(client, user, sample: str, vendor: str, *, owner=None):
    client.force_login(user)
    with open(SAMPLES / sample, "rb") as file:
        return client.post(reverse("pipeline:import_upload"), {
            "vendor": vendor, "file": file, "default_owner": (owner or user).pk})


def uploaded(client, user, sample: str, vendor: str, **kwargs) -> ImportBatch:
    response = upload(client, user, sample, vendor, **kwargs)
    assert response.status_code == 302, response.content.decode()[:2000]
    return ImportBatch.objects.get(created_by=user, file_name=sample)


def commit(client, batch: ImportBatch, eager, **mapping):
    """Post the stage mapping as the page offers it (changed by `mapping`) and commit."""
    form = client.get(reverse("pipeline:import_preview", args=[batch.pk])).context["form"]
    data = {"action": "commit"}
    for name, field in form.fields.items():
        data[name] = mapping.get(field.label, form[name].value() or "")
    with eager(execute=True):
        response = client.post(reverse("pipeline:import_preview", args=[batch.pk]), data)
    assert response.status_code == 302
    batch.refresh_from_db()
    return batch


def test_salesforce_report_previews_each_rows_errors_and_leaves_out_the_footer(client, cast):
    batch = uploaded(client, cast.sales_ops, "salesforce_us.csv", "salesforce",
                     owner=cast.rep)

    response = client.get(reverse("pipeline:import_preview", args=[batch.pk]))

    preview = response.context["preview"]
    assert (preview.total, preview.clean, preview.refused_count) == (8, 3, 5)
    errors = {row.line: row.errors for row in preview.refused}
    assert errors == {
        5: ["“31/02/2027” is not a date."],
        6: ["The amount -1,200.00 is negative."],
        7: ["The stage “Verbal Yes” is mapped to none of ours."],
        8: ["The opportunity has no name."],
        9: ["This row has 7 of the file's 15 columns: it was cut short or broken up."],
    }
    page = response.content.decode()
    assert "Confidential Information" not in page
    assert "Import 3 opportunities" in page
    assert Opportunity.objects.count() == 0  # a preview saves nothing


def test_committing_imports_clean_rows_with_accounts_contacts_and_one_history_row_each(
        client, cast, eager):
    batch = commit(client, uploaded(client, cast.sales_ops, "salesforce_us.csv", "salesforce",
                                    owner=cast.colleague), eager)

    assert (batch.status, batch.imported, batch.refused) == (ImportStatus.DONE, 3, 5)
    imported = {o.name: o for o in Opportunity.objects.select_related("account")}
    assert set(imported) == {"Globex - 200 seats", "Initech renewal upsell", "Globex - add-on"}
    globex = imported["Globex - 200 seats"]
    assert (globex.stage, globex.amount, globex.expected_close_date) == (
        Stage.NEGOTIATING, Decimal("120000.00"), date(2027, 3, 31))
    assert globex.owner == cast.rep  # named in the file, rather than the default owner
    assert (globex.source_system, globex.source_id) == ("salesforce", "0065g00000AbCdEAA1")
    assert globex.stage_deadline is not None
    assert imported["Globex - add-on"].account == globex.account  # one account for both
    assert Account.objects.filter(name="Globex Corporation").count() == 1
    assert list(Contact.objects.filter(account=globex.account).values_list(
        "first_name", "last_name", "email")) == [("Hank", "Scorpio", "hank@globex.example")]
    for opportunity in imported.values():
        (history,) = StageChange.objects.filter(opportunity=opportunity)
        assert (history.to_stage, history.via, history.changed_by) == (
            opportunity.stage, Via.IMPORT, cast.sales_ops)
    assert not CriterionTick.objects.exists()  # no faked ticks
    page = client.get(globex.get_absolute_url()).content.decode()
    assert "imported it into Negotiating &amp; Mutual Plan: “Imported from Salesforce" in page


def test_a_won_deal_enters_closed_on_its_close_date_for_the_forecast(client, cast, eager):
    commit(client, uploaded(client, cast.sales_ops, "salesforce_us.csv", "salesforce",
                            owner=cast.rep), eager)

    won = Opportunity.objects.get(name="Initech renewal upsell")
    assert won.stage == Stage.CLOSED
    assert timezone.localtime(won.stage_entered_at).date() == date(2026, 12, 15)
    assert won.stage_deadline is None
    assert Opportunity.objects.won_in_quarter(2026, 4).get() == won


@pytest.mark.parametrize(("sample", "vendor", "expected"), [
    # Windows-1252, semicolons, German dates and decimal commas, Salesforce's footer.
    ("salesforce_de_cp1252.csv", "salesforce", {
        "Müller – Lizenzen für 50 Plätze": (Stage.DISCOVERING, "1234.56", date(2026, 12, 31)),
        "Groß Filialen": (Stage.CLOSED, "12000.00", date(2027, 3, 15)),
        "Groß Altvertrag": (Stage.DEAD, "800.00", date(2026, 2, 1)),
    }),
    # UTF-8 with a byte order mark, ISO dates with times, "Name (e-mail)" contacts.
    ("hubspot_deals_bom.csv", "hubspot", {
        "Stark Industries rollout": (Stage.NEGOTIATING, "250000.00", date(2027, 2, 15)),
        "Wayne Enterprises security": (Stage.CONFIRMING, "88000.50", date(2027, 1, 31)),
        "Oscorp lab licences": (Stage.CLOSED, "15000.00", date(2026, 11, 20)),
    }),
    # Semicolons and decimal commas with ISO dates; won and lost in the status column.
    ("pipedrive_deals_semicolon.csv", "pipedrive", {
        "Kramerica Öl-Tanker": (Stage.CONFIRMING, "45000.75", date(2027, 3, 1)),
        "Pendant Publishing Buchreihe": (Stage.CLOSED, "9999.99", date(2026, 10, 30)),
        "Monk's Café Kasse": (Stage.DEAD, "1500.00", date(2026, 9, 15)),
    }),
])
def test_each_systems_export_imports_with_its_quirks(client, cast, eager, sample, vendor,
                                                     expected):
    batch = commit(client, uploaded(client, cast.sales_ops, sample, vendor, owner=cast.rep),
                   eager)

    assert (batch.imported, batch.refused) == (3, 0)
    imported = {o.name: (o.stage, str(o.amount), o.expected_close_date)
                for o in Opportunity.objects.all()}
    assert imported == expected
    assert all(o.source_system == vendor for o in Opportunity.objects.all())


def test_hubspot_contacts_come_with_their_e_mail(client, cast, eager):
    commit(client, uploaded(client, cast.sales_ops, "hubspot_deals_bom.csv", "hubspot",
                            owner=cast.rep), eager)

    pepper = Contact.objects.get(last_name="Potts")
    assert (pepper.first_name, pepper.email, pepper.account.name) == (
        "Pepper", "pepper@stark.example", "Stark Industries")


def test_a_file_missing_a_required_column_is_refused_whole(client, cast):
    response = upload(client, cast.sales_ops, "salesforce_missing_stage.csv", "salesforce",
                      owner=cast.rep)

    assert response.status_code == 400
    assert "it has no column “Stage”" in response.content.decode()
    assert not ImportBatch.objects.exists()


def test_a_file_that_is_not_text_is_refused_with_a_message(client, cast):
    client.force_login(cast.sales_ops)
    response = client.post(reverse("pipeline:import_upload"), {
        "vendor": "hubspot", "default_owner": cast.rep.pk,
        "file": io.BytesIO(b"\x00\x01\x02\xff\xfe\x00\x00\x9d" * 50)})

    assert response.status_code == 400
    assert "not a text file" in response.content.decode()


def test_importing_the_same_file_twice_creates_no_duplicates(client, cast, eager):
    commit(client, uploaded(client, cast.sales_ops, "salesforce_us.csv", "salesforce",
                            owner=cast.rep), eager)
    ImportBatch.objects.update(file_name="first.csv")

    again = commit(client, uploaded(client, cast.sales_ops, "salesforce_us.csv",
                                    "salesforce", owner=cast.rep), eager)

    assert (again.imported, again.already_there) == (0, 3)
    assert Opportunity.objects.count() == 3
    assert Account.objects.count() == 2
    assert Contact.objects.count() == 2
    assert StageChange.objects.count() == 3


def test_a_finished_import_keeps_no_copy_of_the_file_and_its_people(client, cast, eager):
    batch = commit(client, uploaded(client, cast.sales_ops, "hubspot_deals_bom.csv",
                                    "hubspot", owner=cast.rep), eager)

    batch.refresh_from_db()
    assert batch.status == ImportStatus.DONE and batch.imported == 3
    assert bytes(batch.content) == b""
    assert "3 opportunities imported" in client.get(
        f"/imports/{batch.pk}/").content.decode()


def test_a_draft_left_unimported_for_a_week_loses_its_file_and_says_so(client, cast):
    stale = uploaded(client, cast.sales_ops, "hubspot_deals_bom.csv", "hubspot",
                     owner=cast.rep)
    queued = uploaded(client, cast.sales_ops, "salesforce_us.csv", "salesforce",
                      owner=cast.rep)
    queued.queue()
    a_week_later = stale.created_at + timedelta(days=ImportBatch.DRAFT_DAYS, seconds=1)
    fresh = uploaded(client, cast.sales_ops, "pipedrive_deals_semicolon.csv", "pipedrive",
                     owner=cast.rep)
    ImportBatch.objects.filter(pk=fresh.pk).update(created_at=a_week_later - timedelta(days=6))

    assert ImportBatch.forget_abandoned_files(a_week_later) == 1

    stale.refresh_from_db(), queued.refresh_from_db(), fresh.refresh_from_db()
    assert (stale.status, bytes(stale.content)) == (ImportStatus.EXPIRED, b"")
    assert queued.status == ImportStatus.QUEUED and bytes(queued.content)
    assert fresh.status == ImportStatus.DRAFT and bytes(fresh.content)
    page = client.get(reverse("pipeline:import_preview", args=[stale.pk]))
    assert page.status_code == 200
    assert "waited more than 7 days to be imported and was removed" in page.content.decode()
    assert ImportBatch.forget_abandoned_files(a_week_later) == 0


def test_the_worker_delivering_the_task_twice_imports_once(client, cast, eager):
    batch = commit(client, uploaded(client, cast.sales_ops, "hubspot_deals_bom.csv",
                                    "hubspot", owner=cast.rep), eager)

    run_import(batch.pk)

    assert Opportunity.objects.count() == 3
    batch.refresh_from_db()
    assert batch.status == ImportStatus.DONE


def test_mapping_a_custom_stage_imports_its_rows(client, cast, eager):
    batch = uploaded(client, cast.sales_ops, "salesforce_us.csv", "salesforce", owner=cast.rep)

    batch = commit(client, batch, eager, **{"Verbal Yes": Stage.FINALIZING.value})

    assert batch.imported == 4
    assert Opportunity.objects.get(name="Vandelay imports").stage == Stage.FINALIZING


def test_an_account_of_the_same_name_is_reused(client, cast, eager):
    existing = AccountFactory(name="Stark Industries")

    commit(client, uploaded(client, cast.sales_ops, "hubspot_deals_bom.csv", "hubspot",
                            owner=cast.rep), eager)

    assert Opportunity.objects.get(name="Stark Industries rollout").account == existing


def test_a_rep_imports_only_for_themselves(client, cast, eager):
    response = upload(client, cast.rep, "pipedrive_deals_semicolon.csv", "pipedrive",
                      owner=cast.colleague)
    assert response.status_code == 400  # not among the owners a rep may choose

    commit(client, uploaded(client, cast.rep, "pipedrive_deals_semicolon.csv", "pipedrive"),
           eager)
    assert {o.owner for o in Opportunity.objects.all()} == {cast.rep}


def test_a_bdr_may_not_import(client, cast):
    client.force_login(cast.bdr)

    assert client.get(reverse("pipeline:import_upload")).status_code == 403


def test_the_progress_shows_the_result_when_the_worker_is_done(client, cast, eager):
    batch = commit(client, uploaded(client, cast.sales_ops, "hubspot_deals_bom.csv",
                                    "hubspot", owner=cast.rep), eager)

    response = client.get(reverse("pipeline:import_progress", args=[batch.pk]))

    page = response.content.decode()
    assert "3 opportunities imported" in page
    assert "hx-trigger" not in page  # the page stops asking


def test_a_queued_import_shows_a_progress_bar_that_polls(client, cast):
    batch = uploaded(client, cast.sales_ops, "hubspot_deals_bom.csv", "hubspot", owner=cast.rep)
    batch.queue()

    response = client.get(reverse("pipeline:import_progress", args=[batch.pk]))

    page = response.content.decode()
    assert "<progress" in page and 'hx-trigger="every 1s"' in page
    assert "Waiting for the worker" in page


def test_an_import_left_waiting_by_a_broker_that_was_down_can_be_sent_again(client, cast,
                                                                            eager):
    batch = uploaded(client, cast.sales_ops, "hubspot_deals_bom.csv", "hubspot",
                     owner=cast.rep)
    batch.queue()  # and the message never reached a worker

    response = client.post(reverse("pipeline:import_preview", args=[batch.pk]))

    assert response.status_code == 302
    batch.refresh_from_db()
    assert (batch.status, batch.imported) == (ImportStatus.DONE, 3)


def test_pending_is_no_stage_to_import_into(client, cast):
    batch = uploaded(client, cast.sales_ops, "hubspot_deals_bom.csv", "hubspot",
                     owner=cast.rep)

    form = client.get(reverse("pipeline:import_preview", args=[batch.pk])).context["form"]

    assert all(Stage.PENDING.value not in dict(field.choices) for field in form.fields.values())


@pytest.mark.postgres
@pytest.mark.redis
@needs_postgresql_and_redis
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_real_worker_imports_in_the_background_and_tells_the_page_its_progress(
        client, cast, redis_url, tmp_path):
    flush_redis(redis_url)
    batch = uploaded(client, cast.sales_ops, "pipedrive_deals_semicolon.csv", "pipedrive",
                     owner=cast.rep)
    form = client.get(reverse("pipeline:import_preview", args=[batch.pk])).context["form"]
    data = {name: form[name].value() or "" for name in form.fields}

    with broker(redis_url), celery_worker(broker_url=redis_url, folder=tmp_path) as celery:
        response = client.post(reverse("pipeline:import_preview", args=[batch.pk]),
                               {**data, "action": "commit"})
        assert response.status_code == 302
        wait_until(lambda: ImportBatch.objects.get(pk=batch.pk).is_finished,
                   "the worker to import the file", celery)

    batch.refresh_from_db()
    assert (batch.status, batch.imported) == (ImportStatus.DONE, 3)
    assert progress_of(batch) == (3, 3)  # written by the worker, read here
    page = client.get(reverse("pipeline:import_progress", args=[batch.pk]))
    assert "3 opportunities imported" in page.content.decode()
    flush_redis(redis_url)


def test_nobody_sees_another_persons_import(client, cast):
    batch = uploaded(client, cast.sales_ops, "hubspot_deals_bom.csv", "hubspot", owner=cast.rep)
    client.force_login(cast.manager)

    assert client.get(reverse("pipeline:import_preview", args=[batch.pk])).status_code == 404


# --- The board's list as CSV ---


def exported(client, user, query: str = "") -> list[list[str]]:
    client.force_login(user)
    response = client.get(reverse("pipeline:board_export") + query)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_board_export_lists_what_the_same_filters_show(client, cast):
    mine = OpportunityFactory(owner=cast.rep, name="Mine")
    OpportunityFactory(owner=cast.colleague, name="Colleague's")
    OpportunityFactory(owner=RepFactory(), name="Another team's")

    everything = exported(client, cast.rep)
    only_mine = exported(client, cast.rep, "?scope=mine")

    assert everything[0][:3] == ["Id", "Opportunity", "Account"]
    assert {row[1] for row in everything[1:]} == {"Mine", "Colleague's"}
    assert [row[:2] for row in only_mine[1:]] == [[str(mine.pk), "Mine"]]


def test_the_board_export_never_writes_a_formula(client, cast):
    OpportunityFactory(owner=cast.rep, name="=HYPERLINK(\"http://evil\")")

    (row,) = exported(client, cast.rep)[1:]

    assert row[1] == "'=HYPERLINK(\"http://evil\")"


def test_the_board_export_refuses_bad_filters(client, cast):
    client.force_login(cast.rep)

    assert client.get(reverse("pipeline:board_export") + "?quarter=soon").status_code == 400
