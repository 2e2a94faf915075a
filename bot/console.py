"""Terminal output for the command line: errors, progress bars and tables."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from services.progress import Progress as ProgressCallback
from services.progress import no_progress
from services.views import TaskView

# Soft wrapping keeps long messages and commands on one line for copy and paste.
# Output that goes to a file or a pipe gets room for the status table.
stdout = Console(
    highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160
)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def configure_logging(verbose: bool) -> None:
    """Log to standard error: warnings by default, every business event with -v."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Alembic reports its migration context on every start, and fontTools each
    # font subset; neither is a business event.
    for noisy in ("alembic", "fontTools"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextmanager
def progress_bar(description: str) -> Iterator[ProgressCallback]:
    """Show a progress bar on a terminal; elsewhere report nothing."""
    if not stderr.is_terminal:
        yield no_progress
        return

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[label]}", style="dim"),
    )
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task(description, total=None, label="")

        def update(done: int, total: int, label: str) -> None:
            bar.update(task, completed=done, total=total or None, label=label[:40])

        yield update


class UserError(click.ClickException):
    """An error a person can act on: printed as one line, exit status 1."""

    def show(self, file: object = None) -> None:
        stderr.print(f"[bold red]Error:[/] {self.format_message()}", markup=True)


def task_table(tasks: list[TaskView]) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    headings = ("client", "name", "documents", "total", "state", "recipients", "note")
    for heading in headings:
        table.add_column(
            heading,
            justify="right" if heading == "documents" else "left",
            no_wrap=heading in {"client", "state"},
            max_width=40 if heading in {"name", "recipients"} else None,
        )
    for task in tasks:
        totals = ", ".join(f"{amount} {code}" for code, amount in task.totals.items())
        table.add_row(
            task.client_code,
            task.client_name,
            str(task.documents),
            totals,
            task.state.value,
            ", ".join(task.recipients),
            task.reason or task.message_id,
        )
    return table
