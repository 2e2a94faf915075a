"""The audit trail: who did what, and when."""

from __future__ import annotations

import getpass

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.models import AuditEvent


def cli_actor() -> str:
    """Name the person at the terminal, as the audit trail records them."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    period: str = "",
    client_code: str = "",
    detail: str = "",
) -> AuditEvent:
    """Add one audit event to the session's transaction."""
    event = AuditEvent(
        actor=actor,
        action=action,
        period=period,
        client_code=client_code,
        detail=detail,
    )
    session.add(event)
    return event


def recent(
    session: Session, *, period: str | None = None, limit: int = 20
) -> list[AuditEvent]:
    """Return the newest events, newest first.

    With `period`, the events of that month and those of no month (imports and
    client changes) are returned.
    """
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if period is not None:
        query = query.where(AuditEvent.period.in_([period, ""]))
    return list(session.scalars(query))
