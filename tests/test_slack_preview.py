"""Preview: a private reply that links the client's message, with the PDF uploaded."""

from __future__ import annotations

import json
import threading

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack_client import make_web_client
from bot.slack_messages import SlackMessages
from services.periods import Period
from services.runs import run_status
from tests import slack_fixtures
from tests.slack_fixtures import (
    CHANNEL,
    FINANCE_USER,
    OUTSIDER,
    PERIOD,
    Message,
    SlackApp,
    add_clients,
    buttons,
)
from tests.standins.slack import BOT_TOKEN, SlackStandin

slack_standin = slack_fixtures.slack_standin
sendgrid_standin = slack_fixtures.sendgrid_standin
slack_context = slack_fixtures.slack_context
slack_app = slack_fixtures.slack_app


def _client_message(app: SlackApp, month: Message, code: str) -> Message:
    [message] = [
        item
        for item in app.slack.thread(CHANNEL, month.ts)
        if f"({code}):" in item.text
    ]
    return message


def _files_titled(app: SlackApp, month: Message, title: str) -> list[str]:
    return [
        item.id
        for item in app.slack.shared_files(CHANNEL, month.ts)
        if item.title == title
    ]


def _permalink(app: SlackApp, message: Message) -> str:
    answer = app.slack.answer(
        "chat.getPermalink", {"channel": CHANNEL, "message_ts": message.ts}
    )
    return str(answer["permalink"])


def test_preview_uploads_missing_pdf_once(slack_app: SlackApp) -> None:
    add_clients(slack_app.factory, 2)
    slack_app.slack.fail("files.completeUploadExternal", "not_in_channel")
    month = slack_fixtures.generate_month(slack_app)
    missing = _client_message(slack_app, month, "K0000")
    uploaded = _client_message(slack_app, month, "K0001")
    [missing_preview] = buttons(missing.blocks, "task_preview")
    [uploaded_preview] = buttons(uploaded.blocks, "task_preview")
    files_before = _files_titled(slack_app, month, f"UAB „Klientas 0“ {PERIOD}")
    uploads_before = len(slack_app.slack.calls_to("files.getUploadURLExternal"))

    replies = [
        slack_app.click("task_preview", missing_preview["value"], user=user)
        for user in (FINANCE_USER, OUTSIDER)
    ]
    slack_app.click("task_preview", uploaded_preview["value"])
    slack_app.wait_for_jobs(4)
    status = run_status(slack_app.factory, Period.parse(PERIOD))

    assert [reply.status for reply in replies] == [200, 200]
    assert files_before == []
    assert len(_files_titled(slack_app, month, f"UAB „Klientas 0“ {PERIOD}")) == 1
    assert len(_files_titled(slack_app, month, f"UAB „Klientas 1“ {PERIOD}")) == 1
    uploads = len(slack_app.slack.calls_to("files.getUploadURLExternal"))
    assert uploads == uploads_before + 1
    assert all(task.slack_file_id for task in status.tasks)
    [first, second] = [
        item
        for item in slack_app.slack.ephemerals
        if "(K0000, ready to send)" in item.text
    ]
    assert (first.user, second.user) == (FINANCE_USER, OUTSIDER)
    assert first.channel == CHANNEL
    assert f"<{_permalink(slack_app, missing)}|" in first.text
    assert f"<{_permalink(slack_app, missing)}|" in second.text
    [other] = slack_app.slack.ephemerals_to(FINANCE_USER)[1:]
    assert f"<{_permalink(slack_app, uploaded)}|" in other.text
    linked = [
        call.params["message_ts"]
        for call in slack_app.slack.calls_to("chat.getPermalink")
    ]
    assert linked == [missing.ts, missing.ts, uploaded.ts]


def test_preview_without_task_is_explained(slack_app: SlackApp) -> None:
    add_clients(slack_app.factory, 1)
    add_clients(slack_app.factory, 1, excluded=True, first=1)
    slack_fixtures.generate_month(slack_app)
    uploads_before = len(slack_app.slack.calls_to("files.getUploadURLExternal"))
    value = json.dumps({"period": PERIOD, "client": "K0001"})

    slack_app.command(f"preview K0001 {PERIOD}")
    slack_app.click("task_preview", value)
    slack_app.wait_for_jobs(3)

    expected = "K0001 has no client task for 2026-11, so there is no PDF to preview."
    [by_command, by_click] = slack_app.slack.ephemerals_to(FINANCE_USER)
    assert by_command.text.startswith(expected)
    assert by_click.text.startswith(expected)
    assert slack_app.slack.responses[0]["text"].startswith(
        "Looking up the PDF of K0001"
    )
    uploads = len(slack_app.slack.calls_to("files.getUploadURLExternal"))
    assert uploads == uploads_before
    assert slack_app.slack.calls_to("chat.getPermalink") == []


@pytest.mark.parametrize(
    ("channel", "which", "error"),
    [
        ("C0NOWHERE", "month", "channel_not_found"),
        (CHANNEL, "unknown", "message_not_found"),
    ],
    ids=["unknown-channel", "unknown-ts"],
)
def test_permalink_errors_match_slack(
    slack_standin: SlackStandin, channel: str, which: str, error: str
) -> None:
    client = WebClient(token=BOT_TOKEN, base_url=slack_standin.base_url)
    month = client.chat_postMessage(channel=CHANNEL, text="month")
    ts = str(month["ts"]) if which == "month" else "1700000000.999999"

    with pytest.raises(SlackApiError) as raised:
        client.chat_getPermalink(channel=channel, message_ts=ts)

    assert raised.value.response.status_code == 200
    assert raised.value.response["error"] == error


def test_permalink_names_thread_of_reply(slack_standin: SlackStandin) -> None:
    client = WebClient(token=BOT_TOKEN, base_url=slack_standin.base_url)
    month = client.chat_postMessage(channel=CHANNEL, text="month")
    reply = client.chat_postMessage(
        channel=CHANNEL, text="client", thread_ts=month["ts"]
    )

    top = client.chat_getPermalink(channel=CHANNEL, message_ts=month["ts"])
    inner = client.chat_getPermalink(channel=CHANNEL, message_ts=reply["ts"])

    assert top["channel"] == CHANNEL
    assert top["permalink"] == (
        f"https://standin.slack.com/archives/{CHANNEL}/"
        f"p{str(month['ts']).replace('.', '')}"
    )
    assert inner["permalink"] == (
        f"https://standin.slack.com/archives/{CHANNEL}/"
        f"p{str(reply['ts']).replace('.', '')}"
        f"?thread_ts={month['ts']}&cid={CHANNEL}"
    )
    assert (
        slack_standin.calls_to("chat.getPermalink")[0].headers.get("authorization")
        == f"Bearer {BOT_TOKEN}"
    )


def test_two_processes_upload_one_pdf_once(slack_app: SlackApp) -> None:
    add_clients(slack_app.factory, 1)
    slack_app.slack.fail("files.completeUploadExternal", "not_in_channel")
    month = slack_fixtures.generate_month(slack_app)
    [task] = run_status(slack_app.factory, Period.parse(PERIOD)).tasks
    uploads_before = len(slack_app.slack.calls_to("files.getUploadURLExternal"))
    slack_app.slack.slow_down("files.completeUploadExternal", 1.0)
    barrier = threading.Barrier(2)
    results: list[bool] = []

    def upload() -> None:
        settings = slack_app.context.settings
        messages = SlackMessages(
            slack_app.factory, make_web_client(settings), channel=CHANNEL
        )
        barrier.wait()
        results.append(messages.upload_pdf(task, channel=CHANNEL, thread=month.ts))

    uploaders = [threading.Thread(target=upload) for _ in range(2)]
    for uploader in uploaders:
        uploader.start()
    for uploader in uploaders:
        uploader.join(timeout=30)

    uploads = len(slack_app.slack.calls_to("files.getUploadURLExternal"))
    assert results == [True, True]
    assert uploads == uploads_before + 1
    assert len(_files_titled(slack_app, month, f"UAB „Klientas 0“ {PERIOD}")) == 1
