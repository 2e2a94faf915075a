"""Posting and redrawing the month's message and each client's message in Slack.

Each step reads the database first, so running it again after a restart
repeats nothing: a client with `slack_ts` already has its message and one with
`slack_file_id` already has its PDF in the thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session, sessionmaker

from bot import slack_blocks, slack_store
from bot.slack_client import UploadError, upload_file
from services.errors import NotFoundError
from services.leases import LeaseLock, new_holder_id
from services.periods import Period
from services.runs import RunStatus, run_status
from services.views import TaskView

logger = logging.getLogger(__name__)

# Slack allows about one chat.update a second per message.
UPDATE_INTERVAL_SECONDS = 1.0
# Longer than an upload with its rate-limit retries may take. A process that
# dies while uploading keeps that client's PDF from uploading for this long.
UPLOAD_LEASE = timedelta(minutes=10)
UPLOAD_WAIT_SECONDS = 60.0
UPLOAD_POLL_SECONDS = 0.5


class Throttle:
    """Lets an action through at most once per `interval` seconds."""

    def __init__(self, interval: float = UPDATE_INTERVAL_SECONDS) -> None:
        self.interval = interval
        self._last: float | None = None

    def due(self) -> bool:
        now = time.monotonic()
        if self._last is not None and now - self._last < self.interval:
            return False
        self._last = now
        return True


class SlackMessages:
    """The finance channel's messages for each month, drawn from the database."""

    def __init__(
        self, factory: sessionmaker[Session], client: WebClient, *, channel: str
    ) -> None:
        self.factory = factory
        self.client = client
        self.channel = channel

    def status(self, period: Period) -> RunStatus:
        return run_status(self.factory, period)

    def post_run(
        self,
        period: Period,
        *,
        note: str = "",
        on_failure: Callable[[str], None] | None = None,
    ) -> RunStatus:
        """Post the month's message, or redraw it when it is already posted.

        When Slack rejects the message, `on_failure` gets a sentence with the
        reason and the fix, for the person who requested the action.
        """
        status = self.status(period)
        run = status.run
        blocks = slack_blocks.run_blocks(status, note=note)
        text = slack_blocks.run_fallback_text(run)
        try:
            if run.slack_ts:
                self.client.chat_update(
                    channel=run.slack_channel, ts=run.slack_ts, blocks=blocks, text=text
                )
                return status
            response = self.client.chat_postMessage(
                channel=self.channel, blocks=blocks, text=text
            )
        except SlackApiError as error:
            reason = _reason(error)
            logger.error("could not post the message of %s: %s", period, reason)
            if on_failure is not None:
                on_failure(
                    post_failure_text(period, run.slack_channel or self.channel, reason)
                )
            return status
        channel, ts = str(response["channel"]), str(response["ts"])
        slack_store.set_run_message(self.factory, str(period), channel=channel, ts=ts)
        logger.info("posted the message of %s as %s", period, ts)
        return self.status(period)

    def tell(self, user: str, text: str, *, channel: str = "") -> None:
        """Reply privately to `user`: in the channel, or else in a direct message.

        The direct message reaches the user when the app cannot post in the
        channel at all, as when it was never invited there.
        """
        if not user:
            return
        try:
            self.client.chat_postEphemeral(
                channel=channel or self.channel, user=user, text=text
            )
            return
        except SlackApiError as error:
            logger.warning(
                "could not reply to %s in the channel: %s", user, _reason(error)
            )
        try:
            self.client.chat_postMessage(channel=user, text=text)
        except SlackApiError as error:
            logger.warning(
                "could not send %s a direct message: %s", user, _reason(error)
            )

    def post_text(self, text: str, *, thread_ts: str | None = None) -> bool:
        """Post to the channel; return whether Slack took the message."""
        try:
            self.client.chat_postMessage(
                channel=self.channel, text=text, thread_ts=thread_ts
            )
        except SlackApiError as error:
            logger.error("could not post to %s: %s", self.channel, _reason(error))
            return False
        return True

    def post_in_thread(
        self, status: RunStatus, text: str, *, broadcast: bool = False
    ) -> bool:
        """Reply in the month's thread; with `broadcast`, show it in the channel too.

        Returns whether Slack took the message.
        """
        run = status.run
        if not run.slack_ts:
            return self.post_text(text)
        try:
            self.client.chat_postMessage(
                channel=run.slack_channel,
                thread_ts=run.slack_ts,
                text=text,
                blocks=[slack_blocks.section(text)],
                reply_broadcast=broadcast,
            )
        except SlackApiError as error:
            logger.error(
                "could not post in the thread of %s: %s", run.period, _reason(error)
            )
            return False
        return True

    def post_tasks(
        self,
        status: RunStatus,
        *,
        on_each: Callable[[int, int], None] | None = None,
    ) -> int:
        """Post a message in the thread for every client task that has none."""
        run = status.run
        if not run.slack_ts:
            return 0
        todo = [task for task in status.tasks if not task.slack_ts]
        for done, task in enumerate(todo, start=1):
            try:
                response = self.client.chat_postMessage(
                    channel=run.slack_channel,
                    thread_ts=run.slack_ts,
                    blocks=slack_blocks.task_blocks(task),
                    text=slack_blocks.task_fallback_text(task),
                )
            except SlackApiError as error:
                logger.warning(
                    "could not post the message of client %s: %s",
                    task.client_code,
                    _reason(error),
                )
                continue
            slack_store.set_task_message(self.factory, task.id, str(response["ts"]))
            if on_each is not None:
                on_each(done, len(todo))
        return len(todo)

    def upload_pdfs(
        self,
        status: RunStatus,
        *,
        on_each: Callable[[int, int], None] | None = None,
    ) -> list[str]:
        """Upload the PDF of every client task that has none in the thread yet.

        Returns the clients whose PDF could not be uploaded; the others go on.
        """
        run = status.run
        if not run.slack_ts:
            return []
        todo = [task for task in status.tasks if not task.slack_file_id]
        failed: list[str] = []
        for done, task in enumerate(todo, start=1):
            if not self.upload_pdf(
                task, channel=run.slack_channel, thread=run.slack_ts
            ):
                failed.append(task.client_code)
            if on_each is not None:
                on_each(done, len(todo))
        return failed

    def upload_pdf(self, task: TaskView, *, channel: str, thread: str) -> bool:
        """Upload the task's PDF to the thread once, from whichever process is first.

        A lease per task lets one process upload while another waits for the
        file id it stores, so a Preview during Generate, or in a second worker,
        does not put the PDF in the thread twice. Returns whether the PDF is
        in the thread.
        """
        lease = LeaseLock(
            self.factory,
            f"slack-upload:{task.id}",
            holder=new_holder_id(),
            ttl=UPLOAD_LEASE,
        )
        if not lease.try_acquire():
            return self._wait_for_upload(task)
        try:
            if slack_store.task_file_id(self.factory, task.id):
                return True
            return self._upload(task, channel=channel, thread=thread)
        finally:
            lease.release()

    def _wait_for_upload(self, task: TaskView) -> bool:
        deadline = time.monotonic() + UPLOAD_WAIT_SECONDS
        while time.monotonic() < deadline:
            if slack_store.task_file_id(self.factory, task.id):
                return True
            time.sleep(UPLOAD_POLL_SECONDS)
        logger.warning(
            "the PDF of client %s was still being uploaded by another process "
            "after %.0f s",
            task.client_code,
            UPLOAD_WAIT_SECONDS,
        )
        return False

    def _upload(self, task: TaskView, *, channel: str, thread: str) -> bool:
        filename, content = slack_store.task_pdf(self.factory, task.id)
        if not content:
            logger.warning("client %s has no PDF to upload", task.client_code)
            return False
        try:
            file_id = upload_file(
                self.client,
                channel=channel,
                thread_ts=thread,
                filename=filename or f"{task.client_code}.pdf",
                title=f"{task.client_name} {task.period}",
                content=content,
            )
        except UploadError as error:
            logger.warning(
                "could not upload the PDF of client %s: %s", task.client_code, error
            )
            return False
        slack_store.set_task_file(self.factory, task.id, file_id)
        return True

    def refresh_task(self, task: TaskView, *, channel: str) -> None:
        """Redraw one client's message in the thread, when it has one."""
        if not task.slack_ts:
            return
        try:
            self.client.chat_update(
                channel=channel or self.channel,
                ts=task.slack_ts,
                blocks=slack_blocks.task_blocks(task),
                text=slack_blocks.task_fallback_text(task),
            )
        except SlackApiError as error:
            logger.warning(
                "could not redraw the message of client %s: %s",
                task.client_code,
                _reason(error),
            )

    def refresh_task_by_id(self, task_id: int) -> None:
        period = slack_store.task_period(self.factory, task_id)
        if period is None:
            raise NotFoundError(f"client task {task_id} does not exist")
        status = self.status(Period.parse(period))
        for task in status.tasks:
            if task.id == task_id:
                self.refresh_task(task, channel=status.run.slack_channel)


# The fix for each error Slack returns when it rejects a post in the channel.
_POST_REMEDIES = {
    "not_in_channel": "the app is not a member of {channel}; invite it there "
    "with `/invite @invoices`",
    "channel_not_found": "the channel {channel} does not exist or the app cannot "
    "see it; check SLACK_CHANNEL, and invite the app if the channel is private",
    "is_archived": "the channel {channel} is archived; unarchive it, or set "
    "SLACK_CHANNEL to another channel",
}


def post_failure_text(period: Period, channel: str, reason: str) -> str:
    """Explain a rejected month's message to the person who requested it."""
    mention = f"<#{channel}>" if channel.startswith(("C", "G")) else channel
    remedy = _POST_REMEDIES.get(reason, "Slack returned `{reason}`").format(
        channel=mention, reason=reason
    )
    return (
        f"The message of {period} could not be posted: {remedy}. The monthly "
        f"task itself is saved; its message is posted at the next "
        f"`/invoices generate {period}` or `/invoices send {period}`."
    )


def _reason(error: SlackApiError) -> str:
    return str(error.response.get("error", "unknown error"))
