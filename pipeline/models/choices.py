"""Where a change came from, and what kind of deal it is."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Via(models.TextChoices):
    """Where a change came from."""

    BOARD = "board", _("board")
    PAGE = "page", _("opportunity page")
    API = "api", _("API")
    TIMEOUT = "timeout", _("timeout")
    ADMIN = "admin", _("admin")
    REVIEW = "review", _("order review")
    IMPORT = "import", _("import")
    SEED = "seed", _("demo data")


class OpportunityType(models.TextChoices):
    NEW_BUSINESS = "new_business", _("New business")
    UPSELL = "upsell", _("Upsell")
    CROSS_SELL = "cross_sell", _("Cross-sell")


class Source(models.TextChoices):
    WEBINAR = "webinar", _("Webinar")
    EVENT = "event", _("Event")
    INBOUND = "inbound", _("Inbound")
    OUTBOUND = "outbound", _("Outbound")
    EXISTING_CUSTOMER = "existing_customer", _("Existing customer")
    PARTNER = "partner", _("Partner")
