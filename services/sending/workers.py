"""Send claimed tasks on a thread pool while this thread claims and records."""

from __future__ import annotations

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

# Finished sends are recorded together, in one commit, once this many have
# finished or the oldest has waited this long. A thread gets its next task
# before the record, so the wait idles no thread. It delays the progress, and
# a crash leaves these few tasks `sending` together with the in-flight ones.
RECORD_BATCH = 32
RECORD_INTERVAL_SECONDS = 0.1


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
    flight or has just finished and waits to be recorded: no task that was
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
    finished: list[tuple[_Claim, _Attempt]] = []
    oldest = 0.0
    start = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while start < total or pending:
            if start < total and len(pending) < workers:
                if delivery.halt.stopped:
                    finish(_not_attempted(delivery, candidates[start:]))
                    start = total
                    continue
                chunk = candidates[start : start + workers - len(pending)]
                start += len(chunk)
                claims, refused = _claim_batch(delivery, chunk, states)
                finish(refused)
                for claim in claims:
                    pending[pool.submit(_send_with_retries, delivery, claim)] = claim
                continue

            timeout = None
            if finished:
                timeout = max(0.0, oldest + RECORD_INTERVAL_SECONDS - time.monotonic())
            done, _ = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
            if done and not finished:
                oldest = time.monotonic()
            finished.extend((pending.pop(future), future.result()) for future in done)
            if _record_due(finished, oldest, idle=not pending):
                finish(_record_batch(delivery, finished))
                finished = []
    if finished:
        finish(_record_batch(delivery, finished))
    return outcomes


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
