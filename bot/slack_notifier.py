"""The finance channel in Slack, as the scheduler and delivery tracking use it."""

from __future__ import annotations

from slack_sdk import WebClient

from bot.context import AppContext
from bot.slack_client import make_web_client
from bot.slack_messages import SlackMessages
from services.errors import NotFoundError
from services.periods import Period


class SlackNotifier:
    """A `services.notifications.Notifier` that posts to SLACK_CHANNEL."""

    def __init__(self, context: AppContext, client: WebClient | None = None) -> None:
        context.settings.require("slack_bot_token", "slack_channel")
        self._messages = SlackMessages(
            context.factory,
            client or make_web_client(context.settings),
            channel=context.settings.slack_channel,
        )

    def post_run(self, period: Period, *, note: str = "") -> None:
        self._messages.post_run(period, note=note)

    def post_text(self, text: str) -> None:
        self._messages.post_text(text)

    def post_reminder(self, period: Period, text: str) -> None:
        """Post in the month's thread and show it in the channel too.

        A month without a message in the channel gets the reminder at the top
        level instead.
        """
        try:
            status = self._messages.status(period)
        except NotFoundError:
            self._messages.post_text(text)
            return
        self._messages.post_in_thread(status, text, broadcast=True)

    def refresh_task(self, task_id: int) -> None:
        self._messages.refresh_task_by_id(task_id)
