"""Thousands of rows in one statement, for sweeps (docs/benchmarks.md, the timeout sweep).

- `field__any=ids`: the row's value is one of many ids, sent as one array. `field__in=ids`
  with thousands of ids makes Django prepare every id as a parameter of its own and
  psycopg parse a query string with a placeholder for each, which cost more than the
  queries themselves. On PostgreSQL `= ANY(%s)`; elsewhere the same as `__in`.
- `reserve_ids`: primary keys for rows not yet inserted, so that other rows (or a COPY)
  can point to them.
- `insert_from_arrays`: rows inserted from one array per column, their ids returned.
  `bulk_create` builds a model instance for each row and prepares every value of it in
  Python.
"""

from __future__ import annotations

from django.db import connection, connections, models
from django.db.models.fields.related import ForeignObject
from django.db.models.lookups import In, Lookup


class AnyOf(Lookup):
    lookup_name = "any"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        ids = [int(value) for value in self.rhs]
        if connection.vendor != "postgresql":
            return compiler.compile(In(self.lhs, ids))
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s::bigint[])", [*lhs_params, ids]


models.IntegerField.register_lookup(AnyOf)
ForeignObject.register_lookup(AnyOf)


def insert_from_arrays(model: type[models.Model], columns: dict[str, str],
                       rows: list[tuple], constants: dict, using: str = "default") -> list[int]:
    """Insert `rows` (values in the order of `columns`, a column name to its PostgreSQL
    array type) plus the same `constants` in each, in one INSERT … SELECT FROM unnest;
    the new ids. Elsewhere (SQLite), bulk_create."""
    connection = connections[using]
    if connection.vendor != "postgresql" or not rows:
        return [instance.pk for instance in model.objects.using(using).bulk_create(
            model(**dict(zip(columns, row, strict=True)), **constants) for row in rows)]
    quote = connection.ops.quote_name
    names = [*columns, *constants]
    arrays = ", ".join(f"%s::{kind}[]" for kind in columns.values())
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(model._meta.db_table)} "
            f"({', '.join(quote(model._meta.get_field(name).column) for name in names)}) "
            f"SELECT *, {', '.join(['%s'] * len(constants))} FROM unnest({arrays}) "
            "RETURNING id",
            [*constants.values(), *(list(column) for column in zip(*rows, strict=True))])
        return [pk for (pk,) in cursor.fetchall()]


def reserve_ids(model: type[models.Model], count: int) -> list[int]:
    """Primary keys for rows not yet inserted, so that other rows can point to them."""
    if not count:
        return []
    table, key = model._meta.db_table, model._meta.pk.column
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [table, key, count],
            )
            return [row[0] for row in cursor.fetchall()]
        # SQLite: the transaction holds the write lock, so nobody else takes these keys.
        cursor.execute(f"SELECT MAX({quote(key)}) FROM {quote(table)}")
        first = (cursor.fetchone()[0] or 0) + 1
    return list(range(first, first + count))
