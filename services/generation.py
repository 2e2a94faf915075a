"""Render client tasks' letters and PDFs and store them in bulk.

Rendering a PDF takes far longer than storing it, so for a large month the
statements go to a pool of worker processes, one per core, while this process
loads the next clients' documents and inserts the finished tasks. A small
month renders in this process, because starting the workers (importing fpdf2
and preparing the fonts) costs more than it saves there.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from services.letters import render_letter
from services.models import ClientTask, TaskState, utcnow
from services.pdf import attachment_filename, render_statement_pdf
from services.statements import Statement
from services.views import TaskView

logger = logging.getLogger(__name__)

# Clients rendered by one worker call: enough to make the pickling overhead
# small, few enough that the finished tasks reach the database steadily.
RENDER_BATCH = 25
# A month with fewer clients than this renders in the calling process.
POOL_THRESHOLD = 60
# Worker calls queued per worker, which bounds the PDFs held in memory.
QUEUED_PER_WORKER = 3

T = TypeVar("T")


@dataclass(frozen=True)
class RenderJob:
    """One client's statement and the task fields known before rendering."""

    client_id: int
    client_code: str
    client_name: str
    statement: Statement
    recipients: tuple[str, ...]
    documents_fingerprint: str
    # The id of the stale task to rebuild, or None for a new task.
    task_id: int | None


@dataclass(frozen=True)
class Rendered:
    """A job's task fields after rendering, or the error that stopped it."""

    job: RenderJob
    fields: dict[str, Any] | None
    error: str = ""


def render_jobs(jobs: Sequence[RenderJob], sender_name: str) -> list[Rendered]:
    """Render each job's letter and PDF; an error fails only that job."""
    results = []
    for job in jobs:
        try:
            results.append(Rendered(job, task_fields(job, sender_name)))
        except Exception as error:
            # A worker process has no logging set up, so the caller logs it.
            results.append(Rendered(job, None, f"{type(error).__name__}: {error}"))
    return results


def task_fields(job: RenderJob, sender_name: str) -> dict[str, Any]:
    statement = job.statement
    letter = render_letter(statement, sender_name=sender_name)
    recipients = list(job.recipients)
    return {
        "state": TaskState.READY if recipients else TaskState.MISSING_EMAIL,
        "recipients": recipients,
        "subject": letter.subject,
        "letter": letter.body,
        "pdf": render_statement_pdf(statement),
        "pdf_filename": attachment_filename(statement),
        "document_count": statement.document_count,
        "totals": statement.gross_by_currency(),
        "documents_fingerprint": job.documents_fingerprint,
        "generated_at": utcnow(),
    }


def worker_count(clients: int, workers: int | None) -> int:
    """Choose the worker processes for `clients` tasks; 0 renders in this process."""
    if workers is not None:
        return max(0, workers)
    if clients < POOL_THRESHOLD:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    return cores if cores > 1 else 0


@contextmanager
def renderer(workers: int) -> Iterator[Executor | None]:
    """Open a pool of `workers` processes, or yield None to render inline."""
    if workers == 0:
        yield None
        return
    # Spawned workers start clean: a forked copy of a process with threads
    # (the Slack app's, the job worker's) could inherit a held lock.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        yield pool


class RenderQueue:
    """Render batches of jobs in order, in a pool or inline, with bounded queueing."""

    def __init__(
        self,
        pool: Executor | None,
        sender_name: str,
        on_rendered: Callable[[list[Rendered]], None],
        workers: int,
    ) -> None:
        self._pool = pool
        self._sender_name = sender_name
        self._on_rendered = on_rendered
        self._limit = max(1, workers) * QUEUED_PER_WORKER
        self._queued: deque[Future[list[Rendered]]] = deque()

    def put(self, jobs: Sequence[RenderJob]) -> None:
        for batch in chunks(list(jobs), RENDER_BATCH):
            if self._pool is None:
                self._on_rendered(render_jobs(batch, self._sender_name))
                continue
            self._queued.append(
                self._pool.submit(render_jobs, batch, self._sender_name)
            )
            while len(self._queued) > self._limit:
                self._on_rendered(self._queued.popleft().result())

    def drain(self) -> None:
        while self._queued:
            self._on_rendered(self._queued.popleft().result())


def insert_tasks(
    factory: sessionmaker[Session], run_id: int, rendered: Sequence[Rendered]
) -> dict[int, int] | None:
    """Insert new tasks in one statement; return client id to task id.

    Returns None when a task already exists for one of the clients (another
    process created it meanwhile), so that the caller stores them one by one.
    """
    rows = [
        {"run_id": run_id, "client_id": item.job.client_id, **(item.fields or {})}
        for item in rendered
    ]
    if not rows:
        return {}
    try:
        with factory() as session, session.begin():
            result = session.execute(
                insert(ClientTask).returning(ClientTask.client_id, ClientTask.id), rows
            )
            return {row.client_id: row.id for row in result}
    except IntegrityError:
        return None


def new_task_view(
    task_id: int, period: str, job: RenderJob, fields: dict[str, Any]
) -> TaskView:
    """Describe a task just inserted with `fields`, as `task_view` would."""
    return TaskView(
        id=task_id,
        period=period,
        client_code=job.client_code,
        client_name=job.client_name,
        recipients=tuple(fields["recipients"]),
        documents=fields["document_count"],
        totals=dict(fields["totals"]),
        state=fields["state"],
        pdf_filename=fields["pdf_filename"],
    )


def chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
