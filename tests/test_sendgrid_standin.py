"""The SendGrid stand-in answers Mail Send requests the way SendGrid does."""

from __future__ import annotations

import base64
import copy
import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.standins.sendgrid import (
    API_KEY,
    MAX_REQUEST_BYTES,
    UNVERIFIED_SENDER_MESSAGE,
    VERIFIED_SENDER,
    SendGridStandin,
    run_standin,
)

VALID: dict[str, Any] = {
    "personalizations": [{"to": [{"email": "ona@example.com"}]}],
    "from": {"email": VERIFIED_SENDER, "name": "Sąskaitos"},
    "subject": "Sąskaitų sąrašas už 2026 m. lapkritį",
    "content": [{"type": "text/plain", "value": "Laba diena"}],
    "attachments": [
        {
            "content": base64.b64encode(b"%PDF-1.4 test").decode(),
            "filename": "statement.pdf",
            "type": "application/pdf",
            "disposition": "attachment",
        }
    ],
}


@pytest.fixture
def sendgrid_standin() -> Iterator[SendGridStandin]:
    yield from run_standin()


def post(
    standin: SendGridStandin,
    body: bytes | dict[str, Any],
    *,
    key: str | None = API_KEY,
    connection: http.client.HTTPConnection | None = None,
) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(standin.url)
    own = connection is None
    connection = connection or http.client.HTTPConnection(
        parts.hostname or "", parts.port, timeout=10
    )
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    try:
        connection.request("POST", "/v3/mail/send", body=data, headers=headers)
        response = connection.getresponse()
        payload = response.read()
    finally:
        if own:
            connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, payload


def error_messages(payload: bytes) -> list[str]:
    return [error["message"] for error in json.loads(payload)["errors"]]


def error_fields(payload: bytes) -> list[str | None]:
    return [error["field"] for error in json.loads(payload)["errors"]]


def changed(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(VALID)
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def test_valid_request_is_accepted_with_message_id(
    sendgrid_standin: SendGridStandin,
) -> None:
    status, headers, payload = post(sendgrid_standin, VALID)

    assert status == 202
    assert payload == b""
    assert len(headers["x-message-id"]) == 22
    assert sendgrid_standin.mail_requests[0].json == VALID


@pytest.mark.parametrize(
    ("key", "message"),
    [
        pytest.param(None, "authorization required", id="missing"),
        pytest.param(
            "SG.wrong",
            "The provided authorization grant is invalid, expired, or revoked",
            id="wrong",
        ),
    ],
)
def test_api_key_is_checked(
    sendgrid_standin: SendGridStandin, key: str | None, message: str
) -> None:
    status, _, payload = post(sendgrid_standin, VALID, key=key)

    assert status == 401
    assert error_messages(payload) == [message]


@pytest.mark.parametrize(
    ("body", "field", "start"),
    [
        pytest.param(
            changed(personalizations=None),
            "personalizations",
            "The personalizations field is required",
            id="no-personalizations",
        ),
        pytest.param(
            changed(personalizations=[{"to": []}]),
            "personalizations.0.to",
            "The to array is required",
            id="empty-to",
        ),
        pytest.param(
            changed(personalizations=[{"to": [{"email": "not-an-address"}]}]),
            "personalizations.0.to.0.email",
            "Does not contain a valid address.",
            id="invalid-to",
        ),
        pytest.param(
            changed(**{"from": None}),
            "from.email",
            "The from object must be provided",
            id="no-from",
        ),
        pytest.param(
            changed(subject=None), "subject", "The subject is required.", id="subject"
        ),
        pytest.param(
            changed(content=None),
            "content",
            "Unless a valid template_id is provided",
            id="no-content",
        ),
        pytest.param(
            changed(content=[{"type": "text/plain", "value": ""}]),
            "content.0.value",
            "The content value must be a string",
            id="empty-content",
        ),
        pytest.param(
            changed(attachments=[{"content": "%PDF not base64", "filename": "a.pdf"}]),
            "attachments.0.content",
            "The attachment content must be base64 encoded.",
            id="attachment-not-base64",
        ),
    ],
)
def test_invalid_request_is_rejected_with_field(
    sendgrid_standin: SendGridStandin, body: dict[str, Any], field: str, start: str
) -> None:
    status, _, payload = post(sendgrid_standin, body)

    assert status == 400
    assert error_fields(payload) == [field]
    assert error_messages(payload)[0].startswith(start)


def test_subject_in_every_personalization_is_enough(
    sendgrid_standin: SendGridStandin,
) -> None:
    body = changed(
        subject=None,
        personalizations=[{"to": [{"email": "ona@example.com"}], "subject": "Labas"}],
    )

    status, _, _ = post(sendgrid_standin, body)

    assert status == 202


def test_duplicate_address_differing_in_case_is_rejected(
    sendgrid_standin: SendGridStandin,
) -> None:
    recipients = [{"email": "Ona@Example.com"}, {"email": "ona@example.com"}]
    body = changed(personalizations=[{"to": recipients}])

    status, _, payload = post(sendgrid_standin, body)

    assert status == 400
    assert error_fields(payload) == ["personalizations.0"]
    assert error_messages(payload)[0].startswith(
        "Each email address in the personalization block should be unique"
    )
    assert "[ona@example.com]" in error_messages(payload)[0]


def test_unverified_sender_is_forbidden(sendgrid_standin: SendGridStandin) -> None:
    body = changed(**{"from": {"email": "someone@elsewhere.example"}})

    status, _, payload = post(sendgrid_standin, body)

    assert status == 403
    assert error_messages(payload) == [UNVERIFIED_SENDER_MESSAGE]
    assert error_fields(payload) == ["from"]


def test_request_over_30_mb_is_too_large(sendgrid_standin: SendGridStandin) -> None:
    body = b"x" * (MAX_REQUEST_BYTES + 1)

    status, headers, payload = post(sendgrid_standin, body)

    assert status == 413
    assert headers["content-type"] == "text/html"
    assert b"413 Request Entity Too Large" in payload


def test_rate_limit_answer_has_rate_limit_headers(
    sendgrid_standin: SendGridStandin,
) -> None:
    sendgrid_standin.rate_limit(reset_in=5)

    status, headers, payload = post(sendgrid_standin, VALID)
    after, _, _ = post(sendgrid_standin, VALID)

    assert status == 429
    assert headers["x-ratelimit-remaining"] == "0"
    assert int(headers["x-ratelimit-reset"]) > 0
    assert error_messages(payload) == ["too many requests"]
    assert after == 202


def test_connection_is_kept_alive(sendgrid_standin: SendGridStandin) -> None:
    parts = urlsplit(sendgrid_standin.url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port)

    statuses = [post(sendgrid_standin, VALID, connection=connection)[0] for _ in "abc"]
    connection.close()

    assert statuses == [202, 202, 202]
    assert sendgrid_standin.connections == 1


def test_truncated_request_is_not_recorded(
    sendgrid_standin: SendGridStandin,
) -> None:
    parts = urlsplit(sendgrid_standin.url)
    data = json.dumps(VALID).encode()
    with socket.create_connection((parts.hostname or "", parts.port or 80)) as sock:
        sock.sendall(
            b"POST /v3/mail/send HTTP/1.1\r\nHost: sendgrid\r\n"
            + f"Authorization: Bearer {API_KEY}\r\n".encode()
            + f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data[: len(data) // 2]
        )
        sock.shutdown(socket.SHUT_WR)
        answer = sock.recv(1024)
    whole, _, _ = post(sendgrid_standin, VALID)

    assert answer == b""
    assert sendgrid_standin.truncated == 1
    assert whole == 202
    assert len(sendgrid_standin.mail_requests) == 1
