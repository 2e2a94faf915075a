"""Where the month's message and each client's message and file are in Slack."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from services.db import transaction
from services.models import ClientTask, Run


def set_run_message(
    factory: sessionmaker[Session], period: str, *, channel: str, ts: str
) -> None:
    with transaction(factory) as session:
        session.execute(
            update(Run)
            .where(Run.period == period)
            .values(slack_channel=channel, slack_ts=ts)
        )


def set_task_message(factory: sessionmaker[Session], task_id: int, ts: str) -> None:
    with transaction(factory) as session:
        session.execute(
            update(ClientTask).where(ClientTask.id == task_id).values(slack_ts=ts)
        )


def set_task_file(factory: sessionmaker[Session], task_id: int, file_id: str) -> None:
    with transaction(factory) as session:
        session.execute(
            update(ClientTask)
            .where(ClientTask.id == task_id)
            .values(slack_file_id=file_id)
        )


def task_period(factory: sessionmaker[Session], task_id: int) -> str | None:
    """Return the period of a client task, or None when there is no such task."""
    with factory() as session:
        return session.scalar(
            select(Run.period)
            .join(ClientTask, ClientTask.run_id == Run.id)
            .where(ClientTask.id == task_id)
        )


def task_file_id(factory: sessionmaker[Session], task_id: int) -> str:
    """Return the Slack file id of a task's uploaded PDF, or "" when none is."""
    with factory() as session:
        file_id = session.scalar(
            select(ClientTask.slack_file_id).where(ClientTask.id == task_id)
        )
    return file_id or ""


def task_pdf(factory: sessionmaker[Session], task_id: int) -> tuple[str, bytes]:
    with factory() as session:
        row = session.execute(
            select(ClientTask.pdf_filename, ClientTask.pdf).where(
                ClientTask.id == task_id
            )
        ).first()
    if row is None:
        return "", b""
    return row[0], row[1] or b""
