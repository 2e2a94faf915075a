"""Calendar months as periods, and dates in the company's time zone."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from services.errors import InvoiceListsError

_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")


class InvalidPeriodError(InvoiceListsError):
    pass


@dataclass(frozen=True, order=True)
class Period:
    """One calendar month: documents dated from `start` up to, not including, `end`."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Period:
        match = _PERIOD.match(text.strip())
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise InvalidPeriodError(
                f"invalid month {text!r}: expected YYYY-MM, such as 2026-11"
            )
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, day: date) -> Period:
        return cls(day.year, day.month)

    @classmethod
    def previous(cls, now: datetime, zone: ZoneInfo) -> Period:
        """Return the month before the one `now` falls in, in the time zone `zone`."""
        return cls.of(now.astimezone(zone).date()).shift(-1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def start(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def end(self) -> date:
        """The first day of the next month, which is outside the period."""
        return self.shift(1).start

    @property
    def last_day(self) -> date:
        return date(
            self.year, self.month, calendar.monthrange(self.year, self.month)[1]
        )

    def shift(self, months: int) -> Period:
        index = self.year * 12 + (self.month - 1) + months
        return Period(index // 12, index % 12 + 1)

    def contains(self, day: date) -> bool:
        return self.start <= day < self.end


def add_months(day: date, months: int) -> date:
    """Move `day` by whole months, keeping the day of the month where it exists.

    A day past the end of the target month becomes its last day, so 31 January
    plus one month is 28 or 29 February.
    """
    target = Period.of(day).shift(months)
    return date(target.year, target.month, min(day.day, target.last_day.day))


def parse_date(text: str) -> date:
    """Parse YYYY-MM-DD, raising `InvalidPeriodError` with the expected format."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError as error:
        raise InvalidPeriodError(
            f"invalid date {text!r}: expected YYYY-MM-DD, such as 2026-12-05"
        ) from error


def local_date(moment: datetime, zone: ZoneInfo) -> date:
    """Return the calendar date of an aware `moment` in the time zone `zone`."""
    if moment.tzinfo is None:
        raise ValueError("local_date needs a timezone-aware datetime")
    return moment.astimezone(zone).date()
