"""A queue of long work kept in the `jobs` table, so that a restart resumes it.

A job is queued, then claimed by one worker with a lease (`locked_until`), then
done or failed. A worker that stops without finishing leaves its lease to run
out, and the next worker claims the job again. Claiming is one conditional
UPDATE, so two workers never both win the same job. Job bodies must therefore be
safe to run again after a partial run.

While a job is queued or running, its `dedup_key` makes a repeated request find
it instead of adding another; the key is cleared when the job ends, so the same
request later starts new work.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from services.db import transaction
from services.models import Job, utcnow

logger = logging.getLogger(__name__)

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"

DEFAULT_LEASE_SECONDS = 60.0
# A job whose worker stopped this many times is failed instead of retried.
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class JobView:
    id: int
    kind: str
    payload: dict[str, Any]
    state: str
    attempts: int
    error: str


@dataclass(frozen=True)
class Enqueued:
    """The job a request recorded, or found already recorded by its key."""

    job: JobView
    created: bool


# A job body gets the job and a function that tells whether the worker is
# stopping, so that long bodies can end early and leave the rest to a restart.
JobBody = Callable[[JobView, Callable[[], bool]], None]


class WorkerStopping(Exception):
    """Raised inside a job body to give the job back because the worker stops."""


def _view(job: Job) -> JobView:
    return JobView(
        id=job.id,
        kind=job.kind,
        payload=dict(job.payload),
        state=job.state,
        attempts=job.attempts,
        error=job.error,
    )


def new_worker_id() -> str:
    """Name this worker uniquely across processes and restarts."""
    return f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def enqueue(
    factory: sessionmaker[Session],
    kind: str,
    payload: Mapping[str, Any],
    *,
    dedup_key: str | None = None,
) -> Enqueued:
    """Record a job, or return the unfinished one that has the same `dedup_key`."""
    for _ in range(3):
        if dedup_key is not None:
            existing = _find_by_key(factory, dedup_key)
            if existing is not None:
                return Enqueued(existing, created=False)
        try:
            with transaction(factory) as session:
                job = Job(
                    kind=kind, payload=dict(payload), dedup_key=dedup_key, state=QUEUED
                )
                session.add(job)
                session.flush()
                view = _view(job)
        except IntegrityError:
            # Another request recorded the same key between our look-up and insert.
            continue
        logger.info("job %s queued: %s", view.id, kind)
        return Enqueued(view, created=True)
    raise RuntimeError(f"could not record or find the job with key {dedup_key!r}")


def _find_by_key(factory: sessionmaker[Session], dedup_key: str) -> JobView | None:
    with factory() as session:
        job = session.scalars(select(Job).where(Job.dedup_key == dedup_key)).first()
        return _view(job) if job is not None else None


def get_job(factory: sessionmaker[Session], job_id: int) -> JobView | None:
    with factory() as session:
        job = session.get(Job, job_id)
        return _view(job) if job is not None else None


def claim_next(
    factory: sessionmaker[Session],
    worker_id: str,
    *,
    kinds: frozenset[str] | None = None,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
) -> JobView | None:
    """Claim the oldest queued job, or one whose worker's lease ran out."""
    now = utcnow()
    claimable = or_(
        Job.state == QUEUED,
        (Job.state == RUNNING) & (Job.locked_until < now),
    )
    with factory() as session:
        query = select(Job.id).where(claimable).order_by(Job.id).limit(20)
        if kinds is not None:
            query = query.where(Job.kind.in_(sorted(kinds)))
        candidates = list(session.scalars(query))

    for job_id in candidates:
        if _claim(factory, job_id, worker_id, now, lease_seconds):
            view = get_job(factory, job_id)
            if view is None:
                continue
            if view.attempts > MAX_ATTEMPTS:
                finish(factory, job_id, worker_id, error="stopped too many times")
                continue
            return view
    return None


def _claim(
    factory: sessionmaker[Session],
    job_id: int,
    worker_id: str,
    now: datetime,
    lease_seconds: float,
) -> bool:
    # The WHERE repeats the claimable condition: of two workers racing for this
    # row, the second one's UPDATE matches nothing.
    statement = (
        update(Job)
        .where(
            Job.id == job_id,
            or_(
                Job.state == QUEUED,
                (Job.state == RUNNING) & (Job.locked_until < now),
            ),
        )
        .values(
            state=RUNNING,
            locked_by=worker_id,
            locked_until=now + timedelta(seconds=lease_seconds),
            attempts=Job.attempts + 1,
            started_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    with transaction(factory) as session:
        return session.execute(statement).rowcount == 1  # type: ignore[attr-defined,no-any-return]


def extend_lease(
    factory: sessionmaker[Session],
    job_id: int,
    worker_id: str,
    *,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
) -> bool:
    """Push the lease forward; false when another worker has taken the job over."""
    statement = (
        update(Job)
        .where(Job.id == job_id, Job.locked_by == worker_id, Job.state == RUNNING)
        .values(locked_until=utcnow() + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    with transaction(factory) as session:
        return session.execute(statement).rowcount == 1  # type: ignore[attr-defined,no-any-return]


def finish(
    factory: sessionmaker[Session],
    job_id: int,
    worker_id: str,
    *,
    error: str = "",
) -> None:
    """Mark the job done, or failed with `error`, and free its dedup key."""
    statement = (
        update(Job)
        .where(Job.id == job_id, Job.locked_by == worker_id)
        .values(
            state=FAILED if error else DONE,
            error=error,
            dedup_key=None,
            locked_until=None,
            finished_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    with transaction(factory) as session:
        session.execute(statement)


def release(factory: sessionmaker[Session], job_id: int, worker_id: str) -> None:
    """Give a running job back to the queue, for a worker that stops cleanly."""
    statement = (
        update(Job)
        .where(Job.id == job_id, Job.locked_by == worker_id, Job.state == RUNNING)
        .values(state=QUEUED, locked_by="", locked_until=None)
        .execution_options(synchronize_session=False)
    )
    with transaction(factory) as session:
        session.execute(statement)


def unfinished_count(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        ids = session.scalars(select(Job.id).where(Job.state.in_([QUEUED, RUNNING])))
        return len(list(ids))


class Worker:
    """Runs jobs one at a time with the bodies registered by kind.

    `run()` loops until `stop()`; it first takes up jobs left unfinished by a
    worker that stopped, once their leases run out. `run_pending()` runs every
    job that can be claimed now and returns, for tests and one-off runs.
    """

    def __init__(
        self,
        factory: sessionmaker[Session],
        bodies: Mapping[str, JobBody],
        *,
        worker_id: str | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        poll_seconds: float = 1.0,
    ) -> None:
        self.factory = factory
        self.bodies = dict(bodies)
        self.worker_id = worker_id or new_worker_id()
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()

    def wake(self) -> None:
        """Look for jobs now instead of at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        logger.info("job worker %s started", self.worker_id)
        while not self._stop.is_set():
            try:
                ran = self.run_pending()
            except Exception:
                logger.exception("job worker %s could not claim a job", self.worker_id)
                ran = 0
            if not ran:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
        logger.info("job worker %s stopped", self.worker_id)

    def run_pending(self) -> int:
        """Run the jobs that can be claimed now; return how many ran."""
        count = 0
        while not self._stop.is_set():
            job = claim_next(
                self.factory,
                self.worker_id,
                kinds=frozenset(self.bodies),
                lease_seconds=self.lease_seconds,
            )
            if job is None:
                break
            self._run_one(job)
            count += 1
        return count

    def _run_one(self, job: JobView) -> None:
        logger.info("job %s started: %s, attempt %s", job.id, job.kind, job.attempts)
        heartbeat = _Heartbeat(self, job.id)
        heartbeat.start()
        error = ""
        try:
            self.bodies[job.kind](job, lambda: self._stop.is_set())
        except WorkerStopping:
            heartbeat.stop()
            release(self.factory, job.id, self.worker_id)
            logger.info("job %s given back because the worker stops", job.id)
            return
        except Exception as caught:
            logger.exception("job %s failed: %s", job.id, job.kind)
            error = str(caught) or type(caught).__name__
        finally:
            heartbeat.stop()

        finish(self.factory, job.id, self.worker_id, error=error)
        logger.info("job %s %s", job.id, "failed" if error else "done")


class _Heartbeat:
    """Extends a running job's lease in the background until stopped."""

    def __init__(self, worker: Worker, job_id: int) -> None:
        self._worker = worker
        self._job_id = job_id
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"job-{job_id}-lease", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()

    def _beat(self) -> None:
        interval = self._worker.lease_seconds / 3
        while not self._done.wait(interval):
            if self._worker.stopping:
                return
            try:
                extend_lease(
                    self._worker.factory,
                    self._job_id,
                    self._worker.worker_id,
                    lease_seconds=self._worker.lease_seconds,
                )
            except Exception:
                logger.exception("could not extend the lease of job %s", self._job_id)
