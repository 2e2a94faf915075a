from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.slack_blocks import state_line
from services.models import TaskState
from services.views import TaskView


def _sent(delivery: str, detail: str = "") -> TaskView:
    return TaskView(
        id=1,
        period="2026-11",
        client_code="LT-1",
        client_name="UAB Klientas",
        recipients=("a@klientas.lt",),
        documents=1,
        totals={"EUR": "1.00"},
        state=TaskState.SENT,
        sent_at=datetime(2026, 12, 3, 9, 0, tzinfo=UTC),
        delivery_status=delivery,
        delivery_detail=detail,
    )


@pytest.mark.parametrize("event", ["bounce", "dropped", "blocked"])
def test_undelivered_sent_task_warns(event: str) -> None:
    line = state_line(_sent(event, "550 5.1.1 mailbox unavailable"))

    assert line.startswith(":warning:")
    assert "not delivered" in line
    assert "550 5.1.1 mailbox unavailable" in line
    assert "/invoices email LT-1" in line


def test_delivered_sent_task_is_ticked() -> None:
    line = state_line(_sent("delivered"))

    assert line.startswith(":white_check_mark: Sent")
    assert "delivery: delivered" in line
