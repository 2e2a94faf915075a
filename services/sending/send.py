"""Send a month's client tasks, or one task, and recover expired claims."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services import audit
from services.db import transaction
from services.errors import InvalidStateError, NotFoundError
from services.mail import MailBackend, Sender
from services.models import Client, ClientTask, Run, RunState, TaskState, utcnow
from services.periods import Period
from services.progress import Progress
from services.runs import refresh_run_state
from services.sending.candidates import (
    _format_time,
    _load_candidates,
    _load_client_candidate,
    _refusal,
)
from services.sending.claims import SEND_ACTION, Sleep, _Delivery, _update_task
from services.sending.report import SendReport, SendResult, TaskOutcome
from services.sending.workers import _deliver_all

logger = logging.getLogger(__name__)


# At 100 ms per request, 32 requests in flight allow at most 320 e-mails a second.
DEFAULT_WORKERS = 32
# Long enough for one backoff wait plus one request, because the claim is
# renewed before every retry; a crash is noticed after this long.
DEFAULT_LEASE = timedelta(minutes=15)


def send_run(
    factory: sessionmaker[Session],
    period: Period,
    *,
    backend: MailBackend,
    sender: Sender,
    actor: str,
    client_code: str | None = None,
    force: bool = False,
    retry_failed: bool = False,
    progress: Progress | None = None,
    max_attempts: int = 5,
    sleep: Sleep = time.sleep,
    workers: int = DEFAULT_WORKERS,
    lease: timedelta = DEFAULT_LEASE,
) -> SendReport:
    """Send every ready client task of the month, or one client's task.

    With `client_code`, a failed task is retried too and an unknown one only
    with `force`; a task that cannot be sent raises `InvalidStateError` with
    the reason. Without it, tasks that cannot be sent are listed in the report,
    and failed tasks are sent again only with `retry_failed`. When SendGrid
    rejects the API key or the sender, the rest of the month is not attempted
    and stays ready.
    """
    delivery = _Delivery(
        factory, str(period), backend, sender, actor, max_attempts, sleep
    )
    run_id = _find_run(factory, period)
    report = SendReport(str(period))
    report.outcomes.extend(
        recover_expired_claims(factory, run_id=run_id, actor=actor, lease=lease)
    )

    if client_code is None:
        candidates = _load_candidates(factory, run_id, period)
        states: frozenset[TaskState] = frozenset(
            {TaskState.READY, TaskState.FAILED} if retry_failed else {TaskState.READY}
        )
    else:
        candidates = [_load_client_candidate(factory, run_id, period, client_code)]
        states = _single_task_states(force)

    sendable = []
    for candidate in candidates:
        refusal = _refusal(candidate, states, delivery.period)
        if refusal is None:
            sendable.append(candidate)
        elif client_code is not None:
            raise InvalidStateError(refusal.reason)
        else:
            report.outcomes.append(refusal)

    outcomes = _deliver_all(delivery, sendable, states, workers, progress)
    report.stop_reason = delivery.halt.reason
    if client_code is not None and outcomes[0].result in _NOT_ATTEMPTED:
        raise InvalidStateError(outcomes[0].reason)
    report.outcomes.extend(outcomes)

    _refresh_run(factory, run_id)
    logger.info("Sending for %s finished: %s", period, report.summary_line())
    return report


def send_task(
    factory: sessionmaker[Session],
    task_id: int,
    *,
    backend: MailBackend,
    sender: Sender,
    actor: str,
    force: bool = False,
    max_attempts: int = 5,
    sleep: Sleep = time.sleep,
    lease: timedelta = DEFAULT_LEASE,
) -> TaskOutcome:
    """Send one client task by id, as the per-client Send button does.

    Raises `NotFoundError` for an unknown id and `InvalidStateError` when the
    task cannot be sent now, including when another click is already sending it.
    """
    with factory() as session:
        row = session.execute(
            select(Run.period, Client.code)
            .join(ClientTask, ClientTask.run_id == Run.id)
            .join(Client, ClientTask.client_id == Client.id)
            .where(ClientTask.id == task_id)
        ).first()
    if row is None:
        raise NotFoundError(f"client task {task_id} does not exist")

    period, code = row
    report = send_run(
        factory,
        Period.parse(period),
        backend=backend,
        sender=sender,
        actor=actor,
        client_code=code,
        force=force,
        max_attempts=max_attempts,
        sleep=sleep,
        workers=1,
        lease=lease,
    )
    return next(o for o in report.outcomes if o.task_id == task_id)


def recover_expired_claims(
    factory: sessionmaker[Session],
    *,
    run_id: int,
    actor: str,
    lease: timedelta = DEFAULT_LEASE,
) -> list[TaskOutcome]:
    """Turn tasks stuck in `sending` for longer than `lease` into `unknown`.

    Such a task was claimed by a process that stopped before recording the
    result, so the e-mail may or may not have gone out. The claim token is
    kept, so a process that is only slow can still record what happened.
    """
    cutoff = utcnow() - lease
    outcomes = []
    with transaction(factory) as session:
        rows = session.execute(
            select(
                ClientTask.id,
                ClientTask.claim_token,
                ClientTask.claimed_at,
                Client.code,
            )
            .join(Client, ClientTask.client_id == Client.id)
            .where(
                ClientTask.run_id == run_id,
                ClientTask.state == TaskState.SENDING,
                ClientTask.claimed_at < cutoff,
            )
        ).all()
        period = session.scalar(select(Run.period).where(Run.id == run_id)) or ""
        for task_id, token, claimed_at, code in rows:
            reason = (
                f"the send started at {_format_time(claimed_at)} never recorded a "
                "result, so the e-mail may or may not have gone out; check "
                f"SendGrid's Activity Feed for client_task_id {task_id} before "
                "sending it again with force"
            )
            changed = _update_task(
                session,
                task_id,
                [
                    ClientTask.state == TaskState.SENDING,
                    ClientTask.claim_token == token,
                ],
                state=TaskState.UNKNOWN,
                failure_reason=reason,
            )
            if not changed:
                continue
            logger.warning(
                "Client task %s (%s, %s) was left sending since %s; marked unknown",
                task_id,
                code,
                period,
                claimed_at,
            )
            audit.record(
                session,
                actor=actor,
                action=SEND_ACTION,
                period=period,
                client_code=code,
                detail=f"unknown: {reason}",
            )
            outcomes.append(
                TaskOutcome(
                    task_id, code, SendResult.UNKNOWN, TaskState.UNKNOWN, "", reason
                )
            )
    return outcomes


_NOT_ATTEMPTED = frozenset({SendResult.SKIPPED, SendResult.NOT_SENDABLE})


def _single_task_states(force: bool) -> frozenset[TaskState]:
    states = {TaskState.READY, TaskState.FAILED}
    if force:
        states.add(TaskState.UNKNOWN)
    return frozenset(states)


def _find_run(factory: sessionmaker[Session], period: Period) -> int:
    with factory() as session:
        row = session.execute(
            select(Run.id, Run.state).where(Run.period == str(period))
        ).first()
    if row is None:
        raise NotFoundError(
            f"there is no monthly task for {period}; create it with "
            f"`invoices run create {period} --start DATE --end DATE`"
        )
    if row.state is RunState.PLANNED:
        raise InvalidStateError(
            f"{period} is not generated yet, so it has no client tasks to send; "
            f"run `invoices run generate {period}` first"
        )
    return int(row.id)


def _refresh_run(factory: sessionmaker[Session], run_id: int) -> None:
    with transaction(factory) as session:
        run = session.get(Run, run_id)
        assert run is not None
        refresh_run_state(session, run)
