"""Modal submissions: a new monthly task, and a client skipped with a reason."""

from __future__ import annotations

import json
import logging
from datetime import date
from typing import Any

from slack_bolt import Ack, App

from bot import slack_blocks
from bot.slack_runtime import SlackRuntime
from services.errors import InvoiceListsError
from services.periods import Period
from services.runs import create_run, skip_task

logger = logging.getLogger(__name__)


def _input(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    value: dict[str, Any] = view["state"]["values"][block_id]["value"]
    return value


def _new_run_fields(view: dict[str, Any]) -> tuple[Period, date, date] | str:
    """Read the month and dates of the new-month form, or name the bad field."""
    try:
        period = Period.parse(str(_input(view, "period")["selected_option"]["value"]))
    except (KeyError, TypeError, InvoiceListsError):
        return "period"
    dates = []
    for block_id in ("planned_start", "planned_end"):
        try:
            dates.append(
                date.fromisoformat(str(_input(view, block_id)["selected_date"]))
            )
        except (KeyError, TypeError, ValueError):
            return block_id
    return period, dates[0], dates[1]


def _skip_fields(view: dict[str, Any]) -> tuple[Period, str, str] | None:
    """Read the month, client and reason of the skip form, or None."""
    try:
        task = json.loads(view.get("private_metadata") or "{}")
        period = Period.parse(str(task["period"]))
        client = str(task["client"])
    except (ValueError, KeyError, TypeError, InvoiceListsError):
        return None
    try:
        reason = str(_input(view, "reason").get("value") or "")
    except (KeyError, TypeError, AttributeError):
        # The reason is optional, so a form without one skips without it.
        reason = ""
    return period, client, reason


def register(app: App, runtime: SlackRuntime) -> None:
    @app.view(slack_blocks.NEW_RUN_VIEW)
    def new_run(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        fields = _new_run_fields(view)
        if isinstance(fields, str):
            logger.warning("new-month form with an unreadable %s field", fields)
            ack(response_action="errors", errors={fields: "Choose a value here."})
            return
        period, start, end = fields
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
        except (InvoiceListsError, ValueError) as error:
            # ValueError: a month whose next month is past year 9999.
            runtime.messages.tell(user, f"Could not create the monthly task: {error}")
            return
        runtime.messages.post_run(
            period,
            note=f"Created by <@{user}>.",
            on_failure=lambda text: runtime.messages.tell(user, text),
        )

    @app.view(slack_blocks.SKIP_VIEW)
    def skip(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        ack()
        user = str(body["user"]["id"])
        fields = _skip_fields(view)
        if fields is None:
            logger.warning("skip form from %s with unreadable metadata", user)
            runtime.messages.tell(
                user,
                "This form cannot be used: it does not say which client to skip. "
                "Click Skip on the client's message again.",
            )
            return
        period, code, reason = fields
        try:
            skipped = skip_task(
                runtime.context.factory,
                period,
                code,
                actor=f"slack:{user}",
                reason=reason or f"skipped in Slack by {user}",
            )
        except InvoiceListsError as error:
            runtime.messages.tell(user, f"Could not skip {code}: {error}")
            return
        messages = runtime.messages
        messages.refresh_task_by_id(skipped.id)
        messages.post_run(period)
