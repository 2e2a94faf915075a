"""SendGridBackend builds SendGrid's Mail Send request and maps every response."""

from __future__ import annotations

import base64
import logging
import socket
import time
from collections.abc import Callable, Iterator
from typing import Protocol

import pytest

from services.errors import DeliveryError
from services.mail import OutgoingMessage, Sender
from services.sendgrid_backend import (
    PooledTransport,
    SendGridBackend,
    SendGridClientTransport,
    Transport,
)
from tests.standins.sendgrid import (
    API_KEY,
    VERIFIED_SENDER,
    SendGridStandin,
    run_standin,
)

PDF = b"%PDF-1.4\n\x00\xff\xfe binary statement bytes\n%%EOF\n"
SUBJECT = "Sąskaitų sąrašas už 2026 m. lapkritį – UAB „Ąžuolas“"
SENDER = Sender(VERIFIED_SENDER, "UAB „Bandymų įmonė“", "buhalterija@example.com")

TransportFactory = Callable[[str, str], Transport]
TRANSPORTS = [
    pytest.param(SendGridClientTransport, id="sendgrid-client"),
    pytest.param(PooledTransport, id="pooled"),
]


@pytest.fixture
def sendgrid_standin() -> Iterator[SendGridStandin]:
    yield from run_standin()


def message(
    to: tuple[str, ...] = ("ona@example.com",), *, task_id: str = "7"
) -> OutgoingMessage:
    return OutgoingMessage(
        to=to,
        subject=SUBJECT,
        text="Laba diena,\n\nsiunčiame lapkričio sąskaitų sąrašą.\n",
        attachment_filename="Sąskaitos Ąžuolas 2026-11.pdf",
        attachment=PDF,
        custom_args={"client_task_id": task_id, "period": "2026-11"},
    )


class BackendFactory(Protocol):
    def __call__(
        self,
        standin: SendGridStandin,
        transport: TransportFactory = ...,
        *,
        key: str = ...,
        timeout: float = ...,
    ) -> SendGridBackend: ...


@pytest.fixture
def backend_for() -> Iterator[BackendFactory]:
    """Build backends against a stand-in, closing their connections afterwards."""
    created: list[SendGridBackend] = []

    def build(
        standin: SendGridStandin,
        transport: TransportFactory = SendGridClientTransport,
        *,
        key: str = API_KEY,
        timeout: float = 5.0,
    ) -> SendGridBackend:
        backend = SendGridBackend(
            api_key=key,
            host=standin.url,
            timeout=timeout,
            transport=transport(standin.url, key),
        )
        created.append(backend)
        return backend

    yield build
    for backend in created:
        backend.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_request_has_one_personalization_with_unique_recipients(
    sendgrid_standin: SendGridStandin,
    transport: TransportFactory,
    backend_for: BackendFactory,
) -> None:
    backend = backend_for(sendgrid_standin, transport)
    to = ("Ona@Example.com", "ona@example.com", "jonas@example.com")

    message_id = backend.send(message(to), SENDER)

    [request] = sendgrid_standin.mail_requests
    body = request.json
    assert message_id
    assert len(body["personalizations"]) == 1
    assert body["personalizations"][0]["to"] == [
        {"email": "Ona@Example.com"},
        {"email": "jonas@example.com"},
    ]
    assert request.headers["authorization"] == f"Bearer {API_KEY}"


def test_request_carries_subject_letter_and_pdf(
    sendgrid_standin: SendGridStandin, backend_for: BackendFactory
) -> None:
    backend = backend_for(sendgrid_standin)

    backend.send(message(), SENDER)

    body = sendgrid_standin.mail_requests[0].json
    [attachment] = body["attachments"]
    assert body["subject"] == SUBJECT
    assert body["content"] == [
        {"type": "text/plain", "value": message().text},
    ]
    assert attachment["filename"] == "Saskaitos-Azuolas-2026-11.pdf"
    assert attachment["filename"].isascii()
    assert attachment["type"] == "application/pdf"
    assert attachment["disposition"] == "attachment"
    assert base64.b64decode(attachment["content"]) == PDF


def test_request_carries_sender_reply_to_and_custom_args(
    sendgrid_standin: SendGridStandin, backend_for: BackendFactory
) -> None:
    backend = backend_for(sendgrid_standin)

    backend.send(message(task_id="42"), SENDER)

    body = sendgrid_standin.mail_requests[0].json
    assert body["from"] == {"email": VERIFIED_SENDER, "name": SENDER.from_name}
    assert body["reply_to"] == {"email": "buhalterija@example.com"}
    assert body["custom_args"] == {"client_task_id": "42", "period": "2026-11"}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_accepted_message_returns_x_message_id(
    sendgrid_standin: SendGridStandin,
    transport: TransportFactory,
    backend_for: BackendFactory,
) -> None:
    backend = backend_for(sendgrid_standin, transport)

    first = backend.send(message(), SENDER)
    second = backend.send(message(), SENDER)

    assert len(first) == 22
    assert first != second


def test_bad_request_names_the_field(
    sendgrid_standin: SendGridStandin, backend_for: BackendFactory
) -> None:
    sendgrid_standin.fail(
        400, "Does not contain a valid address.", field="personalizations.0.to.0.email"
    )
    backend = backend_for(sendgrid_standin)

    with pytest.raises(DeliveryError) as raised:
        backend.send(message(), SENDER)

    error = raised.value
    assert error.status == 400
    assert not error.retryable
    assert not error.unknown
    assert "Does not contain a valid address." in error.reason
    assert "personalizations.0.to.0.email" in error.reason


def test_wrong_api_key_names_the_setting(
    sendgrid_standin: SendGridStandin, backend_for: BackendFactory
) -> None:
    backend = backend_for(sendgrid_standin, key="SG.wrong")

    with pytest.raises(DeliveryError) as raised:
        backend.send(message(), SENDER)

    assert raised.value.status == 401
    assert not raised.value.retryable
    assert str(raised.value) == (
        "SendGrid rejected the API key (401); check SENDGRID_API_KEY"
    )


def test_unverified_sender_says_to_verify_mail_from(
    sendgrid_standin: SendGridStandin, backend_for: BackendFactory
) -> None:
    backend = backend_for(sendgrid_standin)
    unverified = Sender("someone@elsewhere.example")

    with pytest.raises(DeliveryError) as raised:
        backend.send(message(), unverified)

    assert raised.value.status == 403
    assert not raised.value.retryable
    assert "does not match a verified Sender Identity" in raised.value.reason
    assert "MAIL_FROM" in raised.value.reason


def test_too_large_message_is_not_retryable(
    sendgrid_standin: SendGridStandin, backend_for: BackendFactory
) -> None:
    backend = backend_for(sendgrid_standin)
    huge = OutgoingMessage(
        to=("ona@example.com",),
        subject="Didelis",
        text="Priedas",
        attachment_filename="big.pdf",
        attachment=b"%PDF" + b"0" * (23 * 1024 * 1024),
    )

    with pytest.raises(DeliveryError) as raised:
        backend.send(huge, SENDER)

    assert raised.value.status == 413
    assert not raised.value.retryable
    assert "too large" in raised.value.reason


@pytest.mark.parametrize(
    ("reset_in", "retry_after", "low", "high"),
    [
        pytest.param(30, None, 28.0, 31.0, id="x-ratelimit-reset"),
        pytest.param(None, 12, 12.0, 12.0, id="retry-after"),
    ],
)
def test_rate_limit_is_retryable_after_the_reset(
    sendgrid_standin: SendGridStandin,
    reset_in: int | None,
    retry_after: int | None,
    low: float,
    high: float,
    backend_for: BackendFactory,
) -> None:
    sendgrid_standin.rate_limit(reset_in=reset_in, retry_after=retry_after)
    backend = backend_for(sendgrid_standin)

    with pytest.raises(DeliveryError) as raised:
        backend.send(message(), SENDER)

    error = raised.value
    assert error.status == 429
    assert error.retryable
    assert error.retry_after is not None
    assert low <= error.retry_after <= high


def test_server_error_is_retryable(
    sendgrid_standin: SendGridStandin, backend_for: BackendFactory
) -> None:
    sendgrid_standin.fail(503, "Service Unavailable")
    backend = backend_for(sendgrid_standin)

    with pytest.raises(DeliveryError) as raised:
        backend.send(message(), SENDER)

    assert raised.value.status == 503
    assert raised.value.retryable
    assert not raised.value.unknown


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_timeout_after_sending_is_unknown(
    sendgrid_standin: SendGridStandin,
    transport: TransportFactory,
    backend_for: BackendFactory,
) -> None:
    sendgrid_standin.hang(3)
    backend = backend_for(sendgrid_standin, transport, timeout=0.3)

    started = time.monotonic()
    with pytest.raises(DeliveryError) as raised:
        backend.send(message(), SENDER)

    assert raised.value.unknown
    assert not raised.value.retryable
    assert "timed out" in raised.value.reason
    assert time.monotonic() - started < 2
    assert len(sendgrid_standin.mail_requests) == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_refused_connection_is_retryable(transport: TransportFactory) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    backend = SendGridBackend(
        api_key=API_KEY, host=url, timeout=2, transport=transport(url, API_KEY)
    )

    with pytest.raises(DeliveryError) as raised:
        backend.send(message(), SENDER)

    assert raised.value.retryable
    assert not raised.value.unknown
    assert "nothing was sent" in raised.value.reason


@pytest.mark.parametrize(
    ("transport", "connections"),
    [
        pytest.param(SendGridClientTransport, 3, id="sendgrid-client"),
        pytest.param(PooledTransport, 1, id="pooled"),
    ],
)
def test_connections_per_three_messages(
    sendgrid_standin: SendGridStandin,
    transport: TransportFactory,
    connections: int,
    backend_for: BackendFactory,
) -> None:
    backend = backend_for(sendgrid_standin, transport)

    for _ in range(3):
        backend.send(message(), SENDER)

    assert sendgrid_standin.connections == connections


def test_pooled_transport_replaces_idle_connection_closed_by_server() -> None:
    for standin in run_standin(idle_timeout=0.2):
        pool = PooledTransport(standin.url, API_KEY)
        backend = SendGridBackend(api_key=API_KEY, host=standin.url, transport=pool)

        first = backend.send(message(), SENDER)
        time.sleep(0.5)
        second = backend.send(message(), SENDER)
        pool.close()

        assert first
        assert second
        assert standin.connections == 2


def test_debug_logs_omit_key_and_payload(
    sendgrid_standin: SendGridStandin,
    caplog: pytest.LogCaptureFixture,
    backend_for: BackendFactory,
) -> None:
    backend = backend_for(sendgrid_standin)
    caplog.set_level(logging.DEBUG)

    backend.send(message(task_id="9"), SENDER)

    assert API_KEY not in caplog.text
    assert "Laba diena" not in caplog.text
    assert base64.b64encode(PDF).decode() not in caplog.text
    assert "client task 9" in caplog.text
