"""What both stores say about their schema's version: the report of a migration, and the
refusal of a database newer than this chatd.

Each store numbers its schema on its own (SQLite in `PRAGMA user_version`, PostgreSQL in
`meta.schema_version`); version n + 1 is version n with migration step n + 1 applied. Both
report what they did the same way, so `chatd migrate` and the server's log read alike for
either store.
"""

from __future__ import annotations

from dataclasses import dataclass


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer chatd. Its schema may have tables, columns or
    meanings this code does not know, and writing to it could corrupt what the newer code
    relies on, so this code refuses to open it at all."""

    def __init__(self, where: str, found: int, known: int) -> None:
        super().__init__(
            f"{where} is at schema version {found}, newer than this chatd knows ({known}): "
            "run the chatd that migrated it (or a newer one), or restore a backup taken "
            "before that migration"
        )
        self.where = where
        self.found = found
        self.known = known


@dataclass(frozen=True, slots=True)
class SchemaReport:
    """The version a schema was found at, the one it is at now, and the steps applied in
    between, each as "N: what it does". `before` is 0 for a database created just now."""

    where: str
    before: int
    after: int
    steps: tuple[str, ...] = ()
    created: bool = False

    def describe(self) -> str:
        if self.created:
            return f"{self.where}: created at schema version {self.after}"
        if not self.steps:
            return f"{self.where}: schema version {self.after}, up to date"
        return (
            f"{self.where}: schema version {self.before} → {self.after} ({'; '.join(self.steps)})"
        )
