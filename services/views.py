"""Read-only views of monthly and client tasks, shared by status, Slack and the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from services.models import ClientTask, Run, RunState, TaskState


@dataclass(frozen=True)
class TaskView:
    id: int
    period: str
    client_code: str
    client_name: str
    recipients: tuple[str, ...]
    documents: int
    totals: dict[str, str]
    state: TaskState
    message_id: str = ""
    failure_reason: str = ""
    stale_reason: str = ""
    skip_reason: str = ""
    sent_at: datetime | None = None
    delivery_status: str = ""
    delivery_detail: str = ""
    pdf_filename: str = ""
    slack_ts: str = ""
    slack_file_id: str = ""
    # True when the documents changed after this task's e-mail went out.
    documents_changed: bool = False

    @property
    def reason(self) -> str:
        """The one note a person needs for this state, or an empty string."""
        if self.state is TaskState.FAILED:
            return self.failure_reason
        if self.state is TaskState.STALE:
            return self.stale_reason
        if self.state is TaskState.SKIPPED:
            return self.skip_reason
        if self.state is TaskState.UNKNOWN:
            return self.failure_reason or "the outcome of the send is unknown"
        if self.state is TaskState.MISSING_EMAIL:
            return "no valid e-mail address"
        if self.documents_changed:
            return "documents changed after sending; tell the client if needed"
        return ""

    def to_json(self) -> dict[str, Any]:
        return {
            "client_code": self.client_code,
            "client_name": self.client_name,
            "recipients": list(self.recipients),
            "documents": self.documents,
            "totals": dict(self.totals),
            "state": self.state.value,
            "message_id": self.message_id or None,
            "reason": self.reason or None,
            "sent_at": self.sent_at.isoformat() if self.sent_at else None,
            "delivery": self.delivery_status or None,
            "documents_changed_after_sending": self.documents_changed,
        }


def task_view(task: ClientTask, period: str, code: str, name: str) -> TaskView:
    return TaskView(
        id=task.id,
        period=period,
        client_code=code,
        client_name=name,
        recipients=tuple(task.recipients),
        documents=task.document_count,
        totals=dict(task.totals),
        state=task.state,
        message_id=task.message_id,
        failure_reason=task.failure_reason,
        stale_reason=task.stale_reason,
        skip_reason=task.skip_reason,
        sent_at=task.sent_at,
        delivery_status=task.delivery_status,
        delivery_detail=task.delivery_detail,
        pdf_filename=task.pdf_filename,
        slack_ts=task.slack_ts,
        slack_file_id=task.slack_file_id,
    )


@dataclass(frozen=True)
class RunView:
    id: int
    period: str
    planned_start: date
    planned_end: date
    state: RunState
    counts: dict[str, int] = field(default_factory=dict)
    totals: dict[str, str] = field(default_factory=dict)
    documents: int = 0
    slack_channel: str = ""
    slack_ts: str = ""

    @property
    def task_count(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "planned_start": self.planned_start.isoformat(),
            "planned_end": self.planned_end.isoformat(),
            "state": self.state.value,
            "counts": dict(self.counts),
            "documents": self.documents,
            "totals": dict(self.totals),
        }


def run_view(run: Run, tasks: list[TaskView]) -> RunView:
    counts: dict[str, int] = {}
    totals: dict[str, Decimal] = {}
    documents = 0
    for task in tasks:
        counts[task.state.value] = counts.get(task.state.value, 0) + 1
        documents += task.documents
        for currency, amount in task.totals.items():
            totals[currency] = totals.get(currency, Decimal("0")) + Decimal(amount)
    return RunView(
        id=run.id,
        period=run.period,
        planned_start=run.planned_start,
        planned_end=run.planned_end,
        state=run.state,
        counts=counts,
        totals={currency: str(totals[currency]) for currency in sorted(totals)},
        documents=documents,
        slack_channel=run.slack_channel,
        slack_ts=run.slack_ts,
    )
