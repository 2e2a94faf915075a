"""Button clicks on the month's message, the clients' messages and the Home tab."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot import slack_blocks, slack_jobs
from bot.slack_runtime import SlackRuntime
from services.periods import InvalidPeriodError, Period

logger = logging.getLogger(__name__)


def _value(body: dict[str, Any]) -> dict[str, Any]:
    """Return the clicked button's value as a dict, or {} when it is not one."""
    actions = body.get("actions")
    action = actions[0] if isinstance(actions, list) and actions else {}
    raw = action.get("value") if isinstance(action, dict) else None
    if not isinstance(raw, str):
        return {}
    try:
        loaded = json.loads(raw or "{}")
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _damage(value: dict[str, Any], *, needs_client: bool) -> str:
    """Say what a button's value lacks, or return "" when it is usable."""
    period = value.get("period")
    try:
        Period.parse(period if isinstance(period, str) else "")
    except InvalidPeriodError:
        return f"no valid month in {period!r}"
    client = value.get("client")
    if needs_client and not (isinstance(client, str) and client):
        return "no client code"
    if client is not None and not isinstance(client, str):
        return f"a client code that is not text: {client!r}"
    return ""


def _who(body: dict[str, Any]) -> tuple[str, str]:
    user = str((body.get("user") or {}).get("id", ""))
    channel = str((body.get("channel") or {}).get("id", ""))
    return user, channel


def register(app: App, runtime: SlackRuntime) -> None:
    def tell(body: dict[str, Any], text: str) -> None:
        user, channel = _who(body)
        runtime.messages.tell(user, text, channel=channel)

    def checked(
        body: dict[str, Any], *, needs_client: bool = False
    ) -> dict[str, Any] | None:
        """Return the clicked button's value, or None after telling the user why not.

        Only a request Slack signed gets here, so a damaged value comes from
        an old message of this app or from a bug. The click is refused with a
        reply instead of an HTTP error.
        """
        value = _value(body)
        damage = _damage(value, needs_client=needs_client)
        if not damage:
            return value
        action = (body.get("actions") or [{}])[0]
        logger.warning(
            "invalid button value on %s (%s); the click was rejected",
            action.get("action_id", "a button"),
            damage,
        )
        tell(
            body,
            "This button cannot be used: it does not say which month or client "
            "it is for. Use the buttons on the month's latest message, or "
            "`/invoices status`.",
        )
        return None

    def queue_send(body: dict[str, Any], *, force: bool, one_client: bool) -> bool:
        """Queue the sending named by the button; False when it is not queued.

        A per-client button (`one_client`) must name its client, so that a
        damaged one never sends the whole month without Send all's confirmation.
        """
        value = checked(body, needs_client=one_client)
        if value is None:
            return False
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
            tell(body, f"{code or value['period']} is already being sent.")
        return queued.created

    @app.action(slack_blocks.GENERATE)
    def generate(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        value = checked(body)
        if value is None:
            return
        period = value["period"]
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
            tell(body, f"{period} is already being generated.")

    # The button is on the month's message and in the private reply to
    # `/invoices send`. Both carry the period in their value, and the send job
    # finds the month's thread in the database, so either message works.
    @app.action(slack_blocks.SEND_ALL)
    def send_all(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        created = queue_send(
            {**body, "actions": [_without_client(body)]}, force=False, one_client=False
        )
        if created and (body.get("container") or {}).get("is_ephemeral"):
            period = _value(body)["period"]
            respond(
                text=f"Sending every ready client of {period}; the report goes "
                "in the month's thread.",
                replace_original=True,
            )

    @app.action(slack_blocks.SEND)
    def send(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        queue_send(body, force=False, one_client=True)

    @app.action(slack_blocks.RETRY)
    def retry(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        queue_send(body, force=False, one_client=True)

    @app.action(slack_blocks.SEND_AGAIN)
    def send_again(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        queue_send(body, force=True, one_client=True)

    @app.action(slack_blocks.SKIP)
    def skip(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        value = checked(body, needs_client=True)
        if value is None:
            return
        client.views_open(
            trigger_id=body["trigger_id"],
            view=slack_blocks.skip_view(value, str(value.get("client", ""))),
        )

    @app.action(slack_blocks.PREVIEW)
    def preview(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        value = checked(body, needs_client=True)
        if value is None:
            return
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
