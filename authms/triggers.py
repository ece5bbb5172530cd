"""Database triggers the service keeps (the log and inbox counters, the events outbox): one way
to install and remove a set of them on PostgreSQL (statement triggers calling one function) and
on SQLite (row triggers)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class TriggerSet:
    table: str
    names: tuple[str, ...]
    function: str  # PostgreSQL's trigger function (SQLite triggers carry their own bodies)
    postgres: tuple[str, ...]  # CREATE FUNCTION …, CREATE TRIGGER …
    sqlite: tuple[str, ...]

    def install(self, schema_editor) -> None:
        postgres = schema_editor.connection.vendor == "postgresql"
        for sql in self.postgres if postgres else self.sqlite:
            schema_editor.execute(sql, None)

    def remove(self, schema_editor) -> None:
        postgres = schema_editor.connection.vendor == "postgresql"
        for name in self.names:
            schema_editor.execute(
                f"DROP TRIGGER IF EXISTS {name}{f' ON {self.table}' if postgres else ''}", None
            )
        if postgres:
            schema_editor.execute(f"DROP FUNCTION IF EXISTS {self.function}()", None)
