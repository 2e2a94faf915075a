"""Every command and click is acknowledged within three seconds."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from services import jobs
from tests import slack_fixtures
from tests.slack_fixtures import PERIOD, Reply, SlackApp, add_clients, month_message

slack_standin = slack_fixtures.slack_standin
sendgrid_standin = slack_fixtures.sendgrid_standin
slack_context = slack_fixtures.slack_context
slack_app = slack_fixtures.slack_app

SLACK_DEADLINE_SECONDS = 3.0
TASK = json.dumps({"task": 1, "period": PERIOD, "client": "K0001"})
MONTH = json.dumps({"period": PERIOD})


def _every_request(app: SlackApp) -> list[Reply]:
    return [
        app.command("help"),
        app.command("status"),
        app.command("new"),
        app.command("generate"),
        app.command("send"),
        app.command("preview K0001"),
        app.command("email K0002 naujas@example.com"),
        app.command("exclude K0003 prepaid"),
        app.command("include K0003"),
        app.click("run_generate", MONTH),
        app.click("task_send", TASK),
        app.click("task_retry", TASK),
        app.click("task_skip", TASK),
        app.click("task_preview", TASK),
        app.click("run_send_all", MONTH),
        app.submit_view(
            "skip_task", {"reason": {"value": {"value": "paid"}}}, private_metadata=TASK
        ),
        app.event({"type": "app_home_opened", "user": "U0FIN1", "tab": "home"}),
    ]


@pytest.fixture
def slow_database(slack_app: SlackApp) -> Iterator[None]:
    """Make every SQL statement of the app wait a second while the test runs."""
    slow = threading.Event()
    slow.set()

    def wait(*args: Any) -> None:
        if slow.is_set():
            time.sleep(1.0)

    event.listen(slack_app.context.engine, "before_cursor_execute", wait)
    yield
    # Removing the listener while other threads run statements would race.
    slow.clear()
    # Let the work that runs after each acknowledgement finish before the
    # database goes away, so that no connection is left open.
    _stop_worker(slack_app)
    time.sleep(2.0)


def _stop_worker(app: SlackApp) -> None:
    app.worker.stop()
    slack_fixtures.wait_for(
        lambda: all(
            job.state != jobs.RUNNING
            for job in (jobs.get_job(app.factory, 1),)
            if job is not None
        ),
        timeout=60,
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_acks_during_large_generation(slack_app: SlackApp) -> None:
    add_clients(slack_app.factory, 300)
    slack_fixtures.generate_month(slack_app, wait=False)
    slack_fixtures.wait_for(
        lambda: "Generated" in json.dumps(month_message(slack_app).blocks)
    )

    replies = _every_request(slack_app)
    running = jobs.get_job(slack_app.factory, 1)
    _stop_worker(slack_app)

    assert running is not None
    assert running.state == jobs.RUNNING
    assert [reply.status for reply in replies] == [200] * len(replies)
    assert max(reply.seconds for reply in replies) < SLACK_DEADLINE_SECONDS


def test_acks_with_slow_database(slack_app: SlackApp, slow_database: None) -> None:
    replies = _every_request(slack_app)

    assert [reply.status for reply in replies] == [200] * len(replies)
    assert max(reply.seconds for reply in replies) < SLACK_DEADLINE_SECONDS
