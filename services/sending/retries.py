"""Send one claimed task, retrying rate limits and server errors with backoff."""

from __future__ import annotations

import logging
import random

from sqlalchemy.orm import Session, sessionmaker

from services.db import transaction
from services.errors import DeliveryError
from services.models import ClientTask, TaskState, utcnow
from services.sending.claims import _Attempt, _Claim, _Delivery, _update_task

logger = logging.getLogger(__name__)


BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0
# A rate limit that requests a longer wait fails the task instead of holding
# a worker, and a person sends it again later.
MAX_RETRY_AFTER_SECONDS = 120.0


def _send_with_retries(delivery: _Delivery, claim: _Claim) -> _Attempt:
    """Send, retrying rate limits and server errors with backoff and jitter."""
    last_error: DeliveryError | None = None
    for attempt in range(1, delivery.max_attempts + 1):
        if delivery.halt.stopped:
            return _Attempt(
                TaskState.READY, reason=delivery.halt.reason, requested=attempt > 1
            )
        try:
            message_id = delivery.backend.send(claim.message, delivery.sender)
        except DeliveryError as error:
            if error.unknown:
                return _Attempt(TaskState.UNKNOWN, reason=error.reason)
            if error.account:
                # SendGrid refused the key or the sender, not this message, so
                # the task stays ready for the run after the setting is fixed.
                delivery.halt.stop(error.reason)
                return _Attempt(TaskState.READY, reason=error.reason)
            if not error.retryable:
                return _Attempt(TaskState.FAILED, reason=error.reason)
            last_error = error
        except Exception as error:
            logger.exception("Sending client task %s raised", claim.task_id)
            return _Attempt(
                TaskState.UNKNOWN,
                reason=f"sending stopped on an unexpected error: {error!r}",
            )
        else:
            return _Attempt(TaskState.SENT, message_id=message_id)

        if attempt == delivery.max_attempts:
            break
        delay = _backoff(attempt, last_error.retry_after)
        if delay > MAX_RETRY_AFTER_SECONDS:
            return _Attempt(
                TaskState.FAILED,
                reason=f"{last_error.reason}; SendGrid asked to wait {delay:.0f} s, "
                "so the e-mail was not sent; send it again later",
            )
        logger.warning(
            "Retrying client task %s in %.1f s after attempt %d of %d: %s",
            claim.task_id,
            delay,
            attempt,
            delivery.max_attempts,
            last_error.reason,
        )
        delivery.sleep(delay)
        if not _renew_claim(delivery.factory, claim):
            return _Attempt(
                TaskState.FAILED,
                reason=f"{last_error.reason}; retrying stopped because the claim "
                "expired and the task was marked unknown",
            )

    assert last_error is not None
    return _Attempt(
        TaskState.FAILED,
        reason=f"SendGrid did not accept the e-mail in {delivery.max_attempts} "
        f"attempts; the last response was: {last_error.reason}",
    )


def _backoff(attempt: int, retry_after: float | None) -> float:
    """Wait exponentially longer after each attempt, never less than asked."""
    backoff = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2.0 ** (attempt - 1))
    jitter = random.uniform(0, backoff / 2)  # noqa: S311 (not for security)
    return max(retry_after or 0.0, backoff) + jitter


def _renew_claim(factory: sessionmaker[Session], claim: _Claim) -> bool:
    """Move the claim's lease forward; False when the claim was taken away."""
    with transaction(factory) as session:
        return _update_task(
            session,
            claim.task_id,
            [
                ClientTask.state == TaskState.SENDING,
                ClientTask.claim_token == claim.token,
            ],
            claimed_at=utcnow(),
        )
