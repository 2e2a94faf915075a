"""Slack listeners: thin functions that ack, check who may act, and queue work."""

from __future__ import annotations

from slack_bolt import App

from bot.slack_runtime import SlackRuntime
from handlers.slack import actions, authorization, commands, home, views


def register(app: App, runtime: SlackRuntime) -> None:
    """Attach the authorization middleware and every listener to `app`."""
    authorization.register(app, runtime)
    commands.register(app, runtime)
    actions.register(app, runtime)
    views.register(app, runtime)
    home.register(app, runtime)
