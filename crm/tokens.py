"""API tokens: a user's keys for scripts. Only a hash of each secret is stored; the
secret is shown once, when the token is made."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models import validate_single_line

# Recording every use would write a row per request; once a minute tells the user enough.
LAST_USED_GRANULARITY = timedelta(minutes=1)
PREFIX = "prg_"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def usable(self) -> ApiTokenQuerySet:
        return self.filter(revoked_at__isnull=True, user__is_active=True)


class ApiToken(models.Model):
    """A key a script sends as `Authorization: Bearer <secret>`; it acts as its user, with
    exactly their permissions. Revoked, never deleted."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("user"),
                             on_delete=models.PROTECT, related_name="api_tokens")
    name = models.CharField(_("name"), max_length=100, validators=[validate_single_line])
    digest = models.CharField(_("hash of the secret"), max_length=64, unique=True)
    # The secret's first characters, to tell tokens apart; too few to guess the rest.
    hint = models.CharField(_("starts with"), max_length=12)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @classmethod
    def issue(cls, user, name: str) -> tuple[ApiToken, str]:
        """A new token for `user`, and its secret: the only time the secret is known."""
        secret = PREFIX + secrets.token_urlsafe(32)
        token = cls(user=user, name=" ".join(name.split()), digest=digest(secret),
                    hint=secret[:len(PREFIX) + 4])
        token.full_clean()
        token.save()
        return token, secret

    @classmethod
    def user_for(cls, secret: str):
        """The active user a secret belongs to, or None; notes when the token was used."""
        if not secret or len(secret) > 200:
            return None
        token = cls.objects.usable().select_related("user").filter(
            digest=digest(secret)).first()
        if token is None:
            return None
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at >= LAST_USED_GRANULARITY:
            cls.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])
