"""The job worker, as its own process (`invoices worker`) or a thread beside the app."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from slack_sdk import WebClient

from bot.context import AppContext
from bot.slack_client import make_web_client
from bot.slack_jobs import SlackJobs
from services import jobs

logger = logging.getLogger(__name__)


def build_worker(
    context: AppContext,
    client: WebClient | None = None,
    *,
    lease_seconds: float = jobs.DEFAULT_LEASE_SECONDS,
    poll_seconds: float = 1.0,
) -> jobs.Worker:
    client = client or make_web_client(context.settings)
    return jobs.Worker(
        context.factory,
        SlackJobs(context, client).bodies(),
        lease_seconds=lease_seconds,
        poll_seconds=poll_seconds,
    )


def start_worker_thread(
    context: AppContext,
    client: WebClient | None = None,
    *,
    lease_seconds: float = jobs.DEFAULT_LEASE_SECONDS,
    poll_seconds: float = 1.0,
) -> jobs.Worker:
    """Run a worker on a daemon thread; `stop()` it to end the thread."""
    worker = build_worker(
        context, client, lease_seconds=lease_seconds, poll_seconds=poll_seconds
    )
    thread = threading.Thread(target=worker.run, name="job-worker", daemon=True)
    thread.start()
    return worker


def run_worker(
    context: AppContext, *, lease_seconds: float = jobs.DEFAULT_LEASE_SECONDS
) -> None:
    """Run queued jobs until SIGTERM or SIGINT, resuming any left unfinished."""
    worker = build_worker(context, lease_seconds=lease_seconds)

    def stop(signum: int, frame: FrameType | None) -> None:
        logger.info("job worker stopping on signal %s", signum)
        worker.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.run()
