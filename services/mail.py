"""Outgoing e-mail: the message, the sender, and the backend that delivers it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from anyascii import anyascii

if TYPE_CHECKING:
    from bot.settings import Settings

# Keys of `OutgoingMessage.custom_args`. SendGrid returns custom arguments in
# every Event Webhook event, which is how a delivery event finds its task.
CLIENT_TASK_ID = "client_task_id"
PERIOD = "period"
CLIENT_CODE = "client_code"

_UNSAFE_FILENAME_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Sender:
    """The From and Reply-To of every statement e-mail."""

    from_email: str
    from_name: str = ""
    reply_to: str = ""


@dataclass(frozen=True)
class OutgoingMessage:
    """One client's statement e-mail: a plain-text letter with the PDF attached."""

    to: tuple[str, ...]
    subject: str
    text: str
    attachment_filename: str
    attachment: bytes
    custom_args: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.to:
            raise ValueError("an outgoing message needs at least one recipient")

    @property
    def recipients(self) -> tuple[str, ...]:
        """The addresses in `to`, each once, compared without regard to case."""
        return unique_addresses(self.to)

    @property
    def task_id(self) -> str:
        return self.custom_args.get(CLIENT_TASK_ID, "")


class MailBackend(Protocol):
    """Something that delivers an `OutgoingMessage`.

    `send` returns the message id the backend assigned, and raises
    `services.errors.DeliveryError` when the message was not accepted or when
    its fate is unknown.
    """

    def send(self, message: OutgoingMessage, sender: Sender) -> str: ...

    def close(self) -> None:
        """Release open connections; the backend is not used afterwards."""


def unique_addresses(addresses: Iterable[str]) -> tuple[str, ...]:
    """Drop repeated addresses, ignoring case and surrounding spaces, keeping order."""
    seen: set[str] = set()
    unique: list[str] = []
    for address in addresses:
        cleaned = address.strip()
        folded = cleaned.casefold()
        if cleaned and folded not in seen:
            seen.add(folded)
            unique.append(cleaned)
    return tuple(unique)


def ascii_filename(name: str, *, fallback: str) -> str:
    """Transliterate `name` to ASCII letters, digits, dots, dashes and underscores.

    Returns `fallback` when nothing usable is left, such as for an empty name.
    """
    cleaned = _UNSAFE_FILENAME_CHARACTERS.sub("-", anyascii(name)).strip("-.")
    return cleaned or fallback


def make_backend(settings: Settings, *, pooled: bool = False) -> MailBackend:
    """Choose SendGrid when SENDGRID_API_KEY is set, else the outbox folder.

    `pooled` sends over reused keep-alive connections instead of the sendgrid
    package's urllib client, which opens a new connection for every message.
    """
    if settings.sendgrid_api_key:
        from services.sendgrid_backend import PooledTransport, SendGridBackend

        transport = None
        if pooled:
            transport = PooledTransport(
                settings.sendgrid_api_host, settings.sendgrid_api_key
            )
        return SendGridBackend(
            api_key=settings.sendgrid_api_key,
            host=settings.sendgrid_api_host,
            timeout=settings.sendgrid_timeout_seconds,
            transport=transport,
        )

    from services.outbox import OutboxBackend

    return OutboxBackend(settings.outbox_dir)


def sender_from_settings(settings: Settings) -> Sender:
    """Build the sender from MAIL_FROM, MAIL_FROM_NAME and MAIL_REPLY_TO.

    Raises `ConfigurationError` naming MAIL_FROM when it is not set.
    """
    settings.require("mail_from")
    return Sender(
        from_email=settings.mail_from,
        from_name=settings.mail_from_name,
        reply_to=settings.mail_reply_to,
    )
