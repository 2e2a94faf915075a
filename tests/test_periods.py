from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from services.periods import InvalidPeriodError, Period, add_months


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        pytest.param(date(2026, 1, 31), 1, date(2026, 2, 28), id="jan31-to-feb28"),
        pytest.param(date(2028, 1, 31), 1, date(2028, 2, 29), id="leap-year"),
        pytest.param(date(2026, 12, 5), 1, date(2027, 1, 5), id="year-end"),
        pytest.param(date(2026, 3, 31), -1, date(2026, 2, 28), id="backwards"),
        pytest.param(date(2026, 5, 15), 0, date(2026, 5, 15), id="zero"),
    ],
)
def test_add_months(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected


def test_period_bounds_are_half_open() -> None:
    period = Period.parse("2026-02")

    assert period.start == date(2026, 2, 1)
    assert period.end == date(2026, 3, 1)
    assert period.contains(date(2026, 2, 28))
    assert not period.contains(date(2026, 3, 1))


@pytest.mark.parametrize("text", ["2026-13", "2026-1", "26-01", "2026/01", ""])
def test_period_parse_rejects(text: str) -> None:
    with pytest.raises(InvalidPeriodError, match="YYYY-MM"):
        Period.parse(text)


def test_previous_period_uses_company_zone() -> None:
    # 22:30 UTC on 30 November is already 1 December in Vilnius.
    moment = datetime(2026, 11, 30, 22, 30, tzinfo=UTC)

    assert Period.previous(moment, ZoneInfo("Europe/Vilnius")) == Period(2026, 11)
    assert Period.previous(moment, ZoneInfo("UTC")) == Period(2026, 10)
