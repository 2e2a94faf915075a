"""Sending client tasks, each at most once whatever happens.

A task is claimed by a conditional UPDATE that is committed before any request
goes out: only the caller whose UPDATE changed the row sends, so a double
click, a Slack retry or a second process finds the task already `sending` or
`sent`. The result is recorded in a new transaction guarded by the claim token.
A claim left behind by a crash expires after a lease and becomes `unknown`,
which is never sent again without a person asking for it.
"""

from __future__ import annotations

import enum
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ThreadPoolExecutor,
    wait,
)
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, bindparam, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from services import audit
from services.db import transaction
from services.errors import DeliveryError, InvalidStateError, NotFoundError
from services.mail import (
    CLIENT_CODE,
    CLIENT_TASK_ID,
    PERIOD,
    MailBackend,
    OutgoingMessage,
    Sender,
)
from services.models import (
    Client,
    ClientTask,
    Run,
    RunState,
    TaskState,
    utcnow,
)
from services.periods import Period
from services.progress import Progress, no_progress
from services.runs import refresh_run_state
from services.statements import current_fingerprints

logger = logging.getLogger(__name__)

# At 100 ms per request, 32 requests in flight allow at most 320 e-mails a second.
DEFAULT_WORKERS = 32
# Long enough for one backoff wait plus one request, because the claim is
# renewed before every retry; a crash is noticed after this long.
DEFAULT_LEASE = timedelta(minutes=15)
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0
# A rate limit that requests a longer wait fails the task instead of holding
# a worker, and a person sends it again later.
MAX_RETRY_AFTER_SECONDS = 120.0

# How long finished sends wait to be recorded together in one commit.
RECORD_INTERVAL_SECONDS = 0.05

SEND_ACTION = "task.send"
Sleep = Callable[[float], None]


class SendResult(enum.StrEnum):
    """The effect of one call on one task."""

    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"
    SKIPPED = "skipped"
    NOT_SENDABLE = "not_sendable"
    # Not attempted because SendGrid rejected the account; the task stays ready.
    STOPPED = "stopped"


@dataclass(frozen=True)
class TaskOutcome:
    task_id: int
    client_code: str
    result: SendResult
    state: TaskState
    message_id: str = ""
    reason: str = ""


@dataclass
class SendReport:
    period: str
    outcomes: list[TaskOutcome] = field(default_factory=list)

    def count(self, result: SendResult) -> int:
        return sum(1 for outcome in self.outcomes if outcome.result is result)

    @property
    def sent(self) -> int:
        return self.count(SendResult.SENT)

    @property
    def failed(self) -> int:
        return self.count(SendResult.FAILED)

    @property
    def skipped(self) -> int:
        return self.count(SendResult.SKIPPED)

    @property
    def unknown(self) -> int:
        return self.count(SendResult.UNKNOWN)

    @property
    def not_sendable(self) -> int:
        return self.count(SendResult.NOT_SENDABLE)

    @property
    def stopped(self) -> int:
        return self.count(SendResult.STOPPED)

    @property
    def failed_earlier(self) -> int:
        """Count failed tasks left alone because only ready tasks were sent."""
        return sum(
            1
            for outcome in self.outcomes
            if outcome.result is SendResult.NOT_SENDABLE
            and outcome.state is TaskState.FAILED
        )

    def summary_line(self) -> str:
        line = (
            f"Sent {self.sent}, failed {self.failed}, skipped {self.skipped}, "
            f"unknown {self.unknown}"
        )
        if self.not_sendable:
            line += f", not sendable {self.not_sendable}"
        if self.stopped:
            line += f", not attempted {self.stopped}"
        return line + "."


class _Halt:
    """Stops a month's sending once SendGrid rejects the API key or the sender."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def stop(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    @property
    def stopped(self) -> bool:
        return self._event.is_set()


@dataclass(frozen=True)
class _Delivery:
    """Everything a worker needs to send one task."""

    factory: sessionmaker[Session]
    period: str
    backend: MailBackend
    sender: Sender
    actor: str
    max_attempts: int
    sleep: Sleep
    halt: _Halt = field(default_factory=_Halt)


@dataclass(frozen=True)
class _Candidate:
    """A task as listed before sending, with its documents' current digest."""

    task_id: int
    client_code: str
    state: TaskState
    recipients: tuple[str, ...]
    documents_fingerprint: str
    current_fingerprint: str
    excluded: bool
    exclude_reason: str
    message_id: str
    sent_at: datetime | None
    claimed_at: datetime | None
    failure_reason: str
    stale_reason: str
    skip_reason: str


@dataclass(frozen=True)
class _Claim:
    task_id: int
    client_code: str
    token: str
    message: OutgoingMessage


@dataclass(frozen=True)
class _Attempt:
    state: TaskState
    message_id: str = ""
    reason: str = ""


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


def _candidate_query(run_id: int) -> Any:
    return (
        select(ClientTask, Client.code, Client.excluded, Client.exclude_reason)
        .join(Client, ClientTask.client_id == Client.id)
        .where(ClientTask.run_id == run_id)
        .order_by(Client.code)
    )


def _load_candidates(
    factory: sessionmaker[Session], run_id: int, period: Period
) -> list[_Candidate]:
    with factory() as session:
        rows = session.execute(_candidate_query(run_id)).all()
        client_ids = select(ClientTask.client_id).where(ClientTask.run_id == run_id)
        fingerprints = current_fingerprints(session, period, client_ids)
    return [
        _candidate(task, code, excluded, reason, fingerprints[task.client_id])
        for task, code, excluded, reason in rows
    ]


def _load_client_candidate(
    factory: sessionmaker[Session], run_id: int, period: Period, client_code: str
) -> _Candidate:
    with factory() as session:
        rows = session.execute(
            _candidate_query(run_id).where(
                func.lower(Client.code) == client_code.strip().lower()
            )
        ).all()
        if not rows:
            raise NotFoundError(_no_task_message(session, period, client_code))
        # Codes that differ only in case are distinguished by the exact spelling.
        exact_first = sorted(rows, key=lambda row: row[1] != client_code.strip())
        task, code, excluded, reason = exact_first[0]
        fingerprints = current_fingerprints(session, period, [task.client_id])
    return _candidate(task, code, excluded, reason, fingerprints[task.client_id])


def _no_task_message(session: Session, period: Period, client_code: str) -> str:
    client = session.scalar(
        select(Client).where(func.lower(Client.code) == client_code.strip().lower())
    )
    if client is None:
        return f"no client has the code {client_code!r}"
    if client.excluded:
        return (
            f"client {client.code} has no task for {period} because it is "
            f"excluded: {client.exclude_reason or 'no reason given'}"
        )
    return (
        f"client {client.code} has no task for {period}; it needs posted documents "
        f"in the month and `invoices run generate {period}`"
    )


def _candidate(
    task: ClientTask, code: str, excluded: bool, exclude_reason: str, current: str
) -> _Candidate:
    return _Candidate(
        task_id=task.id,
        client_code=code,
        state=task.state,
        recipients=tuple(task.recipients),
        documents_fingerprint=task.documents_fingerprint,
        current_fingerprint=current,
        excluded=excluded,
        exclude_reason=exclude_reason,
        message_id=task.message_id,
        sent_at=task.sent_at,
        claimed_at=task.claimed_at,
        failure_reason=task.failure_reason,
        stale_reason=task.stale_reason,
        skip_reason=task.skip_reason,
    )


def _refusal(
    candidate: _Candidate, states: Collection[TaskState], period: str
) -> TaskOutcome | None:
    """Explain why the task cannot be sent now, or return None when it can."""
    code = candidate.client_code
    state = candidate.state

    def refuse(result: SendResult, reason: str) -> TaskOutcome:
        return TaskOutcome(
            candidate.task_id, code, result, state, candidate.message_id, reason
        )

    if state is TaskState.SENT:
        return refuse(
            SendResult.SKIPPED,
            f"{code} was already sent for {period} at "
            f"{_format_time(candidate.sent_at)} with message id "
            f"{candidate.message_id or '(none)'}",
        )
    if state is TaskState.SKIPPED:
        return refuse(
            SendResult.SKIPPED,
            f"{code} was skipped for {period}: "
            f"{candidate.skip_reason or 'no reason given'}",
        )
    if state is TaskState.SENDING:
        return refuse(SendResult.SKIPPED, _being_sent(code, candidate.claimed_at))
    if state is TaskState.STALE:
        return refuse(SendResult.NOT_SENDABLE, _stale(code, period))
    if state is TaskState.MISSING_EMAIL or not candidate.recipients:
        return refuse(SendResult.NOT_SENDABLE, _missing_email(code))
    if state is TaskState.UNKNOWN and state not in states:
        return refuse(
            SendResult.NOT_SENDABLE,
            f"the last send of {code} for {period} has an unknown outcome "
            f"({candidate.failure_reason or 'no answer was recorded'}); check "
            f"SendGrid's Activity Feed for client_task_id {candidate.task_id} first "
            f"and send again with `invoices run send {period} --client {code} "
            "--force` only if the e-mail did not arrive",
        )
    if state is TaskState.FAILED and state not in states:
        return refuse(
            SendResult.NOT_SENDABLE,
            f"{code} failed earlier: {candidate.failure_reason}; fix the cause and "
            f"retry it with `invoices run send {period} --client {code}`",
        )
    if candidate.excluded:
        return refuse(
            SendResult.NOT_SENDABLE,
            f"client {code} is excluded: "
            f"{candidate.exclude_reason or 'no reason given'}; include it again "
            "before sending",
        )
    if state not in states:
        return refuse(SendResult.NOT_SENDABLE, f"{code} is {state.value}")
    return None


def _being_sent(code: str, claimed_at: datetime | None) -> str:
    return f"{code} is already being sent (since {_format_time(claimed_at)})"


def _stale(code: str, period: str) -> str:
    return (
        f"{code} cannot be sent because its documents changed after the PDF was "
        f"made; run `invoices run generate {period}` to rebuild it, then send it"
    )


def _missing_email(code: str) -> str:
    return (
        f"{code} has no e-mail address; set one with "
        f"`invoices client email {code} ADDRESS`, then send it"
    )


def _deliver_all(
    delivery: _Delivery,
    candidates: list[_Candidate],
    states: frozenset[TaskState],
    workers: int,
    progress: Progress | None,
) -> list[TaskOutcome]:
    """Send the candidates on a thread pool, reporting after each one.

    This thread does every claim and every record, a batch per transaction,
    so the database commits a few times per batch instead of twice per e-mail,
    and the workers only make HTTP requests. A batch is claimed only when
    fewer than twice `workers` requests are waiting, so a crash strands few
    tasks in `sending`.
    """
    report = progress or no_progress
    total = len(candidates)
    outcomes: list[TaskOutcome] = []
    if total == 0:
        return outcomes
    workers = max(1, min(workers, total))

    def finish(batch: list[TaskOutcome]) -> None:
        for outcome in batch:
            outcomes.append(outcome)
            report(len(outcomes), total, outcome.client_code)

    pending: dict[Future[_Attempt], _Claim] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, total, workers):
            while len(pending) >= 2 * workers:
                finish(_record_done(delivery, pending))
            if delivery.halt.stopped:
                finish(_not_attempted(delivery, candidates[start:]))
                break
            chunk = candidates[start : start + workers]
            claims, refused = _claim_batch(delivery, chunk, states)
            finish(refused)
            for claim in claims:
                pending[pool.submit(_send_with_retries, delivery, claim)] = claim
        while pending:
            finish(_record_done(delivery, pending))
    return outcomes


def _not_attempted(
    delivery: _Delivery, candidates: list[_Candidate]
) -> list[TaskOutcome]:
    """Describe the tasks left ready because sending stopped before them."""
    return [
        TaskOutcome(
            candidate.task_id,
            candidate.client_code,
            SendResult.STOPPED,
            candidate.state,
            reason=f"not attempted: {delivery.halt.reason}",
        )
        for candidate in candidates
    ]


def _record_done(
    delivery: _Delivery, pending: dict[Future[_Attempt], _Claim]
) -> list[TaskOutcome]:
    """Wait for sends to finish, then record every finished one in one commit.

    After the first one finishes, others that finish within a short interval
    join the same commit, which keeps commits well below one per e-mail.
    """
    done, _ = wait(pending, return_when=FIRST_COMPLETED)
    if len(done) < len(pending):
        done, _ = wait(pending, timeout=RECORD_INTERVAL_SECONDS)
    finished = [(pending.pop(future), future.result()) for future in done]
    return _record_batch(delivery, finished)


def _claim_batch(
    delivery: _Delivery, chunk: list[_Candidate], states: frozenset[TaskState]
) -> tuple[list[_Claim], list[TaskOutcome]]:
    """Claim the chunk's tasks and read what to send, in one transaction.

    The conditional UPDATE is the transaction's first statement, so SQLite
    takes its write lock at once, and PostgreSQL re-checks the WHERE clause
    of each row after a concurrent UPDATE of it commits. A row changes for
    exactly one caller, and the batch token then finds this caller's rows.
    A claimed task whose documents changed since its PDF is made stale.
    """
    token = uuid.uuid4().hex
    by_id = {candidate.task_id: candidate for candidate in chunk}
    with transaction(delivery.factory) as session:
        session.execute(
            update(ClientTask)
            .where(ClientTask.id.in_(by_id), ClientTask.state.in_(states))
            .values(
                state=TaskState.SENDING,
                claim_token=token,
                claimed_at=utcnow(),
                attempts=ClientTask.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )
        rows = session.execute(
            select(
                ClientTask.id,
                ClientTask.documents_fingerprint,
                ClientTask.recipients,
                ClientTask.subject,
                ClientTask.letter,
                ClientTask.pdf,
                ClientTask.pdf_filename,
            )
            # The ids let the primary key find the rows; claim_token has no index.
            .where(ClientTask.id.in_(list(by_id)), ClientTask.claim_token == token)
        ).all()

        claims, refused = [], []
        for task_id, fingerprint, recipients, subject, letter, pdf, filename in rows:
            candidate = by_id.pop(task_id)
            if fingerprint != candidate.current_fingerprint:
                refused.append(_mark_stale(session, delivery, candidate, token))
                continue
            message = OutgoingMessage(
                to=tuple(recipients),
                subject=subject,
                text=letter,
                attachment_filename=filename,
                attachment=pdf,
                custom_args={
                    CLIENT_TASK_ID: str(task_id),
                    PERIOD: delivery.period,
                    CLIENT_CODE: candidate.client_code,
                },
            )
            claims.append(_Claim(task_id, candidate.client_code, token, message))
        refused.extend(_claims_lost(session, delivery, list(by_id.values())))
    return claims, refused


def _send_with_retries(delivery: _Delivery, claim: _Claim) -> _Attempt:
    """Send, retrying rate limits and server errors with backoff and jitter."""
    last_error: DeliveryError | None = None
    for attempt in range(1, delivery.max_attempts + 1):
        if delivery.halt.stopped:
            return _Attempt(TaskState.READY, reason=delivery.halt.reason)
        try:
            message_id = delivery.backend.send(claim.message, delivery.sender)
        except DeliveryError as error:
            if error.unknown:
                return _Attempt(TaskState.UNKNOWN, reason=error.reason)
            if error.account:
                delivery.halt.stop(error.reason)
            if not error.retryable:
                return _Attempt(TaskState.FAILED, reason=error.reason)
            last_error = error
        except Exception as error:
            logger.exception("Sending client task %s raised", claim.task_id)
            return _Attempt(
                TaskState.UNKNOWN,
                reason=f"sending stopped on an unexpected error: {error!r}",
            )
        else:
            return _Attempt(TaskState.SENT, message_id=message_id)

        if attempt == delivery.max_attempts:
            break
        delay = _backoff(attempt, last_error.retry_after)
        if delay > MAX_RETRY_AFTER_SECONDS:
            return _Attempt(
                TaskState.FAILED,
                reason=f"{last_error.reason}; SendGrid asked to wait {delay:.0f} s, "
                "so the e-mail was not sent; send it again later",
            )
        logger.warning(
            "Retrying client task %s in %.1f s after attempt %d of %d: %s",
            claim.task_id,
            delay,
            attempt,
            delivery.max_attempts,
            last_error.reason,
        )
        delivery.sleep(delay)
        if not _renew_claim(delivery.factory, claim):
            return _Attempt(
                TaskState.FAILED,
                reason=f"{last_error.reason}; retrying stopped because the claim "
                "expired and the task was marked unknown",
            )

    assert last_error is not None
    return _Attempt(
        TaskState.FAILED,
        reason=f"SendGrid did not accept the e-mail in {delivery.max_attempts} "
        f"attempts; the last response was: {last_error.reason}",
    )


def _backoff(attempt: int, retry_after: float | None) -> float:
    """Wait exponentially longer after each attempt, never less than asked."""
    backoff = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2.0 ** (attempt - 1))
    jitter = random.uniform(0, backoff / 2)  # noqa: S311 (not for security)
    return max(retry_after or 0.0, backoff) + jitter


def _renew_claim(factory: sessionmaker[Session], claim: _Claim) -> bool:
    """Move the claim's lease forward; False when the claim was taken away."""
    with transaction(factory) as session:
        return _update_task(
            session,
            claim.task_id,
            [
                ClientTask.state == TaskState.SENDING,
                ClientTask.claim_token == claim.token,
            ],
            claimed_at=utcnow(),
        )


def _record_batch(
    delivery: _Delivery, finished: list[tuple[_Claim, _Attempt]]
) -> list[TaskOutcome]:
    """Store each result under its claim token, with an audit event, in one commit."""
    outcomes = []
    with transaction(delivery.factory) as session:
        for claim, attempt in finished:
            outcomes.append(_record(session, delivery, claim, attempt))
    return outcomes


# Built once and run with each result's parameters.
_RECORD_RESULT = (
    update(ClientTask)
    .where(
        ClientTask.id == bindparam("task_id"),
        ClientTask.claim_token == bindparam("token"),
        ClientTask.state.in_([TaskState.SENDING, TaskState.UNKNOWN]),
    )
    .values(
        state=bindparam("new_state"),
        claim_token="",
        message_id=bindparam("new_message_id"),
        sent_at=bindparam("new_sent_at"),
        failure_reason=bindparam("new_failure_reason"),
    )
    .execution_options(synchronize_session=False)
)


def _record(
    session: Session, delivery: _Delivery, claim: _Claim, attempt: _Attempt
) -> TaskOutcome:
    sent = attempt.state is TaskState.SENT
    released = attempt.state is TaskState.READY
    result = cast(
        CursorResult[Any],
        session.execute(
            _RECORD_RESULT,
            {
                "task_id": claim.task_id,
                "token": claim.token,
                "new_state": attempt.state,
                "new_message_id": attempt.message_id,
                "new_sent_at": utcnow() if sent else None,
                "new_failure_reason": "" if sent or released else attempt.reason,
            },
        ),
    )
    recorded = result.rowcount == 1

    if sent:
        detail = f"sent as message {attempt.message_id or '(none)'}"
    elif released:
        detail = f"not attempted: {attempt.reason}"
    else:
        detail = f"{attempt.state.value}: {attempt.reason}"
    if not recorded:
        detail = f"{detail} (not recorded: the task was claimed again meanwhile)"
    audit.record(
        session,
        actor=delivery.actor,
        action=SEND_ACTION,
        period=delivery.period,
        client_code=claim.client_code,
        detail=detail,
    )
    _log_result(delivery, claim, attempt, recorded)
    return TaskOutcome(
        claim.task_id,
        claim.client_code,
        SendResult.STOPPED if released else SendResult(attempt.state.value),
        attempt.state,
        attempt.message_id,
        attempt.reason,
    )


def _log_result(
    delivery: _Delivery, claim: _Claim, attempt: _Attempt, recorded: bool
) -> None:
    if not recorded:
        logger.error(
            "Client task %s (%s, %s) ended %s but was claimed again meanwhile, "
            "so the result was not stored: %s",
            claim.task_id,
            claim.client_code,
            delivery.period,
            attempt.state.value,
            attempt.message_id or attempt.reason,
        )
    elif attempt.state is TaskState.SENT:
        logger.info(
            "Sent client task %s (%s, %s) as message %s",
            claim.task_id,
            claim.client_code,
            delivery.period,
            attempt.message_id,
        )
    else:
        logger.warning(
            "Client task %s (%s, %s) is %s: %s",
            claim.task_id,
            claim.client_code,
            delivery.period,
            attempt.state.value,
            attempt.reason,
        )


def _mark_stale(
    session: Session, delivery: _Delivery, candidate: _Candidate, token: str
) -> TaskOutcome:
    _update_task(
        session,
        candidate.task_id,
        [ClientTask.claim_token == token],
        state=TaskState.STALE,
        claim_token="",
        stale_reason="its documents changed after the PDF was made",
    )
    logger.warning(
        "Client task %s (%s, %s) is stale and was not sent",
        candidate.task_id,
        candidate.client_code,
        delivery.period,
    )
    return TaskOutcome(
        candidate.task_id,
        candidate.client_code,
        SendResult.NOT_SENDABLE,
        TaskState.STALE,
        reason=_stale(candidate.client_code, delivery.period),
    )


def _claims_lost(
    session: Session, delivery: _Delivery, candidates: list[_Candidate]
) -> list[TaskOutcome]:
    """Describe tasks another caller changed between listing and claiming."""
    outcomes = []
    for candidate in candidates:
        task = session.get(ClientTask, candidate.task_id)
        assert task is not None
        current = _candidate(
            task,
            candidate.client_code,
            candidate.excluded,
            candidate.exclude_reason,
            candidate.current_fingerprint,
        )
        refusal = _refusal(current, (), delivery.period)
        assert refusal is not None
        outcomes.append(refusal)
    return outcomes


def _update_task(
    session: Session, task_id: int, conditions: Iterable[Any], **values: Any
) -> bool:
    """Run a conditional UPDATE of one task; True when it changed the row."""
    statement = (
        update(ClientTask)
        .where(ClientTask.id == task_id, *conditions)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    result = cast(CursorResult[Any], session.execute(statement))
    return result.rowcount == 1


def _refresh_run(factory: sessionmaker[Session], run_id: int) -> None:
    with transaction(factory) as session:
        run = session.get(Run, run_id)
        assert run is not None
        refresh_run_state(session, run)


def _format_time(moment: datetime | None) -> str:
    if moment is None:
        return "an unrecorded time"
    return moment.strftime("%Y-%m-%d %H:%M UTC")
