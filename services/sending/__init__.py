"""Sending client tasks, each at most once whatever happens.

A task is claimed by a conditional UPDATE that is committed before any request
goes out: only the caller whose UPDATE changed the row sends, so a double
click, a Slack retry or a second process finds the task already `sending` or
`sent`. The result is recorded in a new transaction guarded by the claim token.
A claim left behind by a crash expires after a lease and becomes `unknown`,
which is never sent again without a person asking for it.
"""

from services.sending.report import SendReport, SendResult, TaskOutcome
from services.sending.send import (
    DEFAULT_LEASE,
    DEFAULT_WORKERS,
    recover_expired_claims,
    send_run,
    send_task,
)

__all__ = [
    "DEFAULT_LEASE",
    "DEFAULT_WORKERS",
    "SendReport",
    "SendResult",
    "TaskOutcome",
    "recover_expired_claims",
    "send_run",
    "send_task",
]
