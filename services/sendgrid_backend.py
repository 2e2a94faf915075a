"""Delivery through SendGrid's v3 Mail Send API (POST /v3/mail/send).

The request body is built with the sendgrid package's mail helpers. A transport
posts it: by default the package's own client (python_http_client over urllib),
or `PooledTransport`, which keeps HTTP/1.1 connections open between messages.
Every response is mapped to a message id or to a `DeliveryError` that says
whether the send may be retried or whether its outcome is unknown.
"""

from __future__ import annotations

import base64
import email.utils
import http.client
import json
import logging
import select
import ssl
import threading
import time
import urllib.error
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import (
    Attachment,
    CustomArg,
    Disposition,
    FileContent,
    FileName,
    FileType,
    From,
    Mail,
    ReplyTo,
    To,
)

from services.errors import DeliveryError
from services.mail import OutgoingMessage, Sender, ascii_filename

logger = logging.getLogger(__name__)

MAIL_SEND_PATH = "/v3/mail/send"
USER_AGENT = "invoice-lists"
# SendGrid's limit on one message, attachments and headers included.
MAX_MESSAGE_BYTES = 30 * 1024 * 1024


@dataclass(frozen=True)
class ApiResponse:
    """A response from the API; header names are lower-cased."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class Transport(Protocol):
    """Posts one Mail Send request body and returns the response.

    Raises `DeliveryError` when no response came: retryable when the request
    cannot have reached SendGrid, unknown when it may have.
    """

    def post(self, body: dict[str, Any], *, timeout: float) -> ApiResponse: ...

    def close(self) -> None: ...


class SendGridBackend:
    """A `MailBackend` that sends through SendGrid."""

    def __init__(
        self,
        *,
        api_key: str,
        host: str = "https://api.sendgrid.com",
        timeout: float = 30.0,
        transport: Transport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._timeout = timeout
        self._transport = transport or SendGridClientTransport(host, api_key)
        self._clock = clock

    def send(self, message: OutgoingMessage, sender: Sender) -> str:
        body = build_mail_body(message, sender)
        response = self._transport.post(body, timeout=self._timeout)
        message_id = interpret_response(response, now=self._clock())
        logger.debug(
            "SendGrid accepted the e-mail for client task %s as message %s",
            message.task_id,
            message_id,
        )
        return message_id

    def close(self) -> None:
        """Close the transport's open connections."""
        self._transport.close()


def build_mail_body(message: OutgoingMessage, sender: Sender) -> dict[str, Any]:
    """Build the Mail Send JSON: one personalization with each recipient once."""
    mail = Mail(
        from_email=From(sender.from_email, sender.from_name or None),
        to_emails=[To(address) for address in message.recipients],
        subject=message.subject,
        plain_text_content=message.text,
    )
    if sender.reply_to:
        mail.reply_to = ReplyTo(sender.reply_to)
    mail.attachment = Attachment(
        FileContent(base64.b64encode(message.attachment).decode("ascii")),
        FileName(ascii_filename(message.attachment_filename, fallback="statement.pdf")),
        FileType("application/pdf"),
        Disposition("attachment"),
    )
    if message.custom_args:
        mail.custom_arg = [
            CustomArg(key, value) for key, value in message.custom_args.items()
        ]
    body: dict[str, Any] = mail.get()
    return body


def interpret_response(response: ApiResponse, *, now: float) -> str:
    """Return the X-Message-Id of an accepted message, else raise `DeliveryError`."""
    status = response.status
    if 200 <= status < 300:
        return response.headers.get("x-message-id", "")

    reason = _error_messages(response.body)
    if status == 401:
        raise DeliveryError(
            "SendGrid rejected the API key (401); check SENDGRID_API_KEY",
            status=status,
            account=True,
        )
    if status == 403:
        raise DeliveryError(
            f"SendGrid rejected the message (403): {reason}; verify the MAIL_FROM "
            "address as a sender identity in SendGrid",
            status=status,
            account=True,
        )
    if status == 413:
        raise DeliveryError(
            "SendGrid rejected the message as too large (413); a message may be "
            "at most 30 MB including its attachments",
            status=status,
        )
    if status == 429:
        raise DeliveryError(
            f"SendGrid rate limit reached (429): {reason}",
            status=status,
            retryable=True,
            retry_after=_retry_after(response.headers, now),
        )
    if status >= 500:
        raise DeliveryError(
            f"SendGrid responded with a server error ({status}): {reason}",
            status=status,
            retryable=True,
            retry_after=_retry_after(response.headers, now),
        )
    raise DeliveryError(
        f"SendGrid rejected the message ({status}): {reason}", status=status
    )


def _error_messages(body: bytes) -> str:
    """Join SendGrid's `errors[].message` and `field` into one line."""
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        document = None
    errors = document.get("errors") if isinstance(document, dict) else None
    if not isinstance(errors, list) or not errors:
        text = body.decode("utf-8", "replace").strip()
        return text[:200] if text and not text.startswith("<") else "no details"

    parts = []
    for error in errors:
        if not isinstance(error, dict):
            continue
        message = str(error.get("message") or "no message")
        field = error.get("field")
        parts.append(f"{message} (field {field})" if field else message)
    return "; ".join(parts) or "no details"


def _retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait, from X-RateLimit-Reset (a Unix time) or Retry-After."""
    reset = headers.get("x-ratelimit-reset")
    if reset:
        try:
            return max(0.0, float(reset) - now)
        except ValueError:
            pass
    retry_after = headers.get("retry-after")
    if not retry_after:
        return None
    try:
        return max(0.0, float(retry_after))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(retry_after)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - now)


def _lower_headers(headers: Any) -> dict[str, str]:
    if headers is None:
        return {}
    return {str(name).lower(): str(value) for name, value in headers.items()}


class SendGridClientTransport:
    """Posts through the sendgrid package's client, one connection per request."""

    def __init__(self, host: str, api_key: str) -> None:
        self._client = SendGridAPIClient(api_key=api_key, host=host.rstrip("/"))
        _hide_client_debug_records()

    def post(self, body: dict[str, Any], *, timeout: float) -> ApiResponse:
        try:
            response = self._client.client.mail.send.post(
                request_body=body, timeout=timeout
            )
        except HTTPError as error:
            return ApiResponse(
                int(error.status_code), _lower_headers(error.headers), error.body
            )
        except urllib.error.URLError as error:
            # urllib wraps what fails while connecting or writing the request.
            raise _unsent_or_unknown(error.reason) from error
        except (TimeoutError, OSError, http.client.HTTPException) as error:
            # Anything else failed while waiting for or reading the response.
            raise _unknown(error) from error
        return ApiResponse(
            int(response.status_code), _lower_headers(response.headers), response.body
        )

    def close(self) -> None:
        """Do nothing, because urllib closes each connection after its request."""


class PooledTransport:
    """Posts over HTTP/1.1 keep-alive connections reused between threads.

    Up to `max_idle` open connections wait in the pool; a connection the
    server has closed while idle is noticed before reuse and replaced.
    """

    def __init__(self, host: str, api_key: str, *, max_idle: int = 64) -> None:
        parts = urlsplit(host.rstrip("/"))
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"invalid SendGrid API host {host!r}")
        self._scheme = parts.scheme
        self._hostname = parts.hostname
        self._port = parts.port
        self._path = parts.path + MAIL_SEND_PATH
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        self._max_idle = max_idle
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._context = (
            ssl.create_default_context() if self._scheme == "https" else None
        )

    def post(self, body: dict[str, Any], *, timeout: float) -> ApiResponse:
        data = json.dumps(body).encode("utf-8")
        connection = self._checkout(timeout)
        try:
            connection.request("POST", self._path, body=data, headers=self._headers)
            response = connection.getresponse()
            payload = response.read()
        except (TimeoutError, OSError, http.client.HTTPException) as error:
            connection.close()
            raise _unknown(error) from error

        if response.will_close:
            connection.close()
        else:
            self._checkin(connection)
        return ApiResponse(response.status, _lower_headers(response.headers), payload)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _checkout(self, timeout: float) -> http.client.HTTPConnection:
        while True:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                return self._connect(timeout)
            if connection.sock is not None and not _dropped(connection):
                connection.sock.settimeout(timeout)
                return connection
            connection.close()

    def _checkin(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(connection)
                return
        connection.close()

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection
        if self._context is not None:
            connection = http.client.HTTPSConnection(
                self._hostname, self._port, timeout=timeout, context=self._context
            )
        else:
            connection = http.client.HTTPConnection(
                self._hostname, self._port, timeout=timeout
            )
        try:
            connection.connect()
        except OSError as error:
            # Nothing was sent on a connection that never opened.
            connection.close()
            raise _unsent(error) from error
        return connection


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """Tell whether an idle connection was closed by the server.

    An idle keep-alive socket has nothing to read, so a readable one is at its
    end or holds unrequested bytes, so it must not be reused.
    """
    assert connection.sock is not None
    readable, _, _ = select.select([connection.sock], [], [], 0)
    return bool(readable)


def _unsent_or_unknown(reason: object) -> DeliveryError:
    if isinstance(reason, TimeoutError | ConnectionResetError | BrokenPipeError):
        return _unknown(reason)
    if isinstance(reason, OSError):
        return _unsent(reason)
    return _unknown(reason)


def _unsent(error: object) -> DeliveryError:
    return DeliveryError(
        f"could not connect to SendGrid: {error}; nothing was sent", retryable=True
    )


def _unknown(error: object) -> DeliveryError:
    kind = "timed out" if isinstance(error, TimeoutError) else "failed"
    return DeliveryError(
        f"the request to SendGrid {kind} after it was sent ({error or 'no response'}); "
        "SendGrid may or may not have accepted the message",
        unknown=True,
    )


class _DropRequestDetails(logging.Filter):
    """Drop python_http_client's DEBUG records of request headers and payloads.

    Those records contain the Authorization header with the API key and the
    whole message, which must never reach a log.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        return not message.startswith(("PAYLOAD:", "HEADERS:"))


_filter_lock = threading.Lock()


def _hide_client_debug_records() -> None:
    client_logger = logging.getLogger("python_http_client.client")
    with _filter_lock:
        if not any(isinstance(f, _DropRequestDetails) for f in client_logger.filters):
            client_logger.addFilter(_DropRequestDetails())
