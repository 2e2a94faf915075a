"""Reminders when a month's planned start or end passes with work left."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker

from services.models import ClientTask, Run, RunState, TaskState
from services.periods import Period
from services.scheduling import send_reminders
from tests.factories import add_client

VILNIUS = ZoneInfo("Europe/Vilnius")


class RecordingNotifier:
    def __init__(self) -> None:
        self.texts: list[str] = []
        self.periods: list[Period] = []

    def post_run(self, period: Period, *, note: str = "") -> None:
        raise AssertionError("reminders never post a month")

    def post_text(self, text: str) -> None:
        raise AssertionError("reminders are posted about a month")

    def post_reminder(self, period: Period, text: str) -> None:
        self.periods.append(period)
        self.texts.append(text)

    def refresh_task(self, task_id: int) -> None:
        raise AssertionError("reminders never redraw a client task")


def _add_run(
    factory: sessionmaker[Session],
    *,
    state: RunState,
    tasks: dict[str, TaskState] | None = None,
) -> None:
    """Add November's task, planned from 3 to 10 December, with client tasks."""
    with factory() as session, session.begin():
        run = Run(
            period="2026-11",
            planned_start=date(2026, 12, 3),
            planned_end=date(2026, 12, 10),
            state=state,
        )
        session.add(run)
        for index, (name, task_state) in enumerate((tasks or {}).items()):
            client = add_client(session, f"C{index:03d}", name)
            session.add(ClientTask(run=run, client=client, state=task_state))


def _local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=VILNIUS)


def _remind(factory: sessionmaker[Session], now: datetime) -> list[str]:
    notifier = RecordingNotifier()
    keys = send_reminders(factory, notifier, VILNIUS, now=now)
    assert len(keys) == len(notifier.texts)
    assert set(notifier.periods) <= {Period(2026, 11)}
    return notifier.texts


def test_start_passed_ungenerated_reminds_once(factory: sessionmaker[Session]) -> None:
    _add_run(factory, state=RunState.PLANNED)

    on_the_day = _remind(factory, _local(3, 23, 59))
    after = _remind(factory, _local(4, 0, 1))
    again = _remind(factory, _local(4, 12))

    assert on_the_day == []
    assert len(after) == 1
    assert "2026-11" in after[0]
    assert "planned to start on 2026-12-03" in after[0]
    assert "not generated" in after[0]
    assert again == []


def test_start_uses_company_time_zone(factory: sessionmaker[Session]) -> None:
    _add_run(factory, state=RunState.PLANNED)

    texts = _remind(factory, datetime(2026, 12, 3, 22, 30, tzinfo=UTC))

    assert len(texts) == 1
    assert "planned to start" in texts[0]


def test_generated_month_gets_no_start_reminder(
    factory: sessionmaker[Session],
) -> None:
    _add_run(factory, state=RunState.GENERATED, tasks={"Alfa": TaskState.READY})

    assert _remind(factory, _local(5, 9)) == []


def test_end_passed_with_work_left_reminds_once(
    factory: sessionmaker[Session],
) -> None:
    _add_run(
        factory,
        state=RunState.GENERATED,
        tasks={
            "Alfa": TaskState.SENT,
            "Beta": TaskState.READY,
            "Gama": TaskState.FAILED,
            "Delta": TaskState.SKIPPED,
            "Epsilon": TaskState.MISSING_EMAIL,
            "Zeta": TaskState.READY,
        },
    )

    before = _remind(factory, _local(10, 23))
    after = _remind(factory, _local(11, 8))
    again = _remind(factory, _local(11, 9))

    assert before == []
    assert len(after) == 1
    text = after[0]
    assert "planned to end on 2026-12-10" in text
    assert "4 client tasks are not sent" in text
    assert "1 failed, 1 missing email, 2 ready" in text
    assert "Beta (ready)" in text
    assert "Epsilon (missing email)" in text
    assert "Gama (failed)" in text
    assert "Zeta (ready)" in text
    assert "Alfa" not in text
    assert "Delta" not in text
    assert again == []


def test_ungenerated_month_past_end_gets_both(factory: sessionmaker[Session]) -> None:
    _add_run(factory, state=RunState.PLANNED)

    texts = _remind(factory, _local(12, 9))

    assert len(texts) == 2
    assert "planned to start" in texts[0]
    assert "planned to end" in texts[1]
    assert "not generated" in texts[1]


@pytest.mark.parametrize(
    "state",
    [
        pytest.param(RunState.COMPLETE, id="complete"),
        pytest.param(RunState.GENERATED, id="generated-all-finished"),
    ],
)
def test_finished_month_gets_no_reminder(
    factory: sessionmaker[Session], state: RunState
) -> None:
    _add_run(
        factory,
        state=state,
        tasks={"Alfa": TaskState.SENT, "Beta": TaskState.SKIPPED},
    )

    assert _remind(factory, _local(20, 9)) == []


def test_reminder_lists_at_most_twenty_clients(
    factory: sessionmaker[Session],
) -> None:
    _add_run(
        factory,
        state=RunState.GENERATED,
        tasks={f"Client {number:02d}": TaskState.READY for number in range(25)},
    )

    (text,) = _remind(factory, _local(11, 9))

    assert "25 client tasks are not sent: 25 ready" in text
    assert "Client 19 (ready)" in text
    assert "Client 20" not in text
    assert "and 5 more" in text


def test_failed_reminder_is_retried(factory: sessionmaker[Session]) -> None:
    _add_run(factory, state=RunState.PLANNED)

    class Unreachable(RecordingNotifier):
        def post_reminder(self, period: Period, text: str) -> None:
            raise ConnectionError("Slack is unreachable")

    with pytest.raises(ConnectionError):
        send_reminders(factory, Unreachable(), VILNIUS, now=_local(4, 9))
    texts = _remind(factory, _local(4, 10))

    assert len(texts) == 1
