"""What the clock does: post each month's task once and remind about late work.

Every action is done once, recorded in `scheduled_posts` under a key such as
"post:2026-11" before the channel is notified, so a restart or a second check finds it
done. The clock's time is always passed in, which keeps the rules testable.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from services.errors import InvalidStateError
from services.models import (
    FINAL_STATES,
    Client,
    ClientTask,
    Run,
    RunState,
    ScheduledPost,
)
from services.notifications import Notifier
from services.periods import Period, add_months, local_date
from services.runs import create_run

logger = logging.getLogger(__name__)

ACTOR = "scheduler"
# A post made this long after its scheduled moment carries a note that it is late.
LATE_AFTER = timedelta(minutes=5)
# The detail of a due post that found no monthly task, not even one to copy.
NO_TASK_DETAIL = "no monthly task to copy"
# Clients named in a reminder; the rest are counted.
REMINDER_CLIENT_LIMIT = 20


class MonthlyTrigger(CronTrigger):  # type: ignore[misc]
    """A cron trigger that fires at most once per local calendar day.

    APScheduler 3.11's CronTrigger fires twice, and then keeps returning the
    second time, when the configured time falls in the hour repeated at the end
    of daylight-saving time. Searching from the next local midnight after each
    fire keeps one fire, the first occurrence, on such a day.
    """

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        start = now
        if previous_fire_time is not None:
            zone = self.timezone
            next_day = local_date(previous_fire_time, zone) + timedelta(days=1)
            midnight = datetime.combine(next_day, time(0), tzinfo=zone)
            start = max(now, midnight)
        fire_time: datetime | None = super().get_next_fire_time(None, start)
        return fire_time


@dataclass(frozen=True)
class Schedule:
    """When the monthly task is posted: a day of the month and a local time."""

    day: int
    at: time
    zone: ZoneInfo

    def trigger(self) -> MonthlyTrigger:
        return MonthlyTrigger(
            day=self.day, hour=self.at.hour, minute=self.at.minute, timezone=self.zone
        )

    def moment(self, month: Period) -> datetime:
        """Return the posting moment in `month`, as the trigger computes it.

        A local time skipped by daylight saving resolves as zoneinfo resolves
        it (fold 0), which is the instant an hour after the wall time.
        """
        return datetime.combine(
            date(month.year, month.month, self.day), self.at, tzinfo=self.zone
        )

    def latest_due(self, now: datetime) -> datetime:
        """Return the last posting moment at or before `now`."""
        month = Period.of(local_date(now, self.zone))
        due = self.moment(month)
        if _instant(due) > _instant(now):
            due = self.moment(month.shift(-1))
        return due


def _instant(moment: datetime) -> datetime:
    """Compare moments as instants; same-zone comparison ignores `fold`."""
    return moment.astimezone(ZoneInfo("UTC"))


def period_posted_at(moment: datetime, zone: ZoneInfo) -> Period:
    """Return the month a posting moment announces: the one before it."""
    return Period.of(local_date(moment, zone)).shift(-1)


@dataclass(frozen=True)
class PostOutcome:
    period: Period
    key: str
    created: bool
    late: bool
    posted: bool
    detail: str


def post_month(
    factory: sessionmaker[Session],
    notifier: Notifier,
    schedule: Schedule,
    *,
    now: datetime,
) -> PostOutcome | None:
    """Post the latest due month's task to the channel, once.

    The task is created from the newest other month's plan when missing. Returns
    None when the month was already posted by an earlier call. When no task
    exists at all, the channel gets one notice and the post stays due, so a
    later check posts the month as soon as someone creates its task.
    """
    due = schedule.latest_due(now)
    period = period_posted_at(due, schedule.zone)
    key = f"post:{period}"
    if not claim_once(factory, key):
        return None

    try:
        outcome = _post_claimed(factory, notifier, schedule, period, due=due, now=now)
    except Exception:
        release_claim(factory, key)
        raise
    if outcome.detail == NO_TASK_DETAIL:
        release_claim(factory, key)
        return outcome
    set_detail(factory, key, outcome.detail)
    logger.info("Scheduled post %s: %s", key, outcome.detail)
    return outcome


def _post_claimed(
    factory: sessionmaker[Session],
    notifier: Notifier,
    schedule: Schedule,
    period: Period,
    *,
    due: datetime,
    now: datetime,
) -> PostOutcome:
    key = f"post:{period}"
    late = _instant(now) - _instant(due) > LATE_AFTER
    run, created = ensure_run(factory, period)

    notice = f"no-task:{period}"
    if run is None:
        text = (
            f"There is no monthly task to copy the plan for {period} from. "
            f"Create it with `invoices run create {period} --start YYYY-MM-DD "
            "--end YYYY-MM-DD` or `/invoices new`; it is posted here once it exists."
        )
        if _once(factory, notice, lambda: notifier.post_text(text)):
            logger.info(
                "Scheduled post %s: posted that the monthly task is missing", key
            )
        return PostOutcome(period, key, False, late, False, NO_TASK_DETAIL)
    if run.slack_ts and not created:
        return PostOutcome(period, key, False, late, False, "already in the channel")

    note = ""
    if late:
        note = (
            "Posted once its monthly task was created."
            if _is_claimed(factory, notice)
            else late_note(due, schedule.zone)
        )
    notifier.post_run(period, note=note)
    detail = "created and posted" if created else "posted"
    if late:
        detail += " late"
    return PostOutcome(period, key, created, late, True, detail)


def late_note(due: datetime, zone: ZoneInfo) -> str:
    local = due.astimezone(zone)
    return (
        f"Posted late: the scheduler was not running at {local:%H:%M} on "
        f"{local:%Y-%m-%d} ({zone.key})."
    )


def ensure_run(
    factory: sessionmaker[Session], period: Period
) -> tuple[Run | None, bool]:
    """Return the month's task, creating it from the nearest month's plan if missing.

    The planned start and end move by whole months from the newest earlier
    task, or from the oldest later one. Returns (None, False) when no task
    exists at all, and whether the task was created by this call.
    """
    existing = _find_run(factory, period)
    if existing is not None:
        return existing, False

    template = _template_run(factory, period)
    if template is None:
        # Debug only: every check finds this again until someone creates a task.
        logger.debug("No monthly task exists to copy the plan for %s from", period)
        return None, False

    months = _months_between(Period.parse(template.period), period)
    try:
        create_run(
            factory,
            period,
            planned_start=add_months(template.planned_start, months),
            planned_end=add_months(template.planned_end, months),
            actor=ACTOR,
        )
    except InvalidStateError:
        return _find_run(factory, period), False
    return _find_run(factory, period), True


def _find_run(factory: sessionmaker[Session], period: Period) -> Run | None:
    with factory() as session:
        return session.scalar(select(Run).where(Run.period == str(period)))


def _template_run(factory: sessionmaker[Session], period: Period) -> Run | None:
    with factory() as session:
        earlier = session.scalar(
            select(Run)
            .where(Run.period < str(period))
            .order_by(Run.period.desc())
            .limit(1)
        )
        if earlier is not None:
            return earlier
        return session.scalar(
            select(Run).where(Run.period > str(period)).order_by(Run.period).limit(1)
        )


def _months_between(start: Period, end: Period) -> int:
    return (end.year - start.year) * 12 + (end.month - start.month)


def send_reminders(
    factory: sessionmaker[Session],
    notifier: Notifier,
    zone: ZoneInfo,
    *,
    now: datetime,
    just_posted: frozenset[str] = frozenset(),
) -> list[str]:
    """Remind the channel, once each, about months past their planned dates.

    A month still not generated after its planned start gets a start reminder,
    and a month with client tasks not sent or skipped after its planned end
    gets an end reminder. Returns the keys of the reminders posted.

    A month in `just_posted` had its message posted a moment ago, late, and
    that message already shows the Generate button. So its start reminder is
    marked done without being posted. Its end reminder waits for the next
    check instead of following the message in the same second.
    """
    today = local_date(now, zone)
    posted: list[str] = []
    for run in _open_runs(factory):
        period = Period.parse(run.period)
        for key, text in _due_reminders(factory, run, today):
            if run.period in just_posted:
                if key.startswith("remind-start:") and claim_once(factory, key):
                    logger.info(
                        "Skipped the reminder %s: the month was just posted", key
                    )
                continue
            if _once(factory, key, partial(notifier.post_reminder, period, text)):
                logger.info("Posted the reminder %s", key)
                posted.append(key)
    return posted


def _open_runs(factory: sessionmaker[Session]) -> list[Run]:
    with factory() as session:
        return list(
            session.scalars(
                select(Run).where(Run.state != RunState.COMPLETE).order_by(Run.period)
            )
        )


def _due_reminders(
    factory: sessionmaker[Session], run: Run, today: date
) -> list[tuple[str, str]]:
    reminders: list[tuple[str, str]] = []
    generated = run.state is not RunState.PLANNED
    if not generated and today > run.planned_start:
        reminders.append(
            (
                f"remind-start:{run.period}",
                f"Reminder: the monthly task for {run.period} was planned to start "
                f"on {run.planned_start} and is not generated yet. Generate it "
                f"from its message or with `invoices run generate {run.period}`.",
            )
        )
    if today > run.planned_end:
        left = _unfinished_tasks(factory, run)
        if not generated or left:
            reminders.append(
                (f"remind-end:{run.period}", _end_reminder(run, left, generated))
            )
    return reminders


def _unfinished_tasks(
    factory: sessionmaker[Session], run: Run
) -> list[tuple[str, str]]:
    """Return (client name, state) of each client task not sent or skipped."""
    with factory() as session:
        rows = session.execute(
            select(Client.name, ClientTask.state)
            .join(Client, Client.id == ClientTask.client_id)
            .where(ClientTask.run_id == run.id, ClientTask.state.not_in(FINAL_STATES))
            .order_by(Client.name)
        ).all()
    return [(name, state.value) for name, state in rows]


def _end_reminder(run: Run, left: list[tuple[str, str]], generated: bool) -> str:
    opening = (
        f"Reminder: the monthly task for {run.period} was planned to end on "
        f"{run.planned_end}"
    )
    if not generated:
        return (
            f"{opening} and is not generated yet, so no client has been sent "
            f"anything. Generate it with `invoices run generate {run.period}`."
        )

    counts = Counter(state for _name, state in left)
    by_state = ", ".join(
        f"{count} {state.replace('_', ' ')}" for state, count in sorted(counts.items())
    )
    shown = [f"{name} ({state.replace('_', ' ')})" for name, state in left]
    names = ", ".join(shown[:REMINDER_CLIENT_LIMIT])
    if len(shown) > REMINDER_CLIENT_LIMIT:
        names += f" and {len(shown) - REMINDER_CLIENT_LIMIT} more"
    noun = "client task is" if len(left) == 1 else "client tasks are"
    return (
        f"{opening}, and {len(left)} {noun} not sent: {by_state}. "
        f"Clients: {names}. See `invoices status {run.period}`."
    )


def claim_once(factory: sessionmaker[Session], key: str, detail: str = "") -> bool:
    """Record `key` as done; return false when it was recorded before."""
    try:
        with factory() as session, session.begin():
            session.execute(insert(ScheduledPost).values(key=key, detail=detail))
    except IntegrityError:
        return False
    return True


def _once(factory: sessionmaker[Session], key: str, action: Callable[[], None]) -> bool:
    """Run `action` unless `key` is recorded as done; forget the key if it raises."""
    if not claim_once(factory, key):
        return False
    try:
        action()
    except Exception:
        release_claim(factory, key)
        raise
    return True


def _is_claimed(factory: sessionmaker[Session], key: str) -> bool:
    with factory() as session:
        return session.get(ScheduledPost, key) is not None


def release_claim(factory: sessionmaker[Session], key: str) -> None:
    """Forget `key`, so that a later check tries the action again."""
    with factory() as session, session.begin():
        session.execute(delete(ScheduledPost).where(ScheduledPost.key == key))


def set_detail(factory: sessionmaker[Session], key: str, detail: str) -> None:
    with factory() as session, session.begin():
        post = session.get(ScheduledPost, key)
        if post is not None:
            post.detail = detail
