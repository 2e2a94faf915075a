"""Every message stays within the Block Kit limits for any number of clients."""

from __future__ import annotations

import json

import pytest

from tests import slack_fixtures
from tests.slack_fixtures import CHANNEL, SlackApp, add_clients, buttons
from tests.standins.slack import MAX_MESSAGE_BLOCKS, block_problems

slack_standin = slack_fixtures.slack_standin
sendgrid_standin = slack_fixtures.sendgrid_standin
slack_context = slack_fixtures.slack_context
slack_app = slack_fixtures.slack_app


# The limits do not depend on the database, so SQLite alone keeps this fast.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "count", [1, 24, 25, 26, 60, 140], ids=lambda count: f"{count}-clients"
)
def test_messages_within_limits(slack_app: SlackApp, count: int) -> None:
    codes = add_clients(
        slack_app.factory, count, long_names=True, without_email=frozenset({0})
    )
    add_clients(slack_app.factory, 14, excluded=True, first=count)

    message = slack_fixtures.generate_month(slack_app)
    slack_app.command("status")
    slack_app.event({"type": "app_home_opened", "user": "U0FIN1", "tab": "home"})
    slack_fixtures.wait_for(lambda: len(slack_app.slack.views) == 1)
    slack_fixtures.wait_for(lambda: len(slack_app.slack.responses) >= 1)

    rejected = [
        call
        for call in slack_app.slack.calls
        if call.response.get("error") == "invalid_blocks"
    ]
    assert rejected == []
    for method, blocks in slack_app.slack.iter_block_sets():
        assert block_problems(blocks, max_blocks=MAX_MESSAGE_BLOCKS) == [], method
    for response in slack_app.slack.responses:
        assert block_problems(response.get("blocks", []), max_blocks=50) == []
    thread = slack_app.slack.thread(CHANNEL, message.ts)
    assert len(thread) == count
    send_buttons = {
        json.loads(button["value"])["client"]: 0
        for item in thread
        for button in buttons(item.blocks, "task_send")
    }
    for item in thread:
        for button in buttons(item.blocks, "task_send"):
            send_buttons[json.loads(button["value"])["client"]] += 1
    assert set(send_buttons) == set(codes[1:])
    assert all(number == 1 for number in send_buttons.values())
    assert buttons(message.blocks, "task_send") == []
    assert "…and 4 more" in json.dumps(message.blocks, ensure_ascii=False)
