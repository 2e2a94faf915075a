"""Load the tasks to send and explain why a task cannot be sent now."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from services.errors import NotFoundError
from services.models import Client, ClientTask, TaskState
from services.periods import Period
from services.sending.report import SendResult, TaskOutcome
from services.statements import current_fingerprints


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
        return refuse(SendResult.NOT_SENDABLE, _being_sent(code, candidate.claimed_at))
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


def _format_time(moment: datetime | None) -> str:
    if moment is None:
        return "an unrecorded time"
    return moment.strftime("%Y-%m-%d %H:%M UTC")
