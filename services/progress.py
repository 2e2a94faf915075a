"""The progress callback that long services report through."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Called after each unit of work with the count done, the total and a label."""

    def __call__(self, done: int, total: int, label: str) -> None: ...


def no_progress(done: int, total: int, label: str) -> None:
    """Ignore progress, for callers that show none."""
