"""The posting trigger: once a month, at the local time, across daylight saving."""

from __future__ import annotations

import pickle
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.periods import Period
from services.scheduling import Schedule

VILNIUS = ZoneInfo("Europe/Vilnius")


def _fire_times(schedule: Schedule, start: datetime, end: datetime) -> list[datetime]:
    """Ask the trigger as APScheduler does: after each fire, from a moment later."""
    trigger = schedule.trigger()
    fires: list[datetime] = []
    previous: datetime | None = None
    now = start
    while True:
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None or fire >= end:
            return fires
        fires.append(fire)
        assert len(fires) <= 100, "the trigger keeps firing"
        previous = fire
        now = fire + timedelta(seconds=1)


@pytest.mark.parametrize(
    ("day", "at"),
    [
        pytest.param(1, time(9, 0), id="1st-09:00"),
        pytest.param(25, time(3, 30), id="25th-03:30-repeated-hour-2026-10-25"),
        pytest.param(28, time(3, 30), id="28th-03:30-skipped-hour-2027-03-28"),
        pytest.param(28, time(23, 59), id="28th-23:59"),
    ],
)
def test_trigger_fires_once_a_month(day: int, at: time) -> None:
    schedule = Schedule(day=day, at=at, zone=VILNIUS)
    start = datetime(2026, 1, 1, tzinfo=VILNIUS)
    end = datetime(2028, 1, 1, tzinfo=VILNIUS)

    fires = _fire_times(schedule, start, end)

    months = [Period(2026, 1).shift(index) for index in range(24)]
    assert [Period.of(fire.astimezone(VILNIUS).date()) for fire in fires] == months
    for month, fire in zip(months, fires, strict=True):
        local = fire.astimezone(VILNIUS)
        expected = datetime.combine(date(month.year, month.month, day), at, VILNIUS)
        assert local.date() == expected.date()
        assert fire.astimezone(UTC) == expected.astimezone(UTC)


def test_trigger_keeps_local_time_across_dst() -> None:
    schedule = Schedule(day=1, at=time(9, 0), zone=VILNIUS)

    fires = _fire_times(
        schedule,
        datetime(2026, 1, 1, tzinfo=VILNIUS),
        datetime(2028, 1, 1, tzinfo=VILNIUS),
    )

    assert {fire.astimezone(VILNIUS).time() for fire in fires} == {time(9, 0)}
    offsets = {fire.astimezone(UTC).hour for fire in fires}
    assert offsets == {6, 7}


def test_trigger_fires_first_of_repeated_hour() -> None:
    schedule = Schedule(day=25, at=time(3, 30), zone=VILNIUS)

    fires = _fire_times(
        schedule,
        datetime(2026, 10, 1, tzinfo=VILNIUS),
        datetime(2026, 11, 1, tzinfo=VILNIUS),
    )

    # A time in the repeated hour never equals one in another zone, so compare
    # in UTC: the first 03:30 is at +03:00, daylight-saving time.
    assert [fire.astimezone(UTC) for fire in fires] == [
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    ]


def test_trigger_survives_the_job_store() -> None:
    schedule = Schedule(day=1, at=time(9, 0), zone=VILNIUS)
    now = datetime(2026, 3, 15, tzinfo=UTC)

    restored = pickle.loads(pickle.dumps(schedule.trigger()))  # noqa: S301

    assert restored.get_next_fire_time(None, now) == datetime(
        2026, 4, 1, 6, 0, tzinfo=UTC
    )
    assert str(restored) == str(schedule.trigger())


@pytest.mark.parametrize(
    ("now", "due"),
    [
        pytest.param(
            datetime(2026, 12, 1, 7, 0, tzinfo=UTC),
            datetime(2026, 12, 1, 7, 0, tzinfo=UTC),
            id="at-the-moment",
        ),
        pytest.param(
            datetime(2026, 12, 1, 6, 59, tzinfo=UTC),
            datetime(2026, 11, 1, 7, 0, tzinfo=UTC),
            id="a-minute-before",
        ),
        pytest.param(
            datetime(2026, 12, 31, 22, 30, tzinfo=UTC),
            datetime(2026, 12, 1, 7, 0, tzinfo=UTC),
            id="new-year-in-utc-only",
        ),
        pytest.param(
            datetime(2027, 1, 1, 7, 30, tzinfo=UTC),
            datetime(2027, 1, 1, 7, 0, tzinfo=UTC),
            id="new-year",
        ),
        pytest.param(
            datetime(2026, 4, 1, 6, 0, tzinfo=UTC),
            datetime(2026, 4, 1, 6, 0, tzinfo=UTC),
            id="summer-time",
        ),
    ],
)
def test_latest_due_moment(now: datetime, due: datetime) -> None:
    schedule = Schedule(day=1, at=time(9, 0), zone=VILNIUS)

    assert schedule.latest_due(now).astimezone(UTC) == due
