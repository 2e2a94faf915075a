"""The `/invoices` slash command and its subcommands.

Every subcommand is acknowledged before it touches the database; its answer
goes to the response_url, visible only to the person who typed it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot import slack_blocks, slack_jobs
from bot.slack_runtime import SlackRuntime
from handlers.slack.command_text import subcommand_of
from services import clients
from services.errors import InvoiceListsError
from services.models import RunState, utcnow
from services.periods import Period
from services.run_generation import ensure_month_ended
from services.runs import current_period, find_run, recent_runs, run_status

logger = logging.getLogger(__name__)

MONTH = re.compile(r"^\d{4}-\d{2}$")


@dataclass(frozen=True)
class CommandRequest:
    """One `/invoices` request: who typed it, the words after the subcommand."""

    runtime: SlackRuntime
    user: str
    channel: str
    trigger_id: str
    words: list[str]
    respond: Respond
    client: WebClient

    @property
    def actor(self) -> str:
        return f"slack:{self.user}"

    def reply(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        self.respond(text=text, blocks=blocks, response_type="ephemeral")


Subcommand = Callable[[CommandRequest], None]


def register(app: App, runtime: SlackRuntime) -> None:
    @app.command("/invoices")
    def invoices(
        ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient
    ) -> None:
        ack()
        name, words = subcommand_of(str(command.get("text") or ""))
        handler = SUBCOMMANDS.get(name, show_help)
        request = CommandRequest(
            runtime=runtime,
            user=str(command.get("user_id", "")),
            channel=str(command.get("channel_id", "")),
            trigger_id=str(command.get("trigger_id", "")),
            words=words,
            respond=respond,
            client=client,
        )
        try:
            handler(request)
        except InvoiceListsError as error:
            subject = FAILURE_SUBJECTS.get(handler, name)
            request.reply(f"Could not {subject}: {error}")


def _month_and_rest(request: CommandRequest) -> tuple[Period, list[str]]:
    """Take a trailing YYYY-MM off the words, else the oldest month not complete."""
    words = list(request.words)
    if words and MONTH.match(words[-1]):
        return Period.parse(words.pop()), words
    return current_period(request.runtime.context.factory), words


def _client_code(request: CommandRequest, query: str) -> str:
    if not query:
        raise InvoiceListsError("name the client by its code or part of its name")
    with request.runtime.context.factory() as session:
        return clients.find_client(session, query).code


def show_help(request: CommandRequest) -> None:
    request.reply(slack_blocks.HELP_TEXT)


def show_status(request: CommandRequest) -> None:
    period, _rest = _month_and_rest(request)
    status = run_status(request.runtime.context.factory, period)
    request.reply(
        slack_blocks.run_fallback_text(status.run),
        blocks=slack_blocks.status_blocks(status),
    )


def open_new_run(request: CommandRequest) -> None:
    settings = request.runtime.context.settings
    today = utcnow().astimezone(settings.zone).date()
    period = Period.previous(datetime.now(settings.zone), settings.zone)
    start = max(today, period.end)
    view = slack_blocks.new_run_view(period, start, start + timedelta(days=7))
    request.client.views_open(trigger_id=request.trigger_id, view=view)


def generate(request: CommandRequest) -> None:
    period, _rest = _month_and_rest(request)
    # Fail here, where the person can read it, not later inside the job.
    find_run(request.runtime.context.factory, period)
    ensure_month_ended(
        period, utcnow().astimezone(request.runtime.context.settings.zone).date()
    )
    queued = request.runtime.enqueue(
        slack_jobs.GENERATE,
        {"period": str(period), "actor": request.actor, "user": request.user},
        dedup_key=slack_jobs.generate_key(str(period)),
    )
    verb = "Generating" if queued.created else "Already generating"
    request.reply(f"{verb} {period}; progress shows on its message.")


def send(request: CommandRequest) -> None:
    """Show the month's summary and Send all, whose confirmation guards sending."""
    period, _rest = _month_and_rest(request)
    status = run_status(request.runtime.context.factory, period)
    request.reply(
        slack_blocks.send_prompt_text(status.run),
        blocks=slack_blocks.send_prompt_blocks(status),
    )


def preview(request: CommandRequest) -> None:
    period, rest = _month_and_rest(request)
    code = _client_code(request, " ".join(rest))
    request.runtime.enqueue(
        slack_jobs.PREVIEW,
        {
            "period": str(period),
            "client": code,
            "user": request.user,
            "channel": request.channel,
        },
        dedup_key=None,
    )
    request.reply(f"Looking up the PDF of {code} for {period}…")


def set_email(request: CommandRequest) -> None:
    if len(request.words) < 2:
        raise InvoiceListsError("use `/invoices email CLIENT ADDRESS[;ADDRESS...]`")
    code = _client_code(request, " ".join(request.words[:-1]))
    factory = request.runtime.context.factory
    client = clients.set_client_emails(
        factory, code, request.words[-1], actor=request.actor
    )
    request.reply(f"{client.code} now gets statements at {request.words[-1]}.")
    _redraw_client(request, client.code)


def exclude(request: CommandRequest) -> None:
    code = _client_code(request, request.words[0] if request.words else "")
    reason = " ".join(request.words[1:])
    client = clients.exclude_client(
        request.runtime.context.factory, code, reason=reason, actor=request.actor
    )
    request.reply(f"{client.code} is excluded: {client.exclude_reason}")


def include(request: CommandRequest) -> None:
    code = _client_code(request, " ".join(request.words))
    client = clients.include_client(
        request.runtime.context.factory, code, actor=request.actor
    )
    request.reply(f"{client.code} is included again; Generate adds its task.")


def _redraw_client(request: CommandRequest, code: str) -> None:
    """Redraw the client's messages in every recent month not yet complete."""
    factory = request.runtime.context.factory
    messages = request.runtime.messages
    for run in recent_runs(factory):
        if run.state is RunState.COMPLETE or not run.slack_ts:
            continue
        status = run_status(factory, Period.parse(run.period))
        for task in status.tasks:
            if task.client_code == code:
                messages.refresh_task(task, channel=status.run.slack_channel)
        messages.post_run(Period.parse(run.period))


SUBCOMMANDS: dict[str, Subcommand] = {
    "help": show_help,
    "status": show_status,
    "new": open_new_run,
    "generate": generate,
    "send": send,
    "preview": preview,
    "email": set_email,
    "exclude": exclude,
    "include": include,
}

# The object of "Could not ..." in the reply when a subcommand fails.
FAILURE_SUBJECTS: dict[Subcommand, str] = {
    show_status: "show the status",
    generate: "start generating",
    send: "prepare the sending",
    preview: "preview the PDF",
    set_email: "set the e-mail address",
    exclude: "exclude the client",
    include: "include the client",
}
