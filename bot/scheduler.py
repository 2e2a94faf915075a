"""The `invoices scheduler` process: the Procfile's `clock`, exactly one acting.

Each process first takes the database lock named `LOCK_NAME`. The one that
holds it runs APScheduler with its jobs kept in the product's database. Any
other logs that it is standing by and tries the lock again periodically.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import FrameType

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.orm import Session, sessionmaker

from bot.context import AppContext
from bot.slack_notifier import SlackNotifier
from services.leases import DatabaseLock, make_lock
from services.models import utcnow
from services.notifications import Notifier, SilentNotifier
from services.scheduling import Schedule, post_month, send_reminders

logger = logging.getLogger(__name__)

LOCK_NAME = "invoices-scheduler"
POST_JOB_ID = "monthly-post"
CHECK_JOB_ID = "schedule-check"
# How often the holder checks for reminders and for a post that failed before.
CHECK_INTERVAL = timedelta(minutes=15)
# A post missed while no clock ran still runs when one starts within this time.
MISFIRE_GRACE = timedelta(days=27)
STANDBY_RETRY_SECONDS = 30.0
RENEW_SECONDS = 30.0

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class _Runtime:
    factory: sessionmaker[Session]
    notifier: Notifier
    schedule: Schedule
    now: Clock


# Jobs in a persistent job store are stored as references to module functions,
# so they find the acting process's objects here.
_active: _Runtime | None = None


def post_month_job() -> None:
    """Post the month's task; the job that the posting trigger runs."""
    runtime = _active
    if runtime is None:
        logger.warning("The monthly post job ran with no acting scheduler")
        return
    post_month(runtime.factory, runtime.notifier, runtime.schedule, now=runtime.now())


def check_job() -> None:
    """Catch up a missed or failed post and send due reminders."""
    runtime = _active
    if runtime is None:
        logger.warning("The schedule check ran with no acting scheduler")
        return
    run_checks(runtime)


def run_checks(runtime: _Runtime) -> None:
    now = runtime.now()
    just_posted: frozenset[str] = frozenset()
    try:
        outcome = post_month(
            runtime.factory, runtime.notifier, runtime.schedule, now=now
        )
    except Exception:
        logger.exception("The monthly post failed; the next check retries it")
    else:
        if outcome is not None and outcome.posted:
            just_posted = frozenset({str(outcome.period)})
    try:
        send_reminders(
            runtime.factory,
            runtime.notifier,
            runtime.schedule.zone,
            now=now,
            just_posted=just_posted,
        )
    except Exception:
        logger.exception("Sending reminders failed; the next check retries them")


class ClockProcess:
    """One scheduler process, which waits on standby until it holds the lock."""

    def __init__(
        self,
        context: AppContext,
        *,
        notifier: Notifier,
        now: Clock = utcnow,
        lock: DatabaseLock | None = None,
        standby_seconds: float = STANDBY_RETRY_SECONDS,
        renew_seconds: float = RENEW_SECONDS,
    ) -> None:
        settings = context.settings
        self.context = context
        self.runtime = _Runtime(
            factory=context.factory,
            notifier=notifier,
            schedule=Schedule(
                settings.schedule_day, settings.schedule_time, settings.zone
            ),
            now=now,
        )
        self.lock = lock or make_lock(context.engine, context.factory, LOCK_NAME)
        self.standby_seconds = standby_seconds
        self.renew_seconds = renew_seconds
        self.acting = threading.Event()
        self._scheduler: BackgroundScheduler | None = None

    def run(self, stop: threading.Event) -> None:
        """Act while holding the lock, stand by otherwise, until `stop` is set."""
        standing_by = False
        while not stop.is_set():
            if not self.lock.try_acquire():
                if not standing_by:
                    logger.info(
                        "Another scheduler holds the lock %s; standing by and "
                        "retrying every %.0f seconds",
                        self.lock.name,
                        self.standby_seconds,
                    )
                    standing_by = True
                stop.wait(self.standby_seconds)
                continue

            standing_by = False
            logger.info("Took the lock %s; this scheduler is acting", self.lock.name)
            try:
                self.start_jobs()
                self._hold(stop)
            finally:
                self.stop_jobs()
                self.lock.release()

    def _hold(self, stop: threading.Event) -> None:
        while not stop.wait(self.renew_seconds):
            if not self.lock.renew():
                logger.warning("Lost the lock %s; standing by", self.lock.name)
                return

    def start_jobs(self) -> None:
        """Catch up what is due, then start APScheduler on the persistent store."""
        global _active
        _active = self.runtime
        self.acting.set()
        run_checks(self.runtime)

        scheduler = build_scheduler(self.context, self.runtime.schedule)
        scheduler.start(paused=True)
        install_jobs(scheduler, self.runtime.schedule)
        scheduler.resume()
        self._scheduler = scheduler

    def stop_jobs(self) -> None:
        global _active
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=True)
        if _active is self.runtime:
            _active = None
        self.acting.clear()


class ProductJobStore(SQLAlchemyJobStore):  # type: ignore[misc]
    """APScheduler's SQLAlchemy job store on an engine that the product owns.

    The stock store disposes its engine on shutdown, which would close the
    connections of everything else using the product's engine.
    """

    def shutdown(self) -> None:
        return None


def build_scheduler(context: AppContext, schedule: Schedule) -> BackgroundScheduler:
    """Build APScheduler with its job store in the product's database.

    The `apscheduler_jobs` table comes from the product's migrations.
    """
    return BackgroundScheduler(
        jobstores={"default": ProductJobStore(engine=context.engine)},
        timezone=schedule.zone,
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": int(MISFIRE_GRACE.total_seconds()),
        },
    )


def install_jobs(scheduler: BackgroundScheduler, schedule: Schedule) -> None:
    """Add the posting and checking jobs, keeping a stored post job's next run.

    Replacing the stored post job would compute its next run from now and drop
    a run missed while no scheduler was acting, so it is replaced only when the
    configured day or time changed.
    """
    trigger = schedule.trigger()
    stored = scheduler.get_job(POST_JOB_ID)
    if stored is None or str(stored.trigger) != str(trigger):
        scheduler.add_job(
            post_month_job,
            trigger,
            id=POST_JOB_ID,
            name="Post the monthly task",
            replace_existing=True,
        )
    scheduler.add_job(
        check_job,
        IntervalTrigger(seconds=int(CHECK_INTERVAL.total_seconds())),
        id=CHECK_JOB_ID,
        name="Check reminders and missed posts",
        replace_existing=True,
    )


def run_scheduler(context: AppContext, *, notifier: Notifier | None = None) -> None:
    """Run the clock until SIGTERM or SIGINT; the `invoices scheduler` command."""
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("Received signal %d; stopping the scheduler", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    process = ClockProcess(context, notifier=notifier or default_notifier(context))
    logger.info(
        "Scheduler started: posts on day %d at %s %s",
        context.settings.schedule_day,
        context.settings.schedule_time.strftime("%H:%M"),
        context.settings.timezone,
    )
    process.run(stop)
    logger.info("Scheduler stopped")


def default_notifier(context: AppContext) -> Notifier:
    """Build the Slack notifier when Slack is configured, else a silent one."""
    settings = context.settings
    if settings.slack_bot_token and settings.slack_channel:
        return SlackNotifier(context)
    logger.warning(
        "SLACK_BOT_TOKEN or SLACK_CHANNEL is not set; the scheduler posts nothing"
    )
    return SilentNotifier()
