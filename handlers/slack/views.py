"""Modal submissions: a new monthly task, and a client skipped with a reason."""

from __future__ import annotations

import json
import logging
from datetime import date
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot import slack_blocks
from bot.slack_runtime import SlackRuntime
from services.errors import InvoiceListsError
from services.periods import Period
from services.runs import create_run, skip_task

logger = logging.getLogger(__name__)


def _input(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    value: dict[str, Any] = view["state"]["values"][block_id]["value"]
    return value


def register(app: App, runtime: SlackRuntime) -> None:
    @app.view(slack_blocks.NEW_RUN_VIEW)
    def new_run(
        ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient
    ) -> None:
        period = Period.parse(_input(view, "period")["selected_option"]["value"])
        start = date.fromisoformat(_input(view, "planned_start")["selected_date"])
        end = date.fromisoformat(_input(view, "planned_end")["selected_date"])
        if end < start:
            ack(
                response_action="errors",
                errors={"planned_end": "The planned end is before the planned start."},
            )
            return
        ack()

        user = str(body["user"]["id"])
        try:
            create_run(
                runtime.context.factory,
                period,
                planned_start=start,
                planned_end=end,
                actor=f"slack:{user}",
            )
        except InvoiceListsError as error:
            runtime.messages.tell(user, f"Could not create the monthly task: {error}")
            return
        runtime.messages.post_run(
            period,
            note=f"Created by <@{user}>.",
            on_failure=lambda text: runtime.messages.tell(user, text),
        )

    @app.view(slack_blocks.SKIP_VIEW)
    def skip(
        ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient
    ) -> None:
        ack()
        task = json.loads(view.get("private_metadata") or "{}")
        reason = str(_input(view, "reason").get("value") or "")
        user = str(body["user"]["id"])
        period = Period.parse(task["period"])
        try:
            skip_task(
                runtime.context.factory,
                period,
                task["client"],
                actor=f"slack:{user}",
                reason=reason or f"skipped in Slack by {user}",
            )
        except InvoiceListsError as error:
            runtime.messages.tell(user, f"Could not skip {task['client']}: {error}")
            return
        messages = runtime.messages
        messages.refresh_task_by_id(int(task["task"]))
        messages.post_run(period)
