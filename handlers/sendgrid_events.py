"""POST /sendgrid/events: SendGrid's signed Event Webhook."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime

from bot.context import AppContext
from bot.slack_notifier import SlackNotifier
from services.delivery import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    TaskChange,
    WebhookRejectedError,
    load_public_key,
    parse_events,
    record_events,
    verify_webhook,
)
from services.errors import ConfigurationError
from services.notifications import Notifier, SilentNotifier

logger = logging.getLogger(__name__)


def handle_sendgrid_events(
    context: AppContext,
    body: bytes,
    headers: Mapping[str, str],
    *,
    notifier: Notifier | None = None,
    now: datetime | None = None,
) -> tuple[int, str]:
    """Verify and record one Event Webhook post; return the HTTP status and text.

    A post that is not signed by the configured key, or was signed more than
    ten minutes from now, gets 403 and changes nothing. A bounce, block or drop
    redraws the client's message in the month's Slack thread.
    """
    key_text = context.settings.sendgrid_webhook_public_key
    if not key_text:
        logger.error(
            "Rejected a SendGrid event post: SENDGRID_WEBHOOK_PUBLIC_KEY is not set"
        )
        return 403, "event webhook verification is not configured"
    try:
        public_key = load_public_key(key_text)
    except ConfigurationError as error:
        logger.error("Rejected a SendGrid event post: %s", error)
        return 403, "event webhook verification is not configured"

    try:
        verify_webhook(
            public_key,
            body=body,
            signature=_header(headers, SIGNATURE_HEADER),
            timestamp=_header(headers, TIMESTAMP_HEADER),
            now=now or datetime.now(UTC),
        )
        events, ignored = parse_events(body)
    except WebhookRejectedError as error:
        logger.warning("Rejected a SendGrid event post: %s", error)
        return error.status, str(error)

    report = record_events(context.factory, events, ignored=ignored)
    logger.info("SendGrid event post: %s", report.summary_line())
    problems = [change for change in report.changes if change.is_problem]
    if problems:
        _refresh_problems(notifier or _channel_notifier(context), problems)
    return 200, report.summary_line()


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, candidate in headers.items():
        if key.lower() == wanted:
            return candidate
    return ""


def _channel_notifier(context: AppContext) -> Notifier:
    settings = context.settings
    if settings.slack_bot_token and settings.slack_channel:
        return SlackNotifier(context)
    return SilentNotifier()


def _refresh_problems(notifier: Notifier, changes: list[TaskChange]) -> None:
    for change in changes:
        try:
            notifier.refresh_task(change.task_id)
        except Exception:
            logger.exception(
                "Could not redraw client task %d in Slack after its %s",
                change.task_id,
                change.status,
            )
