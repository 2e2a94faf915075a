"""The Bolt app: its Web API client, the finance-team check and the listeners."""

from __future__ import annotations

import logging
from collections.abc import Callable

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient

from bot.context import AppContext
from bot.finance import FinanceTeam
from bot.slack_client import make_web_client
from bot.slack_runtime import SlackRuntime
from handlers import slack as slack_handlers

logger = logging.getLogger(__name__)


def create_app(
    context: AppContext,
    *,
    client: WebClient | None = None,
    wake_worker: Callable[[], None] | None = None,
    socket_mode: bool = False,
) -> App:
    """Build the app; over HTTP every request must carry Slack's signature."""
    settings = context.settings
    settings.require("slack_bot_token", "slack_channel")
    if not socket_mode:
        settings.require("slack_signing_secret")
    client = client or make_web_client(settings)

    app = App(
        client=client,
        signing_secret=settings.slack_signing_secret or None,
        request_verification_enabled=not socket_mode,
        process_before_response=False,
    )
    runtime = SlackRuntime(
        context=context,
        client=client,
        finance=FinanceTeam(
            client,
            user_ids=settings.finance_user_ids,
            usergroup=settings.finance_usergroup,
        ),
    )
    if wake_worker is not None:
        runtime.wake_worker = wake_worker
    app.middleware(_drop_timeout_retries)
    slack_handlers.register(app, runtime)
    return app


def _drop_timeout_retries(
    request: BoltRequest, next: Callable[[], BoltResponse]
) -> BoltResponse:
    """Acknowledge an event Slack sends again only because the first reply was slow.

    Slack retries an event when the reply took over 3 seconds, while this app
    may still be handling the first delivery, so the retry is acknowledged and
    dropped. A retry for any other reason, such as an HTTP 500, is handled.
    It runs after the signature check, so only Slack's own retries are dropped.
    """
    retry = _header(request, "x-slack-retry-num")
    if retry and _header(request, "x-slack-retry-reason") == "http_timeout":
        logger.info("dropped Slack's retry %s of a slow delivery", retry)
        return BoltResponse(status=200, body="")
    return next()


def _header(request: BoltRequest, name: str) -> str:
    values = request.headers.get(name) or []
    return str(values[0]) if values else ""


def serve_socket(context: AppContext, *, worker: bool = True) -> None:
    """Connect over Socket Mode with SLACK_APP_TOKEN until interrupted.

    With `worker`, queued jobs run on a thread in this process.
    """
    from bot.worker import start_worker_thread

    context.settings.require("slack_app_token")
    client = make_web_client(context.settings)
    job_worker = start_worker_thread(context, client) if worker else None
    app = create_app(
        context,
        client=client,
        wake_worker=job_worker.wake if job_worker else None,
        socket_mode=True,
    )
    handler = SocketModeHandler(app, context.settings.slack_app_token)
    logger.info("Slack app connecting over Socket Mode")
    try:
        handler.start()  # type: ignore[no-untyped-call]
    finally:
        if job_worker is not None:
            job_worker.stop()
