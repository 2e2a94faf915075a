"""The finance channel in Slack, as the scheduler and delivery tracking use it."""

from __future__ import annotations

from slack_sdk import WebClient

from bot.context import AppContext
from bot.slack_client import make_web_client
from bot.slack_messages import SlackMessages
from services.errors import NotFoundError
from services.periods import Period


class SlackPostError(RuntimeError):
    """Slack rejected a message, so the caller can try it again later."""


class SlackNotifier:
    """A `services.notifications.Notifier` that posts to SLACK_CHANNEL.

    Each post raises `SlackPostError` when Slack rejects it, so the clock
    keeps the post or reminder due and tries it again at its next check.
    """

    def __init__(self, context: AppContext, client: WebClient | None = None) -> None:
        context.settings.require("slack_bot_token", "slack_channel")
        self._messages = SlackMessages(
            context.factory,
            client or make_web_client(context.settings),
            channel=context.settings.slack_channel,
        )

    def post_run(self, period: Period, *, note: str = "") -> None:
        failures: list[str] = []
        self._messages.post_run(period, note=note, on_failure=failures.append)
        if failures:
            raise SlackPostError(
                f"{failures[0]} The clock also tries again at its next check."
            )

    def post_text(self, text: str) -> None:
        if not self._messages.post_text(text):
            raise SlackPostError("Slack rejected the message to the channel")

    def post_reminder(self, period: Period, text: str) -> None:
        """Post in the month's thread and show it in the channel too.

        A month without a message in the channel gets the reminder at the top
        level instead.
        """
        try:
            status = self._messages.status(period)
        except NotFoundError:
            self.post_text(text)
            return
        if not self._messages.post_in_thread(status, text, broadcast=True):
            raise SlackPostError(f"Slack rejected the reminder about {period}")

    def refresh_task(self, task_id: int) -> None:
        self._messages.refresh_task_by_id(task_id)
