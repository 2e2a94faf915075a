"""The outbox: each e-mail written as an .eml file when SendGrid is not configured."""

from __future__ import annotations

import logging
import os
import tempfile
from email.header import Header
from email.message import EmailMessage
from email.policy import SMTP, Policy
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path

from services.mail import (
    CLIENT_CODE,
    PERIOD,
    OutgoingMessage,
    Sender,
    ascii_filename,
)
from services.models import utcnow

logger = logging.getLogger(__name__)


class OutboxBackend:
    """A `MailBackend` that writes OUTBOX_DIR/<period>/<client>-<task>.eml."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, message: OutgoingMessage, sender: Sender) -> str:
        email = build_email(message, sender)
        message_id = str(email["Message-ID"])
        path = self.path_for(message)

        _write_atomically(path, email.as_bytes(policy=SMTP))
        logger.debug(
            "Wrote the e-mail for client task %s to %s as message %s",
            message.task_id,
            path,
            message_id,
        )
        return message_id

    def close(self) -> None:
        """Do nothing, because each e-mail's file is closed when written."""

    def path_for(self, message: OutgoingMessage) -> Path:
        """Return the file an e-mail goes to, named in ASCII after client and task."""
        period = ascii_filename(message.custom_args.get(PERIOD, ""), fallback="other")
        client = ascii_filename(message.custom_args.get(CLIENT_CODE, ""), fallback="")
        task = ascii_filename(message.task_id, fallback="")
        name = "-".join(part for part in (client, task) if part) or "message"
        return self.directory / period / f"{name}.eml"


def build_email(message: OutgoingMessage, sender: Sender) -> EmailMessage:
    """Build the MIME message: the letter as text/plain and the PDF attached."""
    email = EmailMessage(policy=SMTP)
    email["From"] = formataddr((sender.from_name, sender.from_email))
    email["To"] = ", ".join(message.recipients)
    if sender.reply_to:
        email["Reply-To"] = sender.reply_to
    email["Subject"] = _subject_header(message.subject)
    email["Message-ID"] = make_msgid(domain=_domain_of(sender.from_email))
    email["Date"] = format_datetime(utcnow())
    if message.task_id:
        email["X-Client-Task-Id"] = message.task_id

    email.set_content(message.text)
    email.add_attachment(
        message.attachment,
        maintype="application",
        subtype="pdf",
        filename=ascii_filename(message.attachment_filename, fallback="statement.pdf"),
    )
    return email


class _EncodedSubject(str):
    """A Subject header value folded into UTF-8 encoded words by `email.header`.

    NOTE: Python 3.11's EmailMessage folding drops a space that falls between
    two encoded words of a long non-ASCII subject, so "lapkritį – UAB" is read
    back as "lapkritį– UAB". `Header.encode` keeps the space inside a word.
    """

    name = "Subject"

    def fold(self, *, policy: Policy) -> str:
        encoded = Header(str(self), "utf-8", header_name=self.name).encode(
            linesep=policy.linesep
        )
        return f"{self.name}: {encoded}{policy.linesep}"


def _subject_header(subject: str) -> str:
    return subject if subject.isascii() else _EncodedSubject(subject)


def _domain_of(address: str) -> str:
    _, _, domain = address.rpartition("@")
    return ascii_filename(domain, fallback="invoice-lists.invalid")


def _write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, then rename it into place.

    A reader never sees a half-written file, and a crash leaves at most a
    temporary file behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
