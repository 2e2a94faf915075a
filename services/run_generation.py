"""Generate a month's client tasks: build, render and store each statement."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from services import audit
from services.errors import InvalidStateError
from services.generation import (
    Rendered,
    RenderJob,
    RenderQueue,
    insert_tasks,
    new_task_view,
    renderer,
    worker_count,
)
from services.generation_inputs import (
    _active_clients,
    _chunks,
    _load_clients,
    _load_documents,
)
from services.models import (
    UNSENT_STATES,
    Client,
    ClientTask,
    Document,
    Run,
    RunState,
    TaskState,
    utcnow,
)
from services.periods import Period, add_months
from services.progress import Progress, no_progress
from services.run_state import get_run, refresh_run_state
from services.statements import (
    Company,
    build_statement,
    documents_fingerprint,
    recipient_of,
)
from services.views import TaskView, task_view

logger = logging.getLogger(__name__)


# Clients whose documents are loaded and rendered per database round trip.
BATCH_SIZE = 200


@dataclass
class GenerateReport:
    period: str
    created: list[TaskView] = field(default_factory=list)
    regenerated: list[TaskView] = field(default_factory=list)
    existing: int = 0
    excluded: list[tuple[str, str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    next_period: str = ""
    next_created: bool = False

    def summary_line(self) -> str:
        missing = sum(
            1
            for task in self.created + self.regenerated
            if task.state is TaskState.MISSING_EMAIL
        )
        parts = [
            f"Generated the client tasks of {self.period}: {len(self.created)} new",
            f"{len(self.regenerated)} rebuilt",
            f"{self.existing} unchanged",
            f"{len(self.excluded)} excluded",
            f"{missing} missing an e-mail address",
        ]
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        line = ", ".join(parts) + "."
        if self.next_created:
            line += f" Created the monthly task for {self.next_period}."
        return line


def generate_run(
    factory: sessionmaker[Session],
    period: Period,
    *,
    company: Company,
    actor: str,
    sender_name: str = "",
    progress: Progress | None = None,
    workers: int | None = None,
    today: date | None = None,
) -> GenerateReport:
    """Create client tasks for clients that have none, and rebuild stale ones.

    A client gets a task when it has posted documents dated in the period and
    is not excluded. Existing tasks stay as they are unless marked stale. The
    next month's monthly task is created with its dates moved by one month.
    PDFs are rendered by `workers` processes; None chooses one per core for a
    large month and none (this process) for a small one. When `today` (in the
    company's time zone) is given, a month that has not ended is rejected.
    """
    if today is not None:
        ensure_month_ended(period, today)
    report_progress = progress or no_progress
    report = GenerateReport(period=str(period))

    with factory() as session:
        run = get_run(session, period)
        run_id = run.id
        active = _active_clients(session, period)
        tasks = {
            task.client_id: (task.id, task.state)
            for task in session.scalars(
                select(ClientTask).where(ClientTask.run_id == run_id)
            )
        }
        clients = _load_clients(session, list(active))

    todo: list[int] = []
    for client_id in sorted(active, key=lambda key: clients[key].code):
        client = clients[client_id]
        existing = tasks.get(client_id)
        if existing is None and client.excluded:
            report.excluded.append(
                (client.code, client.name, client.exclude_reason or "excluded")
            )
        elif existing is None or existing[1] is TaskState.STALE:
            todo.append(client_id)
        else:
            report.existing += 1

    vanished = [
        task_id
        for client_id, (task_id, state) in tasks.items()
        if client_id not in active and state in UNSENT_STATES
    ]
    _skip_vanished(factory, vanished, period=str(period), actor=actor)

    total = len(todo)
    report_progress(0, total, "")
    store = _TaskStore(factory, run_id, str(period), report, report_progress, total)
    count = worker_count(total, workers)
    with renderer(count) as pool:
        queue = RenderQueue(pool, sender_name or company.name, store.save, count)
        for batch in _chunks(todo, BATCH_SIZE):
            documents = _load_documents(factory, batch, period)
            jobs = [
                _render_job(
                    company,
                    period,
                    clients[client_id],
                    documents.get(client_id, []),
                    tasks.get(client_id),
                    report,
                )
                for client_id in batch
            ]
            queue.put([job for job in jobs if job is not None])
        queue.drain()

    _finish_generation(factory, run_id, period=period, actor=actor, report=report)
    logger.info("%s", report.summary_line())
    return report


def _render_job(
    company: Company,
    period: Period,
    client: Client,
    documents: list[Document],
    existing: tuple[int, TaskState] | None,
    report: GenerateReport,
) -> RenderJob | None:
    """Build one client's statement; an error skips only this client."""
    try:
        statement = build_statement(company, recipient_of(client), period, documents)
        fingerprint = documents_fingerprint(documents)
    except Exception as error:
        logger.exception("Could not build the statement of client %s", client.code)
        report.failed.append((client.code, f"{type(error).__name__}: {error}"))
        return None
    return RenderJob(
        client_id=client.id,
        client_code=client.code,
        client_name=client.name,
        statement=statement,
        recipients=tuple(client.email_addresses),
        documents_fingerprint=fingerprint,
        task_id=existing[0] if existing else None,
    )


@dataclass
class _TaskStore:
    """Store rendered tasks: new ones in one INSERT per batch, rebuilt ones each."""

    factory: sessionmaker[Session]
    run_id: int
    period: str
    report: GenerateReport
    progress: Progress
    total: int
    done: int = 0

    def save(self, rendered: list[Rendered]) -> None:
        new = [item for item in rendered if item.fields and item.job.task_id is None]
        ids = insert_tasks(self.factory, self.run_id, new)
        for item in rendered:
            job = item.job
            if item.fields is None:
                logger.error(
                    "Could not render the statement of client %s: %s",
                    job.client_code,
                    item.error,
                )
                self.report.failed.append((job.client_code, item.error))
            elif job.task_id is None and ids is not None:
                view = new_task_view(ids[job.client_id], self.period, job, item.fields)
                self.report.created.append(view)
            else:
                self._store_one(job, item.fields)
            self.done += 1
            self.progress(self.done, self.total, job.client_name)

    def _store_one(self, job: RenderJob, fields: dict[str, Any]) -> None:
        """Insert or rebuild one task, for stale tasks and after a conflict."""
        report = self.report
        try:
            with self.factory() as session, session.begin():
                if job.task_id is None:
                    task = ClientTask(run_id=self.run_id, client_id=job.client_id)
                    session.add(task)
                else:
                    task = session.get_one(ClientTask, job.task_id)
                    if task.state is not TaskState.STALE:
                        report.existing += 1
                        return
                    task.stale_reason = ""
                    task.failure_reason = ""
                for name, value in fields.items():
                    setattr(task, name, value)
                session.flush()
                view = task_view(task, self.period, job.client_code, job.client_name)
        except IntegrityError:
            # Another process created this client's task between our read and write.
            report.existing += 1
            return

        (report.created if job.task_id is None else report.regenerated).append(view)


def _skip_vanished(
    factory: sessionmaker[Session], task_ids: list[int], *, period: str, actor: str
) -> None:
    """Skip unsent tasks whose client has no posted documents in the period now."""
    if not task_ids:
        return
    with factory() as session, session.begin():
        for task in session.scalars(
            select(ClientTask)
            .where(ClientTask.id.in_(task_ids))
            .options(selectinload(ClientTask.client))
        ):
            task.state = TaskState.SKIPPED
            task.skip_reason = "no posted documents in the period any more"
            audit.record(
                session,
                actor=actor,
                action="task.skip",
                period=period,
                client_code=task.client.code,
                detail=task.skip_reason,
            )
            logger.warning(
                "Skipped client %s for %s: %s",
                task.client.code,
                period,
                task.skip_reason,
            )


def _finish_generation(
    factory: sessionmaker[Session],
    run_id: int,
    *,
    period: Period,
    actor: str,
    report: GenerateReport,
) -> None:
    with factory() as session, session.begin():
        run = session.get_one(Run, run_id)
        if run.generated_at is None:
            run.generated_at = utcnow()
        if run.state is RunState.PLANNED:
            run.state = RunState.GENERATED
        refresh_run_state(session, run)
        next_period = period.shift(1)
        report.next_period = str(next_period)
        exists = session.scalar(select(Run.id).where(Run.period == str(next_period)))
        if exists is None:
            session.add(
                Run(
                    period=str(next_period),
                    planned_start=add_months(run.planned_start, 1),
                    planned_end=add_months(run.planned_end, 1),
                    state=RunState.PLANNED,
                )
            )
            report.next_created = True
        audit.record(
            session,
            actor=actor,
            action="run.generate",
            period=str(period),
            detail=report.summary_line(),
        )


def ensure_month_ended(period: Period, today: date) -> None:
    """Raise `InvalidStateError` when `today` is still inside `period` or before it."""
    if today < period.end:
        raise InvalidStateError(
            f"{period} has not ended yet, so its documents may still change; "
            f"generate it on {period.end} or later"
        )
