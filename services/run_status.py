"""Report the status of a monthly task: its client tasks, exclusions and actions."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from services import audit
from services.delivery import delivery_counts
from services.models import Client, ClientTask, Document, DocumentStatus, Run, TaskState
from services.periods import Period
from services.run_state import _task_views, get_run
from services.statements import current_fingerprints
from services.views import RunView, TaskView, run_view


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
