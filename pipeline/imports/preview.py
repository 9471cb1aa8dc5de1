"""An upload kept as an import, and what its page shows before anything is imported: the
file's stages to map, and the rows as they would be imported, each with its errors."""

from __future__ import annotations

from dataclasses import dataclass

from crm.models import User
from pipeline.imports.commit import BATCH_SIZE, OwnerDirectory, chunks
from pipeline.imports.parsing import Row, RowParser, parser_for, stage_key, stage_labels
from pipeline.imports.reading import Table, UnreadableFile, read_table
from pipeline.imports.vendors import LAYOUTS, missing_columns_message
from pipeline.models import ImportBatch, Opportunity

SHOWN_ROWS = 50


@dataclass
class Preview:
    total: int
    clean: int
    imported_before: int
    refused: list[Row]  # the first SHOWN_ROWS rows with errors
    refused_count: int
    sample: list[tuple[Row, User]]  # the first SHOWN_ROWS clean rows, with their owner

    @property
    def to_import(self) -> int:
        return self.clean - self.imported_before


def receive(*, by: User, upload, vendor: str, default_owner: User) -> ImportBatch:
    """Keep an uploaded file as a new import, its stages mapped the obvious way; a file
    that cannot be read, or lacks a column every import needs, is refused whole
    (UnreadableFile, with the reason)."""
    content = upload.read()
    missing = LAYOUTS[vendor].missing(read_table(content).header)
    if missing:
        raise UnreadableFile(missing_columns_message(vendor, missing))
    batch = ImportBatch.objects.create(created_by=by, file_name=upload.name[:200],
                                       content=content, vendor=vendor,
                                       default_owner=default_owner)
    batch.stage_map = first_mapping(vendor, file_stages(batch))
    batch.save(update_fields=["stage_map"])
    return batch


def read_batch(batch: ImportBatch) -> tuple[Table, RowParser]:
    table = read_table(bytes(batch.content))
    return table, parser_for(table, batch.vendor, batch.stage_map)


def file_stages(batch: ImportBatch) -> list[tuple[str, int]]:
    return stage_labels(read_batch(batch)[1])


def first_mapping(vendor: str, labels: list[tuple[str, int]]) -> dict[str, str]:
    """The system's stock stages mapped the obvious way; the user checks and changes it."""
    stock = LAYOUTS[vendor].stages
    mapping = {}
    for label, _count in labels:
        key = stage_key(label)
        mapping[key] = stock[key].value if key in stock else ""
    return mapping


def preview(batch: ImportBatch) -> Preview:
    _table, parser = read_batch(batch)
    owners = OwnerDirectory(batch.created_by, batch.default_owner)
    rows = list(parser.rows())
    clean = [row for row in rows if row.is_clean]
    refused = [row for row in rows if not row.is_clean]
    before = set()
    for chunk in chunks(clean, BATCH_SIZE):
        before.update(Opportunity.objects.filter(
            source_system=batch.vendor, source_id__in=[row.source_id for row in chunk],
        ).exclude(source_id="").values_list("source_id", flat=True))
    return Preview(
        total=len(rows), clean=len(clean), imported_before=len(before),
        refused=refused[:SHOWN_ROWS], refused_count=len(refused),
        sample=[(row, owners.owner_of(row)) for row in clean[:SHOWN_ROWS]],
    )
