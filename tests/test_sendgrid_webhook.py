"""POST /sendgrid/events: SendGrid's signed Event Webhook and delivery status."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.context import AppContext
from bot.settings import Settings
from handlers.sendgrid_events import handle_sendgrid_events
from services.delivery import delivery_counts
from services.models import (
    AuditEvent,
    Client,
    ClientTask,
    DeliveryEvent,
    Run,
    RunState,
    TaskState,
)
from services.periods import Period

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
PERIOD = "2026-11"


class RecordingNotifier:
    def __init__(self) -> None:
        self.refreshed: list[int] = []

    def post_run(self, period: Period, *, note: str = "") -> None:
        raise AssertionError("the webhook never posts a month")

    def post_text(self, text: str) -> None:
        raise AssertionError("the webhook never posts text")

    def post_reminder(self, period: Period, text: str) -> None:
        raise AssertionError("the webhook never posts reminders")

    def refresh_task(self, task_id: int) -> None:
        self.refreshed.append(task_id)


@pytest.fixture
def private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _public_key_text(private_key: ec.EllipticCurvePrivateKey) -> str:
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")


@pytest.fixture
def context(
    engine: Engine,
    factory: sessionmaker[Session],
    database_url: str,
    private_key: ec.EllipticCurvePrivateKey,
) -> AppContext:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        sendgrid_webhook_public_key=_public_key_text(private_key),
    )
    return AppContext(settings=settings, engine=engine, factory=factory)


def _signed_headers(
    private_key: ec.EllipticCurvePrivateKey, body: bytes, signed_at: datetime = NOW
) -> dict[str, str]:
    """Sign as SendGrid does: ECDSA P-256 SHA-256 over timestamp + raw body."""
    timestamp = str(int(signed_at.timestamp()))
    signature = private_key.sign(
        timestamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256())
    )
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }


def _add_tasks(factory: sessionmaker[Session], count: int) -> list[int]:
    with factory() as session, session.begin():
        run = Run(
            period=PERIOD,
            planned_start=datetime(2026, 12, 1).date(),
            planned_end=datetime(2026, 12, 10).date(),
            state=RunState.GENERATED,
        )
        session.add(run)
        tasks = []
        for number in range(1, count + 1):
            client = Client(
                code=f"C{number:03d}", name=f"Client {number}", name_folded=""
            )
            task = ClientTask(
                run=run,
                client=client,
                state=TaskState.SENT,
                recipients=[f"client{number}@example.com"],
                message_id=f"message-{number}",
            )
            session.add(task)
            tasks.append(task)
        session.flush()
        return [task.id for task in tasks]


def _event(
    task_id: int,
    event: str,
    *,
    at: int,
    sg_event_id: str | None = None,
    period: str = PERIOD,
    **fields: Any,
) -> dict[str, Any]:
    number = int(task_id)
    return {
        "email": f"client{number}@example.com",
        "timestamp": int(NOW.timestamp()) - 600 + at,
        "event": event,
        "sg_event_id": sg_event_id or f"{event}-{task_id}-{at}",
        "sg_message_id": f"message-{number}.filter",
        "client_task_id": str(task_id),
        "period": period,
        **fields,
    }


def _body(events: Sequence[dict[str, Any]]) -> bytes:
    return json.dumps(list(events)).encode("utf-8")


def _statuses(factory: sessionmaker[Session]) -> dict[int, tuple[str, str]]:
    with factory() as session:
        tasks = session.scalars(select(ClientTask).order_by(ClientTask.id))
        return {task.id: (task.delivery_status, task.delivery_detail) for task in tasks}


def _event_count(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.scalar(select(func.count(DeliveryEvent.id))) or 0


def _post(
    context: AppContext,
    body: bytes,
    headers: dict[str, str],
    notifier: RecordingNotifier | None = None,
) -> tuple[int, str]:
    return handle_sendgrid_events(
        context, body, headers, notifier=notifier or RecordingNotifier(), now=NOW
    )


def test_signed_batch_updates_tasks(
    context: AppContext, private_key: ec.EllipticCurvePrivateKey
) -> None:
    delivered, bounced, deferred = _add_tasks(context.factory, 3)
    body = _body(
        [
            _event(delivered, "processed", at=1),
            _event(delivered, "delivered", at=5, response="250 OK"),
            _event(bounced, "processed", at=1),
            _event(
                bounced,
                "bounce",
                at=6,
                reason="550 5.1.1 The email account does not exist",
                type="bounce",
            ),
            _event(deferred, "deferred", at=3, response="421 try again later"),
            _event(deferred, "open", at=9),
        ]
    )
    notifier = RecordingNotifier()

    status, text = _post(context, body, _signed_headers(private_key, body), notifier)

    assert status == 200
    assert "recorded 5 events" in text
    statuses = _statuses(context.factory)
    assert statuses[delivered] == ("delivered", "")
    assert statuses[bounced] == (
        "bounce",
        "client2@example.com: 550 5.1.1 The email account does not exist",
    )
    assert statuses[deferred] == (
        "deferred",
        "client3@example.com: 421 try again later",
    )
    assert _event_count(context.factory) == 5
    assert notifier.refreshed == [bounced]


def test_bounce_is_in_audit_and_counts(
    context: AppContext, private_key: ec.EllipticCurvePrivateKey
) -> None:
    delivered, bounced, waiting, dropped = _add_tasks(context.factory, 4)
    body = _body(
        [
            _event(delivered, "delivered", at=5),
            _event(bounced, "bounce", at=6, reason="550 no such user"),
            _event(waiting, "processed", at=1),
            _event(dropped, "dropped", at=2, reason="Bounced Address"),
        ]
    )

    status, _text = _post(context, body, _signed_headers(private_key, body))

    assert status == 200
    assert delivery_counts(context.factory, Period.parse(PERIOD)) == {
        "delivered": 1,
        "bounced": 2,
        "waiting": 1,
    }
    with context.factory() as session:
        actions = session.execute(
            select(AuditEvent.action, AuditEvent.client_code).order_by(AuditEvent.id)
        ).all()
    assert [tuple(row) for row in actions] == [
        ("delivery.bounce", "C002"),
        ("delivery.dropped", "C004"),
    ]


SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


def _rejected_post(
    case: str, private_key: ec.EllipticCurvePrivateKey, body: bytes
) -> tuple[bytes, dict[str, str]]:
    """Return the body and headers of a post that must not verify."""
    signed = _signed_headers(private_key, body)
    if case == "other key":
        return body, _signed_headers(ec.generate_private_key(ec.SECP256R1()), body)
    if case == "changed body":
        return body.replace(b"delivered", b"bounce"), signed
    if case == "other timestamp":
        return body, signed | {TIMESTAMP: str(int(signed[TIMESTAMP]) - 1)}
    if case == "old timestamp":
        return body, _signed_headers(private_key, body, NOW - timedelta(minutes=11))
    if case == "future timestamp":
        return body, _signed_headers(private_key, body, NOW + timedelta(minutes=11))
    if case == "no signature":
        return body, {TIMESTAMP: signed[TIMESTAMP]}
    if case == "garbled signature":
        return body, signed | {SIGNATURE: "not base64!"}
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    [
        "other key",
        "changed body",
        "other timestamp",
        "old timestamp",
        "future timestamp",
        "no signature",
        "garbled signature",
    ],
)
def test_unverified_post_is_rejected(
    context: AppContext, private_key: ec.EllipticCurvePrivateKey, case: str
) -> None:
    (task,) = _add_tasks(context.factory, 1)
    body = _body([_event(task, "delivered", at=5)])
    posted, headers = _rejected_post(case, private_key, body)
    notifier = RecordingNotifier()

    status, _text = _post(context, posted, headers, notifier)

    assert status == 403
    assert _statuses(context.factory)[task] == ("", "")
    assert _event_count(context.factory) == 0
    assert notifier.refreshed == []


def test_recent_timestamp_is_accepted(
    context: AppContext, private_key: ec.EllipticCurvePrivateKey
) -> None:
    (task,) = _add_tasks(context.factory, 1)
    body = _body([_event(task, "delivered", at=5)])
    headers = _signed_headers(private_key, body, NOW - timedelta(minutes=9))

    status, _text = _post(context, body, headers)

    assert status == 200


def test_repeated_batch_changes_nothing(
    context: AppContext, private_key: ec.EllipticCurvePrivateKey
) -> None:
    delivered, bounced = _add_tasks(context.factory, 2)
    body = _body(
        [
            _event(delivered, "delivered", at=5),
            _event(bounced, "bounce", at=6, reason="550 no such user"),
        ]
    )
    assert _post(context, body, _signed_headers(private_key, body))[0] == 200
    before = _statuses(context.factory)
    notifier = RecordingNotifier()

    status, text = _post(
        context,
        body,
        _signed_headers(private_key, body, NOW + timedelta(seconds=30)),
        notifier,
    )

    assert status == 200
    assert "recorded 0 events (2 repeated" in text
    assert _statuses(context.factory) == before
    assert _event_count(context.factory) == 2
    assert notifier.refreshed == []
    with context.factory() as session:
        assert session.scalar(select(func.count(AuditEvent.id))) == 1


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param(
            [("delivered", 50), ("deferred", 10)], "delivered", id="older-deferred"
        ),
        pytest.param(
            [("delivered", 50), ("processed", 90)], "delivered", id="newer-processed"
        ),
        pytest.param(
            [("bounce", 50), ("delivered", 20)], "bounce", id="older-delivered"
        ),
        pytest.param([("delivered", 20), ("bounce", 50)], "bounce", id="newer-bounce"),
        pytest.param([("delivered", 50), ("bounce", 50)], "bounce", id="same-second"),
        pytest.param(
            [("deferred", 10), ("deferred", 40), ("processed", 5)],
            "deferred",
            id="deferred-twice",
        ),
    ],
)
def test_batches_in_any_order_agree(
    context: AppContext,
    private_key: ec.EllipticCurvePrivateKey,
    events: list[tuple[str, int]],
    expected: str,
) -> None:
    (task,) = _add_tasks(context.factory, 1)

    for name, at in events:
        body = _body([_event(task, name, at=at)])
        assert _post(context, body, _signed_headers(private_key, body))[0] == 200

    assert _statuses(context.factory)[task][0] == expected


def test_bounce_of_one_recipient_shows(
    context: AppContext, private_key: ec.EllipticCurvePrivateKey
) -> None:
    (task,) = _add_tasks(context.factory, 1)
    with context.factory() as session, session.begin():
        row = session.get(ClientTask, task)
        assert row is not None
        row.recipients = ["client1@example.com", "Accounts@Example.com"]
    first = _event(task, "delivered", at=5)
    second = _event(task, "processed", at=4, email="accounts@example.com")
    body = _body([first, second])

    assert _post(context, body, _signed_headers(private_key, body))[0] == 200
    waiting = _statuses(context.factory)[task][0]
    bounce = _event(task, "bounce", at=7, email="accounts@example.com", reason="full")
    body = _body([bounce])
    assert _post(context, body, _signed_headers(private_key, body))[0] == 200

    assert waiting == "processed"
    assert _statuses(context.factory)[task] == ("bounce", "accounts@example.com: full")


@pytest.mark.parametrize(
    "task_id",
    [
        pytest.param("999999", id="unknown-task"),
        pytest.param("", id="no-task"),
        pytest.param("abc", id="not-a-number"),
    ],
)
def test_unmatched_event_is_recorded_only(
    context: AppContext, private_key: ec.EllipticCurvePrivateKey, task_id: str
) -> None:
    (task,) = _add_tasks(context.factory, 1)
    event = _event(task, "bounce", at=5) | {"client_task_id": task_id}
    body = _body([event])

    status, text = _post(context, body, _signed_headers(private_key, body))

    assert status == 200
    assert "1 unmatched" in text
    assert _statuses(context.factory)[task] == ("", "")
    assert _event_count(context.factory) == 1


def test_event_of_other_month_is_unmatched(
    context: AppContext, private_key: ec.EllipticCurvePrivateKey
) -> None:
    (task,) = _add_tasks(context.factory, 1)
    body = _body([_event(task, "bounce", at=5, period="2026-10")])

    status, text = _post(context, body, _signed_headers(private_key, body))

    assert status == 200
    assert "1 unmatched" in text
    assert _statuses(context.factory)[task] == ("", "")


def test_blocked_bounce_is_stored_as_blocked(
    context: AppContext, private_key: ec.EllipticCurvePrivateKey
) -> None:
    (task,) = _add_tasks(context.factory, 1)
    body = _body([_event(task, "bounce", at=5, type="blocked", reason="blocklisted")])

    _post(context, body, _signed_headers(private_key, body))

    assert _statuses(context.factory)[task][0] == "blocked"
    assert delivery_counts(context.factory, Period.parse(PERIOD))["bounced"] == 1


def test_signed_invalid_json_is_bad_request(
    context: AppContext, private_key: ec.EllipticCurvePrivateKey
) -> None:
    body = b'{"event": "delivered"'

    status, _text = _post(context, body, _signed_headers(private_key, body))

    assert status == 400
    assert _event_count(context.factory) == 0


def test_missing_public_key_rejects_all(
    context: AppContext, private_key: ec.EllipticCurvePrivateKey
) -> None:
    (task,) = _add_tasks(context.factory, 1)
    settings = context.settings.model_copy(update={"sendgrid_webhook_public_key": ""})
    unconfigured = AppContext(
        settings=settings, engine=context.engine, factory=context.factory
    )
    body = _body([_event(task, "delivered", at=5)])

    status, _text = _post(unconfigured, body, _signed_headers(private_key, body))

    assert status == 403
    assert _event_count(context.factory) == 0


def test_lowercase_headers_are_read(
    context: AppContext, private_key: ec.EllipticCurvePrivateKey
) -> None:
    (task,) = _add_tasks(context.factory, 1)
    body = _body([_event(task, "delivered", at=5)])
    headers = {
        name.lower(): value
        for name, value in _signed_headers(private_key, body).items()
    }

    status, _text = _post(context, body, headers)

    assert status == 200
    assert _statuses(context.factory)[task][0] == "delivered"
