"""The Slack Web API client, and the three-step file upload with rate-limit retries."""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

from bot.settings import Settings

logger = logging.getLogger(__name__)

MAX_UPLOAD_ATTEMPTS = 5
# Used when a 429 to the upload POST names no Retry-After.
DEFAULT_RETRY_AFTER_SECONDS = 1.0


class UploadError(Exception):
    """A file that Slack did not take; the message names the step and the reason."""


def make_web_client(settings: Settings) -> WebClient:
    """Build the bot's client; Web API calls are retried after 429 per Retry-After."""
    return WebClient(
        token=settings.slack_bot_token or None,
        base_url=settings.slack_api_url,
        timeout=30,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=5),
        ],
    )


def upload_file(
    client: WebClient,
    *,
    channel: str,
    thread_ts: str | None,
    filename: str,
    title: str,
    content: bytes,
) -> str:
    """Share `content` in the channel (or thread) as a file; return the file ID.

    This is the flow of slack_sdk's `files_upload_v2`, written out because
    slack_sdk 3.x sends the upload POST with a bare `urlopen`, so its retry
    handlers do not cover a 429 on that step.
    """
    try:
        target = client.files_getUploadURLExternal(
            filename=filename, length=len(content)
        )
    except SlackApiError as error:
        raise UploadError(
            f"files.getUploadURLExternal failed: {_reason(error)}"
        ) from error
    file_id = str(target["file_id"])

    _post_upload(str(target["upload_url"]), content, filename)

    try:
        client.files_completeUploadExternal(
            files=[{"id": file_id, "title": title}],
            channel_id=channel,
            thread_ts=thread_ts,
        )
    except SlackApiError as error:
        raise UploadError(
            f"files.completeUploadExternal failed: {_reason(error)}"
        ) from error
    logger.info("file %s uploaded to %s", file_id, channel)
    return file_id


def _post_upload(url: str, content: bytes, filename: str) -> None:
    for attempt in range(1, MAX_UPLOAD_ATTEMPTS + 1):
        request = urllib.request.Request(url, data=content, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                response.read()
                return
        except urllib.error.HTTPError as error:
            if error.code != 429 or attempt == MAX_UPLOAD_ATTEMPTS:
                raise UploadError(
                    f"the upload of {filename} failed with HTTP {error.code}"
                ) from error
            delay = _retry_after(error.headers.get("Retry-After"))
            logger.warning(
                "the upload of %s was rate limited; retrying in %.1f s", filename, delay
            )
            time.sleep(delay)
        except (urllib.error.URLError, TimeoutError) as error:
            raise UploadError(f"the upload of {filename} failed: {error}") from error


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else DEFAULT_RETRY_AFTER_SECONDS
    except ValueError:
        return DEFAULT_RETRY_AFTER_SECONDS


def _reason(error: SlackApiError) -> str:
    return str(error.response.get("error", "unknown error"))
