from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from services.imports import import_documents_csv, store

HEADER = (
    "number,client_code,client_name,date,type,net,vat,gross,currency,vat_rate,status"
)


def test_large_import_refreshes_postgresql_statistics(
    engine: Engine,
    factory: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(store, "ANALYZE_AFTER_ROWS", 2)
    path = tmp_path / "documents.csv"
    rows = [
        f"S-{day},K-1,UAB Klientas,2026-11-0{day},invoice,10.00,2.10,12.10,EUR,21,"
        "posted"
        for day in range(1, 4)
    ]
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    statements: list[str] = []

    def remember(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", remember)
    import_documents_csv(factory, path, zone=ZoneInfo("Europe/Vilnius"), actor="test")
    event.remove(engine, "before_cursor_execute", remember)

    analyzed = [
        statement for statement in statements if statement.startswith("ANALYZE")
    ]
    if engine.dialect.name == "postgresql":
        assert analyzed == ["ANALYZE documents", "ANALYZE document_lines"]
    else:
        assert analyzed == []
