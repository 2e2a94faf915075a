"""Benchmark a month of invoice-lists on a synthetic company, on SQLite and PostgreSQL.

    python bench/run.py [--database sqlite|postgresql|both] [--scale FACTOR]

At scale 1 the company has 10,000 clients and 1,000,000 documents over 2026.
Months 1 to 11 are loaded in bulk, outside the timed steps. Then each step
runs in a fresh process: importing December from an i.SAF file, generating
December (about 40% of the clients), sending it to the SendGrid stand-in with
100 ms latency, and generating November, in which every client has documents.
The PDF comparison with reportlab runs once.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from isaf_file import write_isaf
from loading import load_history, next_document_id
from sqlalchemy import text
from sqlalchemy.engine import make_url
from step import RESULT_PREFIX
from synthetic import FULL_MONTH, TARGET_MONTH, Company

from services.db import make_engine, make_session_factory, upgrade
from services.runs import create_run

BENCH_DIR = Path(__file__).resolve().parent
POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
SENDGRID_KEY = "SG.standin-key.0123456789"
SENDER = "saskaitos@example.com"
LATENCY_SECONDS = 0.1
# Set by --profile: where each step's cProfile stats file goes.
PROFILE_DIR: list[Path] = []


def main() -> None:
    options = _parse_arguments()
    company = Company(scale=options.scale)
    clients = company.clients()
    workdir = Path(tempfile.mkdtemp(prefix="invoice-lists-bench-"))
    print(f"Scale {options.scale}: {len(clients)} clients; files in {workdir}")

    if options.profile:
        PROFILE_DIR.append(workdir)
    isaf_path = workdir / f"isaf-{TARGET_MONTH}.xml"
    by_id = {client.id: client for client in clients}
    results: dict[str, Any] = {"scale": options.scale, "machine": machine()}

    pdf = run_step({"step": "pdf", "pdf_rows": [20, 150], "pdf_repeats": 40})
    results["pdf"] = pdf

    output = workdir / "results.json"
    databases = ["sqlite", "postgresql"] if options.database == "both" else []
    for database in databases or [options.database]:
        url, drop = create_database(database, workdir, options.postgres_url)
        try:
            results[database] = {"steps": {}}
            bench_database(url, company, clients, by_id, isaf_path, results[database])
        finally:
            drop()
            # Written after each database, so a failed step keeps the others.
            output.write_text(json.dumps(results, indent=2, default=str))

    print_results(results)
    print(f"\nFigures as JSON: {output}")


def _parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database", choices=["sqlite", "postgresql", "both"], default="both"
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="size of the company relative to 10,000 clients and 1,000,000 "
        "documents; 0.1 gives a run of about a minute",
    )
    parser.add_argument(
        "--postgres-url",
        default=POSTGRES_ADMIN_URL,
        help="a PostgreSQL server that allows CREATE DATABASE; the benchmark "
        "creates a fresh database there and drops it at the end",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run each step under cProfile and keep its stats file next to the "
        "results (the times then include the profiler's overhead)",
    )
    return parser.parse_args()


def create_database(database: str, workdir: Path, admin_url: str) -> tuple[str, Any]:
    """Create an empty database and return its URL and a function that drops it."""
    if database == "sqlite":
        path = workdir / "bench.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}", lambda: None

    name = f"invoice_lists_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(admin_url)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


def bench_database(
    url: str,
    company: Company,
    clients: list[Any],
    by_id: dict[int, Any],
    isaf_path: Path,
    figures: dict[str, Any],
) -> None:
    """Load the history into the database at `url` and run each step on it."""
    database = make_url(url).get_backend_name()
    print(f"\n{database}: loading the history of {TARGET_MONTH.year}…", flush=True)
    engine = make_engine(url)
    upgrade(engine)
    started = time.perf_counter()
    counts = load_history(engine, company, clients)
    figures["load"] = {"seconds": time.perf_counter() - started, **counts}
    print(f"  loaded {counts} in {figures['load']['seconds']:.1f} s", flush=True)

    if not isaf_path.exists():
        documents = company.documents(clients, TARGET_MONTH, next_document_id(engine))
        invoices = write_isaf(isaf_path, TARGET_MONTH, by_id, documents)
        print(f"  wrote {invoices} invoices to {isaf_path.name}", flush=True)

    factory = make_session_factory(engine)
    for period in (FULL_MONTH, TARGET_MONTH):
        create_run(
            factory,
            period,
            planned_start=date(period.end.year, period.end.month, 2),
            planned_end=date(period.end.year, period.end.month, 10),
            actor="bench",
        )
    figures["version"] = _server_version(engine)
    engine.dispose()

    base = {"url": url}
    steps = figures["steps"]
    steps["import"] = run_step(base | {"step": "import", "isaf": str(isaf_path)})
    steps["generate"] = run_step(
        base | {"step": "generate", "period": str(TARGET_MONTH)}
    )
    steps["send"] = run_send(base | {"step": "send", "period": str(TARGET_MONTH)})
    steps["generate_full"] = run_step(
        base | {"step": "generate", "period": str(FULL_MONTH)}
    )


def run_send(config: dict[str, Any]) -> dict[str, Any]:
    """Run the send step against a stand-in served by a process of its own."""
    server = subprocess.Popen(
        [sys.executable, str(BENCH_DIR / "sendgrid_server.py"), str(LATENCY_SECONDS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdin is not None
    assert server.stdout is not None
    try:
        url = server.stdout.readline().strip()
        config |= {"sendgrid_url": url, "sendgrid_key": SENDGRID_KEY, "sender": SENDER}
        figures = run_step(config)
    finally:
        server.stdin.close()
        received = server.stdout.readline()
        server.wait(timeout=30)
    figures["standin"] = json.loads(received) if received else {}
    return figures


def run_step(config: dict[str, Any]) -> dict[str, Any]:
    label = config["step"] + (f" {config['period']}" if "period" in config else "")
    print(f"  {label}…", flush=True)
    if PROFILE_DIR:
        name = label.replace(" ", "-") + f"-{uuid.uuid4().hex[:6]}.prof"
        config = config | {"profile": str(PROFILE_DIR[0] / name)}
    completed = subprocess.run(
        [sys.executable, str(BENCH_DIR / "step.py"), json.dumps(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [
        line for line in completed.stdout.splitlines() if line.startswith(RESULT_PREFIX)
    ]
    if completed.returncode != 0 or not lines:
        sys.stderr.write(completed.stderr[-4000:])
        raise SystemExit(f"the step {label} failed with status {completed.returncode}")
    figures: dict[str, Any] = json.loads(lines[-1][len(RESULT_PREFIX) :])
    # The 1-minute load average after the step: other work on the machine shows.
    figures["load_average"] = os.getloadavg()[0]
    print(f"    {figures['seconds']:.1f} s, {figures.get('summary', '')}", flush=True)
    return figures


def _server_version(engine: Any) -> str:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            return "SQLite " + str(
                connection.exec_driver_sql("SELECT sqlite_version()").scalar()
            )
        version = str(connection.exec_driver_sql("SHOW server_version").scalar())
        return f"PostgreSQL {version}"


def machine() -> dict[str, str]:
    cpu = ""
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = subprocess.run(
        ["free", "-h"], capture_output=True, text=True, check=False
    ).stdout
    cores = subprocess.run(["nproc"], capture_output=True, text=True, check=False)
    return {
        "cpu": cpu,
        "nproc": cores.stdout.strip(),
        "memory": memory.splitlines()[1] if memory else "",
        "python": platform.python_version(),
    }


def print_results(results: dict[str, Any]) -> None:
    info = results["machine"]
    print(f"\nMachine: {info['cpu']}, {info['nproc']} cores, Python {info['python']}")
    print(f"Memory: {info['memory']}")

    header = (
        f"{'database':<11} {'step':<24} {'items':>7} {'seconds':>8} {'per s':>8} "
        f"{'peak MiB':>9} {'queries':>8} {'updates/s':>9}"
    )
    print("\n" + header)
    print("-" * len(header))
    for database in ("sqlite", "postgresql"):
        if database not in results:
            continue
        figures = results[database]
        load = figures.get("load", {"documents": 0, "seconds": 0.0})
        print(
            f"{database:<11} {'load history (untimed)':<24} "
            f"{load['documents']:>7} {load['seconds']:>8.1f}"
        )
        for name, step in figures["steps"].items():
            print(_step_line(database, name, step))

    print("\nPDF of one statement, DejaVu Sans, mean of repeated renders:")
    for key, value in results["pdf"].items():
        if key.startswith("pdf_"):
            print(
                f"  {value['rows']:>4} rows: "
                f"services.pdf {value['project_ms']:.1f} ms, "
                f"reportlab {value['reportlab_ms']:.1f} ms, "
                f"ratio {value['ratio']:.2f}"
            )


def _step_line(database: str, name: str, step: dict[str, Any]) -> str:
    labels = {
        "import": f"import i.SAF {TARGET_MONTH}",
        "generate": f"generate {TARGET_MONTH}",
        "send": f"send {TARGET_MONTH}",
        "generate_full": f"generate {FULL_MONTH} (all)",
    }
    items = int(step.get("items", 0))
    seconds = float(step["seconds"])
    rate = items / seconds if seconds else 0.0
    updates = step.get("max_updates_per_second", "")
    return (
        f"{database:<11} {labels.get(name, name):<24} {items:>7} {seconds:>8.1f} "
        f"{rate:>8.1f} {step['peak_mib']:>9.0f} {step['queries']:>8} {updates!s:>9}"
    )


if __name__ == "__main__":
    main()
