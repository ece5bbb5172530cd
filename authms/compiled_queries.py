"""Queries run on every request, with their SQL compiled once per database connection.

Compiling an ORM query costs more than running it: on PostgreSQL the request's user with its
tenant took about 0.5 ms to compile and 0.1 ms to run, about a fifth of the cheapest request
(the inbox badge), and a log list's page and capped count 0.4 ms each. A compiled query is
built once with placeholder values, compiled, and then run as the same SQL with each call's
values; its rows become instances exactly as a queryset builds them (Django's converters,
`from_db`, `select_related` populators, annotations), so callers see no difference.

`CompiledLookup` is one row by one value; `CompiledQuery` is a page of rows (or a capped
count) by named values, compiled once for each set of names given. Both hand their SQL to
`run_together` as `Statement`s: several go to PostgreSQL in one round trip, each prepared once
per session there (planning costs more than running, too).
"""

import itertools
import re
import secrets
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections
from django.db.models import Model, QuerySet
from django.db.models.base import ModelState
from django.db.models.query import get_related_populators
from django.db.models.signals import post_init, pre_init
from psycopg.errors import InvalidSqlStatementName

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
    # Prepared once per session (run_together): a statement whose text recurs. Its LIMIT is
    # written in it: as a parameter, a generic plan assumes far more rows than a page (measured:
    # 15 ms instead of 0.4 for the admin list's page). So is a shallow page's OFFSET (such pages
    # are not prepared); a deep page's is a parameter (`deep_rows_statement`), prepared where asked.
    prepare: bool = True


def run(statement: Statement):
    return run_together(statement)[0]


# Between the statements of one round trip (query logs show them joined by it).
STATEMENT_SEPARATOR = ";\n"
# Statements prepared per database session at most (each shape of a list is one).
MAX_PREPARED = 512


def run_together(*statements: Statement) -> list:
    """The statements' answers, in one round trip on PostgreSQL: psycopg's client-side binding
    cursors (Django's default) send a query by the simple protocol, which takes several statements
    at once. One by one on other databases, or where the connection binds on the server.

    With DATABASE_PREPARED_STATEMENTS (PostgreSQL), each statement is prepared once per session
    and executed by name: planning a query of the partitioned log table cost more than running
    it (0.2 of 0.25 ms for a page), and the session plans prepared statements generically
    (`plan_cache_mode`, set by authms.postgresql), so they are never planned again."""
    connection = statements[0].connection
    if connection.vendor != "postgresql" or connection.settings_dict["OPTIONS"].get("server_side_binding"):
        return [
            _answers(connection, [statement.sql], statement.params, [statement.read])[0]
            for statement in statements
        ]
    if not settings.DATABASE_PREPARED_STATEMENTS:
        return _answers(
            connection,
            [s.sql for s in statements],
            [p for s in statements for p in s.params],
            [s.read for s in statements],
        )
    try:
        return _run_prepared(connection, statements)
    except DatabaseError as error:
        # A session that lost its prepared statements (DEALLOCATE, a pooler handing over another
        # server session): forget them; outside a transaction, prepare again at once.
        if not isinstance(error.__cause__, InvalidSqlStatementName):
            raise
        _PREPARED.pop(connection.connection, None)
        if connection.in_atomic_block:
            raise
        return _run_prepared(connection, statements)


def _answers(connection, parts: list[str], params: list, reads: list) -> list:
    """Runs `parts` as one query; each read (None: a result without rows) takes one result."""
    with connection.cursor() as cursor:
        cursor.execute(STATEMENT_SEPARATOR.join(parts), params)
        answers = []
        for number, read in enumerate(reads):
            if number:
                cursor.nextset()
            if read is not None:
                answers.append(read(cursor.fetchall()))
    return answers


class _Prepared:
    """The statements prepared on one database session: SQL text -> name, oldest first."""

    def __init__(self):
        self.names: OrderedDict[str, str] = OrderedDict()
        self.made = 0
        # Names never repeat, even in a session another registry prepared in before (a pooler's)
        # or after a query that prepared one and then failed.
        self.prefix = f"authms_{secrets.token_hex(4)}"

    def new_name(self) -> str:
        self.made += 1
        return f"{self.prefix}_{self.made}"


_PREPARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # psycopg connection -> _Prepared
_PLACEHOLDER = re.compile(r"%[s%]")


def _numbered(sql: str) -> str:
    """Django's %s placeholders as PostgreSQL's $1, $2, … (and %% as %)."""
    numbers = itertools.count(1)
    return _PLACEHOLDER.sub(lambda match: "%" if match[0] == "%%" else f"${next(numbers)}", sql)


def _run_prepared(connection, statements) -> list:
    connection.ensure_connection()
    prepared = _PREPARED.setdefault(connection.connection, _Prepared())
    parts, params, reads, new = [], [], [], {}
    for statement in statements:
        if not statement.prepare:
            parts.append(statement.sql)
            params += statement.params
            reads.append(statement.read)
            continue
        name = prepared.names.get(statement.sql) or new.get(statement.sql)
        if name is None:
            name = new[statement.sql] = prepared.new_name()
            parts.append(f"PREPARE {name} AS {_numbered(statement.sql)}".replace("%", "%%"))
            reads.append(None)
        parts.append(
            f"EXECUTE {name}({', '.join(['%s'] * len(statement.params))})"
            if statement.params
            else f"EXECUTE {name}"
        )
        params += statement.params
        reads.append(statement.read)
    answers = _answers(connection, parts, params, reads)
    prepared.names.update(new)
    for statement in statements:
        if statement.prepare:
            prepared.names.move_to_end(statement.sql)
    while len(prepared.names) > MAX_PREPARED:
        _sql, oldest = prepared.names.popitem(last=False)
        with connection.cursor() as cursor:
            cursor.execute(f"DEALLOCATE {oldest}")
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
            self.pk_column = connection.ops.quote_name(self.model._meta.pk.column)
            self.order_by = queryset.query.order_by
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

    def order_sql(self, connection) -> str:
        """Its `order_by()` of field names as an ORDER BY over its rows' columns, for a query
        that reads them as a subquery."""
        if not self.order_by or not all(isinstance(name, str) for name in self.order_by):
            raise ValueError("A deep page needs a queryset ordered by field names.")
        return ", ".join(
            connection.ops.quote_name(self.model._meta.get_field(name.lstrip("-")).column)
            + (" DESC" if name.startswith("-") else "")
            for name in self.order_by
        )

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
        """A first page is prepared (its text is the same for every first page of that size);
        a later one is not (a text per offset)."""
        compiled, connection = self._compiled.compiled(values)
        if offset == 0:
            return compiled.statement(
                connection, values, read=compiled.instances, wrap=f"%s LIMIT {int(limit)}"
            )
        return replace(
            compiled.statement(
                connection,
                values,
                read=compiled.instances,
                wrap="%s LIMIT %s OFFSET %s",
                extra=(limit, offset),
            ),
            prepare=False,
        )

    def deep_rows_statement(
        self, values: dict, *, offset: int, limit: int, prepare: bool = False
    ) -> "Statement":
        """`rows_statement` for a deep offset: the offset is skipped over the primary keys (an
        index-only scan where an index covers the filters and the order), and only the rows
        kept are read, in one statement, in the queryset's order. Its OFFSET is a parameter, so
        one prepared statement can serve every offset (`prepare`): skipping keys, the generic plan
        is the one planned for a given offset (measured: 0.3 ms run, where planning alone took
        0.3). Not by default: a generic plan cannot use a partial index whose condition only the
        values would meet (the log list's status_detail index)."""
        ordered, connection = self._compiled.compiled(values)
        rows, _connection = self._compiled.compiled(
            values, variant="unordered", refine=lambda queryset: queryset.order_by()
        )
        keys_query, _connection = self._keys(values)
        keys = keys_query.statement(connection, values, read=None)
        page = rows.statement(
            connection,
            values,
            read=rows.instances,
            wrap=f"SELECT * FROM (%s) AS page WHERE {rows.pk_column} IN "  # noqa: S608 (names and an int)
            f"({keys.sql} LIMIT {int(limit)} OFFSET %s) ORDER BY {ordered.order_sql(connection)}",
        )
        return replace(page, params=[*page.params, *keys.params, offset], prepare=prepare)

    def count_statement(self, values: dict, limit: int) -> "Statement":
        compiled, connection = self._keys(values)
        return compiled.statement(
            connection,
            values,
            read=lambda rows: rows[0][0],
            wrap=f"SELECT COUNT(*) FROM (%s LIMIT {int(limit)}) AS upto",  # noqa: S608 (an int)
        )

    def _keys(self, values: dict) -> tuple[_Compiled, object]:
        """The queryset's primary keys, in its order."""
        return self._compiled.compiled(
            values, variant="keys", refine=lambda queryset: queryset.values_list("pk")
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
