"""The one check of who may act, run as a Bolt middleware before every listener.

Requests that change something (creating, generating, sending, skipping,
changing a client) are let through only for the finance team. Anyone else gets
a private reply and the listener never runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltResponse, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import slack_blocks
from bot.slack_runtime import SlackRuntime
from handlers.slack.command_text import subcommand_of

logger = logging.getLogger(__name__)

CHANGING_SUBCOMMANDS = frozenset(
    {"new", "generate", "send", "email", "exclude", "include"}
)
CHANGING_ACTIONS = frozenset(
    {
        slack_blocks.GENERATE,
        slack_blocks.SEND_ALL,
        slack_blocks.SEND,
        slack_blocks.RETRY,
        slack_blocks.SEND_AGAIN,
        slack_blocks.SKIP,
    }
)
CHANGING_VIEWS = frozenset({slack_blocks.NEW_RUN_VIEW, slack_blocks.SKIP_VIEW})


def changes_something(body: dict[str, Any]) -> bool:
    """Tell whether the request would change anything if it were carried out."""
    if "command" in body:
        name, _words = subcommand_of(str(body.get("text") or ""))
        return name in CHANGING_SUBCOMMANDS
    kind = body.get("type")
    if kind == "block_actions":
        return any(
            action.get("action_id") in CHANGING_ACTIONS
            for action in body.get("actions") or []
        )
    if kind == "view_submission":
        return (body.get("view") or {}).get("callback_id") in CHANGING_VIEWS
    return False


def user_of(body: dict[str, Any]) -> str:
    if "user_id" in body:
        return str(body["user_id"])
    user = body.get("user") or {}
    return str(user.get("id", ""))


def register(app: App, runtime: SlackRuntime) -> None:
    @app.middleware
    def authorize(
        body: dict[str, Any],
        respond: Respond,
        client: WebClient,
        next: Callable[[], BoltResponse],
    ) -> BoltResponse | None:
        if not changes_something(body):
            return next()
        user = user_of(body)
        if runtime.finance.includes(user):
            return next()

        logger.warning("refused a request from %s: not in the finance team", user)
        # The empty 200 is the acknowledgement; the reply goes out after it.
        threading.Thread(
            target=_refuse,
            args=(body, user, respond, client, runtime),
            daemon=True,
        ).start()
        return BoltResponse(status=200, body="")


def _refuse(
    body: dict[str, Any],
    user: str,
    respond: Respond,
    client: WebClient,
    runtime: SlackRuntime,
) -> None:
    text = slack_blocks.refusal_text()
    if body.get("response_url"):
        respond(text=text, response_type="ephemeral", replace_original=False)
        return
    channel = (body.get("channel") or {}).get(
        "id"
    ) or runtime.context.settings.slack_channel
    try:
        client.chat_postEphemeral(channel=channel, user=user, text=text)
    except SlackApiError as error:
        logger.warning(
            "could not tell %s about the refusal: %s", user, error.response.get("error")
        )
