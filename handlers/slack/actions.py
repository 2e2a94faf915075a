"""Button clicks on the month's message, the clients' messages and the Home tab."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import slack_blocks, slack_jobs
from bot.slack_runtime import SlackRuntime

logger = logging.getLogger(__name__)


def _value(body: dict[str, Any]) -> dict[str, Any]:
    action = (body.get("actions") or [{}])[0]
    try:
        loaded = json.loads(action.get("value") or "{}")
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _who(body: dict[str, Any]) -> tuple[str, str]:
    user = str((body.get("user") or {}).get("id", ""))
    channel = str((body.get("channel") or {}).get("id", ""))
    return user, channel


def register(app: App, runtime: SlackRuntime) -> None:
    def tell(client: WebClient, body: dict[str, Any], text: str) -> None:
        user, channel = _who(body)
        try:
            client.chat_postEphemeral(
                channel=channel or runtime.context.settings.slack_channel,
                user=user,
                text=text,
            )
        except SlackApiError as error:
            logger.warning(
                "could not reply to %s: %s", user, error.response.get("error")
            )

    def queue_send(body: dict[str, Any], client: WebClient, *, force: bool) -> bool:
        """Queue the sending named by the button; False when it is already queued."""
        value = _value(body)
        user, channel = _who(body)
        code = value.get("client")
        queued = runtime.enqueue(
            slack_jobs.SEND,
            {
                "period": value["period"],
                "client_code": code,
                "force": force,
                "actor": f"slack:{user}",
                "user": user,
                "channel": channel,
            },
            dedup_key=slack_jobs.send_key(value["period"], code),
        )
        if not queued.created:
            tell(client, body, f"{code or value['period']} is already being sent.")
        return queued.created

    @app.action(slack_blocks.GENERATE)
    def generate(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        period = _value(body)["period"]
        user, channel = _who(body)
        queued = runtime.enqueue(
            slack_jobs.GENERATE,
            {
                "period": period,
                "actor": f"slack:{user}",
                "user": user,
                "channel": channel,
            },
            dedup_key=slack_jobs.generate_key(period),
        )
        if not queued.created:
            tell(client, body, f"{period} is already being generated.")

    # The button is on the month's message and in the private reply to
    # `/invoices send`. Both carry the period in their value, and the send job
    # finds the month's thread in the database, so either message works.
    @app.action(slack_blocks.SEND_ALL)
    def send_all(
        ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond
    ) -> None:
        ack()
        created = queue_send(
            {**body, "actions": [_without_client(body)]}, client, force=False
        )
        if created and (body.get("container") or {}).get("is_ephemeral"):
            period = _value(body)["period"]
            respond(
                text=f"Sending every ready client of {period}; the report goes "
                "in the month's thread.",
                replace_original=True,
            )

    @app.action(slack_blocks.SEND)
    def send(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        queue_send(body, client, force=False)

    @app.action(slack_blocks.RETRY)
    def retry(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        queue_send(body, client, force=False)

    @app.action(slack_blocks.SEND_AGAIN)
    def send_again(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        queue_send(body, client, force=True)

    @app.action(slack_blocks.SKIP)
    def skip(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        value = _value(body)
        client.views_open(
            trigger_id=body["trigger_id"],
            view=slack_blocks.skip_view(value, str(value.get("client", ""))),
        )

    @app.action(slack_blocks.PREVIEW)
    def preview(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        value = _value(body)
        user, channel = _who(body)
        runtime.enqueue(
            slack_jobs.PREVIEW,
            {
                "period": value["period"],
                "client": value["client"],
                "user": user,
                "channel": channel,
            },
            dedup_key=None,
        )


def _without_client(body: dict[str, Any]) -> dict[str, Any]:
    action = dict((body.get("actions") or [{}])[0])
    value = _value(body)
    value.pop("client", None)
    action["value"] = json.dumps(value)
    return action
