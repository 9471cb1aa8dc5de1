"""Work with the customer: calls, meetings and e-mails logged on an opportunity, planned
or done. What the stage 1 criterion "the next call is scheduled", the board's cards and
the timeouts' activity rule read."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.models import Contact, User, validate_single_line
from pipeline.models.refusals import TEXT_LENGTH, ChangeForbidden, InvalidChange, within_limit
from pipeline.process import Stage

# A done activity may be logged a moment ahead of the server's clock (the form has
# minutes, the clock seconds), not more.
CLOCK_SLACK = timedelta(minutes=5)
# How far ahead an activity may be planned: further is a typo, and a date near the end
# of the calendar would overflow its end time.
HORIZON = timedelta(days=10 * 365)
# What a card knows of what is planned (queries.read_planned_activities, or
# Activities._read_planned_ahead for one opportunity); a change reads them afresh.
ACTIVITY_ANNOTATIONS = ("next_activity_at", "next_activity_kind", "conversation_ahead")


class ActivityKind(models.TextChoices):
    CALL = "call", _("Call")
    MEETING = "meeting", _("Meeting")
    EMAIL = "email", _("E-mail")


# Talking to the customer, as opposed to writing to them: what the stage 1 criterion and
# the timeouts' activity rule count.
CONVERSATIONS = (ActivityKind.CALL, ActivityKind.MEETING)


class ActivityStatus(models.TextChoices):
    PLANNED = "planned", _("planned")
    DONE = "done", _("done")
    CANCELLED = "cancelled", _("cancelled")


class ActivityQuerySet(models.QuerySet):
    def planned_ahead(self, now: datetime) -> ActivityQuerySet:
        """Planned and not yet due: what a card and the stage 1 criterion look forward to."""
        return self.filter(status=ActivityStatus.PLANNED, at__gt=now)

    def conversations_done_within(self, since: datetime, now: datetime) -> ActivityQuerySet:
        """Calls and meetings done between `since` and `now`, both included."""
        return self.filter(status=ActivityStatus.DONE, kind__in=CONVERSATIONS,
                           at__gte=since, at__lte=now)


class Activity(models.Model):
    """A call, meeting or e-mail with the customer. Never deleted: a planned one is marked
    done or cancelled."""

    DEFAULT_MINUTES = 30

    opportunity = models.ForeignKey(
        "pipeline.Opportunity", verbose_name=_("opportunity"), on_delete=models.PROTECT,
        related_name="activities",
    )
    kind = models.CharField(_("kind"), max_length=10, choices=ActivityKind.choices)
    status = models.CharField(_("status"), max_length=10, choices=ActivityStatus.choices)
    at = models.DateTimeField(_("when"))
    minutes = models.PositiveSmallIntegerField(_("duration in minutes"),
                                               default=DEFAULT_MINUTES)
    subject = models.CharField(_("subject"), max_length=200, validators=[validate_single_line])
    notes = models.TextField(_("notes"), max_length=TEXT_LENGTH, blank=True)
    contacts = models.ManyToManyField(Contact, verbose_name=_("contacts"), related_name="+",
                                      blank=True)
    logged_at = models.DateTimeField(_("logged"), default=timezone.now)
    logged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("logged by"), on_delete=models.PROTECT,
        null=True, related_name="+",
    )
    closed_at = models.DateTimeField(_("marked done or cancelled"), null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("marked done or cancelled by"),
        on_delete=models.PROTECT, null=True, blank=True, related_name="+",
    )

    objects = ActivityQuerySet.as_manager()

    class Meta:
        verbose_name = _("activity")
        verbose_name_plural = _("activities")
        ordering = ["-at", "-pk"]
        indexes = [
            # The card's next planned activity and the activity rule's count, per
            # opportunity, come straight off this index.
            models.Index(fields=["opportunity", "status", "at"], name="activity_by_status"),
            # The sweep's activity rule starts from the recent done ones.
            models.Index(fields=["status", "at"], name="activity_status_at"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(notes__length__lte=TEXT_LENGTH),
                                   name="activity_notes_length"),
            models.CheckConstraint(condition=Q(minutes__gte=1, minutes__lte=24 * 60),
                                   name="activity_minutes_within_a_day"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.subject}"

    @property
    def ends_at(self) -> datetime:
        return self.at + timedelta(minutes=self.minutes)

    @property
    def is_planned(self) -> bool:
        return self.status == ActivityStatus.PLANNED

    @property
    def has_calendar_entry(self) -> bool:
        """A planned meeting goes into the rep's calendar as an .ics file."""
        return self.is_planned and self.kind == ActivityKind.MEETING


class Activities:
    """The activity side of an opportunity, mixed into Opportunity: logging work with the
    customer and reading what is planned. Each change locks the opportunity, as the
    timeouts' activity rule does when it counts; the version is left alone, since an
    activity changes no field of the opportunity that a form on its page holds."""

    def activities_may_be_logged_by(self, user: User | None) -> bool:
        """Who may log, complete and cancel activities: whoever may edit the opportunity,
        and on a dead one the BDR holding its open claim, who nurtures it (issue #11).
        The one question every view asks."""
        if self.can_edit(user):
            return True
        return self.stage == Stage.DEAD and self.is_claimed_by(user)

    def next_planned(self) -> tuple[datetime | None, str | None]:
        """When the soonest activity still ahead is planned, and its kind; (None, None)
        when nothing is planned."""
        self._read_planned_ahead()
        return self.next_activity_at, self.next_activity_kind

    def has_conversation_ahead(self) -> bool:
        """A call or meeting is planned in the future (stage 1's "next call is scheduled")."""
        self._read_planned_ahead()
        return self.conversation_ahead

    def _read_planned_ahead(self) -> None:
        """What is planned ahead, in one query, once per instance (reload() forgets it);
        a board's cards bring it read for all of them (queries.read_planned_activities)."""
        if all(name in self.__dict__ for name in ACTIVITY_ANNOTATIONS):
            return
        planned = list(self.activities.planned_ahead(timezone.now()).order_by("at", "pk")
                       .values_list("at", "kind"))
        self.next_activity_at, self.next_activity_kind = planned[0] if planned else (None, None)
        self.conversation_ahead = any(kind in CONVERSATIONS for _at, kind in planned)

    def log_activity(self, *, by: User, kind: str, at: datetime, subject: str,
                     notes: str = "", contacts=(), done: bool = False,
                     minutes: int = Activity.DEFAULT_MINUTES) -> Activity:
        """Log a call, meeting or e-mail: one planned ahead, or one done already."""
        now = timezone.now()
        try:
            kind = ActivityKind(kind)
        except ValueError:
            raise InvalidChange(gettext("Choose a call, a meeting or an e-mail.")) from None
        subject = " ".join((subject or "").split())
        if not subject:
            raise InvalidChange(gettext("Give the activity a subject."))
        if len(subject) > 200:
            raise InvalidChange(gettext("A subject has at most 200 characters."))
        notes = within_limit((notes or "").strip(), gettext("The notes"))
        if not 1 <= int(minutes) <= 24 * 60:
            raise InvalidChange(gettext("An activity lasts between 1 minute and a day."))
        if at.year < 1900 or at > now + HORIZON:
            raise InvalidChange(gettext("Choose a time between 1900 and ten years from now."))
        if done and at > now + CLOCK_SLACK:
            raise InvalidChange(gettext("An activity done cannot lie in the future; log it "
                                        "as planned."))
        if not done and at <= now:
            raise InvalidChange(gettext("A planned activity lies ahead; log one that took "
                                        "place as done."))
        with transaction.atomic():
            locked = self._lock_for_activity(by)
            contacts = locked._activity_contacts(contacts)
            activity = Activity.objects.create(
                opportunity=locked, kind=kind, at=at, minutes=int(minutes), subject=subject,
                notes=notes, logged_at=now, logged_by=by,
                status=ActivityStatus.DONE if done else ActivityStatus.PLANNED,
                closed_at=now if done else None, closed_by=by if done else None,
            )
            activity.contacts.set(contacts)
        self._forget_annotations()
        return activity

    def complete_activity(self, activity_id: int, *, by: User) -> Activity:
        """A planned activity took place. One completed before its time took place now."""
        return self._close_activity(activity_id, ActivityStatus.DONE, by)

    def cancel_activity(self, activity_id: int, *, by: User) -> Activity:
        """A planned activity will not take place; the row stays, marked cancelled."""
        return self._close_activity(activity_id, ActivityStatus.CANCELLED, by)

    def _close_activity(self, activity_id: int, status: ActivityStatus, by: User) -> Activity:
        now = timezone.now()
        with transaction.atomic():
            locked = self._lock_for_activity(by)
            activity = locked._planned_activity(activity_id)
            activity.status = status
            if status == ActivityStatus.DONE:
                activity.at = min(activity.at, now)
            activity.closed_at, activity.closed_by = now, by
            activity.save()
        self._forget_annotations()
        return activity

    def _forget_annotations(self) -> None:
        for name in ACTIVITY_ANNOTATIONS:
            self.__dict__.pop(name, None)

    def _lock_for_activity(self, by: User):
        locked = self._lock(None, by)
        if not locked.activities_may_be_logged_by(by):
            raise ChangeForbidden(gettext("You may not log activities on “%s”.") % locked.name)
        return locked

    def _planned_activity(self, activity_id: int) -> Activity:
        activity = self.activities.filter(pk=activity_id).first()
        if activity is None:
            raise InvalidChange(gettext("That activity is not on this opportunity."))
        if not activity.is_planned:
            raise InvalidChange(gettext("That activity is already %s.")
                                % activity.get_status_display())
        return activity

    def _activity_contacts(self, contacts) -> list[Contact]:
        """The people it was with: current contacts of the opportunity's account."""
        contacts = list(contacts)
        for contact in contacts:
            if contact.account_id != self.account_id or contact.archived_at is not None:
                raise InvalidChange(gettext("%(contact)s is not a current contact of "
                                            "%(account)s.")
                                    % {"contact": contact, "account": self.account})
        return contacts
