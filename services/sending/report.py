"""The results of sending: one outcome per task and the report of a month."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from services.models import TaskState


class SendResult(enum.StrEnum):
    """The effect of one call on one task."""

    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"
    SKIPPED = "skipped"
    NOT_SENDABLE = "not_sendable"
    # Not sent because SendGrid rejected the account; the task stays ready.
    STOPPED = "stopped"


@dataclass(frozen=True)
class TaskOutcome:
    task_id: int
    client_code: str
    result: SendResult
    state: TaskState
    message_id: str = ""
    reason: str = ""


@dataclass
class SendReport:
    period: str
    outcomes: list[TaskOutcome] = field(default_factory=list)
    # Why SendGrid stopped the month, when it rejected the API key or sender.
    stop_reason: str = ""

    def count(self, result: SendResult) -> int:
        return sum(1 for outcome in self.outcomes if outcome.result is result)

    @property
    def sent(self) -> int:
        return self.count(SendResult.SENT)

    @property
    def failed(self) -> int:
        return self.count(SendResult.FAILED)

    @property
    def skipped(self) -> int:
        return self.count(SendResult.SKIPPED)

    @property
    def unknown(self) -> int:
        return self.count(SendResult.UNKNOWN)

    @property
    def not_sendable(self) -> int:
        return self.count(SendResult.NOT_SENDABLE)

    @property
    def stopped(self) -> int:
        return self.count(SendResult.STOPPED)

    @property
    def failed_earlier(self) -> int:
        """Count failed tasks left alone because only ready tasks were sent."""
        return sum(
            1
            for outcome in self.outcomes
            if outcome.result is SendResult.NOT_SENDABLE
            and outcome.state is TaskState.FAILED
        )

    @property
    def being_sent(self) -> int:
        """Count tasks left `sending` by another process, running or stopped."""
        return sum(
            1
            for outcome in self.outcomes
            if outcome.result is SendResult.NOT_SENDABLE
            and outcome.state is TaskState.SENDING
        )

    def summary_line(self) -> str:
        # SendResult.SKIPPED counts tasks already sent or skipped before this call.
        line = (
            f"Sent {self.sent}, failed {self.failed}, "
            f"already sent or skipped {self.skipped}, unknown {self.unknown}"
        )
        if self.not_sendable:
            line += f", not sendable {self.not_sendable}"
        if self.stopped:
            line += f", left ready after the stop {self.stopped}"
        return line + "."
