"""`field__any=ids`: the row's value is one of many ids, sent as one array.

`field__in=ids` with thousands of ids makes Django prepare every id as a parameter of its
own and psycopg parse a query string with a placeholder for each: for the timeout
sweep's batches of thousands that cost more than the queries themselves
(docs/benchmarks.md). On PostgreSQL this is `= ANY(%s)` with one array parameter;
elsewhere it is the same as `__in`.
"""

from __future__ import annotations

from django.db import models
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
