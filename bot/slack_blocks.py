"""Block Kit for the month's message, each client's message, status and modals.

Every builder keeps within Slack's limits for any number of clients: the
month's message only summarises, lists are cut to `LIST_LIMIT` items with
"and N more", and long names are shortened.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from services.delivery import PROBLEM_EVENTS
from services.models import RunState, TaskState
from services.periods import Period
from services.runs import ExcludedClient, RunStatus
from services.views import RunView, TaskView

Block = dict[str, Any]

LIST_LIMIT = 10
MAX_TEXT = 3000
MAX_NAME = 150

# Action IDs of buttons, and the callback IDs of modals.
GENERATE = "run_generate"
SEND_ALL = "run_send_all"
SEND = "task_send"
RETRY = "task_retry"
SEND_AGAIN = "task_send_again"
SKIP = "task_skip"
PREVIEW = "task_preview"
NEW_RUN_VIEW = "new_run"
SKIP_VIEW = "skip_task"

STATE_LABELS = {
    TaskState.READY: "ready to send",
    TaskState.MISSING_EMAIL: "missing e-mail",
    TaskState.STALE: "stale",
    TaskState.SENDING: "sending",
    TaskState.SENT: "sent",
    TaskState.FAILED: "failed",
    TaskState.UNKNOWN: "unknown",
    TaskState.SKIPPED: "skipped",
}


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(text: str) -> str:
    """Escape the three characters that Slack's mrkdwn treats as control."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def money(amount: str, currency: str) -> str:
    return f"{Decimal(amount):,.2f} {currency}"


def totals_text(totals: dict[str, str]) -> str:
    if not totals:
        return "nothing"
    return ", ".join(money(totals[currency], currency) for currency in sorted(totals))


def cut_list(lines: Sequence[str], limit: int = LIST_LIMIT) -> list[str]:
    """Keep the first `limit` lines and say how many more there are."""
    if len(lines) <= limit:
        return list(lines)
    return [*lines[:limit], f"…and {len(lines) - limit} more"]


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": shorten(text, 3000)}}


def context(text: str) -> Block:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": shorten(text, MAX_TEXT)}],
    }


def button(
    text: str,
    action_id: str,
    value: dict[str, Any],
    *,
    style: str | None = None,
    confirm: Block | None = None,
) -> Block:
    element: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": json.dumps(value, separators=(",", ":")),
    }
    if style:
        element["style"] = style
    if confirm:
        element["confirm"] = confirm
    return element


def confirmation(title: str, text: str, confirm: str) -> Block:
    return {
        "title": {"type": "plain_text", "text": shorten(title, 100)},
        "text": {"type": "mrkdwn", "text": shorten(text, 300)},
        "confirm": {"type": "plain_text", "text": confirm},
        "deny": {"type": "plain_text", "text": "Cancel"},
    }


def period_title(period: str) -> str:
    parsed = Period.parse(period)
    return parsed.start.strftime("%B %Y")


# The month's message.


def run_blocks(status: RunStatus, *, note: str = "") -> list[Block]:
    run = status.run
    blocks: list[Block] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": f"Statements for {period_title(run.period)}",
            },
        },
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Period*\n{run.period}"},
                {"type": "mrkdwn", "text": f"*State*\n{run.state.value}"},
                {"type": "mrkdwn", "text": f"*Planned start*\n{run.planned_start}"},
                {"type": "mrkdwn", "text": f"*Planned end*\n{run.planned_end}"},
            ],
        },
    ]
    if run.state is not RunState.PLANNED or status.tasks:
        blocks.append(section(summary_text(status)))
    if note:
        blocks.append(context(note))
    actions = run_actions(run)
    if actions:
        blocks.append({"type": "actions", "elements": actions})
    return blocks


def summary_text(status: RunStatus) -> str:
    run = status.run
    lines = [
        f"*Clients:* {len(status.tasks)}    *Documents:* {run.documents}",
        f"*Totals:* {totals_text(run.totals)}",
        f"*States:* {counts_text(run.counts)}",
    ]
    missing = [
        f"• {escape(shorten(task.client_name, 80))} ({escape(task.client_code)})"
        for task in status.tasks
        if task.state is TaskState.MISSING_EMAIL
    ]
    if missing:
        lines.append(f"*Missing an address ({len(missing)}):*")
        lines.extend(cut_list(missing))
    if status.excluded:
        lines.append(f"*Excluded ({len(status.excluded)}):*")
        lines.extend(cut_list([excluded_line(item) for item in status.excluded]))
    return "\n".join(lines)


def excluded_line(client: ExcludedClient) -> str:
    name = escape(shorten(client.client_name, 80))
    reason = escape(shorten(client.reason or "excluded", 100))
    return f"• {name} ({escape(client.client_code)}): {reason}"


def counts_text(counts: dict[str, int]) -> str:
    if not counts:
        return "no client tasks yet"
    return ", ".join(
        f"{STATE_LABELS.get(TaskState(state), state)} {count}"
        for state, count in sorted(counts.items())
    )


def run_actions(run: RunView) -> list[Block]:
    if run.state is RunState.COMPLETE:
        return []
    actions = [button("Generate", GENERATE, {"period": run.period}, style="primary")]
    send_all = send_all_button(run)
    if send_all is not None:
        actions.append(send_all)
    return actions


def send_all_button(run: RunView) -> Block | None:
    """Build Send all with its confirmation dialog, or None when no task is ready."""
    ready = run.counts.get(TaskState.READY.value, 0)
    if run.state is RunState.COMPLETE or not ready:
        return None
    return button(
        "Send all",
        SEND_ALL,
        {"period": run.period},
        style="danger",
        confirm=confirmation(
            f"Send {run.period}?",
            f"This e-mails the statement to {ready} clients that are "
            "ready. It cannot be undone.",
            "Send all",
        ),
    )


def send_prompt_blocks(status: RunStatus) -> list[Block]:
    """Build the reply to `/invoices send`: the summary and Send all, if any."""
    blocks = run_blocks(status)
    blocks = [block for block in blocks if block["type"] != "actions"]
    send_all = send_all_button(status.run)
    if send_all is None:
        blocks.append(context(f"No client task of {status.run.period} is ready."))
    else:
        blocks.append({"type": "actions", "elements": [send_all]})
    return blocks


def send_prompt_text(run: RunView) -> str:
    ready = run.counts.get(TaskState.READY.value, 0)
    if send_all_button(run) is None:
        return f"No client task of {run.period} is ready to send."
    return f"{ready} clients of {run.period} are ready; Send all sends them."


def run_fallback_text(run: RunView) -> str:
    return f"Statements for {run.period}: {run.state.value}"


# Each client's message in the month's thread.


def task_blocks(task: TaskView) -> list[Block]:
    name = escape(shorten(task.client_name, MAX_NAME))
    recipients = ", ".join(task.recipients) or "no address"
    lines = [
        f"*{name}* ({escape(task.client_code)})",
        f"To: {escape(shorten(recipients, 500))}",
        f"Documents: {task.documents}    Total: {totals_text(task.totals)}",
    ]
    blocks: list[Block] = [section("\n".join(lines)), context(state_line(task))]
    actions = task_actions(task)
    if actions:
        blocks.append({"type": "actions", "elements": actions})
    return blocks


def state_line(task: TaskView) -> str:
    reason = escape(shorten(task.reason, 1000))
    if task.state is TaskState.SENT and task.delivery_status in PROBLEM_EVENTS:
        detail = escape(shorten(task.delivery_detail, 1000))
        return (
            f":warning: Sent {timestamp(task.sent_at)} but not delivered "
            f"({escape(task.delivery_status)}): {detail or 'no reason given'}. "
            "Check the address, then set another with "
            f"`/invoices email {escape(task.client_code)} ADDRESS`."
        )
    if task.state is TaskState.SENT:
        line = f":white_check_mark: Sent {timestamp(task.sent_at)}"
        if task.delivery_status:
            line += f", delivery: {escape(task.delivery_status)}"
        return line
    if task.state is TaskState.FAILED:
        return f":x: Failed: {reason}"
    if task.state is TaskState.UNKNOWN:
        return (
            f":warning: Unknown: {reason}. Check SendGrid's activity for this "
            "client before sending again."
        )
    if task.state is TaskState.SKIPPED:
        return f":fast_forward: Skipped: {reason}"
    if task.state is TaskState.STALE:
        return (
            f":arrows_counterclockwise: Stale: {reason}. Generate again to rebuild it."
        )
    if task.state is TaskState.MISSING_EMAIL:
        return (
            ":envelope: Missing e-mail: set one with "
            f"`/invoices email {escape(task.client_code)} ADDRESS`"
        )
    if task.state is TaskState.SENDING:
        return ":hourglass_flowing_sand: Sending…"
    return ":large_blue_circle: Ready to send"


def timestamp(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def task_actions(task: TaskView) -> list[Block]:
    value = {"task": task.id, "period": task.period, "client": task.client_code}
    actions: list[Block] = []
    if task.state is TaskState.READY:
        actions.append(button("Send", SEND, value, style="primary"))
    elif task.state is TaskState.FAILED:
        actions.append(button("Retry", RETRY, value, style="primary"))
    elif task.state is TaskState.UNKNOWN:
        actions.append(
            button(
                "Send again",
                SEND_AGAIN,
                value,
                style="danger",
                confirm=confirmation(
                    "Send again?",
                    "The first send may have reached the client. Send only "
                    "after checking that it did not.",
                    "Send again",
                ),
            )
        )
    unsent = {
        TaskState.READY,
        TaskState.FAILED,
        TaskState.UNKNOWN,
        TaskState.MISSING_EMAIL,
        TaskState.STALE,
    }
    if task.state in unsent:
        actions.append(button("Skip", SKIP, value))
    actions.append(button("Preview", PREVIEW, value))
    return actions


def task_fallback_text(task: TaskView) -> str:
    label = STATE_LABELS.get(task.state, task.state.value)
    return f"{shorten(task.client_name, 200)} ({task.client_code}): {label}"


# Status, help and the send report.


def status_blocks(status: RunStatus) -> list[Block]:
    run = status.run
    blocks = run_blocks(status)[:-1] if run_actions(run) else run_blocks(status)
    task_lines = [
        f"• {escape(shorten(task.client_name, 60))} ({escape(task.client_code)}): "
        f"{STATE_LABELS.get(task.state, task.state.value)}"
        for task in status.tasks
    ]
    if task_lines:
        blocks.append(
            section("*Client tasks:*\n" + "\n".join(cut_list(task_lines, 20)))
        )
    action_lines = [
        f"• {item['at'][:16].replace('T', ' ')} {escape(item['actor'])}: "
        f"{escape(item['action'])} {escape(item.get('client_code') or '')}".rstrip()
        for item in status.actions
    ]
    if action_lines:
        blocks.append(
            section("*Recent actions:*\n" + "\n".join(cut_list(action_lines)))
        )
    return blocks


def send_report_text(period: str, summary: str, problems: Sequence[str]) -> str:
    lines = [f"*Sending {period} finished.* {summary}"]
    lines.extend(cut_list([f"• {escape(line)}" for line in problems]))
    return shorten("\n".join(lines), MAX_TEXT)


def preview_text(task: TaskView, link: str) -> str:
    """Say that the client's PDF is in the month's thread, and link its message."""
    name = escape(shorten(task.client_name, MAX_NAME))
    state = STATE_LABELS.get(task.state, task.state.value)
    text = (
        f"The PDF of *{name}* ({escape(task.client_code)}, {state}) is in the "
        "month's thread."
    )
    if link:
        text += f" <{link}|Open the client's message>"
    return text


def no_task_text(client_code: str, period: str) -> str:
    return (
        f"{escape(client_code)} has no client task for {period}, so there is no "
        "PDF to preview. A client gets a task when Generate finds its posted "
        "documents in the month and it is not excluded."
    )


def refusal_text() -> str:
    return (
        "Only the finance team may do this. Ask a member of FINANCE_USERS or "
        "FINANCE_USERGROUP to add you."
    )


HELP_TEXT = """*`/invoices` commands*
• `help`: this text
• `status [MONTH]`: the month's state, clients and recent actions
• `new`: create a monthly task (month and planned dates)
• `generate [MONTH]`: create the client tasks and post them in the thread
• `send [MONTH]`: the month's summary with Send all, which asks to confirm
• `preview CLIENT [MONTH]`: show a client's PDF
• `email CLIENT ADDRESS[;ADDRESS...]`: set a client's e-mail addresses
• `exclude CLIENT [REASON]` and `include CLIENT`: leave a client out or back in
MONTH is YYYY-MM and defaults to the oldest month not complete. CLIENT is a \
client code or part of the name."""


# Modals.


def new_run_view(period: Period, start: date, end: date) -> Block:
    months = [period.shift(offset) for offset in range(-3, 3)]
    options = [
        {"text": {"type": "plain_text", "text": str(month)}, "value": str(month)}
        for month in months
    ]
    initial = options[3]
    return {
        "type": "modal",
        "callback_id": NEW_RUN_VIEW,
        "title": {"type": "plain_text", "text": "New monthly task"},
        "submit": {"type": "plain_text", "text": "Create"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": "period",
                "label": {"type": "plain_text", "text": "Month of the documents"},
                "element": {
                    "type": "static_select",
                    "action_id": "value",
                    "options": options,
                    "initial_option": initial,
                },
            },
            _date_input("planned_start", "Planned start", start),
            _date_input("planned_end", "Planned end", end),
        ],
    }


def _date_input(block_id: str, label: str, initial: date) -> Block:
    return {
        "type": "input",
        "block_id": block_id,
        "label": {"type": "plain_text", "text": label},
        "element": {
            "type": "datepicker",
            "action_id": "value",
            "initial_date": initial.isoformat(),
        },
    }


def skip_view(task_value: dict[str, Any], client_name: str) -> Block:
    return {
        "type": "modal",
        "callback_id": SKIP_VIEW,
        "private_metadata": json.dumps(task_value),
        "title": {"type": "plain_text", "text": "Skip client"},
        "submit": {"type": "plain_text", "text": "Skip"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            section(f"Skip *{escape(shorten(client_name, 200))}* for this month?"),
            {
                "type": "input",
                "block_id": "reason",
                "optional": True,
                "label": {"type": "plain_text", "text": "Reason"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "value",
                    "max_length": 500,
                },
            },
        ],
    }


# The Home tab.


def home_view(recent: Sequence[RunView], current: RunStatus | None) -> Block:
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Statements"}},
    ]
    if current is not None:
        blocks.extend(run_blocks(current))
        blocks.append({"type": "divider"})
    lines = [
        f"• *{run.period}*: {run.state.value}, {run.task_count} clients"
        f" ({counts_text(run.counts)})"
        for run in recent
    ]
    blocks.append(section("*Recent months*\n" + ("\n".join(lines) or "none yet")))
    return {"type": "home", "blocks": blocks}
