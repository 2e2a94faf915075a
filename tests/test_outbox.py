"""The outbox writes each e-mail as a parseable .eml file with the PDF attached."""

from __future__ import annotations

import email
import email.policy
from datetime import date
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.settings import Settings
from services.errors import ConfigurationError
from services.mail import OutgoingMessage, Sender, make_backend, sender_from_settings
from services.models import Client, ClientTask, Run, RunState, TaskState
from services.outbox import OutboxBackend
from services.periods import Period
from services.sendgrid_backend import SendGridBackend
from services.sending import send_run
from services.statements import documents_fingerprint

PDF = b"%PDF-1.4\n\x00\xff binary\n%%EOF\n"
SUBJECT = "Sąskaitų sąrašas už 2026 m. lapkritį – „Ąžuolas“"
SENDER = Sender(
    "saskaitos@example.com", "UAB „Bandymų įmonė“", "buhalterija@example.com"
)


def message(*, code: str = "ĄŽ-01", task_id: str = "7") -> OutgoingMessage:
    return OutgoingMessage(
        to=("Ona@Example.com", "ona@example.com", "jonas@example.com"),
        subject=SUBJECT,
        text="Laba diena,\nsiunčiame sąrašą.\n",
        attachment_filename="Sąskaitos Ąžuolas 2026-11.pdf",
        attachment=PDF,
        custom_args={
            "client_task_id": task_id,
            "period": "2026-11",
            "client_code": code,
        },
    )


def read_eml(path: Path) -> EmailMessage:
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_outbox_writes_eml_under_the_period(tmp_path: Path) -> None:
    outbox = OutboxBackend(tmp_path / "outbox")

    message_id = outbox.send(message(), SENDER)

    [path] = (tmp_path / "outbox").rglob("*.eml")
    assert path == tmp_path / "outbox" / "2026-11" / "AZ-01-7.eml"
    assert read_eml(path)["Message-ID"] == message_id
    assert message_id.startswith("<")
    assert message_id.endswith("@example.com>")


def test_outbox_eml_has_headers_letter_and_pdf(tmp_path: Path) -> None:
    outbox = OutboxBackend(tmp_path)

    outbox.send(message(), SENDER)

    parsed = read_eml(next(tmp_path.rglob("*.eml")))
    body = parsed.get_body(preferencelist=("plain",))
    [attachment] = list(parsed.iter_attachments())
    assert parsed["Subject"] == SUBJECT
    assert parsed["From"] == "UAB „Bandymų įmonė“ <saskaitos@example.com>"
    assert parsed["To"] == "Ona@Example.com, jonas@example.com"
    assert parsed["Reply-To"] == "buhalterija@example.com"
    assert parsed["X-Client-Task-Id"] == "7"
    assert parsed["Date"] is not None
    assert body is not None
    # Mail lines end in CRLF on the wire and in the file.
    assert body.get_content().replace("\r\n", "\n") == message().text
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "Saskaitos-Azuolas-2026-11.pdf"
    assert attachment.get_content() == PDF


def test_outbox_subject_header_is_encoded_ascii(tmp_path: Path) -> None:
    outbox = OutboxBackend(tmp_path)

    outbox.send(message(), SENDER)

    raw = next(tmp_path.rglob("*.eml")).read_bytes()
    subject_line = next(
        line for line in raw.split(b"\r\n") if line.startswith(b"Subject:")
    )
    assert subject_line.isascii()
    assert b"=?utf-8?" in subject_line.lower()


def test_outbox_leaves_no_temporary_files(tmp_path: Path) -> None:
    outbox = OutboxBackend(tmp_path)

    outbox.send(message(), SENDER)
    outbox.send(message(), SENDER)

    assert [p.name for p in (tmp_path / "2026-11").iterdir()] == ["AZ-01-7.eml"]


def test_send_run_without_sendgrid_fills_the_outbox(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    with factory.begin() as session:
        run = Run(
            period="2026-11",
            planned_start=date(2026, 12, 1),
            planned_end=date(2026, 12, 5),
            state=RunState.GENERATED,
        )
        client = Client(code="K001", name="UAB K001", name_folded="uab k001")
        task = ClientTask(
            run=run,
            client=client,
            state=TaskState.READY,
            recipients=["ona@example.com"],
            subject=SUBJECT,
            letter="Laba diena",
            pdf=PDF,
            pdf_filename="K001-2026-11.pdf",
            documents_fingerprint=documents_fingerprint([]),
        )
        session.add_all([run, client, task])
    backend = make_backend(Settings(_env_file=None, outbox_dir=tmp_path))  # type: ignore[call-arg]

    report = send_run(
        factory, Period(2026, 11), backend=backend, sender=SENDER, actor="cli:tester"
    )

    [path] = tmp_path.rglob("*.eml")
    assert report.sent == 1
    assert report.outcomes[0].message_id == read_eml(path)["Message-ID"]
    assert path.name == f"K001-{task.id}.eml"


def test_make_backend_chooses_sendgrid_with_api_key(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, sendgrid_api_key="SG.x", outbox_dir=tmp_path)  # type: ignore[call-arg]

    assert isinstance(make_backend(settings), SendGridBackend)
    assert isinstance(make_backend(settings, pooled=True), SendGridBackend)


def test_make_backend_chooses_outbox_without_api_key(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, sendgrid_api_key="", outbox_dir=tmp_path)  # type: ignore[call-arg]

    backend = make_backend(settings)

    assert isinstance(backend, OutboxBackend)
    assert backend.directory == tmp_path


def test_sender_needs_mail_from() -> None:
    settings = Settings(_env_file=None, mail_from="")  # type: ignore[call-arg]

    with pytest.raises(ConfigurationError, match="MAIL_FROM"):
        sender_from_settings(settings)


def test_sender_from_settings() -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        mail_from="saskaitos@example.com",
        mail_from_name="Buhalterija",
        mail_reply_to="atsakymai@example.com",
    )

    assert sender_from_settings(settings) == Sender(
        "saskaitos@example.com", "Buhalterija", "atsakymai@example.com"
    )
