"""Send claimed tasks on a thread pool while this thread claims and records."""

from __future__ import annotations

import logging
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from services.models import TaskState
from services.progress import Progress, no_progress
from services.sending.candidates import _Candidate
from services.sending.claims import (
    _Attempt,
    _Claim,
    _claim_batch,
    _Delivery,
    _record_batch,
)
from services.sending.report import SendResult, TaskOutcome
from services.sending.retries import _send_with_retries

logger = logging.getLogger(__name__)

# Finished sends are recorded together, in one commit, once this many have
# finished or the oldest has waited this long. A thread gets its next task
# before the record, so the wait idles no thread. It delays the progress, and
# a crash leaves these few tasks `sending` together with the in-flight ones.
RECORD_BATCH = 8
RECORD_INTERVAL_SECONDS = 0.05
# The reason recorded for a task given back because sending was cut short.
STOPPED = "sending was interrupted before its request"


def _deliver_all(
    delivery: _Delivery,
    candidates: list[_Candidate],
    states: frozenset[TaskState],
    workers: int,
    progress: Progress | None,
) -> list[TaskOutcome]:
    """Send the candidates on a thread pool, reporting each one once recorded.

    This thread does every claim and every record, a batch per transaction,
    and the workers only make HTTP requests. Only as many tasks are claimed
    as there are idle threads, so a task in `sending` has its request in
    flight or has just finished and waits to be recorded. No task that was
    never attempted is left `sending` after a crash.
    """
    report = progress or no_progress
    total = len(candidates)
    outcomes: list[TaskOutcome] = []
    if total == 0:
        return outcomes
    workers = max(1, min(workers, total))

    def finish(batch: list[TaskOutcome]) -> None:
        for outcome in batch:
            outcomes.append(outcome)
            report(len(outcomes), total, outcome.client_code)

    pending: dict[Future[_Attempt], _Claim] = {}
    unsubmitted: list[_Claim] = []
    finished: list[tuple[_Claim, _Attempt]] = []
    oldest = 0.0
    start = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        try:
            while start < total or pending:
                if start < total and len(pending) < workers:
                    if delivery.halt.stopped:
                        finish(_not_attempted(delivery, candidates[start:]))
                        start = total
                        continue
                    chunk = candidates[start : start + workers - len(pending)]
                    start += len(chunk)
                    claims, refused = _claim_batch(delivery, chunk, states)
                    unsubmitted = claims
                    for claim in claims:
                        future = pool.submit(_send_with_retries, delivery, claim)
                        pending[future] = claim
                    unsubmitted = []
                    finish(refused)
                    continue

                timeout = None
                if finished:
                    timeout = max(
                        0.0, oldest + RECORD_INTERVAL_SECONDS - time.monotonic()
                    )
                done, _ = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
                if done and not finished:
                    oldest = time.monotonic()
                finished.extend((pending.pop(f), f.result()) for f in done)
                if _record_due(finished, oldest, idle=not pending):
                    batch, finished = finished, []
                    finish(_record_batch(delivery, batch))
        except BaseException:
            # Ctrl-C, a stopping worker or a failed claim: claim nothing more,
            # and record what the requests already sent, and those in flight
            # once they end, so that none of them is left `sending`. A task
            # claimed but not yet handed to a thread goes back to ready.
            in_flight = {claim.task_id for claim in pending.values()}
            finished.extend(
                (claim, _Attempt(TaskState.READY, reason=STOPPED, requested=False))
                for claim in unsubmitted
                if claim.task_id not in in_flight
            )
            _record_remaining(delivery, finished, pending)
            raise
    if finished:
        finish(_record_batch(delivery, finished))
    return outcomes


def _record_remaining(
    delivery: _Delivery,
    finished: list[tuple[_Claim, _Attempt]],
    pending: dict[Future[_Attempt], _Claim],
) -> None:
    """Record finished sends and wait for those in flight, when sending is cut short.

    A failure here is logged, because the error that cut sending short is the
    one to raise.
    """
    if pending:
        logger.warning(
            "Sending %s stops: waiting for %d requests in flight to record them",
            delivery.period,
            len(pending),
        )
    try:
        wait(pending)
    except BaseException:
        # A second Ctrl-C: stop waiting, but still record what has finished.
        logger.warning(
            "Stopped waiting; the requests still in flight stay `sending` and "
            "turn unknown once their claim expires"
        )
    finished.extend(
        (pending.pop(future), future.result())
        for future in list(pending)
        if future.done()
    )
    try:
        if finished:
            _record_batch(delivery, finished)
    except BaseException:
        logger.exception(
            "Could not record %d finished sends of %s; they stay `sending` and "
            "turn unknown once their claim expires",
            len(finished),
            delivery.period,
        )


def _record_due(
    finished: list[tuple[_Claim, _Attempt]], oldest: float, *, idle: bool
) -> bool:
    if not finished:
        return False
    if idle or len(finished) >= RECORD_BATCH:
        return True
    return time.monotonic() - oldest >= RECORD_INTERVAL_SECONDS


def _not_attempted(
    delivery: _Delivery, candidates: list[_Candidate]
) -> list[TaskOutcome]:
    """Describe the tasks left ready because sending stopped before them."""
    return [
        TaskOutcome(
            candidate.task_id,
            candidate.client_code,
            SendResult.STOPPED,
            candidate.state,
            reason=f"not attempted: {delivery.halt.reason}",
        )
        for candidate in candidates
    ]
