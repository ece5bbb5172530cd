"""Queries run on every request, with their SQL compiled once per database connection.

Compiling an ORM query costs more than running it: on PostgreSQL the request's user with its
tenant took about 0.5 ms to compile and 0.1 ms to run, about a fifth of the cheapest request
(the inbox badge), and a log list's page and capped count 0.4 ms each. A compiled query is
built once with placeholder values, compiled, and then run as the same SQL with each call's
values; its rows become instances exactly as a queryset builds them (Django's converters,
`from_db`, `select_related` populators, annotations), so callers see no difference.

`CompiledLookup` is one row by one value; `CompiledQuery` is a page of rows (or a capped
count) by named values, compiled once for each set of names given.
"""

import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.base import ModelState
from django.db.models.query import get_related_populators
from django.db.models.signals import post_init, pre_init

# Shapes kept per connection by a CompiledQuery: its callers' sets of value names are few.
MAX_SHAPES = 64


def _placeholder(name: str, number: int, value):
    """A value of `value`'s type that no caller passes, standing for `name` while compiling."""
    if isinstance(value, datetime):
        return datetime(1, 2, 3, 4, 5, 6, number + 1, tzinfo=UTC)
    if isinstance(value, str):
        return f"compiled-query-parameter-{name}"
    raise TypeError(f"A compiled query takes text and datetimes, not {type(value).__name__} ({name}).")


def _database_value(value, connection):
    """`value` as the ORM passes it to the database driver for a text or datetime column."""
    return connection.ops.adapt_datetimefield_value(value) if isinstance(value, datetime) else value


@dataclass(frozen=True)
class Statement:
    """One SQL statement on one connection, and how its rows (fetched as tuples) become its answer."""

    connection: Any
    sql: str
    params: list
    read: Callable[[list], Any]


def run(statement: Statement):
    return run_together(statement)[0]


# Between the statements of one round trip (query logs show them joined by it).
STATEMENT_SEPARATOR = ";\n"


def run_together(*statements: Statement) -> list:
    """The statements' answers, in one round trip on PostgreSQL: psycopg's client-side binding
    cursors (Django's default) send a query by the simple protocol, which takes several statements
    at once. One by one on other databases, or where the connection binds on the server."""
    connection = statements[0].connection
    together = connection.vendor == "postgresql" and not connection.settings_dict["OPTIONS"].get(
        "server_side_binding"
    )
    batches = [statements] if together else [[statement] for statement in statements]
    answers = []
    for batch in batches:
        with connection.cursor() as cursor:
            cursor.execute(
                STATEMENT_SEPARATOR.join(s.sql for s in batch), [p for s in batch for p in s.params]
            )
            for number, statement in enumerate(batch):
                if number:
                    cursor.nextset()
                answers.append(statement.read(cursor.fetchall()))
    return answers


class _Compiled:
    """One queryset's SQL on one connection, and where each named value goes in its parameters."""

    def __init__(self, queryset: QuerySet, connection, placeholders: dict):
        self.db = queryset.db
        self.compiler = queryset.query.get_compiler(connection=connection)
        self.sql, params = self.compiler.as_sql()
        self.params = list(params)
        by_database_value = {_database_value(value, connection): name for name, value in placeholders.items()}
        self.slots = [
            (position, by_database_value[param])
            for position, param in enumerate(self.params)
            if isinstance(param, str | datetime) and param in by_database_value
        ]
        if {name for _position, name in self.slots} != set(placeholders):
            raise ValueError("A compiled query's queryset must use every value it is built with.")
        select, klass_info = self.compiler.select, self.compiler.klass_info
        self.converters = self.compiler.get_converters([column[0] for column in select])
        if klass_info is not None:  # rows of a model (not values()) become its instances
            self.model = klass_info["model"]
            self.start, self.end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
            self.init_list = [column[0].target.attname for column in select[self.start : self.end]]
            self.populators = get_related_populators(klass_info, select, queryset.db)
            self.annotations = self.compiler.annotation_col_map
            self.plain = (
                not self.populators
                and not self.annotations
                and self.model.from_db.__func__ is Model.from_db.__func__
                and len(self.init_list) == len(self.model._meta.concrete_fields)
            )

    def statement(
        self, connection, values: dict, *, read, wrap: str = "%s", extra: tuple = ()
    ) -> "Statement":
        """This SQL, placed at the first %s of `wrap`, with `values` and then `extra` parameters."""
        params = self.params.copy()
        for position, name in self.slots:
            params[position] = _database_value(values[name], connection)
        return Statement(connection, wrap.replace("%s", self.sql, 1), [*params, *extra], read)

    def instances(self, rows: list) -> list:
        if self.converters:
            rows = self.compiler.apply_converters(rows, self.converters)
        # Checked for each call: a receiver may be connected after the compilation.
        if self.plain and not (pre_init.has_listeners(self.model) or post_init.has_listeners(self.model)):
            return [self.plain_instance(row) for row in rows]
        return [self.instance(row) for row in rows]

    def plain_instance(self, row):
        """What `from_db` builds, without `Model.__init__`'s per-field work (a tenth of a log
        list's request for its 20 rows): for a model with every column selected, the stock
        `from_db`, and no init signals to send."""
        instance = self.model.__new__(self.model)
        instance.__dict__.update(zip(self.init_list, row[self.start : self.end], strict=True))
        instance._state = state = ModelState()
        state.adding, state.db = False, self.db
        return instance

    def instance(self, row):
        instance = self.model.from_db(self.db, self.init_list, row[self.start : self.end])
        for populator in self.populators:
            populator.populate(row, instance)
        for name, position in self.annotations.items():
            setattr(instance, name, row[position])
        return instance


class _PerConnection:
    """Compiled forms of one queryset builder, per connection and per set of value names."""

    def __init__(self, build: Callable[..., QuerySet]):
        self._build = build
        self._database: str | None = None  # read once from a built queryset, never compiled
        self._by_connection: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def compiled(self, values: dict, *, variant: str = "", refine=None) -> tuple[_Compiled, object]:
        names = tuple(sorted(values))
        if self._database is None:
            self._database = self._build(**self._placeholders(values)).db
        connection = connections[self._database]
        shapes = self._by_connection.setdefault(connection, OrderedDict())
        key = (names, variant)
        compiled = shapes.get(key)
        if compiled is None:
            # Connections are per thread, so threads compile at once: each from a queryset of
            # its own (compiling one Query in two threads lost joins: compilation raises and
            # resets the query's alias counts).
            placeholders = self._placeholders(values)
            queryset = self._build(**placeholders)
            compiled = _Compiled(refine(queryset) if refine else queryset, connection, placeholders)
            shapes[key] = compiled
            if len(shapes) > MAX_SHAPES:
                shapes.popitem(last=False)
        else:
            shapes.move_to_end(key)
        return compiled, connection

    @staticmethod
    def _placeholders(values: dict) -> dict:
        return {
            name: _placeholder(name, number, value) for number, (name, value) in enumerate(values.items())
        }


class CompiledQuery:
    """`build(**values)` — a queryset of one model, ordered — run as SQL compiled once per set
    of value names: `rows(values, offset, limit)` is `list(build(**values)[offset:offset + limit])`
    and `count_upto(values, limit)` is `build(**values)[:limit].count()`. Values are text or
    aware datetimes, as the lookups they fill take them."""

    def __init__(self, build: Callable[..., QuerySet]):
        self.build = build
        self._compiled = _PerConnection(build)

    def rows(self, values: dict, *, offset: int, limit: int) -> list:
        return run(self.rows_statement(values, offset=offset, limit=limit))

    def count_upto(self, values: dict, limit: int) -> int:
        """How many rows match, counting no further than `limit` (in the queryset's order, so the
        database can walk the index of that order and stop)."""
        return run(self.count_statement(values, limit))

    def rows_statement(self, values: dict, *, offset: int, limit: int) -> "Statement":
        compiled, connection = self._compiled.compiled(values)
        return compiled.statement(
            connection, values, read=compiled.instances, wrap="%s LIMIT %s OFFSET %s", extra=(limit, offset)
        )

    def count_statement(self, values: dict, limit: int) -> "Statement":
        compiled, connection = self._compiled.compiled(
            values, variant="count", refine=lambda queryset: queryset.values_list("pk")
        )
        return compiled.statement(
            connection,
            values,
            read=lambda rows: rows[0][0],
            wrap="SELECT COUNT(*) FROM (%s LIMIT %s) AS upto",
            extra=(limit,),
        )


class CompiledLookup:
    """`lookup.first(value)` is `build(value).first()` for a query that matches one row at most."""

    def __init__(self, build: Callable[[str], QuerySet]):
        self._compiled = _PerConnection(lambda value: build(value))

    def first(self, value: str):
        values = {"value": value}
        compiled, connection = self._compiled.compiled(values)
        rows = run(compiled.statement(connection, values, read=compiled.instances))
        return rows[0] if rows else None
