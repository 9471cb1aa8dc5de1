"""Purchase orders, sales ops' review of them, and the hand-off tasks of a won deal
(process.md, stages 6 to 8).

The rep records the order at Finalizing; "the purchase order was received and recorded"
holds while the latest order is not rejected. Sales ops approve it (the deal closes and
the hand-off tasks appear) or reject it with the failed checks (back to Finalizing).
"""

from __future__ import annotations

import uuid
import zipfile
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.core.files.storage import storages
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.localized import day
from crm.models import Role, User, validate_currency_code, validate_single_line
from pipeline.models.choices import Via
from pipeline.models.offers import Offer, OfferLine, Terms
from pipeline.models.refusals import (
    TEXT_LENGTH,
    ChangeForbidden,
    InvalidChange,
    within_limit,
)
from pipeline.process import Stage

# What a purchase order's document may be, recognised by its first bytes, never its name.
DOCUMENT_TYPES = {
    "pdf": ("application/pdf", "PDF"),
    "png": ("image/png", "PNG"),
    "jpeg": ("image/jpeg", "JPEG"),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document",
             "Word"),
    "doc": ("application/msword", "Word 97-2003"),
}
MAX_DOCUMENT_BYTES = 10 * 1024 * 1024


def document_storage():
    """Outside the static and media URLs: documents are served only through a view that
    checks who may see the opportunity (settings.STORAGES["documents"])."""
    return storages["documents"]


def recognise_document(upload) -> str | None:
    """The document's kind from its content, or None for anything else (a renamed
    program, a spreadsheet, a zip that is no Word document)."""
    upload.seek(0)
    head = upload.read(8)
    upload.seek(0)
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(upload) as archive:
                names = set(archive.namelist())
        except zipfile.BadZipFile:
            return None
        finally:
            upload.seek(0)
        return "docx" if {"[Content_Types].xml", "word/document.xml"} <= names else None
    if head == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":  # an OLE container: Word 97-2003 or not
        content = upload.read()
        upload.seek(0)
        return "doc" if "WordDocument".encode("utf-16-le") in content else None
    return None


class ReviewCheck(models.TextChoices):
    """The four checks sales ops confirm before an order counts (process.md, stage 7)."""

    TERMS = "terms", _("The agreed terms apply")
    PRICES = "prices", _("Prices and discounts are as agreed")
    PERIODS = "periods", _("The service period is as agreed")
    COVERAGE = "coverage", _("Every line of the offer is covered")


class Outcome(models.TextChoices):
    APPROVED = "approved", _("approved")
    REJECTED = "rejected", _("rejected")


class PurchaseOrder(models.Model):
    """An order the customer sent, as the rep recorded it. Never deleted; a rejected one
    stays, and the next one recorded replaces it as the current order."""

    opportunity = models.ForeignKey(
        "pipeline.Opportunity", verbose_name=_("opportunity"), on_delete=models.PROTECT,
        related_name="purchase_orders",
    )
    number = models.CharField(_("order number"), max_length=100,
                              validators=[validate_single_line])
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3,
                                validators=[validate_currency_code])
    document = models.FileField(_("document"), storage=document_storage,
                                upload_to="purchase-orders/%Y/%m/", max_length=200)
    document_name = models.CharField(_("file name"), max_length=200)
    document_type = models.CharField(_("kind of document"), max_length=10,
                                     choices=[(k, label) for k, (_t, label) in
                                              DOCUMENT_TYPES.items()])
    terms = models.CharField(_("terms it references"), max_length=20, choices=Terms.choices)
    service_start = models.DateField(_("service starts"))
    service_end = models.DateField(_("service ends"))
    covered_lines = models.ManyToManyField(OfferLine, verbose_name=_("offer lines covered"),
                                           blank=True, related_name="+")
    recorded_at = models.DateTimeField(_("recorded"), default=timezone.now)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("recorded by"), on_delete=models.PROTECT,
        related_name="+",
    )
    outcome = models.CharField(_("review"), max_length=20, choices=Outcome.choices,
                               blank=True)
    failed_checks = models.JSONField(_("failed checks"), default=list, blank=True)
    review_note = models.TextField(_("review note"), max_length=TEXT_LENGTH, blank=True)
    reviewed_at = models.DateTimeField(_("reviewed"), null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("reviewed by"), on_delete=models.PROTECT,
        null=True, blank=True, related_name="+",
    )

    class Meta:
        verbose_name = _("purchase order")
        verbose_name_plural = _("purchase orders")
        ordering = ["recorded_at", "pk"]
        indexes = [models.Index(fields=["opportunity", "recorded_at"], name="order_latest")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="order_amount"),
            models.CheckConstraint(condition=Q(service_end__gte=models.F("service_start")),
                                   name="order_period"),
            models.CheckConstraint(condition=Q(review_note__length__lte=TEXT_LENGTH),
                                   name="order_review_note_length"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def content_type(self) -> str:
        return DOCUMENT_TYPES[self.document_type][0]

    @property
    def failed_check_labels(self) -> list[str]:
        return [str(ReviewCheck(check).label) for check in self.failed_checks]

    def mismatches(self, offer: Offer | None) -> dict[str, list[str]]:
        """What differs from the agreed offer, by the check it concerns: flagged for
        sales ops, who still confirm each check themselves."""
        found: dict[str, list[str]] = {check: [] for check in ReviewCheck.values}
        if offer is None:
            found[ReviewCheck.PRICES].append(gettext("There is no agreed offer to compare."))
            return found
        if self.terms == Terms.CUSTOMER or offer.terms == Terms.CUSTOMER:
            found[ReviewCheck.TERMS].append(gettext("The order references the customer's own "
                                                    "terms."))
        total, currency = offer.total(), offer.opportunity.currency
        if (self.amount, self.currency) != (total, currency):
            found[ReviewCheck.PRICES].append(
                gettext("The order is for %(order)s %(order_currency)s; the offer comes to "
                        "%(offer)s %(offer_currency)s.")
                % {"order": self.amount, "order_currency": self.currency, "offer": total,
                   "offer_currency": currency})
        if (self.service_start, self.service_end) != (offer.service_start, offer.service_end):
            found[ReviewCheck.PERIODS].append(
                gettext("The order's service period is %(order)s; the offer's is %(offer)s.")
                % {"order": period(self.service_start, self.service_end),
                   "offer": period(offer.service_start, offer.service_end)})
        covered = {line.pk for line in self.covered_lines.all()}
        for line in offer.current_lines():
            if line.pk not in covered:
                found[ReviewCheck.COVERAGE].append(
                    gettext("“%s” is not covered by the order.") % line.description)
        return found


def period(start: date, end: date) -> str:
    return f"{day(start)} – {day(end)}"


class HandoffKind(models.TextChoices):
    """What sales ops books once a deal closes (process.md, stage 8)."""

    REVENUE = "revenue", _("Revenue recognition")
    ACTIVATION = "activation", _("Product activation by support")
    STAFFING = "staffing", _("Professional services staffing")
    COMMISSION = "commission", _("Commission credited to the owner")


class HandoffTask(models.Model):
    """One hand-off after closing; ticked off by sales ops (who, when), never deleted."""

    opportunity = models.ForeignKey(
        "pipeline.Opportunity", verbose_name=_("opportunity"), on_delete=models.PROTECT,
        related_name="handoff_tasks",
    )
    kind = models.CharField(_("task"), max_length=20, choices=HandoffKind.choices)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("assigned to"), on_delete=models.PROTECT,
        null=True, blank=True, related_name="handoff_tasks",
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    done_at = models.DateTimeField(_("done"), null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("done by"), on_delete=models.PROTECT,
        null=True, blank=True, related_name="+",
    )

    class Meta:
        verbose_name = _("hand-off task")
        verbose_name_plural = _("hand-off tasks")
        ordering = ["created_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["opportunity", "kind"],
                                               name="handoff_once_per_kind")]
        indexes = [models.Index(fields=["done_at", "created_at"], name="handoff_open")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.opportunity}"

    def mark_done(self, *, by: User) -> None:
        """Sales ops tick a task off; ticking it again changes nothing."""
        if not by.reviews_orders:
            raise ChangeForbidden(gettext("Only sales ops tick off hand-off tasks."))
        HandoffTask.objects.filter(pk=self.pk, done_at__isnull=True).update(
            done_at=timezone.now(), done_by=by)
        self.refresh_from_db()

    def assign(self, colleague: User, *, by: User) -> None:
        if not by.reviews_orders:
            raise ChangeForbidden(gettext("Only sales ops assign hand-off tasks."))
        if not (colleague.is_active and colleague.is_sales_ops):
            raise InvalidChange(gettext("%s is not in sales ops.") % colleague)
        self.assigned_to = colleague
        self.save(update_fields=["assigned_to"])

    @staticmethod
    def sales_ops_colleagues():
        return User.objects.filter(is_active=True, groups__name=Role.SALES_OPS).order_by(
            "first_name", "last_name", "username")


class Ordering:
    """The purchase-order side of an opportunity, mixed into Opportunity."""

    def current_purchase_order(self) -> PurchaseOrder | None:
        """The latest order recorded, read once per instance (count_progress fills it
        for a board's cards)."""
        if "_current_order" not in self.__dict__:
            self._current_order = self.purchase_orders.order_by("-recorded_at", "-pk").first()
        return self._current_order

    def has_valid_purchase_order(self) -> bool:
        order = self.current_purchase_order()
        return order is not None and order.outcome != Outcome.REJECTED

    def record_purchase_order(self, *, by: User, number: str, amount: Decimal, currency: str,
                              document, terms: str, service_start: date, service_end: date,
                              lines=(), expected_version: int | None = None) -> PurchaseOrder:
        """Record the order the customer sent, at Finalizing, with its document."""
        kind = self._checked_document(document)
        if service_end < service_start:
            raise InvalidChange(gettext("The service cannot end before it starts."))
        if amount < 0:
            raise InvalidChange(gettext("The amount cannot be negative."))
        now = timezone.now()
        order = PurchaseOrder(
            number=number.strip(), amount=amount, currency=currency.upper(),
            document_name=" ".join(document.name.split())[:200], document_type=kind,
            terms=Terms(terms), service_start=service_start, service_end=service_end,
            recorded_at=now, recorded_by=by,
        )
        try:
            with transaction.atomic():
                locked = self._lock(expected_version, by)
                if not locked.can_edit(by):
                    raise ChangeForbidden(gettext("You may not change “%s”.") % locked.name)
                if locked.stage != Stage.FINALIZING:
                    raise InvalidChange(gettext("A purchase order is recorded in %s.")
                                        % Stage.FINALIZING.label)
                offer = locked.current_offer()
                offered = {line.pk: line for line in offer.current_lines()} if offer else {}
                unknown = {int(pk) for pk in lines} - set(offered)
                if unknown:
                    raise InvalidChange(gettext("Those lines are not on the offer."))
                order.opportunity = locked
                order.document.save(f"{uuid.uuid4().hex}.{kind}", document, save=False)
                order.save()
                order.covered_lines.set([offered[int(pk)] for pk in lines])
                locked._touch(by, now)
                locked.save()
        except BaseException:
            if order.document.name:
                order.document.delete(save=False)  # the row went; its file goes too
            raise
        self.reload()
        return order

    @staticmethod
    def _checked_document(document) -> str:
        if document is None:
            raise InvalidChange(gettext("Attach the purchase order's document."))
        if document.size > MAX_DOCUMENT_BYTES:
            raise InvalidChange(gettext("The document has %(size)d MB; at most %(limit)d MB "
                                        "are accepted.")
                                % {"size": -(-document.size // 2**20),
                                   "limit": MAX_DOCUMENT_BYTES // 2**20})
        kind = recognise_document(document)
        if kind is None:
            raise InvalidChange(gettext("The document is not a PDF, PNG, JPEG or Word file. "
                                        "Nothing was stored."))
        return kind

    def approve_order(self, *, by: User, confirmed: set[str],
                      expected_version: int | None = None) -> None:
        """Sales ops confirm all four checks: the deal closes and its hand-offs appear."""
        missing = [ReviewCheck(check).label for check in ReviewCheck.values
                   if check not in confirmed]
        if missing:
            raise InvalidChange(gettext("Confirm every check before approving: %s.")
                                % "; ".join(str(label) for label in missing))
        with transaction.atomic():
            order = self._order_under_review(by, expected_version)
            self.move_to(Stage.CLOSED, by=by, via=Via.REVIEW,
                         reason=gettext("Purchase order %s approved.") % order.number)
            order.outcome, order.reviewed_at, order.reviewed_by = (
                Outcome.APPROVED, timezone.now(), by)
            order.save(update_fields=["outcome", "reviewed_at", "reviewed_by"])
            HandoffTask.objects.bulk_create([
                HandoffTask(opportunity=self, kind=kind, created_at=order.reviewed_at)
                for kind in HandoffKind.values
            ])

    def reject_order(self, *, by: User, failed: set[str], note: str,
                     expected_version: int | None = None) -> None:
        """Sales ops send the order back with the checks that failed and why: the deal
        returns to Finalizing and the owner is told."""
        failed = [check for check in ReviewCheck.values if check in failed]
        note = within_limit((note or "").strip(), gettext("The note"))
        if not failed or not note:
            raise InvalidChange(gettext("Say which checks failed and why."))
        with transaction.atomic():
            order = self._order_under_review(by, expected_version)
            labels = "; ".join(str(ReviewCheck(check).label) for check in failed)
            self.move_to(Stage.FINALIZING, by=by, via=Via.REVIEW,
                         reason=within_limit(
                             gettext("Purchase order %(number)s rejected. Failed: %(checks)s. "
                                     "%(note)s") % {"number": order.number, "checks": labels,
                                                    "note": note},
                             gettext("The note")))
            order.outcome, order.reviewed_at, order.reviewed_by = (
                Outcome.REJECTED, timezone.now(), by)
            order.failed_checks, order.review_note = failed, note
            order.save(update_fields=["outcome", "reviewed_at", "reviewed_by",
                                      "failed_checks", "review_note"])
        self.__dict__.pop("_current_order", None)

    def _order_under_review(self, by: User, expected_version: int | None) -> PurchaseOrder:
        locked = self._lock(expected_version, by)
        if by is None or not by.reviews_orders:
            raise ChangeForbidden(gettext("Only sales ops approve or reject an order."))
        if locked.stage != Stage.PENDING:
            raise InvalidChange(gettext("“%s” is not waiting for a review.") % locked.name)
        order = locked.purchase_orders.order_by("-recorded_at", "-pk").first()
        if order is None or order.outcome:
            raise InvalidChange(gettext("There is no purchase order to review."))
        return order
