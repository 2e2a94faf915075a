"""The long Slack work the worker carries out: generation, sending and previews.

Each body can run again after a restart without repeating what was done:
generation creates tasks only for clients without one, messages and uploads
skip clients that have them, and sending relies on the claim in
services.sending that lets each e-mail out once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import slack_blocks
from bot.context import AppContext
from bot.slack_messages import SlackMessages, Throttle
from services import jobs
from services.errors import InvoiceListsError
from services.mail import make_backend, sender_from_settings
from services.periods import Period
from services.runs import RunStatus, generate_run
from services.sending import SendResult, send_run

logger = logging.getLogger(__name__)

GENERATE = "slack.generate"
SEND = "slack.send"
PREVIEW = "slack.preview"


def generate_key(period: str) -> str:
    return f"{GENERATE}:{period}"


def send_key(period: str, client_code: str | None) -> str:
    return f"{SEND}:{period}:{client_code or '*'}"


class SlackJobs:
    """The job bodies, registered with a `services.jobs.Worker` by `bodies()`."""

    def __init__(self, context: AppContext, client: WebClient) -> None:
        self.context = context
        self.client = client
        self.messages = SlackMessages(
            context.factory, client, channel=context.settings.slack_channel
        )

    def bodies(self) -> dict[str, jobs.JobBody]:
        return {GENERATE: self.generate, SEND: self.send, PREVIEW: self.preview}

    def generate(self, job: jobs.JobView, stopping: Callable[[], bool]) -> None:
        payload = job.payload
        period = Period.parse(payload["period"])
        messages = self.messages
        try:
            messages.post_run(
                period,
                note="Generating the client tasks…",
                on_failure=lambda text: self._tell(payload, text),
            )
        except InvoiceListsError as error:
            logger.warning("Could not generate %s: %s", period, error)
            self._tell(payload, f"Could not generate {period}: {error}")
            return
        progress = _progress(messages, period, "Generated", stopping)

        settings = self.context.settings
        try:
            report = generate_run(
                self.context.factory,
                period,
                company=self.context.company,
                actor=payload["actor"],
                sender_name=settings.mail_from_name,
                progress=progress,
                today=datetime.now(settings.zone).date(),
            )
        except InvoiceListsError as error:
            logger.warning("Could not generate %s: %s", period, error)
            note = f"Could not generate: {error}"
            messages.post_run(
                period, note=note, on_failure=lambda _: self._tell(payload, note)
            )
            return

        status = messages.status(period)
        for task in report.regenerated:
            messages.refresh_task(task, channel=status.run.slack_channel)
        messages.post_tasks(
            status, on_each=_progress(messages, period, "Posted", stopping)
        )
        status = messages.status(period)
        failed = messages.upload_pdfs(
            status, on_each=_progress(messages, period, "Uploaded", stopping)
        )

        note = report.summary_line()
        if failed:
            codes = ", ".join(slack_blocks.cut_list(failed))
            note += f" The PDF of {len(failed)} clients could not be uploaded: {codes}."
        # Without the month's message, the requester gets the summary privately.
        messages.post_run(
            period, note=note, on_failure=lambda _: self._tell(payload, note)
        )

    def send(self, job: jobs.JobView, stopping: Callable[[], bool]) -> None:
        payload = job.payload
        period = Period.parse(payload["period"])
        client_code: str | None = payload.get("client_code")
        messages = self.messages
        try:
            before = messages.status(period)
        except InvoiceListsError as error:
            logger.warning("Could not send %s: %s", period, error)
            self._tell(payload, f"Could not send {period}: {error}")
            return
        seen = {task.id: task for task in before.tasks}
        messages.post_run(
            period, note="Sending…", on_failure=lambda text: self._tell(payload, text)
        )

        throttle = Throttle()

        def progress(done: int, total: int, label: str) -> None:
            if throttle.due():
                self._redraw_changed(period, seen)
                messages.post_run(period, note=f"Sending: {done} of {total}")

        settings = self.context.settings
        backend = make_backend(settings, pooled=True)
        try:
            report = send_run(
                self.context.factory,
                period,
                backend=backend,
                sender=sender_from_settings(settings),
                actor=payload["actor"],
                client_code=client_code,
                force=bool(payload.get("force")),
                progress=progress,
                max_attempts=settings.sendgrid_max_attempts,
            )
        except InvoiceListsError as error:
            self._tell(payload, f"Could not send: {error}")
            self._redraw_changed(period, seen)
            messages.post_run(period)
            return
        finally:
            backend.close()

        status = self._redraw_changed(period, seen)
        problems = [
            f"{outcome.client_code}: {outcome.result.value}, {outcome.reason}"
            for outcome in report.outcomes
            if outcome.result in {SendResult.FAILED, SendResult.UNKNOWN}
        ]
        if report.stop_reason:
            problems.insert(
                0,
                f"Sending stopped, and the clients not sent are still ready: "
                f"{report.stop_reason}",
            )
        text = slack_blocks.send_report_text(
            str(period), report.summary_line(), problems
        )
        if not messages.post_in_thread(status, text):
            self._tell(payload, text)
        messages.post_run(period, note=report.summary_line())

    def _redraw_changed(self, period: Period, seen: dict[int, Any]) -> RunStatus:
        """Redraw each client message whose task changed since `seen`, and update it."""
        status = self.messages.status(period)
        for task in status.tasks:
            if seen.get(task.id) != task:
                self.messages.refresh_task(task, channel=status.run.slack_channel)
                seen[task.id] = task
        return status

    def preview(self, job: jobs.JobView, stopping: Callable[[], bool]) -> None:
        """Reply privately with a link to the client's message, uploading a missing PDF.

        The PDF goes to the month's thread once, because a later preview finds
        `slack_file_id` set and only links the message.
        """
        payload = job.payload
        period = Period.parse(payload["period"])
        code = str(payload["client"])
        try:
            status = self.messages.status(period)
        except InvoiceListsError as error:
            self._tell(payload, f"Could not preview {code}: {error}")
            return
        task = next((item for item in status.tasks if item.client_code == code), None)
        if task is None:
            self._tell(payload, slack_blocks.no_task_text(code, str(period)))
            return
        run = status.run
        if not run.slack_ts:
            self._tell(
                payload,
                f"{period} has no message in the channel yet, so the PDF of "
                f"{code} has nowhere to go. Generate the month first.",
            )
            return

        if not task.slack_file_id:
            uploaded = self.messages.upload_pdf(
                task, channel=run.slack_channel, thread=run.slack_ts
            )
            if not uploaded:
                self._tell(
                    payload,
                    f"The PDF of {code} could not be uploaded; try Preview again "
                    "in a minute.",
                )
                return
        link = self._permalink(run.slack_channel, task.slack_ts or run.slack_ts)
        self._tell(payload, slack_blocks.preview_text(task, link))

    def _permalink(self, channel: str, ts: str) -> str:
        try:
            response = self.client.chat_getPermalink(channel=channel, message_ts=ts)
        except SlackApiError:
            return ""
        return str(response.get("permalink") or "")

    def _tell(self, payload: dict[str, Any], text: str) -> None:
        """Reply privately to the person who asked for the job."""
        user, channel = payload.get("user"), payload.get("channel")
        self.messages.tell(str(user or ""), text, channel=str(channel or ""))


def _progress(
    messages: SlackMessages, period: Period, verb: str, stopping: Callable[[], bool]
) -> Callable[..., None]:
    """Show `verb done of total` on the month's message at most once a second."""
    throttle = Throttle()

    def report(done: int, total: int, label: str = "") -> None:
        if stopping():
            raise jobs.WorkerStopping
        if throttle.due() and done < total:
            messages.post_run(period, note=f"{verb} {done} of {total} clients…")

    return report
