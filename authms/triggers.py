"""Database triggers the service keeps (the log and inbox counters, the events outbox): one way
to install and remove a set of them on PostgreSQL (statement triggers calling one function) and
on SQLite (row triggers)."""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class TriggerSet:
    """Triggers named `{prefix}_{event}` on `table`, one per event."""

    table: str
    prefix: str
    function: str  # PostgreSQL's trigger function (SQLite triggers carry their own bodies)
    postgres: list[str]  # CREATE FUNCTION …, CREATE TRIGGER …
    sqlite: list[str]
    events: tuple[str, ...] = ("insert", "update", "delete")
    # Counters: rebuild what the triggers keep from the rows already there, once installed.
    recount: Callable | None = None

    @property
    def names(self) -> list[str]:
        return [f"{self.prefix}_{event}" for event in self.events]

    def install(self, schema_editor, *, recount: bool = True) -> None:
        """Creates the triggers; then, unless told the rows are already counted, recounts."""
        postgres = schema_editor.connection.vendor == "postgresql"
        for sql in self.postgres if postgres else self.sqlite:
            schema_editor.execute(sql, None)
        if recount and self.recount is not None:
            self.recount(schema_editor.connection)

    def remove(self, schema_editor) -> None:
        postgres = schema_editor.connection.vendor == "postgresql"
        for name in self.names:
            schema_editor.execute(
                f"DROP TRIGGER IF EXISTS {name}{f' ON {self.table}' if postgres else ''}", None
            )
        if postgres:
            schema_editor.execute(f"DROP FUNCTION IF EXISTS {self.function}()", None)
