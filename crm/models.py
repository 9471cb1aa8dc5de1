"""Accounts, contacts, users and their roles, money, and the notification outbox."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import models, transaction
from django.db.models import CharField, TextField
from django.db.models.functions import Length
from django.utils import timezone, translation
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from crm.bulk import insert_from_arrays  # registers field__any too
from crm.currencies import ISO_4217

# ContactErasure and ErasureRefused are importable from here, beside Contact.
from crm.erasure import (  # noqa: F401
    PERSONAL_FIELDS,
    ContactErasure,
    Erasable,
    ErasureRefused,
)

# `text__length__lte=...` in check constraints: the database enforces every text's limit.
CharField.register_lookup(Length)
TextField.register_lookup(Length)



def validate_single_line(value: str) -> None:
    """Refuse line breaks, tabs and other control characters where one line of text is
    meant: a name with a line break made every e-mail about its deal fail."""
    if any(unicodedata.category(character) == "Cc" for character in value):
        raise ValidationError(
            _("Write this on one line, without line breaks or other control characters."),
            code="control_characters",
        )


def validate_currency_code(value: str) -> None:
    if value not in ISO_4217:
        raise ValidationError(_("“%(code)s” is not an ISO 4217 currency code such as EUR."),
                              code="currency", params={"code": value})


class Role(models.TextChoices):
    """The four roles of process.md; each is a Django group of the same name."""

    REP = "rep", _("Account executive")
    BDR = "bdr", _("Business development")
    SALES_OPS = "sales_ops", _("Sales Ops")
    MANAGER = "manager", _("Manager")


class Team(models.Model):
    """A manager's team of account executives and BDRs."""

    name = models.CharField(_("name"), max_length=100, unique=True,
                            validators=[validate_single_line])
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("manager"),
        on_delete=models.PROTECT,
        related_name="led_teams",
        null=True,
        blank=True,
    )

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """A person working in the CRM; their role is the Django group they belong to."""

    team = models.ForeignKey(
        Team,
        verbose_name=_("team"),
        on_delete=models.PROTECT,
        related_name="members",
        null=True,
        blank=True,
    )

    language = models.CharField(
        _("language"), max_length=10, choices=settings.LANGUAGES,
        default=settings.LANGUAGE_CODE,
        help_text=_("Notifications and e-mails reach this user in this language."),
    )

    class Meta(AbstractUser.Meta):
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        return self.get_full_name() or self.username

    @cached_property
    def roles(self) -> frozenset[str]:
        """The role keys of this user, read once per request."""
        return frozenset(self.groups.filter(name__in=Role.values).values_list("name", flat=True))

    def has_role(self, role: Role) -> bool:
        return role in self.roles

    @property
    def is_rep(self) -> bool:
        return self.has_role(Role.REP)

    @property
    def is_bdr(self) -> bool:
        return self.has_role(Role.BDR)

    @property
    def is_sales_ops(self) -> bool:
        return self.has_role(Role.SALES_OPS)

    @property
    def is_manager(self) -> bool:
        return self.has_role(Role.MANAGER)

    @property
    def reviews_orders(self) -> bool:
        """Sales ops (and superusers) review purchase orders and own the hand-offs."""
        return self.is_superuser or self.is_sales_ops

    @property
    def handles_privacy_requests(self) -> bool:
        """Sales ops (and superusers) erase contacts on request and export what is stored
        about one (docs/decisions.md, "Erasing a contact")."""
        return self.is_superuser or self.is_sales_ops

    @property
    def sees_dead_pool(self) -> bool:
        """BDRs work the dead pool; managers and sales ops watch it (process.md, Roles)."""
        return self.is_superuser or self.is_bdr or self.is_manager or self.is_sales_ops

    @property
    def may_open_opportunities(self) -> bool:
        """Reps and BDRs open their own, managers their team's; sales ops and people
        without a role open none (whose, exactly: Opportunity.may_be_opened)."""
        return self.is_superuser or self.is_rep or self.is_bdr or self.is_manager

    @cached_property
    def team_ids(self) -> frozenset[int]:
        """Teams this user belongs to or leads: the opportunities a manager or rep sees."""
        led = set(self.led_teams.values_list("pk", flat=True)) if self.is_manager else set()
        if self.team_id:
            led.add(self.team_id)
        return frozenset(led)


class ImportedRecord(models.Model):
    """Where a record came from when it was imported from another CRM: the source system
    and the record's id there. Importing the same file again finds it by these instead of
    creating it twice; records made here leave both empty."""

    source_system = models.CharField(_("imported from"), max_length=20, blank=True)
    source_id = models.CharField(_("id in the source system"), max_length=100, blank=True)

    class Meta:
        abstract = True

    @classmethod
    def source_constraint(cls, name: str) -> models.UniqueConstraint:
        """One record per source id; records made here are not constrained."""
        return models.UniqueConstraint(fields=["source_system", "source_id"], name=name,
                                       condition=~models.Q(source_id=""))


class Account(ImportedRecord):
    """A customer company."""

    name = models.CharField(_("name"), max_length=200, validators=[validate_single_line])
    website = models.URLField(_("website"), blank=True)
    industry = models.CharField(_("industry"), max_length=100, blank=True,
                                validators=[validate_single_line])
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    archived_at = models.DateTimeField(_("archived"), null=True, blank=True)

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        ordering = ["name"]
        constraints = [ImportedRecord.source_constraint("account_source")]

    def __str__(self) -> str:
        return self.name

    def add_contact(self, *, first_name: str, last_name: str, title: str = "") -> Contact:
        return self.contacts.create(
            first_name=first_name.strip(), last_name=last_name.strip(), title=title.strip()
        )


class Contact(Erasable, ImportedRecord):
    """A person at an account: a possible champion or decision-committee member. Erased on
    request (crm/erasure.py): anonymised in place, never deleted."""

    account = models.ForeignKey(
        Account, verbose_name=_("account"), on_delete=models.PROTECT, related_name="contacts"
    )
    first_name = models.CharField(_("first name"), max_length=100,
                                  validators=[validate_single_line])
    last_name = models.CharField(_("last name"), max_length=100,
                                 validators=[validate_single_line])
    title = models.CharField(_("job title"), max_length=150, blank=True,
                             validators=[validate_single_line])
    email = models.EmailField(_("e-mail"), blank=True)
    phone = models.CharField(_("phone"), max_length=50, blank=True,
                             validators=[validate_single_line])
    archived_at = models.DateTimeField(_("archived"), null=True, blank=True)
    erased_at = models.DateTimeField(_("erased"), null=True, blank=True)

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        ordering = ["last_name", "first_name"]
        constraints = [
            # An erasure cannot be reversed by an edit: the database keeps it empty.
            models.CheckConstraint(
                condition=models.Q(erased_at__isnull=True)
                | models.Q(**dict.fromkeys(PERSONAL_FIELDS, ""), archived_at__isnull=False),
                name="contact_erased_stays_empty"),
            ImportedRecord.source_constraint("contact_source"),
        ]

    def __str__(self) -> str:
        if self.erased_at is not None:
            return _("Erased contact #%d") % self.pk
        return f"{self.first_name} {self.last_name}".strip()

    def save(self, *args, **kwargs) -> None:
        self.refuse_if_erased()
        super().save(*args, **kwargs)

    def restore(self) -> None:
        """Undo an archiving: the contact is offered again as champion or committee member."""
        self.archived_at = None
        self.save(update_fields=["archived_at"])


def company_currency() -> str:
    return settings.COMPANY_CURRENCY


class ExchangeRate(models.Model):
    """How much one unit of a foreign currency is worth in the company currency.

    Kept by sales ops. An amount whose currency has no rate is never summed raw: totals
    leave it out and say so.
    """

    currency = models.CharField(_("currency"), max_length=3, unique=True,
                                validators=[validate_currency_code])
    rate = models.DecimalField(
        _("rate to the company currency"), max_digits=18, decimal_places=8
    )
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("updated by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
    )

    class Meta:
        verbose_name = _("exchange rate")
        verbose_name_plural = _("exchange rates")
        ordering = ["currency"]
        constraints = [
            models.CheckConstraint(condition=models.Q(rate__gt=0), name="exchange_rate_positive")
        ]

    def __str__(self) -> str:
        return f"1 {self.currency} = {self.rate} {company_currency()}"

    @classmethod
    def validate_usable(cls, currency: str) -> None:
        """Refuse a currency no total could convert: a deal is written in the company
        currency or in an ISO 4217 currency sales ops keep a rate for."""
        validate_currency_code(currency)
        if currency != company_currency() and not cls.objects.filter(currency=currency).exists():
            raise ValidationError(
                _("There is no exchange rate for %(code)s: use %(company)s, or ask sales ops "
                  "to add the rate first."),
                code="no_rate", params={"code": currency, "company": company_currency()},
            )


def fiscal_quarter(day: date) -> tuple[int, int]:
    """The (fiscal year, quarter 1-4) a day falls in, following FISCAL_YEAR_START_MONTH.

    A fiscal year is named after the calendar year in which it ends, as most companies do.
    """
    start = settings.FISCAL_YEAR_START_MONTH
    months_into_year = (day.month - start) % 12
    quarter = months_into_year // 3 + 1
    year = day.year + 1 if start != 1 and day.month >= start else day.year
    return year, quarter


def fiscal_quarter_bounds(year: int, quarter: int) -> tuple[date, date]:
    """First day and first day after the given fiscal quarter."""
    start = settings.FISCAL_YEAR_START_MONTH
    first_month_index = (start - 1) + (quarter - 1) * 3  # months since January of year 0
    calendar_year = year - 1 if start != 1 else year
    first = date(calendar_year + first_month_index // 12, first_month_index % 12 + 1, 1)
    after_index = first_month_index + 3
    after = date(calendar_year + after_index // 12, after_index % 12 + 1, 1)
    return first, after


def fiscal_quarter_moments(year: int, quarter: int) -> tuple[datetime, datetime]:
    """The moments the fiscal quarter begins and ends, at midnight in the current time
    zone: what happened "in the quarter" happened between them."""
    first, after = fiscal_quarter_bounds(year, quarter)
    zone = timezone.get_current_timezone()
    return (datetime.combine(first, time.min, tzinfo=zone),
            datetime.combine(after, time.min, tzinfo=zone))


def quarter_from_text(value: str) -> tuple[int, int]:
    """(fiscal year, quarter) from "2027-Q1"; ValueError for anything else, or a quarter
    beyond the calendar (year 0, or after 9999)."""
    year, separator, quarter = value.partition("-Q")
    if not (separator and len(year) == 4 and year.isdigit() and quarter in "1234"
            and quarter):
        raise ValueError(value)
    fiscal_quarter_bounds(int(year), int(quarter))
    return int(year), int(quarter)


def business_days_between(start: date, end: date) -> int:
    """Weekdays after `start` up to and including `end` (weekends excluded; public
    holidays differ by country and are not known here)."""
    if end <= start:
        return 0
    weeks, rest = divmod((end - start).days, 7)
    tail = sum(1 for offset in range(1, rest + 1)
               if (start + timedelta(days=weeks * 7 + offset)).weekday() < 5)
    return weeks * 5 + tail


def fiscal_quarters_around(day: date, *, before: int, after: int) -> list[str]:
    """The fiscal quarters from `before` quarters earlier to `after` quarters later than
    the one `day` falls in, written as the board's filter takes them ("2027-Q1")."""
    year, quarter = fiscal_quarter(day)
    current = year * 4 + quarter - 1
    return [f"{index // 4}-Q{index % 4 + 1}"
            for index in range(current - before, current + after + 1)]


class NotificationQuerySet(models.QuerySet):
    def unread(self) -> NotificationQuerySet:
        return self.filter(read_at__isnull=True)


class Notification(models.Model):
    """The outbox: written in the transaction of the change it reports, delivered later.

    Shown in the app at once; the e-mail is sent by a Celery task with retries, so a broker
    or mail server that is down delays the e-mail and never fails the change.
    """

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recipient"),
        on_delete=models.PROTECT,
        related_name="notifications",
    )
    # Room for the longest opportunity name (200) and the words around it in any language;
    # send() shortens what would still not fit rather than fail the change it reports.
    subject = models.CharField(_("subject"), max_length=400)
    body = models.TextField(_("message"), max_length=10_000)
    link = models.CharField(_("link"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)
    emailed_at = models.DateTimeField(_("e-mailed"), null=True, blank=True, db_index=True)
    attempts = models.PositiveSmallIntegerField(_("delivery attempts"), default=0)
    last_error = models.TextField(_("last error"), max_length=2000, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at"]
        indexes = [
            # Every page counts the reader's unread ones; the list shows the newest first.
            models.Index(fields=["recipient"], condition=models.Q(read_at__isnull=True),
                         name="notification_unread"),
            models.Index(fields=["recipient", "-created_at"], name="notification_newest"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(body__length__lte=10_000),
                                   name="notification_body_length"),
            models.CheckConstraint(condition=models.Q(last_error__length__lte=2000),
                                   name="notification_error_length"),
        ]

    def __str__(self) -> str:
        return self.subject

    MAX_ATTEMPTS = 10
    SUBJECT_LENGTH = 400
    BODY_LENGTH = 10_000
    ERROR_LENGTH = 2000

    def mark_read(self) -> None:
        """The first reading counts; opening it again changes nothing."""
        if self.read_at is None:
            self.read_at = timezone.now()
            Notification.objects.filter(pk=self.pk, read_at__isnull=True).update(
                read_at=self.read_at)

    @classmethod
    def send(cls, recipient: User, subject: str, body: str, link: str = "") -> Notification:
        """Queue a notification inside the current transaction; e-mail it after commit.

        A rolled-back change takes its notification with it, and nothing is published
        for a row the worker could not see yet.
        """
        notification = cls.objects.create(
            recipient=recipient, subject=one_line(subject, cls.SUBJECT_LENGTH),
            body=shortened(body, cls.BODY_LENGTH), link=link,
        )
        from crm.tasks import deliver_notification

        transaction.on_commit(lambda: enqueue_quietly(deliver_notification, notification.pk))
        return notification

    @classmethod
    def send_many(cls, messages: Iterable[tuple[int, str, str, str]]) -> list[int]:
        """Queue many notifications as send() queues one: (recipient id, subject, body,
        link) each, written in one INSERT, e-mailed after commit by one task for them all.

        For sweeps that change thousands of rows at once: a task per notification would
        cost the broker a round trip each. Returns the ids.
        """
        pks = insert_from_arrays(
            cls, {"recipient_id": "bigint", "subject": "text", "body": "text", "link": "text"},
            [(recipient_id, one_line(subject, cls.SUBJECT_LENGTH),
              shortened(body, cls.BODY_LENGTH), link)
             for recipient_id, subject, body, link in messages],
            {"created_at": timezone.now(), "attempts": 0, "last_error": ""})
        if pks:
            from crm.tasks import deliver_notifications

            transaction.on_commit(lambda: enqueue_quietly(deliver_notifications, pks))
        return pks

    @classmethod
    def send_in_their_language(cls, recipient: User, write, link: str = "") -> Notification:
        """Queue a notification whose text `write()` returns as (subject, body), written
        in the recipient's language rather than the language of whoever caused it."""
        with translation.override(recipient.language):
            subject, body = write()
        return cls.send(recipient, str(subject), str(body), link)

    @classmethod
    def undelivered(cls) -> models.QuerySet[Notification]:
        return cls.objects.filter(emailed_at__isnull=True, attempts__lt=cls.MAX_ATTEMPTS)

    @classmethod
    def due_for_delivery(cls, now=None) -> list[int]:
        """Undelivered notifications worth a try at `now` (a datetime, default now).

        Never tried: at once (the broker was down when it was queued). Failed before: the
        wait doubles with every attempt (2, 4, 8 ... minutes after it was queued), so a mail
        server that is down for hours does not use up the attempts in minutes.
        """

        now = now or timezone.now()
        return [
            pk
            for pk, created_at, attempts in cls.undelivered()
            .order_by("created_at", "pk")
            .values_list("pk", "created_at", "attempts")
            if created_at + timedelta(minutes=2**attempts) <= now or not attempts
        ]

    @classmethod
    def deliver(cls, pk: int) -> bool:
        """E-mail one notification unless already done; True when this call sent it.

        The row stays locked while the e-mail goes out, so two workers never both send it,
        and a worker that dies mid-send leaves it undelivered for the next try: at worst
        one e-mail twice, never one lost. A mail server error is recorded, then raised.
        """
        with transaction.atomic():
            notification = (
                cls.undelivered()
                .select_for_update(skip_locked=True, of=("self",))
                .select_related("recipient")
                .filter(pk=pk)
                .first()
            )
            if notification is None:
                return False
            notification.attempts += 1
            try:
                sent = notification._email()
            except Exception as error:
                notification.last_error = shortened(str(error) or repr(error), cls.ERROR_LENGTH)
                notification.save(update_fields=["attempts", "last_error"])
                if notification.attempts >= cls.MAX_ATTEMPTS:
                    import logging

                    logging.getLogger(__name__).error(
                        "Gave up e-mailing notification %s after %s attempts: %s",
                        pk, notification.attempts, notification.last_error,
                    )
                failure = error
            else:
                notification.emailed_at = timezone.now()
                notification.last_error = ""
                notification.save(update_fields=["attempts", "emailed_at", "last_error"])
                return sent
        # Raised outside the block so the recorded attempt and error are committed.
        raise failure

    @classmethod
    def deliver_due(cls, now=None) -> int:
        """Deliver what is due at `now`; how many e-mails went out. Safe to run twice at once.

        A notification that fails again keeps its error and waits for its next turn.
        """
        return cls.deliver_each(cls.due_for_delivery(now))

    @classmethod
    def deliver_each(cls, pks: Iterable[int]) -> int:
        """Deliver these notifications; how many e-mails went out. One that fails keeps
        its error and is left to the periodic sweep, the others go out."""
        delivered = 0
        for pk in pks:
            try:
                delivered += cls.deliver(pk)
            except Exception:
                continue
        return delivered

    def _email(self) -> bool:
        """Send the e-mail; False when the recipient has no address (nothing to retry)."""
        if not self.recipient.email:
            return False
        # One line however the row was written: a line break in a subject is refused by
        # the mail library, and the e-mail would fail at every attempt.
        send_mail(one_line(self.subject, self.SUBJECT_LENGTH), self.email_body(), None,
                  [self.recipient.email])
        return True

    def email_body(self) -> str:
        """The text, and the link to what it is about as a full address (SITE_URL)."""
        if not self.link:
            return self.body
        return f"{self.body}\n\n{settings.SITE_URL}{self.link}"


def shortened(text: str, length: int) -> str:
    """The text, cut to `length` characters with an ellipsis when it is longer."""
    return text if len(text) <= length else text[: length - 1] + "…"


def one_line(text: str, length: int) -> str:
    """The text on one line (line breaks and runs of spaces become one space), shortened."""
    return shortened(" ".join(text.split()), length)


# A spreadsheet runs a cell starting with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(value) -> str:
    """The value as the text of a CSV cell that a spreadsheet never runs as a formula."""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def enqueue_quietly(task, *args) -> None:
    """Publish a task; when the broker is down, log and leave it to the periodic sweep.

    The change that queued it has committed and its user is waiting for the page, so this
    tries the broker once more without pausing instead of kombu's default retry with a
    two-second sleep; a broker that does not answer costs the connect timeout at most.
    """
    import logging

    app = task.app
    try:
        if app.conf.task_always_eager:
            task.apply_async(args=args)
            return
        with app.producer_or_acquire() as producer:
            producer.connection.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0,
                timeout=app.conf.broker_connection_timeout,
            )
            task.apply_async(args=args, producer=producer, retry=False)
    except Exception:
        logging.getLogger(__name__).warning(
            "Broker unavailable; %s%r stays in the outbox for the sweep", task.name, args
        )


from crm.tokens import ApiToken  # noqa: E402,F401  (a model of this app, in its own module)
