"""Sending through Slack: each e-mail goes out once whatever the clicks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from bot.worker import start_worker_thread
from services.models import TaskState
from services.periods import Period
from services.runs import run_status
from tests import slack_fixtures
from tests.slack_fixtures import (
    CHANNEL,
    SECOND_FINANCE_USER,
    SlackApp,
    add_clients,
    buttons,
    click_send_all,
    month_message,
)

slack_standin = slack_fixtures.slack_standin
sendgrid_standin = slack_fixtures.sendgrid_standin
slack_context = slack_fixtures.slack_context
slack_app = slack_fixtures.slack_app


def _sent_per_task(app: SlackApp) -> Counter[str]:
    return Counter(request.client_task_id for request in app.mail.mail_requests)


def _states(app: SlackApp) -> Counter[TaskState]:
    status = run_status(app.factory, Period.parse(slack_fixtures.PERIOD))
    return Counter(task.state for task in status.tasks)


def test_repeated_send_all_sends_once(slack_app: SlackApp) -> None:
    add_clients(slack_app.factory, 8)
    slack_fixtures.generate_month(slack_app)
    slack_app.mail.latency = 0.2
    [button] = buttons(month_message(slack_app).blocks, "run_send_all")
    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}

    first = click_send_all(slack_app, value=button["value"])
    time.sleep(1.0)
    second = click_send_all(slack_app, value=button["value"])
    replayed = click_send_all(slack_app, value=button["value"], headers=retry)
    slack_app.wait_for_jobs(2)

    assert [first.status, second.status, replayed.status] == [200, 200, 200]
    sent = _sent_per_task(slack_app)
    assert len(sent) == 8
    assert set(sent.values()) == {1}
    assert _states(slack_app) == Counter({TaskState.SENT: 8})


def test_two_users_clicking_at_once_send_once(slack_app: SlackApp) -> None:
    add_clients(slack_app.factory, 8)
    slack_fixtures.generate_month(slack_app)
    [button] = buttons(month_message(slack_app).blocks, "run_send_all")
    barrier = threading.Barrier(2)

    def click(user: str) -> None:
        barrier.wait()
        click_send_all(slack_app, user=user, value=button["value"])

    clickers = [
        threading.Thread(target=click, args=(user,))
        for user in (slack_fixtures.FINANCE_USER, SECOND_FINANCE_USER)
    ]
    for clicker in clickers:
        clicker.start()
    for clicker in clickers:
        clicker.join()
    slack_app.wait_for_jobs(2)

    sent = _sent_per_task(slack_app)
    assert len(sent) == 8
    assert set(sent.values()) == {1}


def test_send_report_and_failed_retry(slack_app: SlackApp) -> None:
    add_clients(slack_app.factory, 2)
    message = slack_fixtures.generate_month(slack_app)
    slack_app.mail.fail(400, "The to email does not contain a valid address.")

    click_send_all(slack_app)
    slack_app.wait_for_jobs(2)
    thread = slack_app.slack.thread(CHANNEL, message.ts)
    retries = [
        button
        for item in thread
        for button in slack_fixtures.buttons(item.blocks, "task_retry")
    ]
    report = thread[-1].text

    assert report.startswith("*Sending 2026-11 finished.* Sent 1, failed 1")
    assert len(retries) == 1
    slack_app.click("task_retry", retries[0]["value"], message_ts=message.ts)
    slack_app.wait_for_jobs(3)
    assert _states(slack_app) == Counter({TaskState.SENT: 2})
    assert set(_sent_per_task(slack_app).values()) == {1, 2}


def _worker_environment(app: SlackApp) -> dict[str, str]:
    settings = app.context.settings
    names = [
        "database_url",
        "company_name",
        "company_code",
        "company_vat_code",
        "company_address",
        "mail_from",
        "sendgrid_api_key",
        "sendgrid_api_host",
        "slack_bot_token",
        "slack_api_url",
        "slack_channel",
    ]
    environment = {key: value for key, value in os.environ.items() if key == "PATH"}
    for name in names:
        environment[name.upper()] = str(getattr(settings, name))
    return environment


WORKER_SCRIPT = """
from bot.context import build_context
from bot.settings import load_settings
from bot.worker import run_worker
run_worker(build_context(load_settings()), lease_seconds=2.0)
"""


def test_killed_worker_is_resumed(slack_app: SlackApp, tmp_path: Path) -> None:
    add_clients(slack_app.factory, 40)
    slack_fixtures.generate_month(slack_app)
    slack_app.worker.stop()
    time.sleep(0.5)
    slack_app.mail.latency = 0.3
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER_SCRIPT],
        cwd=tmp_path,
        env={**_worker_environment(slack_app), "PYTHONPATH": str(Path.cwd())},
    )

    click_send_all(slack_app)
    slack_fixtures.wait_for(lambda: len(slack_app.mail.mail_requests) >= 3, timeout=30)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    killed_after = len(slack_app.mail.mail_requests)
    # The latency only had to keep sends in flight when the worker was killed.
    slack_app.mail.latency = 0.0
    resumed = start_worker_thread(
        slack_app.context, lease_seconds=2.0, poll_seconds=0.2
    )
    slack_app.wait_for_jobs(2, timeout=60)
    resumed.stop()

    sent = _sent_per_task(slack_app)
    states = _states(slack_app)
    assert killed_after < 40
    # A request the kill cut off mid-body is not a sent e-mail. The stand-in
    # drops it as SendGrid does, so every task here was sent once at most.
    assert {task: count for task, count in sent.items() if count > 1} == {}
    assert states[TaskState.SENT] + states[TaskState.SENDING] == 40
    assert states[TaskState.SENT] > killed_after - states[TaskState.SENDING]
    assert states[TaskState.READY] == 0
