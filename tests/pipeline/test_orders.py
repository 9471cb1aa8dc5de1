"""Purchase orders: recorded with their document at Finalizing, reviewed by sales ops in
their queue, approved into Closed with hand-off tasks or rejected back to Finalizing."""

import io
import json
import zipfile
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from crm.models import business_days_between, fiscal_quarter, fiscal_quarter_bounds
from pipeline.models import (
    HandoffKind,
    HandoffTask,
    InvalidChange,
    Opportunity,
    PurchaseOrder,
    ReviewCheck,
    StageChange,
    Via,
)
from pipeline.order_views import queue_row
from pipeline.process import Stage
from tests.factories import (
    ManagerFactory,
    OpportunityFactory,
    RepFactory,
    SalesOpsFactory,
    a_pdf,
    advance,
    record_order,
    satisfy_gate,
    stored_state,
)

pytestmark = pytest.mark.django_db

ALL_CHECKS = ["terms", "prices", "periods", "coverage"]


def with_offer(opportunity: Opportunity, *lines) -> Opportunity:
    start = date(2027, 1, 1)
    opportunity.save_offer(by=opportunity.owner, service_start=start,
                           service_end=date(2027, 12, 31), payment_terms="30 days net")
    for description, price in lines or [("Licences", "40000"), ("Onboarding", "10000")]:
        opportunity.add_offer_line(by=opportunity.owner, description=description,
                                   quantity=Decimal(1), list_price=Decimal(price))
    return opportunity


def at_finalizing() -> Opportunity:
    opportunity = advance(OpportunityFactory(), Stage.NEGOTIATING)
    with_offer(opportunity)
    satisfy_gate(opportunity)
    opportunity.move_to(Stage.FINALIZING, by=opportunity.owner, via=Via.PAGE)
    opportunity.tick("finalizing.customer_signed", by=opportunity.owner, note="All signed")
    return opportunity


def pending(**order) -> Opportunity:
    opportunity = at_finalizing()
    record_order(opportunity, **order)
    opportunity.move_to(Stage.PENDING, by=opportunity.owner, via=Via.PAGE)
    return opportunity


def order_form(opportunity, **overrides) -> dict:
    return {"number": "PO-1", "amount": "50000", "currency": "EUR", "terms": "ours",
            "service_start": "2027-01-01", "service_end": "2027-12-31",
            "document": a_pdf(), "version": opportunity.version,
            "lines": [line.pk for line in opportunity.offer.current_lines()], **overrides}


def stored_documents() -> list:
    root = settings.STORAGES["documents"]["OPTIONS"]["location"]
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def docx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<document/>")
    return buffer.getvalue()


# --- recording the order ---


def test_a_rep_records_the_order_with_its_document_and_the_gate_holds(client):
    opportunity = at_finalizing()
    assert [c.key for c in opportunity.missing_criteria()] == [
        "finalizing.purchase_order_recorded"]
    client.force_login(opportunity.owner)

    response = client.post(f"/opportunities/{opportunity.pk}/order/", order_form(opportunity))

    assert response.status_code == 302
    order = PurchaseOrder.objects.get()
    assert (order.number, order.document_type, order.covered_lines.count()) == ("PO-1", "pdf", 2)
    assert order.document_name == "order.pdf" and not order.document.name.endswith("order.pdf")
    opportunity.reload()
    assert opportunity.missing_criteria() == []


@pytest.mark.parametrize(("name", "content"), [
    ("order.pdf", b"MZ\x90\x00\x03\x00\x00\x00 a Windows program renamed"),
    ("order.pdf", b"#!/bin/sh\nrm -rf /\n"),
    ("order.docx", b"PK\x03\x04 not really a zip"),
    ("order.xlsx", None),  # a zip, but no Word document
])
def test_anything_but_a_pdf_png_jpeg_or_word_file_is_refused_and_nothing_stored(
        client, name, content):
    opportunity = at_finalizing()
    if content is None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("[Content_Types].xml", "<Types/>")
            archive.writestr("xl/workbook.xml", "<workbook/>")
        content = buffer.getvalue()
    client.force_login(opportunity.owner)
    before = stored_state(opportunity)

    response = client.post(f"/opportunities/{opportunity.pk}/order/", order_form(
        opportunity, document=SimpleUploadedFile(name, content)))

    assert response.status_code == 400
    assert "not a PDF, PNG, JPEG or Word file" in response.content.decode()
    assert stored_state(opportunity) == before
    assert not PurchaseOrder.objects.exists() and stored_documents() == []


@pytest.mark.parametrize(("content", "kind"), [
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 32, "png"),
    (b"\xff\xd8\xff\xe0" + b"\x00" * 32, "jpeg"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + "WordDocument".encode("utf-16-le"), "doc"),
    (None, "docx"),
])
def test_scans_and_word_documents_are_recognised_by_their_content(content, kind):
    opportunity = at_finalizing()
    document = SimpleUploadedFile("scan.bin", content or docx())
    order = record_order(opportunity, document=document)
    assert order.document_type == kind


def test_a_document_over_the_size_limit_is_refused(client):
    opportunity = at_finalizing()
    client.force_login(opportunity.owner)
    huge = a_pdf(content=b"%PDF-1.4\n" + b"0" * (10 * 1024 * 1024))
    response = client.post(f"/opportunities/{opportunity.pk}/order/",
                           order_form(opportunity, document=huge))
    assert response.status_code == 400
    assert "at most 10 MB" in response.content.decode()
    assert not PurchaseOrder.objects.exists() and stored_documents() == []


def test_an_order_is_recorded_at_finalizing_only():
    opportunity = advance(OpportunityFactory(), Stage.NEGOTIATING)
    with pytest.raises(InvalidChange, match="recorded in Finalizing"):
        record_order(opportunity)
    assert stored_documents() == []


def test_the_document_is_served_to_who_may_see_the_deal_and_hidden_from_others(client):
    opportunity = at_finalizing()
    order = record_order(opportunity)
    client.force_login(opportunity.owner)
    response = client.get(f"/orders/{order.pk}/document/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content).startswith(b"%PDF-")

    client.force_login(RepFactory())  # another team
    assert client.get(f"/orders/{order.pk}/document/").status_code == 404


def test_documents_are_stored_outside_every_public_url(client):
    opportunity = at_finalizing()
    order = record_order(opportunity)
    client.force_login(opportunity.owner)
    assert not order.document.path.startswith(str(settings.STATIC_ROOT))
    for address in (f"/{order.document.name}", f"/static/{order.document.name}",
                    f"/media/{order.document.name}"):
        assert client.get(address).status_code == 404


# --- the queue ---


def test_business_days_leave_out_the_weekend():
    friday = date(2026, 12, 4)
    assert business_days_between(friday, friday + timedelta(days=1)) == 0  # Saturday
    assert business_days_between(friday, friday + timedelta(days=3)) == 1  # Monday
    assert business_days_between(friday, friday + timedelta(days=7)) == 5
    assert business_days_between(friday, friday + timedelta(days=12)) == 8


def test_the_queue_lists_pending_orders_oldest_first_with_their_waiting_time(client):
    older, newer = pending(), pending()
    long_ago = timezone.now() - timedelta(days=14)
    Opportunity.objects.filter(pk=older.pk).update(stage_entered_at=long_ago)
    client.force_login(SalesOpsFactory())

    page = client.get("/orders/pending/").content.decode()

    assert page.index(f'data-opportunity-id="{older.pk}"') < page.index(
        f'data-opportunity-id="{newer.pk}"')
    waited = business_days_between(timezone.localdate(long_ago), timezone.localdate())
    assert f"{waited} business days of 3" in page and "late" in page


def test_an_order_whose_quarter_ends_within_a_week_is_highlighted():
    """Judged on chosen days: on the real one, no quarter may end within a week."""
    opportunity = pending()
    ends = fiscal_quarter_bounds(*fiscal_quarter(opportunity.expected_close_date))[1]

    assert queue_row(opportunity, ends - timedelta(days=3))["quarter_ends_soon"]
    assert queue_row(opportunity, ends - timedelta(days=7))["quarter_ends_soon"]
    assert not queue_row(opportunity, ends - timedelta(days=30))["quarter_ends_soon"]
    assert not queue_row(opportunity, ends)["quarter_ends_soon"]


def test_the_queue_query_count_does_not_grow_with_orders(client, django_assert_max_num_queries):
    pending()
    client.force_login(SalesOpsFactory())
    with django_assert_max_num_queries(12) as few:
        client.get("/orders/pending/")
    for _ in range(4):
        pending(amount=Decimal("1"))
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get("/orders/pending/")
    assert response.content.decode().count("data-opportunity-id=") == 5


def test_sales_ops_start_at_their_queue_which_the_top_bar_counts(client):
    pending()
    client.force_login(SalesOpsFactory())
    assert client.get("/")["Location"] == "/orders/pending/"
    page = client.get("/board/").content.decode()
    assert 'href="/orders/pending/">Orders to review <span class="badge">1' in page


@pytest.mark.parametrize("path", ["/orders/pending/", "/handoffs/", "review"])
def test_only_sales_ops_see_the_queue_the_review_and_the_handoffs(client, path):
    opportunity = pending()
    if path == "review":
        path = f"/opportunities/{opportunity.pk}/review/"
    for person in (opportunity.owner, ManagerFactory(team=opportunity.owner.team)):
        client.force_login(person)
        response = client.get(path)
        assert response.status_code == 403
        assert "Approve" not in response.content.decode()
    assert "Orders to review" not in client.get("/board/").content.decode()


# --- the review ---


@pytest.mark.parametrize(("order", "check", "flag"), [
    ({"amount": Decimal("52500")}, "prices", "the offer comes to 50000.00 EUR"),
    ({"terms": "customer"}, "terms", "own terms"),
    ({"service_end": date(2027, 9, 30)}, "periods", "service period is 01/01/2027 – 09/30/2027"),
    ({"lines": []}, "coverage", "“Licences” is not covered"),
])
def test_the_review_flags_what_differs_from_the_agreed_offer(client, order, check, flag):
    opportunity = pending(**order)
    client.force_login(SalesOpsFactory())
    page = client.get(f"/opportunities/{opportunity.pk}/review/").content.decode()
    flagged = page[page.index(f'data-check="{check}"'):]
    assert flag in flagged[:flagged.index("</p>")]
    assert page.count('class="check flagged"') == 1


def test_approving_needs_all_four_checks_then_closes_with_the_handoff_tasks(client):
    opportunity = pending()
    sales_ops = SalesOpsFactory()
    client.force_login(sales_ops)
    before = stored_state(opportunity)

    short = client.post(f"/opportunities/{opportunity.pk}/review/approve/",
                        {"checks": ALL_CHECKS[:3], "version": opportunity.version})
    assert short.status_code == 400
    assert "Confirm every check" in short.content.decode()
    assert stored_state(opportunity) == before

    done = client.post(f"/opportunities/{opportunity.pk}/review/approve/",
                       {"checks": ALL_CHECKS, "version": opportunity.version})

    assert done.status_code == 302
    stored = Opportunity.objects.get(pk=opportunity.pk)
    assert stored.stage == Stage.CLOSED
    change = StageChange.objects.filter(opportunity=opportunity).last()
    assert (change.to_stage, change.via, change.changed_by) == ("closed", "review", sales_ops)
    assert PurchaseOrder.objects.get().outcome == "approved"
    assert sorted(HandoffTask.objects.filter(opportunity=opportunity)
                  .values_list("kind", flat=True)) == sorted(HandoffKind.values)


def test_rejecting_sends_the_deal_back_with_the_reasons_until_a_new_order_comes(client):
    opportunity = pending(terms="customer")
    client.force_login(SalesOpsFactory())

    no_note = client.post(f"/opportunities/{opportunity.pk}/review/reject/",
                          {"checks": ALL_CHECKS[1:], "version": opportunity.version})
    assert no_note.status_code == 400
    rejected = client.post(f"/opportunities/{opportunity.pk}/review/reject/", {
        "checks": ALL_CHECKS[1:], "note": "Their own purchasing terms are attached.",
        "version": opportunity.version})

    assert rejected.status_code == 302
    opportunity.reload()
    assert opportunity.stage == Stage.FINALIZING
    assert [c.key for c in opportunity.missing_criteria()] == [
        "finalizing.purchase_order_recorded"]
    order = PurchaseOrder.objects.get()
    assert (order.outcome, order.failed_checks) == ("rejected", ["terms"])
    notice = opportunity.owner.notifications.get()
    assert "Their own purchasing terms are attached." in notice.body
    client.force_login(opportunity.owner)
    assert "Order rejected" in client.get("/board/").content.decode()
    page = client.get(f"/opportunities/{opportunity.pk}/").content.decode()
    assert "The agreed terms apply" in page and "Their own purchasing terms" in page

    record_order(opportunity, number="PO-2")
    assert "Order rejected" not in client.get("/board/").content.decode()
    assert opportunity.missing_criteria() == []


def test_nobody_but_sales_ops_approves_or_rejects(client):
    opportunity = pending()
    before = stored_state(opportunity)
    for person in (opportunity.owner, ManagerFactory(team=opportunity.owner.team)):
        client.force_login(person)
        for decision in ("approve", "reject"):
            response = client.post(f"/opportunities/{opportunity.pk}/review/{decision}/", {
                "checks": ALL_CHECKS, "note": "x", "version": opportunity.version})
            assert response.status_code == 403
    assert stored_state(opportunity) == before


def test_the_move_form_no_longer_approves_an_order(client):
    opportunity = pending()
    client.force_login(SalesOpsFactory())
    before = stored_state(opportunity)

    response = client.post(f"/opportunities/{opportunity.pk}/move/",
                           {"stage": "closed", "version": opportunity.version})

    assert response.status_code == 400
    assert "on its review page" in response.content.decode()
    assert stored_state(opportunity) == before
    page = client.get(f"/opportunities/{opportunity.pk}/").content.decode()
    assert 'value="closed"' not in page and "Review the order" in page


# --- the board ---


def test_a_drop_on_pending_without_an_order_opens_the_gate_dialog(client):
    opportunity = at_finalizing()
    client.force_login(opportunity.owner)

    response = client.post(f"/opportunities/{opportunity.pk}/move/", {
        "stage": "pending", "version": opportunity.version, "via": "board"},
        HTTP_HX_REQUEST="true")

    assert response.status_code == 422
    html = response.content.decode()
    assert "The purchase order was received and recorded" in html
    assert f'href="/opportunities/{opportunity.pk}/order/"' in html
    assert json.loads(response["HX-Trigger-After-Settle"])["moveRefused"]["stage"] == (
        "finalizing")

    record_order(opportunity)
    moved = client.post(f"/opportunities/{opportunity.pk}/move/", {
        "stage": "pending", "version": Opportunity.objects.get(pk=opportunity.pk).version,
        "via": "board"}, HTTP_HX_REQUEST="true")
    assert moved.status_code == 200
    assert Opportunity.objects.get(pk=opportunity.pk).stage == Stage.PENDING


def test_the_pending_column_takes_drops(client):
    opportunity = at_finalizing()
    client.force_login(opportunity.owner)
    page = client.get("/board/").content.decode()
    assert 'data-stage="pending" data-order="7" data-accepts="true"' in page
    assert 'data-stage="closed" data-order="8" data-accepts="false"' in page


# --- hand-offs ---


def test_sales_ops_tick_off_and_assign_handoff_tasks(client):
    opportunity = pending()
    reviewer, colleague = SalesOpsFactory(), SalesOpsFactory()
    opportunity.approve_order(by=reviewer, confirmed=set(ReviewCheck.values))
    task = HandoffTask.objects.get(opportunity=opportunity, kind=HandoffKind.ACTIVATION)
    client.force_login(reviewer)

    assert client.post(f"/handoffs/{task.pk}/assign/",
                       {"assigned_to": colleague.pk}).status_code == 302
    assert client.post(f"/handoffs/{task.pk}/done/").status_code == 302

    task.refresh_from_db()
    assert (task.assigned_to, task.done_by) == (colleague, reviewer)
    assert isinstance(task.done_at, datetime)
    page = client.get("/handoffs/").content.decode()
    assert page.count('data-task-id="') == 4  # three open, one done
    client.force_login(opportunity.owner)
    assert client.post(f"/handoffs/{task.pk}/done/").status_code == 403
