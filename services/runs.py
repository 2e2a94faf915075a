"""The monthly task: create it, generate its client tasks, report its status."""

from __future__ import annotations

import logging
from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from services import audit
from services.errors import InvalidStateError, NotFoundError
from services.models import Client, ClientTask, Run, RunState, TaskState
from services.periods import Period
from services.run_generation import GenerateReport, generate_run
from services.run_state import _task_views, get_run, refresh_run_state
from services.run_status import ExcludedClient, RunStatus, run_status
from services.views import RunView, TaskView, run_view, task_view

__all__ = [
    "ExcludedClient",
    "GenerateReport",
    "RunStatus",
    "create_run",
    "current_period",
    "find_run",
    "generate_run",
    "get_run",
    "recent_runs",
    "refresh_run_state",
    "run_status",
    "skip_task",
    "task_pdf",
]

logger = logging.getLogger(__name__)


def create_run(
    factory: sessionmaker[Session],
    period: Period,
    *,
    planned_start: date,
    planned_end: date,
    actor: str,
) -> RunView:
    """Create the monthly task for `period` with its planned sending dates."""
    if planned_start < period.end:
        raise InvalidStateError(
            f"the planned start {planned_start} is before {period} ends; sending "
            f"can start on {period.end} or later"
        )
    if planned_end < planned_start:
        raise InvalidStateError(
            f"the planned end {planned_end} is before the planned start "
            f"{planned_start}; give an end on or after the start"
        )

    try:
        with factory() as session, session.begin():
            existing = session.scalar(select(Run).where(Run.period == str(period)))
            if existing is not None:
                raise InvalidStateError(
                    f"the monthly task for {period} already exists "
                    f"({existing.state.value}); see `invoices status {period}`"
                )
            run = Run(
                period=str(period),
                planned_start=planned_start,
                planned_end=planned_end,
                state=RunState.PLANNED,
            )
            session.add(run)
            audit.record(
                session,
                actor=actor,
                action="run.create",
                period=str(period),
                detail=f"planned {planned_start} to {planned_end}",
            )
            session.flush()
            view = run_view(run, [])
    except IntegrityError as error:
        raise InvalidStateError(
            f"the monthly task for {period} already exists; "
            f"see `invoices status {period}`"
        ) from error

    logger.info("Created the monthly task for %s", period)
    return view


def find_run(factory: sessionmaker[Session], period: Period) -> RunView:
    with factory() as session:
        run = get_run(session, period)
        return run_view(run, _task_views(session, run))


def recent_runs(factory: sessionmaker[Session], limit: int = 6) -> list[RunView]:
    """Return the newest monthly tasks first."""
    with factory() as session:
        runs = session.scalars(select(Run).order_by(Run.period.desc()).limit(limit))
        return [run_view(run, _task_views(session, run)) for run in runs]


def current_period(factory: sessionmaker[Session]) -> Period:
    """Return the oldest month not complete, else the newest month."""
    with factory() as session:
        period = session.scalar(
            select(Run.period)
            .where(Run.state != RunState.COMPLETE)
            .order_by(Run.period)
            .limit(1)
        ) or session.scalar(select(Run.period).order_by(Run.period.desc()).limit(1))
    if period is None:
        raise NotFoundError(
            "there is no monthly task yet; create one with "
            "`invoices run create YYYY-MM --start YYYY-MM-DD --end YYYY-MM-DD`"
        )
    return Period.parse(period)


def skip_task(
    factory: sessionmaker[Session],
    period: Period,
    client_code: str,
    *,
    actor: str,
    reason: str,
) -> TaskView:
    """Mark one client's task skipped so that it is never sent for this period."""
    with factory() as session, session.begin():
        run = get_run(session, period)
        task, client = _task_of(session, run, client_code)
        if task.state in {TaskState.SENT, TaskState.SENDING, TaskState.SKIPPED}:
            raise InvalidStateError(
                f"the task of client {client.code} for {period} is "
                f"{task.state.value} and cannot be skipped"
            )
        task.state = TaskState.SKIPPED
        task.skip_reason = reason or "skipped by the finance team"
        audit.record(
            session,
            actor=actor,
            action="task.skip",
            period=str(period),
            client_code=client.code,
            detail=task.skip_reason,
        )
        refresh_run_state(session, run)
        return task_view(task, str(period), client.code, client.name)


def _task_of(session: Session, run: Run, client_code: str) -> tuple[ClientTask, Client]:
    row = session.execute(
        select(ClientTask, Client)
        .join(Client, Client.id == ClientTask.client_id)
        .where(ClientTask.run_id == run.id, Client.code == client_code)
    ).first()
    if row is None:
        raise NotFoundError(
            f"client {client_code} has no task for {run.period}; "
            f"see `invoices status {run.period}`"
        )
    return row[0], row[1]


def task_pdf(
    factory: sessionmaker[Session], period: Period, client_code: str
) -> tuple[str, bytes]:
    """Return the attachment name and PDF of one client's task."""
    with factory() as session:
        run = get_run(session, period)
        task, _client = _task_of(session, run, client_code)
        return task.pdf_filename, task.pdf
