"""The app's Home tab: the recent months and the month in progress."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot import slack_blocks
from bot.slack_runtime import SlackRuntime
from services.errors import NotFoundError
from services.runs import RunStatus, current_period, recent_runs, run_status

logger = logging.getLogger(__name__)

RECENT_MONTHS = 6


def register(app: App, runtime: SlackRuntime) -> None:
    @app.event("app_home_opened")
    def home_opened(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        factory = runtime.context.factory
        recent = recent_runs(factory, limit=RECENT_MONTHS)
        current: RunStatus | None = None
        try:
            current = run_status(factory, current_period(factory))
        except NotFoundError:
            current = None
        if current is not None and current.run.state.value == "complete":
            current = None
        client.views_publish(
            user_id=str(event["user"]), view=slack_blocks.home_view(recent, current)
        )
