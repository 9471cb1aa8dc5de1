"""Committing an import: the clean rows, with their accounts and contacts, in one
transaction of set-based inserts, batch by batch, the progress told as it goes."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator

from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import Account, Contact, User
from pipeline.imports.parsing import Row, parser_for, stage_key
from pipeline.imports.reading import UnreadableFile, read_table
from pipeline.models import ImportBatch, ImportedOpportunity, ImportStatus, Opportunity

logger = logging.getLogger(__name__)

# Rows inserted per statement: big enough that a 100,000-row file takes few round trips,
# small enough that one batch's lists stay a few megabytes.
BATCH_SIZE = 5000
PROGRESS_SECONDS = 3600


class OwnerDirectory:
    """Finds the user a source's owner column names (full name, user name or e-mail),
    among those the importer may give opportunities to; anyone else is the default."""

    def __init__(self, importer: User, default: User):
        self.default = default
        self.names: dict[str, User] = {}
        for user in ImportBatch.owners_for(importer):
            for key in (user.get_full_name(), user.username, user.email):
                if key:
                    self.names.setdefault(stage_key(key), user)

    def owner_of(self, row: Row) -> User:
        return self.names.get(stage_key(row.owner), self.default)


def progress_key(batch: ImportBatch) -> str:
    return f"import-progress:{batch.token}"


def report_progress(batch: ImportBatch, done: int, total: int) -> None:
    """Told outside the import's transaction, which the page cannot see into."""
    caches["progress"].set(progress_key(batch), (done, total), PROGRESS_SECONDS)


def progress_of(batch: ImportBatch) -> tuple[int, int] | None:
    return caches["progress"].get(progress_key(batch))


def chunks(rows: list[Row], size: int) -> Iterator[list[Row]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def run_import(batch_id: int) -> None:
    """Commit a queued import once: a second delivery of the task, or a second worker,
    waits for the lock and finds it done. A failure rolls back every row and is recorded
    on the import for its page to show."""
    try:
        with transaction.atomic():
            batch = ImportBatch.objects.select_for_update().get(pk=batch_id)
            if batch.status != ImportStatus.QUEUED:
                return
            Importer(batch).run()
    except Exception as error:
        logger.exception("Import %s failed; nothing of it was committed", batch_id)
        message = str(error) if isinstance(error, UnreadableFile) else _(
            "The import failed and nothing of it was saved; try again, or ask your "
            "administrator to look at the log.")
        ImportBatch.objects.filter(pk=batch_id).update(
            status=ImportStatus.FAILED, failure=message, finished_at=timezone.now())


class Importer:
    """One import's commit, inside the caller's transaction."""

    def __init__(self, batch: ImportBatch):
        self.batch = batch
        self.vendor = batch.vendor
        self.accounts: dict[str, int] = {}
        self.contacts: set[str] = set()
        self.seen: set[str] = set()
        self.now = timezone.now()

    def run(self) -> None:
        batch = self.batch
        table = read_table(bytes(batch.content))
        parser = parser_for(table, batch.vendor, batch.stage_map)
        owners = OwnerDirectory(batch.created_by, batch.default_owner)
        rows = list(parser.rows())
        clean = [row for row in rows if row.is_clean]
        imported = 0
        report_progress(batch, 0, len(clean))
        for done, chunk in enumerate(chunks(clean, BATCH_SIZE), start=1):
            imported += self.insert(chunk, owners)
            report_progress(batch, min(done * BATCH_SIZE, len(clean)), len(clean))
        batch.status = ImportStatus.DONE
        batch.total_rows = len(rows)
        batch.imported = imported
        batch.already_there = len(clean) - imported
        batch.refused = len(rows) - len(clean)
        batch.finished_at = timezone.now()
        # The file's people now live in Contact rows, which an erasure on request can
        # reach; a copy kept here could not be erased with them.
        batch.content = b""
        batch.save(update_fields=["status", "total_rows", "imported", "already_there",
                                  "refused", "finished_at", "content"])

    def insert(self, rows: list[Row], owners: OwnerDirectory) -> int:
        """The rows not imported before (by this file or an earlier one); how many."""
        there = set(Opportunity.objects.filter(
            source_system=self.vendor, source_id__in=[row.source_id for row in rows],
        ).exclude(source_id="").values_list("source_id", flat=True))
        fresh = []
        for row in rows:
            if row.source_id not in there and row.source_id not in self.seen:
                self.seen.add(row.source_id)
                fresh.append(row)
        if not fresh:
            return 0
        self.find_accounts(fresh)
        self.add_contacts(fresh)
        return Opportunity.enter_via_import([
            ImportedOpportunity(
                source_system=self.vendor, source_id=row.source_id,
                account_id=self.accounts[self.account_key(row)],
                owner_id=owners.owner_of(row).pk, name=row.name, stage=row.stage,
                amount=row.amount, currency=row.currency,
                expected_close_date=row.close_date, type=row.type, source=row.source,
                next_step=row.next_step,
            ) for row in fresh
        ], by=self.batch.created_by, now=self.now)

    @staticmethod
    def account_key(row: Row) -> str:
        return row.account_id or "name:" + stage_key(row.account)[:90]

    def find_accounts(self, rows: Iterable[Row]) -> None:
        """Each row's account: imported before from the same system, else one of ours of
        the same name, else a new one."""
        wanted = {self.account_key(row): row.account for row in rows}
        missing = [key for key in wanted if key not in self.accounts]
        self.accounts.update(Account.objects.filter(
            source_system=self.vendor, source_id__in=missing,
        ).exclude(source_id="").values_list("source_id", "pk"))
        missing = [key for key in missing if key not in self.accounts]
        by_name = dict(Account.objects.annotate(lowered=Lower("name")).filter(
            archived_at__isnull=True,
            lowered__in={wanted[key].lower() for key in missing},
        ).order_by("-pk").values_list("lowered", "pk"))
        new = []
        for key in missing:
            if wanted[key].lower() in by_name:
                self.accounts[key] = by_name[wanted[key].lower()]
            else:
                new.append(Account(name=wanted[key], source_system=self.vendor,
                                   source_id=key, created_at=self.now))
        for account in Account.objects.bulk_create(new):
            self.accounts[account.source_id] = account.pk

    @staticmethod
    def contact_key(row: Row, account_key: str) -> str:
        """The source's contact id, else a hash of the e-mail address or of the name on
        its account: hashed, so that erasing the contact's personal data leaves none of
        it in the key."""
        if row.contact_id:
            return row.contact_id
        known_by = row.email.lower() if row.email else (
            f"{account_key}|{row.first_name} {row.last_name}".lower())
        return "person:" + hashlib.sha1(known_by.encode(), usedforsecurity=False).hexdigest()

    def add_contacts(self, rows: Iterable[Row]) -> None:
        """The rows' contacts on their accounts, each once."""
        wanted = {}
        for row in rows:
            if row.first_name or row.last_name:
                key = self.contact_key(row, self.account_key(row))
                if key not in self.contacts:
                    wanted[key] = row
        self.contacts.update(Contact.objects.filter(
            source_system=self.vendor, source_id__in=list(wanted),
        ).exclude(source_id="").values_list("source_id", flat=True))
        new = []
        for key, row in wanted.items():
            if key in self.contacts:
                continue
            self.contacts.add(key)
            new.append(Contact(
                account_id=self.accounts[self.account_key(row)], source_system=self.vendor,
                source_id=key, first_name=row.first_name[:100], last_name=row.last_name[:100],
                title=row.title[:150], email=valid_email(row.email)))
        Contact.objects.bulk_create(new)


def valid_email(text: str) -> str:
    """The address, or nothing: a contact is worth keeping without a broken address."""
    try:
        validate_email(text)
    except ValidationError:
        return ""
    return text[:254]
