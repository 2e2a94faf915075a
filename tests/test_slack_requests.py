"""Requests the app cannot use get a clear reply instead of a server error."""

from __future__ import annotations

import http.client
import json
import socket
import time
from urllib.parse import urlsplit

import pytest

from bot import web
from bot.web import MAX_BODY_BYTES
from services.periods import Period
from services.runs import run_status
from tests import slack_fixtures
from tests.slack_fixtures import CHANNEL, FINANCE_USER, SlackApp, add_clients, sign

slack_standin = slack_fixtures.slack_standin
sendgrid_standin = slack_fixtures.sendgrid_standin
slack_context = slack_fixtures.slack_context
slack_app = slack_fixtures.slack_app

DAMAGED = "This button cannot be used"


def test_payload_not_json_is_400(slack_app: SlackApp) -> None:
    reply = slack_app.post(b"payload=%7Bnot-json")

    assert reply.status == 400
    assert "JSON payload" in reply.body
    assert reply.seconds < 3
    assert slack_app.job_count() == 0


def test_body_not_utf8_is_400(slack_app: SlackApp) -> None:
    reply = slack_app.post(b"text=\xff\xfe", content_type="application/json")

    assert reply.status == 400
    assert "UTF-8" in reply.body


def test_oversized_body_is_answered_413(slack_app: SlackApp) -> None:
    body = b"x" * (MAX_BODY_BYTES + 1)
    stamp = int(time.time())
    parts = urlsplit(slack_app.url)
    connection = http.client.HTTPConnection(
        parts.hostname or "", parts.port, timeout=30
    )
    try:
        connection.request(
            "POST",
            "/slack/events",
            body=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": str(stamp),
                "X-Slack-Signature": sign(body, stamp),
            },
        )
        response = connection.getresponse()
        answer = response.read()
    finally:
        connection.close()

    assert response.status == 413
    assert b"too large" in answer


@pytest.mark.parametrize(
    "body",
    [b"payload=%5B1%2C2%5D", b"payload=5", b"payload=null"],
    ids=["list", "number", "null"],
)
def test_payload_not_object_is_400(slack_app: SlackApp, body: bytes) -> None:
    reply = slack_app.post(body)

    assert reply.status == 400


def _raw_request(app: SlackApp, head: bytes) -> bytes:
    """Send the bytes as they are and return the first bytes of the reply."""
    parts = urlsplit(app.url)
    with socket.create_connection((parts.hostname or "", parts.port or 80)) as sock:
        sock.settimeout(20)
        sock.sendall(head)
        return sock.recv(4096)


def test_negative_content_length_is_400(slack_app: SlackApp) -> None:
    answer = _raw_request(
        slack_app,
        b"POST /slack/events HTTP/1.1\r\nHost: app\r\nContent-Length: -5\r\n\r\n",
    )

    assert answer.startswith(b"HTTP/1.0 400")


def test_stalled_body_gets_408(
    slack_app: SlackApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web, "BODY_TIMEOUT_SECONDS", 0.5)
    started = time.monotonic()

    answer = _raw_request(
        slack_app,
        b"POST /slack/events HTTP/1.1\r\nHost: app\r\nContent-Length: 1000\r\n"
        b"\r\npayload=",
    )

    assert answer.startswith(b"HTTP/1.0 408")
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("action_id", "value"),
    [
        ("run_send_all", "{}"),
        ("run_send_all", "not json"),
        ("run_generate", json.dumps({"period": "2026-13"})),
        ("task_send", json.dumps({"period": slack_fixtures.PERIOD, "client": 7})),
        ("task_send", json.dumps({"period": slack_fixtures.PERIOD})),
        ("task_retry", json.dumps({"period": slack_fixtures.PERIOD})),
        ("task_send_again", json.dumps({"period": slack_fixtures.PERIOD})),
        ("task_send", "5"),
        ("task_send", 5),
        ("task_preview", json.dumps({"period": slack_fixtures.PERIOD})),
        ("task_skip", json.dumps({"period": slack_fixtures.PERIOD, "client": ""})),
    ],
)
def test_damaged_button_value_is_refused_with_a_reply(
    slack_app: SlackApp, action_id: str, value: object
) -> None:
    add_clients(slack_app.factory, 1)
    slack_fixtures.generate_month(slack_app)
    jobs_before = slack_app.job_count()

    reply = slack_app.click(action_id, value)

    assert reply.status == 200
    assert slack_app.job_count() == jobs_before
    [refusal] = [
        item
        for item in slack_app.slack.ephemerals_to(FINANCE_USER)
        if item.text.startswith(DAMAGED)
    ]
    assert refusal.channel == slack_fixtures.CHANNEL


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({}, "period"),
        ({"period": {"value": {"selected_option": {"value": "2026-13"}}}}, "period"),
        (
            {
                "period": {"value": {"selected_option": {"value": "2026-11"}}},
                "planned_start": {"value": {"selected_date": "someday"}},
            },
            "planned_start",
        ),
    ],
    ids=["empty", "bad-month", "bad-date"],
)
def test_unreadable_new_month_form_marks_field(
    slack_app: SlackApp, values: dict[str, object], field: str
) -> None:
    reply = slack_app.submit_view("new_run", values)

    assert reply.status == 200
    assert json.loads(reply.body) == {
        "response_action": "errors",
        "errors": {field: "Choose a value here."},
    }


@pytest.mark.parametrize(
    "metadata",
    ["not json", "[1]", json.dumps({"period": "2026-11", "task": 1})],
    ids=["not-json", "list", "no-client"],
)
def test_unreadable_skip_form_is_refused(slack_app: SlackApp, metadata: str) -> None:
    reply = slack_app.submit_view(
        "skip_task", {"reason": {"value": {"value": "paid"}}}, private_metadata=metadata
    )
    slack_fixtures.wait_for(lambda: bool(slack_app.slack.ephemerals_to(FINANCE_USER)))

    [refusal] = slack_app.slack.ephemerals_to(FINANCE_USER)
    assert reply.status == 200
    assert refusal.text.startswith("This form cannot be used")


HOME_OPENED = {"type": "app_home_opened", "user": FINANCE_USER, "tab": "home"}


def test_retry_after_slow_reply_is_dropped(slack_app: SlackApp) -> None:
    timeout = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    error = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_error"}

    dropped = slack_app.event(HOME_OPENED, headers=timeout)
    handled = slack_app.event(HOME_OPENED, headers=error)
    slack_fixtures.wait_for(lambda: bool(slack_app.slack.calls_to("views.publish")))
    time.sleep(1.0)

    assert [dropped.status, handled.status] == [200, 200]
    assert len(slack_app.slack.calls_to("views.publish")) == 1


def test_unsigned_retry_is_still_refused(slack_app: SlackApp) -> None:
    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}

    reply = slack_app.event(HOME_OPENED, headers=retry, signature="v0=forged")

    assert reply.status == 401


def test_dripped_body_gets_408(
    slack_app: SlackApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web, "BODY_TIMEOUT_SECONDS", 1.0)
    parts = urlsplit(slack_app.url)
    started = time.monotonic()
    with socket.create_connection((parts.hostname or "", parts.port or 80)) as sock:
        sock.settimeout(20)
        sock.sendall(
            b"POST /slack/events HTTP/1.1\r\nHost: app\r\nContent-Length: 40\r\n\r\n"
        )
        answer = b""
        for _ in range(30):
            # One byte every 0.3 s never stalls a read for the whole second.
            sock.sendall(b"x")
            time.sleep(0.3)
            sock.setblocking(False)
            try:
                answer = sock.recv(4096)
            except BlockingIOError:
                answer = b""
            finally:
                sock.setblocking(True)
            if answer:
                break

    assert answer.startswith(b"HTTP/1.0 408")
    assert time.monotonic() - started < 5


def test_skip_form_redraws_the_skipped_task(slack_app: SlackApp) -> None:
    add_clients(slack_app.factory, 2)
    month = slack_fixtures.generate_month(slack_app)
    [first, second] = sorted(
        run_status(slack_app.factory, Period.parse(slack_fixtures.PERIOD)).tasks,
        key=lambda task: task.client_code,
    )
    # The metadata names the second client's task id with the first client.
    metadata = json.dumps(
        {
            "period": slack_fixtures.PERIOD,
            "client": first.client_code,
            "task": second.id,
        }
    )

    reply = slack_app.submit_view(
        "skip_task", {"reason": {"value": {"value": "paid"}}}, private_metadata=metadata
    )
    slack_fixtures.wait_for(
        lambda: "skipped" in _message_of(slack_app, month, first.client_code)
    )

    assert reply.status == 200
    assert "skipped" not in _message_of(slack_app, month, second.client_code)


def _message_of(app: SlackApp, month: slack_fixtures.Message, code: str) -> str:
    [message] = [
        item for item in app.slack.thread(CHANNEL, month.ts) if f"({code})" in item.text
    ]
    return message.text.lower()
