"""send_run and send_task send each client task at most once, through SendGrid."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services.errors import InvalidStateError
from services.mail import Sender
from services.models import (
    AuditEvent,
    Client,
    ClientTask,
    Document,
    DocumentStatus,
    DocumentType,
    Run,
    RunState,
    TaskState,
    utcnow,
)
from services.periods import Period
from services.sendgrid_backend import SendGridBackend
from services.sending import SendReport, SendResult, send_run, send_task
from services.statements import documents_fingerprint
from tests.standins.sendgrid import (
    API_KEY,
    VERIFIED_SENDER,
    SendGridStandin,
    run_standin,
)

PERIOD = Period(2026, 11)
PDF = b"%PDF-1.4\n\x00\xe2\x82\xac statement\n%%EOF\n"
SUBJECT = "Sąskaitų sąrašas už 2026 m. lapkritį"
SENDER = Sender(VERIFIED_SENDER, "UAB „Bandymų įmonė“", "buhalterija@example.com")
ACTOR = "cli:tester"


@pytest.fixture
def sendgrid_standin() -> Iterator[SendGridStandin]:
    yield from run_standin()


@pytest.fixture
def run_id(factory: sessionmaker[Session]) -> int:
    with factory.begin() as session:
        run = Run(
            period=str(PERIOD),
            planned_start=date(2026, 12, 1),
            planned_end=date(2026, 12, 5),
            state=RunState.GENERATED,
        )
        session.add(run)
        session.flush()
        return run.id


def add_task(
    factory: sessionmaker[Session],
    code: str,
    *,
    emails: tuple[str, ...] = ("ona@example.com",),
    state: TaskState = TaskState.READY,
    **fields: object,
) -> int:
    """Add a client with one posted invoice in the period and its task."""
    with factory.begin() as session:
        run = session.scalars(select(Run)).one()
        client = Client(code=code, name=f"UAB {code}", name_folded=f"uab {code}")
        document = Document(
            number=f"{code}-0001",
            client=client,
            date=date(2026, 11, 10),
            type=DocumentType.INVOICE,
            status=DocumentStatus.POSTED,
            net=Decimal("100.00"),
            vat=Decimal("21.00"),
            gross=Decimal("121.00"),
            fingerprint=f"fingerprint-{code}",
        )
        task = ClientTask(
            run=run,
            client=client,
            state=state,
            recipients=list(emails),
            subject=SUBJECT,
            letter="Laba diena,\nsiunčiame sąrašą.\n",
            pdf=PDF,
            pdf_filename=f"Saskaitu-sarasas-{code}-2026-11.pdf",
            documents_fingerprint=documents_fingerprint([document]),
            **fields,
        )
        session.add_all([client, document, task])
        session.flush()
        return task.id


def task_of(factory: sessionmaker[Session], task_id: int) -> ClientTask:
    with factory() as session:
        task = session.get(ClientTask, task_id)
        assert task is not None
        return task


def backend(standin: SendGridStandin, *, timeout: float = 5.0) -> SendGridBackend:
    return SendGridBackend(api_key=API_KEY, host=standin.url, timeout=timeout)


class RecordedSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def send(
    factory: sessionmaker[Session],
    standin: SendGridStandin,
    *,
    timeout: float = 5.0,
    sleep: RecordedSleep | None = None,
    **options: object,
) -> SendReport:
    return send_run(
        factory,
        PERIOD,
        backend=backend(standin, timeout=timeout),
        sender=SENDER,
        actor=ACTOR,
        sleep=sleep or RecordedSleep(),
        **options,  # type: ignore[arg-type]
    )


def test_ready_tasks_are_sent_and_recorded(
    factory: sessionmaker[Session], run_id: int, sendgrid_standin: SendGridStandin
) -> None:
    first = add_task(factory, "K001")
    second = add_task(factory, "K002", emails=("jonas@example.com",))

    report = send(factory, sendgrid_standin)

    assert report.sent == 2
    assert (
        report.summary_line()
        == "Sent 2, failed 0, already sent or skipped 0, unknown 0."
    )
    for task_id in (first, second):
        task = task_of(factory, task_id)
        assert task.state is TaskState.SENT
        assert len(task.message_id) == 22
        assert task.sent_at is not None
        assert task.claim_token == ""
        assert task.attempts == 1
    assert len(sendgrid_standin.mail_requests) == 2


def test_run_is_complete_when_every_task_is_final(
    factory: sessionmaker[Session], run_id: int, sendgrid_standin: SendGridStandin
) -> None:
    add_task(factory, "K001")
    add_task(factory, "K002", state=TaskState.SKIPPED, skip_reason="paid in cash")

    send(factory, sendgrid_standin)

    with factory() as session:
        run = session.get(Run, run_id)
        assert run is not None
        assert run.state is RunState.COMPLETE
        assert run.completed_at is not None


def test_each_send_is_audited_with_message_id(
    factory: sessionmaker[Session], run_id: int, sendgrid_standin: SendGridStandin
) -> None:
    task_id = add_task(factory, "K001")

    send(factory, sendgrid_standin)

    message_id = task_of(factory, task_id).message_id
    with factory() as session:
        [event] = session.scalars(select(AuditEvent)).all()
    assert event.actor == ACTOR
    assert event.action == "task.send"
    assert event.period == "2026-11"
    assert event.client_code == "K001"
    assert event.detail == f"sent as message {message_id}"


def test_request_has_each_address_once_and_the_pdf(
    factory: sessionmaker[Session], run_id: int, sendgrid_standin: SendGridStandin
) -> None:
    task_id = add_task(
        factory, "K001", emails=("Ona@Example.com", "ona@example.com", "b@example.com")
    )

    send(factory, sendgrid_standin)

    [request] = sendgrid_standin.mail_requests
    [personalization] = request.json["personalizations"]
    [attachment] = request.json["attachments"]
    assert personalization["to"] == [
        {"email": "Ona@Example.com"},
        {"email": "b@example.com"},
    ]
    assert request.json["subject"] == SUBJECT
    assert attachment["filename"] == "Saskaitu-sarasas-K001-2026-11.pdf"
    assert attachment["filename"].isascii()
    assert base64.b64decode(attachment["content"]) == PDF
    assert request.json["custom_args"]["client_task_id"] == str(task_id)
    assert request.json["custom_args"]["period"] == "2026-11"


def test_rate_limit_then_accept_ends_sent(
    factory: sessionmaker[Session], run_id: int, sendgrid_standin: SendGridStandin
) -> None:
    task_id = add_task(factory, "K001")
    sendgrid_standin.rate_limit(reset_in=7)
    sleep = RecordedSleep()

    report = send(factory, sendgrid_standin, sleep=sleep)

    assert report.sent == 1
    assert task_of(factory, task_id).state is TaskState.SENT
    assert len(sendgrid_standin.mail_requests) == 2
    [delay] = sleep.delays
    # The reset is a whole Unix second, so up to a second of it may have passed
    # before the response is read; without the header the wait would be 1 to 1.5 s.
    assert 5.0 <= delay <= 7.0 + 0.5


def test_server_errors_fail_after_max_attempts(
    factory: sessionmaker[Session], run_id: int, sendgrid_standin: SendGridStandin
) -> None:
    task_id = add_task(factory, "K001")
    for _ in range(3):
        sendgrid_standin.fail(500, "Internal Server Error")
    sleep = RecordedSleep()

    report = send(factory, sendgrid_standin, sleep=sleep, max_attempts=3)

    task = task_of(factory, task_id)
    assert report.failed == 1
    assert task.state is TaskState.FAILED
    assert "in 3 attempts" in task.failure_reason
    assert "Internal Server Error" in task.failure_reason
    assert len(sendgrid_standin.mail_requests) == 3
    assert len(sleep.delays) == 2
    assert sleep.delays[1] > 1.9


def test_rejection_fails_at_once_with_reason(
    factory: sessionmaker[Session], run_id: int, sendgrid_standin: SendGridStandin
) -> None:
    task_id = add_task(factory, "K001")
    message = "Does not contain a valid address."
    sendgrid_standin.fail(400, message, field="personalizations.0.to.0.email")

    report = send(factory, sendgrid_standin)

    task = task_of(factory, task_id)
    assert report.failed == 1
    assert task.state is TaskState.FAILED
    assert f"{message} (field personalizations.0.to.0.email)" in task.failure_reason
    assert len(sendgrid_standin.mail_requests) == 1


def test_unverified_sender_leaves_task_ready(
    factory: sessionmaker[Session], run_id: int, sendgrid_standin: SendGridStandin
) -> None:
    task_id = add_task(factory, "K001")
    message = "The from address does not match a verified Sender Identity."
    sendgrid_standin.fail(403, message, field="from")

    report = send(factory, sendgrid_standin)

    assert report.failed == 0
    assert report.stopped == 1
    assert message in report.stop_reason
    assert "verify the MAIL_FROM address" in report.stop_reason
    assert task_of(factory, task_id).state is TaskState.READY
    assert len(sendgrid_standin.mail_requests) == 1


def test_hang_ends_unknown_and_is_not_resent(
    factory: sessionmaker[Session], run_id: int, sendgrid_standin: SendGridStandin
) -> None:
    task_id = add_task(factory, "K001")
    sendgrid_standin.hang(3)

    first = send(factory, sendgrid_standin, timeout=0.3)
    second = send(factory, sendgrid_standin)

    assert first.unknown == 1
    assert task_of(factory, task_id).state is TaskState.UNKNOWN
    assert "timed out" in task_of(factory, task_id).failure_reason
    assert second.sent == 0
    assert second.not_sendable == 1
    assert len(sendgrid_standin.mail_requests) == 1


def test_unknown_task_needs_force(
    factory: sessionmaker[Session], run_id: int, sendgrid_standin: SendGridStandin
) -> None:
    task_id = add_task(
        factory, "K001", state=TaskState.UNKNOWN, failure_reason="timed out"
    )

    with pytest.raises(InvalidStateError, match="Activity Feed") as raised:
        send(factory, sendgrid_standin, client_code="K001")
    report = send(factory, sendgrid_standin, client_code="K001", force=True)

    assert "--force" in str(raised.value)
    assert report.sent == 1
    assert task_of(factory, task_id).state is TaskState.SENT
    assert len(sendgrid_standin.mail_requests) == 1


def test_failed_task_is_retried_only_for_one_client(
    factory: sessionmaker[Session], run_id: int, sendgrid_standin: SendGridStandin
) -> None:
    task_id = add_task(
        factory, "K001", state=TaskState.FAILED, failure_reason="invalid address"
    )

    everything = send(factory, sendgrid_standin)
    one = send(factory, sendgrid_standin, client_code="k001")

    assert everything.not_sendable == 1
    assert "invalid address" in everything.outcomes[0].reason
    assert one.sent == 1
    assert task_of(factory, task_id).state is TaskState.SENT


@pytest.mark.parametrize(
    ("state", "fields", "expected"),
    [
        pytest.param(
            TaskState.STALE,
            {},
            "documents changed after the PDF was made; run `invoices run generate "
            "2026-11`",
            id="stale",
        ),
        pytest.param(
            TaskState.MISSING_EMAIL,
            {},
            "set one with `invoices client email K001 ADDRESS`",
            id="missing-email",
        ),
        pytest.param(
            TaskState.SKIPPED,
            {"skip_reason": "paid in cash"},
            "K001 was skipped for 2026-11: paid in cash",
            id="skipped",
        ),
        pytest.param(
            TaskState.SENDING,
            {"claimed_at": utcnow()},
            "K001 is already being sent",
            id="sending",
        ),
    ],
)
def test_one_client_that_cannot_be_sent_is_refused(
    factory: sessionmaker[Session],
    run_id: int,
    sendgrid_standin: SendGridStandin,
    state: TaskState,
    fields: dict[str, object],
    expected: str,
) -> None:
    add_task(factory, "K001", state=state, **fields)

    with pytest.raises(InvalidStateError) as raised:
        send(factory, sendgrid_standin, client_code="K001")

    assert expected in str(raised.value)
    assert sendgrid_standin.mail_requests == []


def test_sent_task_refusal_names_message_id(
    factory: sessionmaker[Session], run_id: int, sendgrid_standin: SendGridStandin
) -> None:
    task_id = add_task(factory, "K001")
    send(factory, sendgrid_standin)
    task = task_of(factory, task_id)

    with pytest.raises(InvalidStateError) as raised:
        send(factory, sendgrid_standin, client_code="K001")

    assert task.sent_at is not None
    assert f"at {task.sent_at:%Y-%m-%d %H:%M} UTC" in str(raised.value)
    assert f"message id {task.message_id}" in str(raised.value)
    assert len(sendgrid_standin.mail_requests) == 1


def test_changed_document_makes_task_stale_before_sending(
    factory: sessionmaker[Session], run_id: int, sendgrid_standin: SendGridStandin
) -> None:
    task_id = add_task(factory, "K001")
    with factory.begin() as session:
        document = session.scalars(select(Document)).one()
        document.fingerprint = "changed"

    report = send(factory, sendgrid_standin)

    assert report.not_sendable == 1
    assert "invoices run generate 2026-11" in report.outcomes[0].reason
    assert task_of(factory, task_id).state is TaskState.STALE
    assert sendgrid_standin.mail_requests == []


def test_expired_claim_becomes_unknown_and_is_not_sent(
    factory: sessionmaker[Session], run_id: int, sendgrid_standin: SendGridStandin
) -> None:
    expired = add_task(
        factory,
        "K001",
        state=TaskState.SENDING,
        claim_token="crashed",
        claimed_at=utcnow() - timedelta(hours=1),
    )
    recent = add_task(
        factory,
        "K002",
        state=TaskState.SENDING,
        claim_token="working",
        claimed_at=utcnow() - timedelta(minutes=1),
    )

    report = send(factory, sendgrid_standin, lease=timedelta(minutes=15))

    assert task_of(factory, expired).state is TaskState.UNKNOWN
    assert "never recorded a result" in task_of(factory, expired).failure_reason
    assert task_of(factory, recent).state is TaskState.SENDING
    assert report.unknown == 1
    assert report.being_sent == 1
    assert sendgrid_standin.mail_requests == []
    with factory() as session:
        [event] = session.scalars(select(AuditEvent)).all()
    assert event.client_code == "K001"
    assert event.detail.startswith("unknown: ")


def test_two_concurrent_runs_send_each_task_once(
    factory: sessionmaker[Session], run_id: int
) -> None:
    task_ids = [add_task(factory, f"K{number:03d}") for number in range(12)]
    reports: list[SendReport] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def send_all(standin: SendGridStandin) -> None:
        try:
            start.wait()
            reports.append(send(factory, standin, workers=4))
        except BaseException as error:
            errors.append(error)

    for standin in run_standin(latency=0.05):
        threads = [threading.Thread(target=send_all, args=(standin,)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        requested = sorted(r.client_task_id for r in standin.mail_requests)

    assert errors == []
    assert requested == sorted(str(task_id) for task_id in task_ids)
    assert sum(report.sent for report in reports) == 12
    assert sum(report.skipped + report.being_sent for report in reports) == 12
    assert all(task_of(factory, t).state is TaskState.SENT for t in task_ids)


def test_send_task_twice_sends_once(
    factory: sessionmaker[Session], run_id: int, sendgrid_standin: SendGridStandin
) -> None:
    task_id = add_task(factory, "K001")
    options = {"backend": backend(sendgrid_standin), "sender": SENDER, "actor": ACTOR}

    outcome = send_task(factory, task_id, **options)  # type: ignore[arg-type]
    with pytest.raises(InvalidStateError, match="already sent"):
        send_task(factory, task_id, **options)  # type: ignore[arg-type]

    assert outcome.result is SendResult.SENT
    assert outcome.state is TaskState.SENT
    assert outcome.message_id == task_of(factory, task_id).message_id
    assert len(sendgrid_standin.mail_requests) == 1


def test_progress_is_reported_after_each_task(
    factory: sessionmaker[Session], run_id: int, sendgrid_standin: SendGridStandin
) -> None:
    for code in ("K001", "K002", "K003"):
        add_task(factory, code)
    calls: list[tuple[int, int, str]] = []

    send(
        factory,
        sendgrid_standin,
        progress=lambda d, t, label: calls.append((d, t, label)),
    )

    assert [(done, total) for done, total, _ in calls] == [(1, 3), (2, 3), (3, 3)]
    assert sorted(label for _, _, label in calls) == ["K001", "K002", "K003"]
