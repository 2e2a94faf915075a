"""The HTTP front: Slack's events, SendGrid's Event Webhook and a health check.

`create_wsgi_app()` is what gunicorn serves in the Procfile's `web` process;
`serve_http` runs the same WSGI app on a threaded server for `invoices slack
serve`, with a job worker thread beside it.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import App, BoltRequest
from sqlalchemy import text

from bot.context import AppContext, build_context
from bot.settings import load_settings

logger = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
MAX_BODY_BYTES = 10 * 1024 * 1024
# Beyond this an oversized body is not read at all and the connection is reset.
MAX_DRAINED_BYTES = 64 * 1024 * 1024
# How long the whole body may take to arrive; Slack sends a few kilobytes at once.
BODY_TIMEOUT_SECONDS = 10.0
# The environ key of the connection's socket in `invoices slack serve`, as
# gunicorn has "gunicorn.socket".
SOCKET_KEY = "invoices.socket"

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Payload Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class WebApp:
    """A WSGI callable that routes by path to Bolt, the SendGrid handler or health."""

    def __init__(self, context: AppContext, app: App) -> None:
        self.context = context
        self.app = app

    def __call__(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        if path == "/healthz" and method == "GET":
            return self._health(start_response)
        if path not in {"/slack/events", "/sendgrid/events"}:
            return _reply(start_response, 404, "not found")
        if method != "POST":
            return _reply(start_response, 405, "use POST")

        try:
            body = _read_body(environ)
        except InvalidLength:
            return _reply(start_response, 400, "invalid Content-Length")
        except TimeoutError:
            logger.warning(
                "%s %s: the body did not arrive within %.0f s",
                method,
                path,
                BODY_TIMEOUT_SECONDS,
            )
            return _reply(start_response, 408, "the request body did not arrive")
        if body is None:
            return _reply(start_response, 413, "the request body is too large")
        headers = _headers(environ)
        if path == "/slack/events":
            return self._slack(environ, body, headers, start_response)
        return self._sendgrid(body, headers, start_response)

    def _health(self, start_response: StartResponse) -> Iterable[bytes]:
        try:
            with self.context.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:
            logger.exception("health check: the database is not reachable")
            return _reply(start_response, 503, "database unreachable")
        return _reply(start_response, 200, "ok")

    def _slack(
        self,
        environ: dict[str, Any],
        body: bytes,
        headers: dict[str, str],
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        try:
            request = BoltRequest(
                body=body.decode("utf-8"),
                query=str(environ.get("QUERY_STRING", "")),
                headers={key: [value] for key, value in headers.items()},
            )
        except (ValueError, AttributeError, TypeError) as error:
            # Slack sends UTF-8 JSON, or a form whose `payload` field is JSON;
            # Bolt raises AttributeError when that JSON is not an object.
            logger.warning("POST /slack/events: unreadable body (%s)", error)
            return _reply(
                start_response,
                400,
                "the body is not a Slack request: expected UTF-8 JSON or a form "
                "with a JSON payload field",
            )
        response = self.app.dispatch(request)
        response_headers = [
            (key, value)
            for key, values in response.headers.items()
            for value in values
            if key.lower() != "content-length"
        ]
        payload = response.body.encode("utf-8")
        response_headers.append(("Content-Length", str(len(payload))))
        start_response(_status(response.status), response_headers)
        return [payload]

    def _sendgrid(
        self, body: bytes, headers: dict[str, str], start_response: StartResponse
    ) -> Iterable[bytes]:
        try:
            from handlers.sendgrid_events import handle_sendgrid_events
        except ImportError:
            logger.error("POST /sendgrid/events: handlers.sendgrid_events is missing")
            return _reply(start_response, 503, "the SendGrid webhook is not available")
        status, message = handle_sendgrid_events(self.context, body, headers)
        return _reply(start_response, status, message)


class InvalidLength(ValueError):
    """The Content-Length header is not a whole number of bytes."""


def _read_body(environ: dict[str, Any]) -> bytes | None:
    """Read the request body, or return None when it is over `MAX_BODY_BYTES`.

    An oversized body is read and thrown away, up to `MAX_DRAINED_BYTES`, so
    the client is still reading when the 413 arrives. A server that closes a
    connection with unread data resets it, so the client would get no reply.
    Reading raises `TimeoutError` when the whole body has not arrived within
    `BODY_TIMEOUT_SECONDS`, however slowly its bytes come, so a client that
    never sends the body it announced keeps a thread busy for that long only.
    """
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError as error:
        raise InvalidLength(environ.get("CONTENT_LENGTH")) from error
    if length < 0:
        raise InvalidLength(length)
    if length == 0:
        return b""

    stream = environ["wsgi.input"]
    connection = environ.get("gunicorn.socket") or environ.get(SOCKET_KEY)
    if not isinstance(connection, socket.socket):
        connection = None
    body: bytes | None = None
    with _Deadline(connection) as deadline:
        if length > MAX_BODY_BYTES:
            _drain(stream, min(length, MAX_DRAINED_BYTES))
        else:
            body = bytes(stream.read(length))
    if deadline.expired:
        raise TimeoutError(f"the body did not arrive in {BODY_TIMEOUT_SECONDS} s")
    return body


def _drain(stream: Any, remaining: int) -> None:
    while remaining > 0:
        chunk = stream.read(min(remaining, 1024 * 1024))
        if not chunk:
            return
        remaining -= len(chunk)


class _Deadline:
    """Shuts the reading side of a socket once `BODY_TIMEOUT_SECONDS` have passed.

    A socket time-out bounds each read, but a client that sends a byte every
    few seconds never trips it. Shutting the socket for reading ends any read
    in progress, while the reply can still be written.
    """

    def __init__(self, connection: socket.socket | None) -> None:
        self._connection = connection
        self._timer = threading.Timer(BODY_TIMEOUT_SECONDS, self._expire)
        self._timer.daemon = True
        self.expired = False

    def __enter__(self) -> _Deadline:
        if self._connection is not None:
            self._connection.settimeout(BODY_TIMEOUT_SECONDS)
            self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        self.expired = True
        assert self._connection is not None
        try:
            self._connection.shutdown(socket.SHUT_RD)
        except OSError:
            logger.debug("the connection closed before its body deadline")


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    headers = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = str(environ[key])
    return headers


def _status(code: int) -> str:
    return f"{code} {_REASONS.get(code, 'Unknown')}"


def _reply(start_response: StartResponse, code: int, message: str) -> list[bytes]:
    payload = message.encode("utf-8")
    start_response(
        _status(code),
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(payload))),
        ],
    )
    return [payload]


def create_wsgi_app(
    context: AppContext | None = None, *, app: App | None = None
) -> WebApp:
    """Build the WSGI app; without a context it reads the settings itself.

    Jobs queued here are carried out by a separate worker (`invoices worker`),
    which finds them in the `jobs` table.
    """
    from bot.slack_app import create_app

    if context is None:
        context = build_context(load_settings())
    return WebApp(context, app or create_app(context))


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    # StreamRequestHandler sets this time-out on each connection's socket.
    timeout = BODY_TIMEOUT_SECONDS

    def get_environ(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().get_environ()
        environ[SOCKET_KEY] = self.connection
        return environ

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


def make_http_server(web_app: WebApp, port: int, host: str = "0.0.0.0") -> WSGIServer:  # noqa: S104
    """Bind a threaded WSGI server; port 0 picks a free port."""
    return make_server(
        host,
        port,
        web_app,
        server_class=_ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )


def serve_http(context: AppContext, port: int, *, worker: bool = True) -> None:
    """Serve POST /slack/events, POST /sendgrid/events and GET /healthz on `port`.

    With `worker`, queued jobs run on a thread in this process.
    """
    from bot.slack_app import create_app
    from bot.slack_client import make_web_client
    from bot.worker import start_worker_thread

    client = make_web_client(context.settings)
    job_worker = start_worker_thread(context, client) if worker else None
    app = create_app(
        context, client=client, wake_worker=job_worker.wake if job_worker else None
    )
    server = make_http_server(WebApp(context, app), port)
    logger.info("Slack app listening on port %s", port)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        if job_worker is not None:
            job_worker.stop()
