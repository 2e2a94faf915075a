"""The monthly task: create it, generate its client tasks, report its status."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from services import audit
from services.delivery import delivery_counts
from services.errors import InvalidStateError, NotFoundError
from services.generation import (
    Rendered,
    RenderJob,
    RenderQueue,
    insert_tasks,
    new_task_view,
    renderer,
    worker_count,
)
from services.models import (
    FINAL_STATES,
    UNSENT_STATES,
    Client,
    ClientTask,
    Document,
    DocumentStatus,
    Run,
    RunState,
    TaskState,
    utcnow,
)
from services.periods import Period, add_months
from services.progress import Progress, no_progress
from services.statements import (
    Company,
    build_statement,
    current_fingerprints,
    documents_fingerprint,
    recipient_of,
)
from services.views import RunView, TaskView, run_view, task_view

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


@dataclass(frozen=True)
class ExcludedClient:
    client_code: str
    client_name: str
    reason: str
    documents: int

    def to_json(self) -> dict[str, Any]:
        return {
            "client_code": self.client_code,
            "client_name": self.client_name,
            "reason": self.reason,
            "documents": self.documents,
        }


@dataclass(frozen=True)
class RunStatus:
    run: RunView
    tasks: list[TaskView]
    excluded: list[ExcludedClient]
    actions: list[dict[str, str]]
    delivery: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run.to_json(),
            "tasks": [task.to_json() for task in self.tasks],
            "excluded": [client.to_json() for client in self.excluded],
            "delivery": dict(self.delivery),
            "actions": list(self.actions),
        }


def get_run(session: Session, period: Period) -> Run:
    run = session.scalar(select(Run).where(Run.period == str(period)))
    if run is None:
        raise NotFoundError(
            f"there is no monthly task for {period}; create it with "
            f"`invoices run create {period} --start YYYY-MM-DD --end YYYY-MM-DD`"
        )
    return run


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
    if today is not None and today < period.end:
        raise InvalidStateError(
            f"{period} has not ended yet, so its documents may still change; "
            f"generate it on {period.end} or later"
        )
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


def _active_clients(session: Session, period: Period) -> dict[int, int]:
    """Return client id to the count of its posted documents in `period`."""
    rows = session.execute(
        # count() rather than count(id) lets PostgreSQL answer from the index.
        select(Document.client_id, func.count())
        .where(
            Document.status == DocumentStatus.POSTED,
            Document.date >= period.start,
            Document.date < period.end,
        )
        .group_by(Document.client_id)
    )
    return {row[0]: row[1] for row in rows}


def _load_clients(session: Session, client_ids: list[int]) -> dict[int, Client]:
    clients: dict[int, Client] = {}
    for batch in _chunks(client_ids, 1000):
        query = (
            select(Client)
            .where(Client.id.in_(batch))
            .options(selectinload(Client.emails))
        )
        for client in session.scalars(query):
            clients[client.id] = client
    return clients


def _load_documents(
    factory: sessionmaker[Session], client_ids: list[int], period: Period
) -> dict[int, list[Document]]:
    """Load the posted documents of many clients with their lines in one query."""
    grouped: dict[int, list[Document]] = defaultdict(list)
    with factory() as session:
        query = (
            select(Document)
            .where(
                Document.client_id.in_(client_ids),
                Document.status == DocumentStatus.POSTED,
                Document.date >= period.start,
                Document.date < period.end,
            )
            .options(selectinload(Document.lines))
        )
        for document in session.scalars(query):
            grouped[document.client_id].append(document)
    return grouped


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


def refresh_run_state(session: Session, run: Run) -> None:
    """Mark a generated monthly task complete when every client task is finished.

    Excluded clients have no task, so they never hold a month open. A month
    that gets new unfinished tasks after completion goes back to generated.
    """
    if run.state is RunState.PLANNED:
        return
    session.flush()
    unfinished = session.scalar(
        select(func.count(ClientTask.id)).where(
            ClientTask.run_id == run.id, ClientTask.state.not_in(FINAL_STATES)
        )
    )
    if unfinished == 0 and run.state is not RunState.COMPLETE:
        run.state = RunState.COMPLETE
        run.completed_at = utcnow()
        logger.info("The monthly task for %s is complete", run.period)
    elif unfinished and run.state is RunState.COMPLETE:
        run.state = RunState.GENERATED
        run.completed_at = None


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


def _task_views(session: Session, run: Run) -> list[TaskView]:
    rows = session.execute(
        select(ClientTask, Client.code, Client.name)
        .join(Client, Client.id == ClientTask.client_id)
        .where(ClientTask.run_id == run.id)
        .order_by(Client.code)
    )
    return [task_view(task, run.period, code, name) for task, code, name in rows]


def run_status(factory: sessionmaker[Session], period: Period) -> RunStatus:
    """Collect the monthly task, its client tasks, exclusions and recent actions."""
    with factory() as session:
        run = get_run(session, period)
        tasks = _flag_changed_after_sending(
            session, run, period, _task_views(session, run)
        )
        excluded = _excluded_clients(session, run, period)
        actions = [
            {
                "at": event.at.isoformat(),
                "actor": event.actor,
                "action": event.action,
                "client_code": event.client_code,
                "detail": event.detail,
            }
            for event in audit.recent(session, period=str(period), limit=50)
        ]
    return RunStatus(
        run=run_view(run, tasks),
        tasks=tasks,
        excluded=excluded,
        actions=actions,
        delivery=delivery_counts(factory, period),
    )


def _flag_changed_after_sending(
    session: Session, run: Run, period: Period, tasks: list[TaskView]
) -> list[TaskView]:
    """Mark tasks already sent whose documents have changed since their PDF."""
    sent_like = {TaskState.SENT, TaskState.SENDING, TaskState.UNKNOWN}
    rows = session.execute(
        select(
            ClientTask.id, ClientTask.client_id, ClientTask.documents_fingerprint
        ).where(ClientTask.run_id == run.id, ClientTask.state.in_(sent_like))
    ).all()
    if not rows:
        return tasks
    current = current_fingerprints(session, period, [row[1] for row in rows])
    changed = {
        task_id for task_id, client_id, made in rows if current[client_id] != made
    }
    return [
        replace(task, documents_changed=True) if task.id in changed else task
        for task in tasks
    ]


def _excluded_clients(
    session: Session, run: Run, period: Period
) -> list[ExcludedClient]:
    with_task = select(ClientTask.client_id).where(ClientTask.run_id == run.id)
    rows = session.execute(
        select(Client, func.count(Document.id))
        .join(Document, Document.client_id == Client.id)
        .where(
            Client.excluded.is_(True),
            Client.id.not_in(with_task),
            Document.status == DocumentStatus.POSTED,
            Document.date >= period.start,
            Document.date < period.end,
        )
        .group_by(Client.id)
        .order_by(Client.code)
    )
    return [
        ExcludedClient(client.code, client.name, client.exclude_reason, count)
        for client, count in rows
    ]


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
