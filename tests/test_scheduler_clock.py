"""The clock process: the monthly post once, caught up late, one acting process."""

from __future__ import annotations

import logging
import threading
import time as timing
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from bot.context import AppContext
from bot.scheduler import POST_JOB_ID, ClockProcess, build_scheduler, install_jobs
from bot.settings import Settings
from services.models import Run, RunState, ScheduledPost
from services.periods import Period
from services.runs import create_run
from services.scheduling import Schedule

VILNIUS = ZoneInfo("Europe/Vilnius")


class RecordingNotifier:
    """A notifier that keeps what would have been posted to the channel."""

    def __init__(self) -> None:
        self.runs: list[tuple[Period, str]] = []
        self.texts: list[str] = []
        self.reminders: list[tuple[Period, str]] = []
        self.lock = threading.Lock()

    def post_run(self, period: Period, *, note: str = "") -> None:
        with self.lock:
            self.runs.append((period, note))

    def post_text(self, text: str) -> None:
        with self.lock:
            self.texts.append(text)

    def post_reminder(self, period: Period, text: str) -> None:
        with self.lock:
            self.reminders.append((period, text))

    def refresh_task(self, task_id: int) -> None:
        raise AssertionError("the clock never redraws a client task")


def _at(day: date, hour: int, minute: int) -> Callable[[], datetime]:
    moment = datetime.combine(day, time(hour, minute), VILNIUS)
    return lambda: moment


@pytest.fixture
def context(
    engine: Engine, factory: sessionmaker[Session], database_url: str
) -> AppContext:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        schedule_day=1,
        schedule_time=time(9, 0),
        timezone="Europe/Vilnius",
    )
    return AppContext(settings=settings, engine=engine, factory=factory)


@pytest.fixture
def october(factory: sessionmaker[Session]) -> None:
    """October's task, sent in early November: the plan the clock copies."""
    with factory() as session, session.begin():
        session.add(
            Run(
                period="2026-10",
                planned_start=date(2026, 11, 3),
                planned_end=date(2026, 11, 30),
                state=RunState.COMPLETE,
            )
        )


def _start_and_stop(
    context: AppContext, notifier: RecordingNotifier, now: Callable[[], datetime]
) -> None:
    process = ClockProcess(context, notifier=notifier, now=now)
    assert process.lock.try_acquire()
    try:
        process.start_jobs()
    finally:
        process.stop_jobs()
        process.lock.release()


def _runs(factory: sessionmaker[Session]) -> dict[str, tuple[date, date]]:
    with factory() as session:
        return {
            run.period: (run.planned_start, run.planned_end)
            for run in session.scalars(select(Run).order_by(Run.period))
        }


@pytest.mark.usefixtures("october")
def test_late_start_posts_month_once(context: AppContext) -> None:
    notifier = RecordingNotifier()

    _start_and_stop(context, notifier, _at(date(2026, 12, 1), 10, 30))
    _start_and_stop(context, notifier, _at(date(2026, 12, 1), 11, 0))

    assert _runs(context.factory)["2026-11"] == (date(2026, 12, 3), date(2026, 12, 30))
    assert len(notifier.runs) == 1
    period, note = notifier.runs[0]
    assert period == Period(2026, 11)
    assert "late" in note
    assert "09:00 on 2026-12-01" in note
    assert notifier.texts == []


@pytest.mark.usefixtures("october")
def test_on_time_post_has_no_note(context: AppContext) -> None:
    notifier = RecordingNotifier()

    _start_and_stop(context, notifier, _at(date(2026, 12, 1), 9, 1))

    assert notifier.runs == [(Period(2026, 11), "")]


@pytest.mark.usefixtures("october")
def test_before_the_moment_posts_previous(context: AppContext) -> None:
    notifier = RecordingNotifier()

    _start_and_stop(context, notifier, _at(date(2026, 12, 1), 8, 59))

    assert [period for period, _note in notifier.runs] == [Period(2026, 10)]
    assert set(_runs(context.factory)) == {"2026-10"}


@pytest.mark.usefixtures("october")
def test_existing_posted_month_is_not_reposted(context: AppContext) -> None:
    with context.factory() as session, session.begin():
        session.add(
            Run(
                period="2026-11",
                planned_start=date(2026, 12, 2),
                planned_end=date(2026, 12, 9),
                slack_channel="C0FINANCE",
                slack_ts="1764000000.000100",
            )
        )
    notifier = RecordingNotifier()

    _start_and_stop(context, notifier, _at(date(2026, 12, 1), 9, 5))

    assert notifier.runs == []
    assert _runs(context.factory)["2026-11"] == (date(2026, 12, 2), date(2026, 12, 9))
    with context.factory() as session:
        post = session.get(ScheduledPost, "post:2026-11")
    assert post is not None
    assert post.detail == "already in the channel"


def test_no_task_to_copy_is_told(context: AppContext) -> None:
    notifier = RecordingNotifier()

    _start_and_stop(context, notifier, _at(date(2026, 12, 1), 9, 5))
    _start_and_stop(context, notifier, _at(date(2026, 12, 1), 9, 30))

    assert notifier.runs == []
    assert len(notifier.texts) == 1
    assert "invoices run create 2026-11" in notifier.texts[0]
    assert _runs(context.factory) == {}


def test_task_created_after_notice_is_posted(context: AppContext) -> None:
    notifier = RecordingNotifier()

    _start_and_stop(context, notifier, _at(date(2026, 12, 1), 9, 5))
    create_run(
        context.factory,
        Period(2026, 11),
        planned_start=date(2026, 12, 3),
        planned_end=date(2026, 12, 10),
        actor="cli",
    )
    _start_and_stop(context, notifier, _at(date(2026, 12, 1), 9, 30))
    _start_and_stop(context, notifier, _at(date(2026, 12, 1), 9, 45))

    assert len(notifier.texts) == 1
    assert notifier.runs == [
        (Period(2026, 11), "Posted once its monthly task was created.")
    ]


@pytest.mark.usefixtures("october")
def test_failed_post_is_retried(context: AppContext) -> None:
    class FailingOnce(RecordingNotifier):
        failed = False

        def post_run(self, period: Period, *, note: str = "") -> None:
            if not self.failed:
                self.failed = True
                raise ConnectionError("Slack is unreachable")
            super().post_run(period, note=note)

    notifier = FailingOnce()

    _start_and_stop(context, notifier, _at(date(2026, 12, 1), 9, 0))
    assert notifier.runs == []
    _start_and_stop(context, notifier, _at(date(2026, 12, 1), 9, 15))

    assert len(notifier.runs) == 1
    assert "late" in notifier.runs[0][1]


@pytest.mark.usefixtures("october")
def test_plan_shifts_by_whole_months(context: AppContext) -> None:
    with context.factory() as session, session.begin():
        session.execute(
            text("UPDATE runs SET planned_start = :start, planned_end = :end"),
            {"start": date(2026, 11, 30), "end": date(2026, 11, 30)},
        )
    notifier = RecordingNotifier()

    _start_and_stop(context, notifier, _at(date(2027, 1, 1), 9, 0))

    assert _runs(context.factory)["2026-12"] == (date(2027, 1, 30), date(2027, 1, 30))


def test_stored_post_job_is_kept(context: AppContext) -> None:
    schedule = Schedule(day=1, at=time(9, 0), zone=VILNIUS)
    first = build_scheduler(context, schedule)
    first.start(paused=True)
    install_jobs(first, schedule)
    stored = first.get_job(POST_JOB_ID).next_run_time
    first.shutdown()

    second = build_scheduler(context, schedule)
    second.start(paused=True)
    with context.factory() as session:
        session.execute(
            text("UPDATE apscheduler_jobs SET next_run_time = next_run_time")
        )
    install_jobs(second, schedule)
    kept = second.get_job(POST_JOB_ID)
    install_jobs(second, Schedule(day=2, at=time(9, 0), zone=VILNIUS))
    replaced = second.get_job(POST_JOB_ID)
    second.shutdown()

    assert kept.next_run_time == stored
    assert kept.next_run_time.astimezone(VILNIUS).day == 1
    assert replaced.next_run_time.astimezone(VILNIUS).day == 2


def _wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = timing.monotonic() + seconds
    while timing.monotonic() < deadline:
        if condition():
            return True
        timing.sleep(0.02)
    return condition()


@pytest.fixture
def two_processes(
    context: AppContext,
) -> Iterator[tuple[list[ClockProcess], list[threading.Event], RecordingNotifier]]:
    notifier = RecordingNotifier()
    now = _at(date(2026, 12, 1), 10, 30)
    processes = [
        ClockProcess(
            context,
            notifier=notifier,
            now=now,
            standby_seconds=0.05,
            renew_seconds=0.05,
        )
        for _ in range(2)
    ]
    stops = [threading.Event() for _ in processes]
    threads = [
        threading.Thread(target=process.run, args=(stop,), daemon=True)
        for process, stop in zip(processes, stops, strict=True)
    ]
    for thread in threads:
        thread.start()

    yield processes, stops, notifier

    for stop in stops:
        stop.set()
    for thread in threads:
        thread.join(timeout=10)
        assert not thread.is_alive()


@pytest.mark.usefixtures("october")
def test_two_schedulers_post_once(
    two_processes: tuple[list[ClockProcess], list[threading.Event], RecordingNotifier],
    caplog: pytest.LogCaptureFixture,
) -> None:
    processes, _stops, notifier = two_processes
    caplog.set_level(logging.INFO, logger="bot.scheduler")

    assert _wait_for(lambda: any(p.acting.is_set() for p in processes))
    timing.sleep(0.5)

    acting = [p for p in processes if p.acting.is_set()]
    assert len(acting) == 1
    assert len(notifier.runs) == 1
    assert "standing by" in caplog.text


@pytest.mark.usefixtures("october")
def test_standby_takes_over_after_stop(
    two_processes: tuple[list[ClockProcess], list[threading.Event], RecordingNotifier],
    factory: sessionmaker[Session],
) -> None:
    processes, stops, notifier = two_processes
    assert _wait_for(lambda: any(p.acting.is_set() for p in processes))
    first = next(index for index, p in enumerate(processes) if p.acting.is_set())
    other = processes[1 - first]

    stops[first].set()

    assert _wait_for(other.acting.is_set)
    assert len(notifier.runs) == 1
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(ScheduledPost)) == 1


def test_clock_time_is_company_time(context: AppContext) -> None:
    """Midnight of 1 December in Vilnius is still 30 November in UTC."""
    notifier = RecordingNotifier()
    with context.factory() as session, session.begin():
        session.add(
            Run(
                period="2026-10",
                planned_start=date(2026, 11, 1),
                planned_end=date(2026, 11, 2),
                state=RunState.COMPLETE,
            )
        )
    settings = context.settings.model_copy(update={"schedule_time": time(0, 30)})
    midnight = AppContext(
        settings=settings, engine=context.engine, factory=context.factory
    )

    _start_and_stop(
        midnight, notifier, lambda: datetime(2026, 11, 30, 22, 45, tzinfo=UTC)
    )

    assert [period for period, _note in notifier.runs] == [Period(2026, 11)]


@pytest.mark.usefixtures("october")
def test_late_post_stands_for_start_reminder(context: AppContext) -> None:
    notifier = RecordingNotifier()

    _start_and_stop(context, notifier, _at(date(2026, 12, 5), 10, 0))
    _start_and_stop(context, notifier, _at(date(2026, 12, 6), 10, 0))

    assert _runs(context.factory)["2026-11"][0] == date(2026, 12, 3)
    assert [period for period, _note in notifier.runs] == [Period(2026, 11)]
    assert notifier.reminders == []


@pytest.mark.usefixtures("october")
def test_late_post_defers_end_reminder(context: AppContext) -> None:
    notifier = RecordingNotifier()

    _start_and_stop(context, notifier, _at(date(2026, 12, 31), 10, 0))
    right_after = list(notifier.reminders)
    _start_and_stop(context, notifier, _at(date(2026, 12, 31), 10, 30))

    assert [period for period, _note in notifier.runs] == [Period(2026, 11)]
    assert right_after == []
    [(period, text)] = notifier.reminders
    assert period == Period(2026, 11)
    assert "planned to end" in text
