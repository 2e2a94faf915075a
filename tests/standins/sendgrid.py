"""A stand-in for SendGrid's v3 Mail Send API, served over HTTP/1.1 on 127.0.0.1.

It checks POST /v3/mail/send the way SendGrid does for the fields this product
sends: the bearer API key (401), the 30 MB size limit (413), the required
fields, unique recipients within a personalization and base64 attachments
(400 with SendGrid's `errors` body), and a verified sender (403). A valid
request gets 202 with an empty body and an X-Message-Id header. Tests can queue
scripted responses (rate limits, server errors, hangs) and add latency; every
request is recorded.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

API_KEY = "SG.standin-key.0123456789"
VERIFIED_SENDER = "saskaitos@example.com"
MAIL_SEND_PATH = "/v3/mail/send"
MAX_REQUEST_BYTES = 30 * 1024 * 1024
HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"

UNVERIFIED_SENDER_MESSAGE = (
    "The from address does not match a verified Sender Identity. Mail cannot be "
    "sent until this error is resolved. Visit "
    "https://sendgrid.com/docs/for-developers/sending-email/sender-identity/ to "
    "see the Sender Identity requirements"
)
# nginx rejects an oversized request before it reaches SendGrid's API.
TOO_LARGE_BODY = (
    b"<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n"
    b"<body>\r\n<center><h1>413 Request Entity Too Large</h1></center>\r\n"
    b"<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any

    @property
    def client_task_id(self) -> str:
        if not isinstance(self.json, dict):
            return ""
        return str(self.json.get("custom_args", {}).get("client_task_id", ""))


@dataclass(frozen=True)
class ScriptedResponse:
    """A response sent instead of checking the request; a hang sends nothing."""

    status: int = 202
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    hang_seconds: float = 0.0


class SendGridStandin:
    """The server, its scripted responses and the requests it received."""

    def __init__(
        self,
        *,
        api_key: str = API_KEY,
        latency: float = 0.0,
        idle_timeout: float | None = None,
    ) -> None:
        self.api_key = api_key
        # Seconds a kept-alive connection may stay idle before the server closes it.
        self.idle_timeout = idle_timeout
        self.verified_senders = {VERIFIED_SENDER}
        self.latency = latency
        self.requests: list[RecordedRequest] = []
        # The number of requests cut off before their whole body arrived. Like
        # SendGrid, the stand-in neither records nor replies to them.
        self.truncated = 0
        self.connections = 0
        self._script: deque[ScriptedResponse] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.standin = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sendgrid-standin",
            daemon=True,
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def mail_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == MAIL_SEND_PATH]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def respond_with(self, *responses: ScriptedResponse) -> None:
        """Queue responses for the next requests, one each, before checking resumes."""
        with self._lock:
            self._script.extend(responses)

    def fail(self, status: int, message: str, *, field: str | None = None) -> None:
        """Queue one response with SendGrid's error body."""
        self.respond_with(ScriptedResponse(status, _errors_body([(message, field)])))

    def rate_limit(
        self, *, reset_in: int | None = None, retry_after: int | None = None
    ) -> None:
        """Queue one 429 with SendGrid's rate-limit headers."""
        headers = {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0"}
        if reset_in is not None:
            headers["X-RateLimit-Reset"] = str(int(time.time()) + reset_in)
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        body = _errors_body([("too many requests", None)])
        self.respond_with(ScriptedResponse(429, body, headers))

    def hang(self, seconds: float) -> None:
        """Queue one request that gets no response for `seconds`, then is closed."""
        self.respond_with(ScriptedResponse(hang_seconds=seconds))

    def _next_scripted(self) -> ScriptedResponse | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _count_truncated(self) -> None:
        with self._lock:
            self.truncated += 1

    def _count_connection(self) -> None:
        with self._lock:
            self.connections += 1

    def _wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Room for many clients connecting at once, as a production server has.
    request_queue_size = 128
    block_on_close = False
    standin: SendGridStandin

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client that timed out has closed its socket."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        self.timeout = self.server.standin.idle_timeout
        super().setup()
        self.server.standin._count_connection()

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output clean."""

    def do_POST(self) -> None:
        standin = self.server.standin
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BYTES:
            self._discard(length)
            self.close_connection = True
            self._respond(413, TOO_LARGE_BODY, content_type="text/html")
            return
        body = self.rfile.read(length)
        if len(body) < length:
            standin._count_truncated()
            self.close_connection = True
            return
        standin._record(self._recorded(body))
        if standin.latency:
            standin._wait(standin.latency)

        scripted = standin._next_scripted()
        if scripted is not None:
            self._respond_scripted(scripted)
            return
        status, payload, headers = _check_mail_send(
            standin, self.path, self.headers.get("Authorization", ""), body
        )
        self._respond(status, payload, extra=headers)

    def _discard(self, length: int) -> None:
        while length > 0:
            chunk = self.rfile.read(min(length, 1024 * 1024))
            if not chunk:
                return
            length -= len(chunk)

    def _recorded(self, body: bytes) -> RecordedRequest:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        headers = {name.lower(): value for name, value in self.headers.items()}
        return RecordedRequest(self.command, self.path, headers, body, parsed)

    def _respond_scripted(self, scripted: ScriptedResponse) -> None:
        if scripted.hang_seconds:
            self.server.standin._wait(scripted.hang_seconds)
            self.close_connection = True
            return
        self._respond(scripted.status, scripted.body, extra=scripted.headers)

    def _respond(
        self,
        status: int,
        body: bytes,
        *,
        content_type: str = "application/json",
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        if body:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


def _check_mail_send(
    standin: SendGridStandin, path: str, authorization: str, body: bytes
) -> tuple[int, bytes, dict[str, str]]:
    if path != MAIL_SEND_PATH:
        return 404, _errors_body([("resource not found", None)]), {}
    if not authorization:
        return 401, _errors_body([("authorization required", None)]), {}
    if authorization != f"Bearer {standin.api_key}":
        message = "The provided authorization grant is invalid, expired, or revoked"
        return 401, _errors_body([(message, None)]), {}
    try:
        document = json.loads(body)
    except ValueError:
        return 400, _errors_body([("Bad Request", None)]), {}
    if not isinstance(document, dict):
        return 400, _errors_body([("Bad Request", None)]), {}

    errors = validation_errors(document)
    if errors:
        return 400, _errors_body(errors), {}
    sender = str(document["from"]["email"]).casefold()
    if sender not in {address.casefold() for address in standin.verified_senders}:
        return 403, _errors_body([(UNVERIFIED_SENDER_MESSAGE, "from")]), {}

    message_id = secrets.token_urlsafe(16)[:22]
    return 202, b"", {"X-Message-Id": message_id}


def validation_errors(document: dict[str, Any]) -> list[tuple[str, str | None]]:
    """Check a Mail Send body as SendGrid does; return (message, field) pairs."""
    errors: list[tuple[str, str | None]] = []
    personalizations = document.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        errors.append(
            (
                "The personalizations field is required and must have at least "
                "one personalization.",
                "personalizations",
            )
        )
        personalizations = []
    for index, personalization in enumerate(personalizations):
        errors.extend(_personalization_errors(index, personalization))

    sender = document.get("from")
    if not isinstance(sender, dict) or not _valid_address(sender.get("email")):
        errors.append(
            (
                "The from object must be provided for every email send. It is an "
                "object that requires the email parameter, but may also contain a "
                'name parameter.  e.g. {"email" : "example@example.com"}  or '
                '{"email" : "example@example.com", "name" : "Example Recipient"}.',
                "from.email",
            )
        )
    errors.extend(_subject_and_content_errors(document, personalizations))
    errors.extend(_attachment_errors(document.get("attachments")))
    reply_to = document.get("reply_to")
    if reply_to is not None and not (
        isinstance(reply_to, dict) and _valid_address(reply_to.get("email"))
    ):
        errors.append(
            ("The reply_to email does not contain a valid address.", "reply_to")
        )
    return errors


def _personalization_errors(
    index: int, personalization: Any
) -> Iterator[tuple[str, str | None]]:
    prefix = f"personalizations.{index}"
    tos = personalization.get("to") if isinstance(personalization, dict) else None
    if not isinstance(tos, list) or not tos:
        yield (
            "The to array is required for all personalization objects, and must "
            "have at least one email object with a valid email address.",
            f"{prefix}.to",
        )
        return

    seen: set[str] = set()
    for kind in ("to", "cc", "bcc"):
        for position, recipient in enumerate(personalization.get(kind) or []):
            address = recipient.get("email") if isinstance(recipient, dict) else None
            if not _valid_address(address):
                yield (
                    "Does not contain a valid address.",
                    f"{prefix}.{kind}.{position}.email",
                )
                continue
            folded = str(address).casefold()
            if folded in seen:
                yield (
                    "Each email address in the personalization block should be "
                    "unique between to, cc, and bcc. We found the first duplicate "
                    f"instance of [{address}] in the {prefix}.{kind} field.",
                    prefix,
                )
                return
            seen.add(folded)


def _subject_and_content_errors(
    document: dict[str, Any], personalizations: list[Any]
) -> Iterator[tuple[str, str | None]]:
    has_template = bool(document.get("template_id"))
    every_has_subject = bool(personalizations) and all(
        isinstance(p, dict) and p.get("subject") for p in personalizations
    )
    if not has_template and not document.get("subject") and not every_has_subject:
        yield (
            "The subject is required. You can get around this requirement if you "
            "use a template with a subject defined or if every personalization "
            "has a subject defined.",
            "subject",
        )

    content = document.get("content")
    if not isinstance(content, list) or not content:
        if not has_template:
            yield (
                "Unless a valid template_id is provided, the content parameter is "
                "required. There must be at least one defined content block. We "
                "typically suggest both text/plain and text/html blocks are "
                "included, but only one block is required.",
                "content",
            )
        return
    for index, block in enumerate(content):
        value = block.get("value") if isinstance(block, dict) else None
        if not isinstance(value, str) or not value:
            yield (
                "The content value must be a string at least one character in length.",
                f"content.{index}.value",
            )


def _attachment_errors(attachments: Any) -> Iterator[tuple[str, str | None]]:
    if attachments is None:
        return
    for index, attachment in enumerate(attachments):
        content = attachment.get("content") if isinstance(attachment, dict) else None
        if not isinstance(content, str) or not _is_base64(content):
            yield (
                "The attachment content must be base64 encoded.",
                f"attachments.{index}.content",
            )
        if not isinstance(attachment, dict) or not attachment.get("filename"):
            yield (
                "The attachment filename parameter is required.",
                f"attachments.{index}.filename",
            )


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return bool(text)


def _valid_address(value: Any) -> bool:
    return isinstance(value, str) and bool(_ADDRESS.match(value))


def _errors_body(errors: list[tuple[str, str | None]]) -> bytes:
    items = [
        {
            "message": message,
            "field": field,
            "help": f"{HELP}#message.{field}" if field else None,
        }
        for message, field in errors
    ]
    return json.dumps({"errors": items}).encode("utf-8")


def run_standin(**options: Any) -> Iterator[SendGridStandin]:
    """Start a stand-in for the length of a fixture."""
    standin = SendGridStandin(**options)
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()


@pytest.fixture
def sendgrid_standin() -> Iterator[SendGridStandin]:
    """A running SendGrid stand-in that accepts API_KEY and VERIFIED_SENDER."""
    yield from run_standin()
