"""Requests the app cannot use get a clear reply instead of a server error."""

from __future__ import annotations

import http.client
import json
import time
from urllib.parse import urlsplit

import pytest

from bot.web import MAX_BODY_BYTES
from tests import slack_fixtures
from tests.slack_fixtures import FINANCE_USER, SlackApp, add_clients, sign

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
