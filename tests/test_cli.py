"""The `invoices` command end to end, on both databases."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bot.cli import main
from bot.demo import SAMPLE_DATA
from services.periods import Period
from tests.standins.sendgrid import (
    API_KEY,
    VERIFIED_SENDER,
    SendGridStandin,
    run_standin,
)

ISAF = SAMPLE_DATA / "demo-isaf-2026-11.xml"
CLIENTS = SAMPLE_DATA / "demo-clients.csv"
# Clients in the demo i.SAF file with posted November documents, not excluded.
EXPECTED_CLIENTS = [
    "EE-2001",
    "LT-1001",
    "LT-1002",
    "LT-1003",
    "LT-1004",
    "LT-1005",
    "LT-1006",
    "LV-3001",
]
NEW_CLIENT_CSV = (
    "number,client_code,client_name,date,type,net,vat,gross,currency,vat_rate,status\n"
    "N-1,LT-9001,UAB „Naujokas“,2026-11-28,invoice,10.00,2.10,12.10,EUR,21,posted\n"
)

Invoke = Callable[..., Result]


@pytest.fixture
def sendgrid() -> Any:
    yield from run_standin()


@pytest.fixture
def invoke(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sendgrid: SendGridStandin,
) -> Invoke:
    monkeypatch.chdir(tmp_path)
    env = {
        "DATABASE_URL": database_url,
        "COMPANY_NAME": "UAB „Siuntėjas“",
        "COMPANY_CODE": "300000001",
        "COMPANY_VAT_CODE": "LT100000000017",
        "COMPANY_ADDRESS": "Gedimino pr. 1, Vilnius",
        "MAIL_FROM": VERIFIED_SENDER,
        "MAIL_FROM_NAME": "Apskaita",
        "SENDGRID_API_KEY": API_KEY,
        "SENDGRID_API_HOST": sendgrid.url,
        "OUTBOX_DIR": str(tmp_path / "outbox"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    def run(*args: str, expect: int = 0) -> Result:
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == expect, result.output
        return result

    return run


def _status(invoke: Invoke) -> dict[str, Any]:
    output: dict[str, Any] = json.loads(invoke("status", "2026-11", "--json").output)
    return output


def test_whole_month_flow(
    invoke: Invoke, sendgrid: SendGridStandin, tmp_path: Path
) -> None:
    invoke("import", "clients", str(CLIENTS))
    invoke("import", "isaf", str(ISAF))
    invoke("run", "create", "2026-11", "--start", "2026-12-03", "--end", "2026-12-10")

    invoke("run", "generate", "2026-11")
    first = _status(invoke)
    invoke("run", "generate", "2026-11")
    second = _status(invoke)
    new_client = tmp_path / "new-client.csv"
    new_client.write_text(NEW_CLIENT_CSV, encoding="utf-8")
    invoke("import", "documents", str(new_client))
    third_output = invoke("run", "generate", "2026-11").output
    third = _status(invoke)

    codes = [task["client_code"] for task in first["tasks"]]
    assert codes == EXPECTED_CLIENTS
    assert [task["client_code"] for task in second["tasks"]] == EXPECTED_CLIENTS
    assert sorted(task["client_code"] for task in third["tasks"]) == sorted(
        [*EXPECTED_CLIENTS, "LT-9001"]
    )
    assert ": 1 new," in third_output
    assert [client["client_code"] for client in first["excluded"]] == ["LT-1007"]
    december = json.loads(invoke("status", "2026-12", "--json").output)
    assert december["run"]["planned_start"] == "2027-01-03"
    assert december["run"]["planned_end"] == "2027-01-10"

    invoke("client", "email", "LT-9001", "naujokas@naujokas.example")
    invoke("run", "send", "2026-11")
    sent_once = len(sendgrid.mail_requests)
    invoke("run", "send", "2026-11")
    final = _status(invoke)

    states = {task["client_code"]: task["state"] for task in final["tasks"]}
    assert states.pop("LT-1002") == "missing_email"
    assert set(states.values()) == {"sent"}
    assert sent_once == len(states)
    assert len(sendgrid.mail_requests) == sent_once
    task_ids = [request.client_task_id for request in sendgrid.mail_requests]
    assert len(set(task_ids)) == len(task_ids)
    assert all(task["message_id"] for task in final["tasks"] if task["state"] == "sent")


def test_whole_month_totals(invoke: Invoke) -> None:
    invoke("import", "clients", str(CLIENTS))
    invoke("import", "isaf", str(ISAF))
    invoke("run", "create", "2026-11", "--start", "2026-12-03", "--end", "2026-12-10")

    invoke("run", "generate", "2026-11")

    tasks = {task["client_code"]: task for task in _status(invoke)["tasks"]}
    # 1512.50 + 87.20 + 4114.00 + 120.99 - 242.00 + 18.76
    assert tasks["LT-1001"]["totals"] == {"EUR": "5611.45"}
    assert tasks["LT-1001"]["documents"] == 5
    assert tasks["LT-1006"]["totals"] == {"EUR": "-496.10"}
    # The annulled invoice PVM-26-1113 is not listed.
    assert tasks["LT-1005"]["documents"] == 1
    assert tasks["LT-1001"]["recipients"] == [
        "buhalterija@baltijos-mediena.example",
        "direktorius@baltijos-mediena.example",
    ]
    assert tasks["LT-1004"]["recipients"] == ["Nuoma@Irankiai.example"]


def test_preview_writes_pdf(invoke: Invoke, tmp_path: Path) -> None:
    invoke("import", "clients", str(CLIENTS))
    invoke("import", "isaf", str(ISAF))
    invoke("run", "create", "2026-11", "--start", "2026-12-03", "--end", "2026-12-10")
    invoke("run", "generate", "2026-11")
    output = tmp_path / "preview.pdf"

    invoke("preview", "2026-11", "šviesūs", "--output", str(output))

    assert output.read_bytes().startswith(b"%PDF")


def test_commands_refuse_unmigrated_database(
    invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")

    result = invoke("status", expect=1)

    assert "invoices db upgrade" in result.output


def test_bad_month_is_rejected(invoke: Invoke) -> None:
    result = invoke("run", "generate", "2026-13", expect=2)

    assert "expected YYYY-MM" in result.output


def test_rejected_import_exits_with_message(invoke: Invoke, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "code,name,email,language,address,exclude\n"
        "K-1,Vardenis,ne-adresas,lt,Vilnius,\n",
        encoding="utf-8",
    )

    result = invoke("import", "clients", str(bad), expect=1)

    assert "bad.csv" in result.output
    assert "ne-adresas" in result.output
    assert "nothing was imported" in result.output


def test_demo_sends_into_outbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sendgrid: SendGridStandin
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SENDGRID_API_KEY", API_KEY)
    monkeypatch.setenv("SENDGRID_API_HOST", sendgrid.url)

    result = CliRunner().invoke(main, ["demo"], catch_exceptions=False)

    assert result.exit_code == 0, result.output
    emails = sorted((tmp_path / "demo-output" / "outbox" / "2026-11").glob("*.eml"))
    pdfs = sorted((tmp_path / "demo-output" / "pdfs").glob("*.pdf"))
    assert len(emails) == len(EXPECTED_CLIENTS) - 1
    assert len(pdfs) == len(EXPECTED_CLIENTS)
    assert sendgrid.mail_requests == []
    message = message_from_bytes(emails[0].read_bytes(), policy=policy.default)
    attachments = list(message.iter_attachments())  # type: ignore[attr-defined]
    assert [part.get_content_type() for part in attachments] == ["application/pdf"]
    assert "demo-output" in result.output


def _generated_month(invoke: Invoke) -> None:
    invoke("import", "clients", str(CLIENTS))
    invoke("import", "isaf", str(ISAF))
    invoke("run", "create", "2026-11", "--start", "2026-12-03", "--end", "2026-12-10")
    invoke("run", "generate", "2026-11")


def test_generate_rejects_open_month(invoke: Invoke) -> None:
    today = date.today()
    month = f"{today.year:04d}-{today.month:02d}"
    start = Period.parse(month).end.isoformat()
    invoke("run", "create", month, "--start", start, "--end", start)

    result = invoke("run", "generate", month, expect=1)

    assert "has not ended yet" in result.output


def test_create_rejects_start_inside_month(invoke: Invoke) -> None:
    result = invoke(
        "run",
        "create",
        "2026-11",
        "--start",
        "2026-11-30",
        "--end",
        "2026-12-05",
        expect=1,
    )

    assert "before 2026-11 ends" in result.output


def test_send_and_skip_find_client_by_name(
    invoke: Invoke, sendgrid: SendGridStandin
) -> None:
    _generated_month(invoke)

    invoke("run", "send", "2026-11", "--client", "šviesūs")
    invoke("run", "skip", "2026-11", "--client", "rīgas", "--reason", "paid")

    states = {task["client_code"]: task["state"] for task in _status(invoke)["tasks"]}
    assert states["LT-1003"] == "sent"
    assert states["LV-3001"] == "skipped"
    assert len(sendgrid.mail_requests) == 1


def test_preview_into_missing_folder_is_an_error(
    invoke: Invoke, tmp_path: Path
) -> None:
    _generated_month(invoke)

    result = invoke(
        "preview",
        "2026-11",
        "LT-1001",
        "--output",
        str(tmp_path / "no" / "x.pdf"),
        expect=1,
    )

    assert "No such file or directory" in result.output
    assert "Traceback" not in result.output


def test_exclude_needs_a_reason(invoke: Invoke) -> None:
    invoke("import", "clients", str(CLIENTS))

    result = invoke("client", "exclude", "LT-1001", "--reason", " ", expect=1)

    assert "--reason is empty" in result.output


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param("mysql://x@127.0.0.1/x", "not installed", id="missing-driver"),
        pytest.param("sqlite:///{tmp}/none.db", "no database file", id="no-file"),
    ],
)
def test_bad_database_url_is_explained(
    invoke: Invoke,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    url: str,
    message: str,
) -> None:
    monkeypatch.setenv("DATABASE_URL", url.format(tmp=tmp_path))

    result = invoke("status", expect=1)

    assert message in result.output
    assert not (tmp_path / "none.db").exists()


def test_missing_company_settings_are_all_named(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoke("run", "create", "2026-11", "--start", "2026-12-03", "--end", "2026-12-10")
    monkeypatch.delenv("COMPANY_NAME")
    monkeypatch.delenv("COMPANY_CODE")

    result = invoke("run", "generate", "2026-11", expect=1)

    assert "COMPANY_NAME, COMPANY_CODE are not set" in result.output


def test_invalid_mail_from_is_rejected(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAIL_FROM", "not an address")

    result = invoke("status", expect=1)

    assert "MAIL_FROM" in result.output
    assert "not an e-mail address" in result.output


def test_db_upgrade_says_what_it_did(
    invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'new.db'}")

    first = invoke("db", "upgrade").output
    second = invoke("db", "upgrade").output

    assert first.startswith("Created the schema (revision 0001)")
    assert "is up to date (revision 0001)" in second
