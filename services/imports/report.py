"""What an import did, for the command line, Slack and the audit trail."""

from __future__ import annotations

from dataclasses import dataclass, field

# How many tasks a summary line names before it only counts the rest.
MAX_LISTED = 10


def _count(number: int, singular: str) -> str:
    return f"{number} {singular if number == 1 else singular + 's'}"


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    rest = len(items) - MAX_LISTED
    return f"{shown} and {rest} more" if rest > 0 else shown


@dataclass
class ImportReport:
    """Counts of what one import created, updated or left unchanged.

    `kind` is "documents" or "clients", the records the counts refer to.
    `stale_tasks` lists the (period, client code) of every client task that was
    marked stale, and `changed_after_sending` the (period, client code, state)
    of tasks already sent or in sending whose documents changed.
    """

    files: list[str]
    kind: str = "documents"
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    clients_created: int = 0
    clients_updated: int = 0
    tasks_updated: int = 0
    stale_tasks: list[tuple[str, str]] = field(default_factory=list)
    changed_after_sending: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged

    def summary_line(self) -> str:
        """Describe the import in one line, such as the command line prints."""
        names = ", ".join(self.files)
        parts = [
            f"{names}: {_count(self.total, self.kind[:-1])}: {self.created} created, "
            f"{self.updated} updated, {self.unchanged} unchanged"
        ]
        if self.kind == "documents":
            parts.append(f"{_count(self.clients_created, 'new client')}")
            if self.clients_updated:
                parts.append(f"{_count(self.clients_updated, 'client')} completed")
        if self.tasks_updated:
            parts.append(
                f"{_count(self.tasks_updated, 'unsent task')} got new recipients"
            )
        if self.stale_tasks:
            listed = _listing([f"{period} {code}" for period, code in self.stale_tasks])
            parts.append(
                f"{_count(len(self.stale_tasks), 'client task')} marked stale "
                f"({listed}); generate those months again"
            )
        if self.changed_after_sending:
            listed = _listing(
                [
                    f"{period} {code} ({state})"
                    for period, code, state in self.changed_after_sending
                ]
            )
            parts.append(f"documents changed after sending: {listed}")
        return "; ".join(parts)
