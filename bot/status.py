"""The human-readable `invoices status` report."""

from __future__ import annotations

from bot.console import stdout, task_table
from services.runs import RunStatus


def print_status(status: RunStatus) -> None:
    run = status.run
    counts = ", ".join(
        f"{count} {state}" for state, count in sorted(run.counts.items())
    )
    totals = ", ".join(f"{amount} {code}" for code, amount in run.totals.items())
    delivery = ", ".join(f"{count} {name}" for name, count in status.delivery.items())

    stdout.print(
        f"[bold]Monthly task {run.period}[/]: {run.state.value}, "
        f"planned {run.planned_start} to {run.planned_end}"
    )
    stdout.print(f"Client tasks: {counts or 'none yet'}")
    if totals:
        stdout.print(f"Documents: {run.documents}; gross totals: {totals}")
    stdout.print(f"Delivery: {delivery}")

    if status.tasks:
        stdout.print(task_table(status.tasks))
    if status.excluded:
        stdout.print("[bold]Excluded clients with documents in the period:[/]")
        for excluded in status.excluded:
            stdout.print(
                f"  {excluded.client_code} {excluded.client_name}: {excluded.reason} "
                f"({_documents(excluded.documents)})"
            )
    if status.actions:
        stdout.print("[bold]Recent actions:[/]")
        for action in status.actions[:10]:
            client = f" {action['client_code']}" if action["client_code"] else ""
            when = f"{action['at'][:19]} UTC"
            stdout.print(
                f"  {when} {action['actor']} {action['action']}{client}: "
                f"{action['detail']}",
                markup=False,
            )


def _documents(count: int) -> str:
    return "1 document" if count == 1 else f"{count} documents"
