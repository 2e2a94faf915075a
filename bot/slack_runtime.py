"""What the Slack listeners share: the context, the Web API client and the queue."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from slack_sdk import WebClient

from bot.context import AppContext
from bot.finance import FinanceTeam
from bot.slack_messages import SlackMessages
from services import jobs


def _no_wake() -> None:
    return None


@dataclass
class SlackRuntime:
    context: AppContext
    client: WebClient
    finance: FinanceTeam
    # Called after a job is queued, so that a worker thread in this process
    # starts it at once instead of at its next poll.
    wake_worker: Callable[[], None] = field(default=_no_wake)

    @property
    def messages(self) -> SlackMessages:
        return SlackMessages(
            self.context.factory,
            self.client,
            channel=self.context.settings.slack_channel,
        )

    def enqueue(
        self, kind: str, payload: Mapping[str, Any], *, dedup_key: str | None
    ) -> jobs.Enqueued:
        queued = jobs.enqueue(self.context.factory, kind, payload, dedup_key=dedup_key)
        self.wake_worker()
        return queued
