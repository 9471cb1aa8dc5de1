"""Writing many rows at once, for the demo data: plain tuples, binary COPY from a writer
thread on PostgreSQL, bulk_create elsewhere, and the foreign keys checked once at the end.

Seed code only: it bypasses the models' methods (stack-notes allow that, knowingly).
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any

from django.db import connection, models
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg.types.json import Jsonb

BATCH_SIZE = 2000  # rows per INSERT with bulk_create


class Rows:
    """Rows of one table as plain tuples in `columns` order: far cheaper to build than model
    instances. The RowWriter writes them."""

    def __init__(self, model: type[models.Model], columns: tuple[str, ...]):
        self.model = model
        self.columns = columns
        self.rows: list[tuple] = []
        self.append = self.rows.append

    def add(self, values: dict[str, Any]) -> None:
        self.rows.append(tuple(values[column] for column in self.columns))

    def __len__(self) -> int:
        return len(self.rows)


def insert_rows(rows: Rows) -> None:
    """bulk_create in batches: for SQLite, that is the demo's few hundred opportunities."""
    model, columns = rows.model, rows.columns
    model.objects.bulk_create(
        [model(**dict(zip(columns, row, strict=True))) for row in rows.rows],
        batch_size=BATCH_SIZE,
    )


def copy_rows(rows: Rows, wrapper: BaseDatabaseWrapper, raw_connection) -> None:
    """A binary COPY of the rows, on PostgreSQL. Takes the connection explicitly: it runs in
    the writer thread, on the connection (and transaction) of the command."""
    model = rows.model
    fields = {field.attname: field for field in model._meta.concrete_fields}
    # A field added to the model after this command was written gets its default.
    missing = [field for name, field in fields.items()
               if name not in rows.columns and not field.primary_key]
    filler = tuple(
        Jsonb(field.get_default()) if isinstance(field, models.JSONField)
        else field.get_default()
        for field in missing
    )
    columns = [*(fields[name] for name in rows.columns), *missing]
    quote = wrapper.ops.quote_name
    statement = "COPY {} ({}) FROM STDIN (FORMAT BINARY)".format(
        quote(model._meta.db_table), ", ".join(quote(field.column) for field in columns)
    )
    json_positions = [position for position, name in enumerate(rows.columns)
                      if isinstance(fields[name], models.JSONField)]
    # Checklists are shared dicts: dump each once. Keying by id() is safe because every
    # dict stays referenced by its rows until the copy ends.
    dumped: dict[int, Jsonb] = {}
    with raw_connection.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types([field.db_type(wrapper).split("(")[0].strip() for field in columns])
        for row in rows.rows:
            if json_positions:
                row = list(row)
                for position in json_positions:
                    value = row[position]
                    wrapped = dumped.get(id(value))
                    if wrapped is None:
                        wrapped = dumped[id(value)] = Jsonb(json.dumps(value), dumps=str)
                    row[position] = wrapped
                row = tuple(row)
            copy.write_row(row + filler if filler else row)


class RowWriter:
    """Writes batches of rows while the next batch is being built.

    On PostgreSQL a thread runs binary COPYs on the command's connection, so in its
    transaction: the server's share of the work (mostly index upkeep) runs on the other
    core while Python builds the next rows. At 100,000 opportunities (1.6 million rows)
    bulk_create's per-object work alone would take minutes (docs/benchmarks.md).
    Elsewhere, that is the SQLite demo, each batch is bulk-created at once.
    """

    def __enter__(self) -> RowWriter:
        self.failure: Exception | None = None
        self.thread = None
        if connection.vendor == "postgresql":
            connection.ensure_connection()
            self.batches: queue.Queue = queue.Queue(maxsize=1)
            self.thread = threading.Thread(
                target=self.copy_batches, args=(connection, connection.connection), daemon=True
            )
            self.thread.start()
        return self

    def write(self, batch: list[Rows]) -> None:
        if self.thread is None:
            for rows in batch:
                insert_rows(rows)
            return
        if self.failure is not None:
            raise self.failure
        self.batches.put(batch)

    def copy_batches(self, wrapper: BaseDatabaseWrapper, raw_connection) -> None:
        while (batch := self.batches.get()) is not None:
            if self.failure is not None:
                continue  # the transaction is lost: drain until told to stop
            try:
                for rows in batch:
                    copy_rows(rows, wrapper, raw_connection)
            except Exception as error:  # raised again in the command's thread
                self.failure = error

    def __exit__(self, error_type, error, traceback) -> None:
        if self.thread is None:
            return
        self.batches.put(None)
        self.thread.join()
        if self.failure is not None and error is None:
            raise self.failure


@contextmanager
def foreign_keys_checked_at_the_end(models_written: Sequence[type[models.Model]]):
    """On PostgreSQL, check the foreign keys of the rows written inside this block in one
    join per constraint instead of one look-up per row at commit (PostgreSQL's advice for
    populating a database: drop the constraints, load, add them back). The tables are
    locked meanwhile; all of it is inside the caller's transaction."""
    if connection.vendor != "postgresql":
        yield
        return
    assert connection.in_atomic_block, "the constraints must come back in one transaction"
    quote = connection.ops.quote_name
    tables = [model._meta.db_table for model in models_written]
    with connection.cursor() as cursor:
        # A table with checks still queued cannot be altered: run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE contype = 'f' AND conrelid = ANY(%s::regclass[]) "
            "ORDER BY 1, 2",
            [tables],
        )
        constraints = cursor.fetchall()
        for table, name, _definition in constraints:
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {quote(name)}")
    yield
    with connection.cursor() as cursor:
        for table, name, definition in constraints:
            cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {quote(name)} {definition}")
        # Django creates every foreign key DEFERRABLE INITIALLY DEFERRED: back to that.
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
