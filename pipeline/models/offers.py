"""The offer: what was agreed with the customer, line by line (process.md, stages 4 to 6).

Edited while negotiating; frozen as agreed when the opportunity leaves Negotiating
forward, and open again only after a move back there. Once an offer exists, the
opportunity's amount follows its total.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.models import validate_single_line
from pipeline.models.choices import Via
from pipeline.models.refusals import ChangeForbidden, InvalidChange

CENT = Decimal("0.01")


class Terms(models.TextChoices):
    OURS = "ours", _("Our terms and conditions, as agreed")
    CUSTOMER = "customer", _("The customer's own terms")


class LineKind(models.TextChoices):
    PRODUCT = "product", _("Product")
    SERVICE = "service", _("Service")


class Offer(models.Model):
    """One offer per opportunity, in the opportunity's currency."""

    opportunity = models.OneToOneField(
        "pipeline.Opportunity", verbose_name=_("opportunity"), on_delete=models.PROTECT,
        related_name="offer",
    )
    service_start = models.DateField(_("service starts"))
    service_end = models.DateField(_("service ends"))
    payment_terms = models.CharField(_("payment terms"), max_length=200,
                                     validators=[validate_single_line])
    terms = models.CharField(_("terms and conditions"), max_length=20, choices=Terms.choices,
                             default=Terms.OURS)
    agreed_at = models.DateTimeField(_("agreed"), null=True, blank=True)
    changed_at = models.DateTimeField(_("last changed"), default=timezone.now)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("last changed by"), on_delete=models.PROTECT,
        null=True, blank=True, related_name="+",
    )

    class Meta:
        verbose_name = _("offer")
        verbose_name_plural = _("offers")
        constraints = [
            models.CheckConstraint(condition=Q(service_end__gte=models.F("service_start")),
                                   name="offer_period"),
        ]

    def __str__(self) -> str:
        return str(self.opportunity)

    @property
    def is_agreed(self) -> bool:
        return self.agreed_at is not None

    def current_lines(self) -> list[OfferLine]:
        """The lines that count, read once per instance."""
        if "_current_lines" not in self.__dict__:  # lines.all() takes a prefetch as it is
            self._current_lines = [line for line in self.lines.all() if line.removed_at is None]
        return self._current_lines

    def total(self) -> Decimal:
        return sum((line.net_price for line in self.current_lines()), Decimal("0.00"))


class OfferLine(models.Model):
    """A product or service of the offer. Never deleted: a removed line is marked."""

    offer = models.ForeignKey(Offer, verbose_name=_("offer"), on_delete=models.PROTECT,
                              related_name="lines")
    kind = models.CharField(_("kind"), max_length=20, choices=LineKind.choices,
                            default=LineKind.PRODUCT)
    description = models.CharField(_("description"), max_length=200,
                                   validators=[validate_single_line])
    quantity = models.DecimalField(_("quantity"), max_digits=10, decimal_places=2,
                                   validators=[MinValueValidator(CENT)])
    list_price = models.DecimalField(_("list price"), max_digits=14, decimal_places=2,
                                     validators=[MinValueValidator(0)])
    discount_percent = models.DecimalField(
        _("discount (%)"), max_digits=5, decimal_places=2, default=Decimal(0),
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )
    added_at = models.DateTimeField(_("added"), default=timezone.now)
    removed_at = models.DateTimeField(_("removed"), null=True, blank=True)

    class Meta:
        verbose_name = _("offer line")
        verbose_name_plural = _("offer lines")
        ordering = ["added_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="offer_line_quantity"),
            models.CheckConstraint(condition=Q(list_price__gte=0), name="offer_line_price"),
            models.CheckConstraint(condition=Q(discount_percent__gte=0,
                                               discount_percent__lte=100),
                                   name="offer_line_discount"),
        ]

    def __str__(self) -> str:
        return self.description

    @property
    def net_price(self) -> Decimal:
        """Quantity times list price, less the discount, to the cent."""
        gross = self.quantity * self.list_price
        return (gross * (100 - self.discount_percent) / 100).quantize(CENT, ROUND_HALF_UP)


class Offering:
    """The offer side of an opportunity, mixed into Opportunity: each change locks the
    opportunity, checks, writes, lets the amount follow the total and bumps the version."""

    def current_offer(self) -> Offer | None:
        try:
            return self.offer
        except Offer.DoesNotExist:
            return None

    def save_offer(self, *, by, service_start, service_end, payment_terms: str,
                   terms: str = Terms.OURS, expected_version: int | None = None,
                   via: Via = Via.PAGE) -> Offer:
        """Write the offer's period and terms, making the offer when there is none."""
        if service_end < service_start:
            raise InvalidChange(gettext("The service cannot end before it starts."))
        now = timezone.now()
        with transaction.atomic():
            locked = self._lock_for_offer(by, expected_version)
            offer = locked.current_offer() or Offer(opportunity=locked)
            offer.service_start, offer.service_end = service_start, service_end
            offer.payment_terms, offer.terms = payment_terms.strip(), Terms(terms)
            offer.changed_at, offer.changed_by = now, by
            offer.save()
            locked._follow_offer(offer, by, now, via)
        self.reload()
        return offer

    def add_offer_line(self, *, by, description: str, quantity: Decimal, list_price: Decimal,
                       discount_percent: Decimal = Decimal(0), kind: str = LineKind.PRODUCT,
                       expected_version: int | None = None, via: Via = Via.PAGE) -> OfferLine:
        if quantity <= 0 or list_price < 0 or not 0 <= discount_percent <= 100:
            raise InvalidChange(gettext("A line needs a quantity above zero, a price of zero "
                                        "or more and a discount between 0 and 100 %."))
        now = timezone.now()
        with transaction.atomic():
            locked = self._lock_for_offer(by, expected_version)
            offer = locked.current_offer()
            if offer is None:
                raise InvalidChange(gettext("Give the offer its service period and terms "
                                            "first."))
            line = offer.lines.create(kind=LineKind(kind), description=description.strip(),
                                      quantity=quantity, list_price=list_price,
                                      discount_percent=discount_percent, added_at=now)
            locked._follow_offer(offer, by, now, via)
        self.reload()
        return line

    def remove_offer_line(self, line_id: int, *, by, expected_version: int | None = None,
                          via: Via = Via.PAGE):
        now = timezone.now()
        with transaction.atomic():
            locked = self._lock_for_offer(by, expected_version)
            offer = locked.current_offer()
            removed = offer and offer.lines.filter(pk=line_id, removed_at__isnull=True).update(
                removed_at=now)
            if not removed:
                raise InvalidChange(gettext("That line is not on the offer."))
            locked._follow_offer(offer, by, now, via)
        self.reload()

    def _lock_for_offer(self, by, expected_version):
        locked = self._lock(expected_version, by)
        if not locked.can_edit(by):
            raise ChangeForbidden(gettext("You may not change “%s”.") % locked.name)
        offer = locked.current_offer()
        if offer is not None and offer.is_agreed:
            raise InvalidChange(gettext(
                "The offer was agreed when “%s” left Negotiating; move it back there to "
                "change the offer.") % locked.name)
        return locked

    def _follow_offer(self, offer: Offer, by, now, via: Via) -> None:
        """The amount follows the offer's total once the offer has lines; the change is
        recorded like any amount change."""
        offer.__dict__.pop("_current_lines", None)
        total = offer.total()
        if offer.current_lines() and total != self.amount:
            self._record_field_change("amount", self.amount, total, by, via, now)
            self.amount = total
            self._extend_if_doubled(now)
        self._touch(by, now)
        self.save()

    def _agree_offer(self, now) -> None:
        """Leaving Negotiating forward freezes the offer as agreed."""
        Offer.objects.filter(opportunity=self, agreed_at__isnull=True).update(agreed_at=now)

    def _reopen_offer(self) -> None:
        """Back in Negotiating or earlier, the offer is open for changes again."""
        Offer.objects.filter(opportunity=self, agreed_at__isnull=False).update(agreed_at=None)
