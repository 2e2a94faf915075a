"""What services tell the finance channel, independent of how it is delivered."""

from __future__ import annotations

from typing import Protocol

from services.periods import Period


class Notifier(Protocol):
    """The finance channel as the scheduler and the delivery tracking see it."""

    def post_run(self, period: Period, *, note: str = "") -> None:
        """Post the monthly task's message, or refresh it when already posted."""

    def post_text(self, text: str) -> None:
        """Post a plain message to the channel."""

    def post_reminder(self, period: Period, text: str) -> None:
        """Post a reminder about a month, in its thread when it has one."""

    def refresh_task(self, task_id: int) -> None:
        """Redraw one client task's message in the month's thread."""


class SilentNotifier:
    """A notifier for runs without Slack: it tells nobody."""

    def post_run(self, period: Period, *, note: str = "") -> None:
        return None

    def post_text(self, text: str) -> None:
        return None

    def post_reminder(self, period: Period, text: str) -> None:
        return None

    def refresh_task(self, task_id: int) -> None:
        return None
