"""SendGrid's Event Webhook: signature checks, recorded events, delivery status.

SendGrid signs each post with ECDSA over P-256 and SHA-256. The signed bytes
are the `X-Twilio-Email-Event-Webhook-Timestamp` header followed by the raw
body, and the signature header is the base64 of the DER signature. The public
key in SendGrid's mail settings is the base64 of its DER SubjectPublicKeyInfo.
The sendgrid-python 6.x helper `sendgrid.helpers.eventwebhook` verifies the
same way.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    load_der_public_key,
    load_pem_public_key,
)
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from services import audit
from services.errors import ConfigurationError, InvoiceListsError
from services.models import Client, ClientTask, DeliveryEvent, Run, TaskState
from services.periods import Period

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
# Posts signed longer ago than this, or this far in the future, are rejected.
# NOTE: whether SendGrid signs a retried post anew is not documented; if it
# does not, retries after this age are rejected and their events lost.
MAX_SIGNATURE_AGE = timedelta(minutes=10)

# SendGrid event names kept, ranked so that a later rank wins a tie in time.
# A bounce of type "blocked" is stored as "blocked".
EVENT_RANKS = {
    "processed": 1,
    "deferred": 2,
    "delivered": 3,
    "spamreport": 4,
    "blocked": 5,
    "bounce": 6,
    "dropped": 7,
}
FINAL_EVENTS = frozenset({"delivered", "spamreport", "blocked", "bounce", "dropped"})
PROBLEM_EVENTS = frozenset({"blocked", "bounce", "dropped"})


class WebhookRejectedError(InvoiceListsError):
    """An Event Webhook post that is not SendGrid's or cannot be read.

    `status` is the HTTP status to reply with: 403 for a missing or wrong
    signature or an old timestamp, 400 for a body that is not events.
    """

    def __init__(self, reason: str, *, status: int = 403) -> None:
        super().__init__(reason)
        self.status = status


def load_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """Load SendGrid's verification key: base64 DER, or the same as PEM."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = load_pem_public_key(text.encode("ascii"))
        else:
            key = load_der_public_key(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error, UnsupportedAlgorithm) as error:
        raise ConfigurationError(
            "SENDGRID_WEBHOOK_PUBLIC_KEY is not a valid public key; copy the "
            "verification key from SendGrid's signed Event Webhook settings"
        ) from error
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(
        key.curve, ec.SECP256R1
    ):
        raise ConfigurationError(
            "SENDGRID_WEBHOOK_PUBLIC_KEY is not a P-256 elliptic curve key"
        )
    return key


def verify_webhook(
    public_key: ec.EllipticCurvePublicKey,
    *,
    body: bytes,
    signature: str,
    timestamp: str,
    now: datetime,
    max_age: timedelta = MAX_SIGNATURE_AGE,
) -> None:
    """Raise `WebhookRejectedError` unless SendGrid signed `body` recently."""
    if not signature or not timestamp:
        raise WebhookRejectedError("the signature or timestamp header is missing")
    try:
        signed_at = datetime.fromtimestamp(int(timestamp), UTC)
    except (ValueError, OverflowError, OSError) as error:
        raise WebhookRejectedError(f"invalid timestamp {timestamp[:20]!r}") from error
    age = int((now - signed_at).total_seconds())
    if abs(age) > max_age.total_seconds():
        when = f"{age} seconds old" if age > 0 else f"{-age} seconds in the future"
        raise WebhookRejectedError(
            f"the timestamp is {when}, more than the "
            f"{int(max_age.total_seconds())} seconds allowed"
        )

    try:
        decoded = base64.b64decode(signature, validate=True)
        public_key.verify(
            decoded, timestamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256())
        )
    except (InvalidSignature, binascii.Error, ValueError) as error:
        raise WebhookRejectedError("the signature does not match the body") from error


@dataclass(frozen=True)
class EventRecord:
    """One delivery event from a webhook post, as stored."""

    sg_event_id: str
    event: str
    occurred_at: datetime
    email: str = ""
    reason: str = ""
    client_task_id: int | None = None
    period: str = ""


def parse_events(body: bytes) -> tuple[list[EventRecord], int]:
    """Read a post's events; return those kept and the count of others ignored.

    Opens, clicks and unsubscribes are ignored, and so is an event without an
    `sg_event_id`, which could not be recorded once.
    """
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise WebhookRejectedError("the body is not JSON", status=400) from error
    if not isinstance(payload, list):
        raise WebhookRejectedError("the body is not a list of events", status=400)

    records: list[EventRecord] = []
    for item in payload:
        record = _event_record(item) if isinstance(item, dict) else None
        if record is not None:
            records.append(record)
    return records, len(payload) - len(records)


def _event_record(item: dict[str, Any]) -> EventRecord | None:
    event = str(item.get("event", ""))
    if event == "bounce" and item.get("type") == "blocked":
        event = "blocked"
    sg_event_id = str(item.get("sg_event_id", ""))
    if event not in EVENT_RANKS or not sg_event_id:
        return None

    try:
        occurred_at = datetime.fromtimestamp(int(item["timestamp"]), UTC)
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        logger.warning("Ignored the event %s without a valid timestamp", sg_event_id)
        return None

    return EventRecord(
        sg_event_id=sg_event_id[:200],
        event=event,
        occurred_at=occurred_at,
        email=str(item.get("email", ""))[:320],
        reason=_reason(item),
        client_task_id=_task_id(item.get("client_task_id")),
        period=str(item.get("period", "")),
    )


def _reason(item: dict[str, Any]) -> str:
    """Return SendGrid's explanation: the bounce or drop reason, or the response."""
    for name in ("reason", "response"):
        value = item.get(name)
        if value:
            return str(value)[:1000]
    return ""


def _task_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


@dataclass(frozen=True)
class TaskChange:
    """A client task whose delivery status changed because of new events."""

    task_id: int
    period: str
    client_code: str
    previous: str
    status: str
    detail: str

    @property
    def is_problem(self) -> bool:
        return self.status in PROBLEM_EVENTS


@dataclass
class RecordReport:
    recorded: int = 0
    repeated: int = 0
    unmatched: int = 0
    ignored: int = 0
    changes: list[TaskChange] = field(default_factory=list)

    def summary_line(self) -> str:
        return (
            f"recorded {self.recorded} events ({self.repeated} repeated, "
            f"{self.unmatched} unmatched, {self.ignored} ignored); "
            f"{len(self.changes)} client tasks changed"
        )


def record_events(
    factory: sessionmaker[Session], events: Sequence[EventRecord], *, ignored: int = 0
) -> RecordReport:
    """Store new events once each and update the delivery status of their tasks.

    An event is matched to its client task by the task id and month in its
    custom arguments, and an event that matches none is stored unmatched. An
    event whose `sg_event_id` is already stored changes nothing.
    """
    report = RecordReport(ignored=ignored)
    touched: set[int] = set()
    with factory() as session, session.begin():
        periods = _task_periods(session, [event.client_task_id for event in events])
        for event in events:
            task_id = _matched_task(event, periods)
            if _insert_once(session, event, task_id):
                report.recorded += 1
                if task_id is None:
                    report.unmatched += 1
                else:
                    touched.add(task_id)
            else:
                report.repeated += 1
        for task_id in sorted(touched):
            change = _refresh_status(session, task_id)
            if change is not None:
                report.changes.append(change)

    for change in report.changes:
        log = logger.warning if change.is_problem else logger.info
        log(
            "Delivery of client task %d (%s, %s) is now %s",
            change.task_id,
            change.client_code,
            change.period,
            change.status,
        )
    return report


def _task_periods(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {task_id for task_id in ids if task_id is not None}
    if not wanted:
        return {}
    rows = session.execute(
        select(ClientTask.id, Run.period)
        .join(Run, Run.id == ClientTask.run_id)
        .where(ClientTask.id.in_(wanted))
    ).all()
    return {row[0]: row[1] for row in rows}


def _matched_task(event: EventRecord, periods: dict[int, str]) -> int | None:
    if event.client_task_id is None:
        return None
    period = periods.get(event.client_task_id)
    if period is None or (event.period and event.period != period):
        logger.warning(
            "The event %s names client task %d of %s, which does not exist",
            event.sg_event_id,
            event.client_task_id,
            event.period or "an unnamed month",
        )
        return None
    return event.client_task_id


def _insert_once(session: Session, event: EventRecord, task_id: int | None) -> bool:
    """Insert the event unless its `sg_event_id` is stored; return true if new."""
    values = {
        "sg_event_id": event.sg_event_id,
        "client_task_id": task_id,
        "event": event.event,
        "reason": event.reason,
        "email": event.email,
        "occurred_at": event.occurred_at,
        "recorded_at": datetime.now(UTC),
    }
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        statement: Any = postgresql.insert(DeliveryEvent).values(values)
    elif dialect == "sqlite":
        statement = sqlite.insert(DeliveryEvent).values(values)
    else:
        raise NotImplementedError(f"recording delivery events on {dialect}")
    statement = statement.on_conflict_do_nothing(
        index_elements=["sg_event_id"]
    ).returning(DeliveryEvent.id)
    return session.execute(statement).scalar() is not None


def _refresh_status(session: Session, task_id: int) -> TaskChange | None:
    """Recompute a task's delivery status from all its stored events.

    The row lock makes concurrent posts for one task compute in turn, each from
    every event committed before it.
    """
    task = session.scalar(
        select(ClientTask).where(ClientTask.id == task_id).with_for_update()
    )
    if task is None:
        return None
    events = list(
        session.scalars(
            select(DeliveryEvent).where(DeliveryEvent.client_task_id == task_id)
        )
    )
    status, detail = delivery_status(events, task.recipients)
    if (status, detail) == (task.delivery_status, task.delivery_detail):
        return None

    previous = task.delivery_status
    task.delivery_status = status
    task.delivery_detail = detail
    client_code = session.scalar(select(Client.code).where(Client.id == task.client_id))
    period = session.scalar(select(Run.period).where(Run.id == task.run_id)) or ""
    if status in PROBLEM_EVENTS and previous != status:
        audit.record(
            session,
            actor="sendgrid",
            action=f"delivery.{status}",
            period=period,
            client_code=client_code or "",
            detail=detail,
        )
    return TaskChange(task_id, period, client_code or "", previous, status, detail)


def delivery_status(
    events: Sequence[DeliveryEvent], recipients: Sequence[str]
) -> tuple[str, str]:
    """Return a task's delivery status and detail from its events.

    Each recipient's status is its winning event: a final one (delivered, spam
    report, bounce, block, drop) over any in progress, then the newest, then the
    higher rank, so an older event never undoes a newer final one. The task
    shows a recipient's bounce, block or drop first, then any recipient still
    waiting, then a spam report, else delivered.
    """
    latest: dict[str, DeliveryEvent] = {}
    for event in events:
        email = event.email.casefold()
        current = latest.get(email)
        if current is None or _precedence(event) > _precedence(current):
            latest[email] = event
    if not latest:
        return "", ""

    winners = list(latest.values())
    problems = [event for event in winners if event.event in PROBLEM_EVENTS]
    if problems:
        worst = max(problems, key=_precedence)
        return worst.event, _detail(worst)

    expected = {address.casefold() for address in recipients} | set(latest)
    waiting = [event for event in winners if event.event not in FINAL_EVENTS]
    if waiting or expected - set(latest):
        if waiting:
            newest = max(waiting, key=_precedence)
            return newest.event, _detail(newest)
        return "processed", ""

    reports = [event for event in winners if event.event == "spamreport"]
    if reports:
        return "spamreport", _detail(max(reports, key=_precedence))
    return "delivered", ""


def _precedence(event: DeliveryEvent) -> tuple[bool, datetime, int]:
    return (
        event.event in FINAL_EVENTS,
        event.occurred_at,
        EVENT_RANKS.get(event.event, 0),
    )


def _detail(event: DeliveryEvent) -> str:
    if event.reason:
        return f"{event.email}: {event.reason}" if event.email else event.reason
    return event.email


def delivery_counts(factory: sessionmaker[Session], period: Period) -> dict[str, int]:
    """Count a month's sent e-mails as delivered, bounced or waiting for SendGrid.

    Bounced includes blocks and drops. Delivered includes e-mails later
    reported as spam, which did reach the recipient.
    """
    counts = {"delivered": 0, "bounced": 0, "waiting": 0}
    with factory() as session:
        rows = session.execute(
            select(ClientTask.delivery_status, func.count(ClientTask.id))
            .join(Run, Run.id == ClientTask.run_id)
            .where(Run.period == str(period), ClientTask.state == TaskState.SENT)
            .group_by(ClientTask.delivery_status)
        ).all()
    for status, count in rows:
        if status in {"delivered", "spamreport"}:
            counts["delivered"] += count
        elif status in PROBLEM_EVENTS:
            counts["bounced"] += count
        else:
            counts["waiting"] += count
    return counts
