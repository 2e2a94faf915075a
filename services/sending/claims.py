"""Claim tasks for sending and record each result under its claim token."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import CursorResult, bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from services import audit
from services.db import transaction
from services.mail import (
    CLIENT_CODE,
    CLIENT_TASK_ID,
    PERIOD,
    MailBackend,
    OutgoingMessage,
    Sender,
)
from services.models import ClientTask, TaskState, utcnow
from services.sending.candidates import _Candidate, _candidate, _refusal, _stale
from services.sending.report import SendResult, TaskOutcome

logger = logging.getLogger(__name__)


SEND_ACTION = "task.send"


Sleep = Callable[[float], None]


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
    # False for a task given back because sending stopped before its request.
    requested: bool = True


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


def _record_batch(
    delivery: _Delivery, finished: list[tuple[_Claim, _Attempt]]
) -> list[TaskOutcome]:
    """Store each result under its claim token, with an audit event, in one commit.

    The UPDATEs run before any audit event is added, so the session flushes
    the events once, as one multi-row INSERT, instead of before each UPDATE.
    """
    with transaction(delivery.factory) as session:
        stored = [
            (claim, attempt, _store(session, claim, attempt))
            for claim, attempt in finished
        ]
        return [
            _record(session, delivery, claim, attempt, recorded)
            for claim, attempt, recorded in stored
        ]


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


def _store(session: Session, claim: _Claim, attempt: _Attempt) -> bool:
    """Run the UPDATE of one result; False when the claim was taken meanwhile."""
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
    return result.rowcount == 1


def _record(
    session: Session,
    delivery: _Delivery,
    claim: _Claim,
    attempt: _Attempt,
    recorded: bool,
) -> TaskOutcome:
    """Add the audit event and the log line of one stored result."""
    sent = attempt.state is TaskState.SENT
    released = attempt.state is TaskState.READY
    if sent:
        detail = f"sent as message {attempt.message_id or '(none)'}"
    elif released and not attempt.requested:
        detail = f"not attempted: {attempt.reason}"
    elif released:
        detail = f"left ready: {attempt.reason}"
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
