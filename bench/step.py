"""Run one timed step in this fresh process and print its figures as JSON.

`python bench/step.py '{"step": "generate", ...}'` is started by bench/run.py,
so that every step's peak memory is its own. Memory is the resident set of
this process and its children (a process pool's workers), sampled from /proc
every 20 ms, and this process's own high-water mark.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

from services.db import make_engine, make_session_factory
from services.periods import Period

RESULT_PREFIX = "RESULT "
COMPANY = {
    "name": "UAB „Šiaurės žuvėdra“",
    "code": "300000001",
    "vat_code": "LT100000000017",
    "address": "Žalgirio g. 90, LT-09303 Vilnius",
}


class MemorySampler:
    """Track the peak resident set of this process and of all its descendants."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self.peak_kib = tree_rss_kib(os.getpid())
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        pid = os.getpid()
        while not self._stop.wait(self.interval):
            self.peak_kib = max(self.peak_kib, tree_rss_kib(pid))


def tree_rss_kib(pid: int) -> int:
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        total += _rss_kib(current)
        pending.extend(_children(current))
    return total


def _rss_kib(pid: int, field: str = "VmRSS") -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def own_peak_kib() -> int:
    """Return this process's peak resident set since it started its program.

    `ru_maxrss` would not do: Linux carries it over from the parent through
    fork and exec, so a child of a large parent reports the parent's peak.
    """
    return _rss_kib(os.getpid(), "VmHWM")


def _children(pid: int) -> list[int]:
    children: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as listing:
                children.extend(int(child) for child in listing.read().split())
    except OSError:
        pass
    return children


class QueryCounter:
    """Count the statements sent to the database and time each distinct SELECT."""

    def __init__(self, engine: Engine) -> None:
        self.kinds: Counter[str] = Counter()
        self.selects: dict[str, list[Any]] = {}
        self._started = 0.0
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.kinds[statement.lstrip().split(None, 1)[0].upper()] += 1
        self._started = time.perf_counter()

    def _after(
        self,
        _conn: Any,
        _cursor: Any,
        statement: str,
        parameters: Any,
        _context: Any,
        executemany: bool,
    ) -> None:
        if executemany or not statement.lstrip().upper().startswith("SELECT"):
            return
        elapsed = time.perf_counter() - self._started
        entry = self.selects.setdefault(statement, [0.0, 0, parameters])
        entry[0] += elapsed
        entry[1] += 1

    @property
    def total(self) -> int:
        return sum(self.kinds.values())

    def slowest_plans(self, engine: Engine, count: int = 3) -> list[dict[str, Any]]:
        """Explain the SELECTs that took the most time in all, with their plans."""
        ranked = sorted(self.selects.items(), key=lambda item: -item[1][0])[:count]
        sqlite = engine.dialect.name == "sqlite"
        prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
        plans = []
        with engine.connect() as connection:
            for statement, (seconds, calls, parameters) in ranked:
                rows = connection.exec_driver_sql(prefix + statement, parameters)
                plan = [str(row[-1] if sqlite else row[0])[:200] for row in rows]
                plans.append(
                    {
                        "statement": " ".join(statement.split())[:300],
                        "calls": calls,
                        "seconds": seconds,
                        "plan": plan,
                    }
                )
        return plans


class ProgressSink:
    """The Slack app's throttled progress callback, posting to a counter."""

    def __init__(self, verb: str) -> None:
        from bot.slack_jobs import _progress

        self.calls = 0
        self.updates: list[float] = []
        inner = _progress(self, Period(2026, 1), verb, lambda: False)  # type: ignore[arg-type]

        self.first_call = self.last_call = 0.0

        def report(done: int, total: int, label: str = "") -> None:
            self.last_call = time.monotonic()
            if not self.calls:
                self.first_call = self.last_call
            self.calls += 1
            inner(done, total, label)

        self.report: Callable[[int, int, str], None] = report

    def post_run(self, _period: Period, *, note: str = "") -> None:
        self.updates.append(time.monotonic())

    def max_per_second(self) -> int:
        """Return the maximum number of updates posted within one second."""
        best = 0
        start = 0
        for end, moment in enumerate(self.updates):
            while moment - self.updates[start] >= 1.0:
                start += 1
            best = max(best, end - start + 1)
        return best


def run_import(config: dict[str, Any], factory: Any) -> dict[str, Any]:
    from services.imports import import_isaf

    report = import_isaf(factory, [Path(config["isaf"])], actor="bench")
    return {"items": report.created, "summary": report.summary_line()}


def run_generate(config: dict[str, Any], factory: Any) -> dict[str, Any]:
    from services.runs import generate_run
    from services.statements import Company

    sink = ProgressSink("Generating")
    report = generate_run(
        factory,
        Period.parse(config["period"]),
        company=Company(**COMPANY),
        actor="bench",
        progress=sink.report,
    )
    return {
        "items": len(report.created) + len(report.regenerated),
        "summary": report.summary_line(),
        **_progress_figures(sink),
    }


def run_send(config: dict[str, Any], factory: Any) -> dict[str, Any]:
    from services.mail import Sender
    from services.sendgrid_backend import PooledTransport, SendGridBackend
    from services.sending import send_run

    url, key = config["sendgrid_url"], config["sendgrid_key"]
    transport = PooledTransport(url, key) if config.get("pooled", True) else None
    backend = SendGridBackend(api_key=key, host=url, transport=transport)
    sink = ProgressSink("Sending")
    report = send_run(
        factory,
        Period.parse(config["period"]),
        backend=backend,
        sender=Sender(config["sender"], "UAB „Šiaurės žuvėdra“ buhalterija"),
        actor="bench",
        progress=sink.report,
    )
    backend.close()
    return {"items": report.sent, "summary": report.summary_line()} | (
        _progress_figures(sink)
    )


def run_pdf(config: dict[str, Any], _factory: Any) -> dict[str, Any]:
    """Render the same statements with `services.pdf` and with reportlab."""
    from pdf_baseline import register_fonts, render_baseline_pdf

    from services.pdf import render_statement_pdf

    register_fonts()
    figures: dict[str, Any] = {"items": 0}
    for rows in config["pdf_rows"]:
        statement = sample_statement(rows)
        render_statement_pdf(statement)
        render_baseline_pdf(statement)
        repeats = max(3, config["pdf_repeats"] * 20 // rows)
        ours = _time_each(render_statement_pdf, statement, repeats)
        theirs = _time_each(render_baseline_pdf, statement, repeats)
        figures[f"pdf_{rows}"] = {
            "rows": rows,
            "repeats": repeats,
            "project_ms": ours * 1000,
            "reportlab_ms": theirs * 1000,
            "ratio": ours / theirs,
            "project_bytes": len(render_statement_pdf(statement)),
            "reportlab_bytes": len(render_baseline_pdf(statement)),
        }
        figures["items"] += repeats * 2
    return figures


def sample_statement(rows: int) -> Any:
    """Build a Lithuanian client's statement with `rows` synthetic documents."""
    import random

    from synthetic import TARGET_MONTH, Company, make_document

    from services.models import Document, DocumentLine, DocumentType
    from services.statements import Company as Sender
    from services.statements import Recipient, build_statement

    company = Company(scale=0.01)
    client = next(c for c in company.clients() if c.language == "lt" and c.vat_code)
    generator = random.Random(rows)
    documents = []
    for sequence in range(rows):
        synthetic = make_document(generator, sequence + 1, 1, TARGET_MONTH, sequence)
        documents.append(
            Document(
                number=synthetic.number,
                date=synthetic.date,
                type=DocumentType(synthetic.type),
                currency="EUR",
                net=synthetic.net,
                vat=synthetic.vat,
                gross=synthetic.gross,
                lines=[
                    DocumentLine(vat_rate=line.vat_rate, net=line.net, vat=line.vat)
                    for line in synthetic.lines
                ],
            )
        )
    recipient = Recipient(
        code=client.code,
        name=client.name,
        address=client.address,
        language=client.language,
        registration_code=client.registration_code,
        vat_code=client.vat_code,
    )
    return build_statement(Sender(**COMPANY), recipient, TARGET_MONTH, documents)


def _time_each(render: Callable[[Any], bytes], statement: Any, repeats: int) -> float:
    started = time.perf_counter()
    for _ in range(repeats):
        render(statement)
    return (time.perf_counter() - started) / repeats


def _progress_figures(sink: ProgressSink) -> dict[str, Any]:
    return {
        "progress_calls": sink.calls,
        "progress_updates": len(sink.updates),
        "max_updates_per_second": sink.max_per_second(),
        # From the first progress call to the last: the work without the setup.
        "progress_seconds": sink.last_call - sink.first_call,
    }


STEPS = {
    "import": run_import,
    "generate": run_generate,
    "send": run_send,
    "pdf": run_pdf,
}


def _run_profiled(
    step: Callable[[dict[str, Any], Any], dict[str, Any]],
    config: dict[str, Any],
    factory: Any,
) -> dict[str, Any]:
    """Run the step, under cProfile when the configuration names a stats file."""
    if not config.get("profile"):
        return step(config, factory)

    import cProfile

    profiler = cProfile.Profile()
    figures = profiler.runcall(step, config, factory)
    profiler.dump_stats(config["profile"])
    return figures


def main() -> None:
    config = json.loads(sys.argv[1])
    engine = make_engine(config.get("url") or "sqlite://")
    factory = make_session_factory(engine)
    queries = QueryCounter(engine)
    step = STEPS[config["step"]]

    baseline_kib = tree_rss_kib(os.getpid())
    before = resource.getrusage(resource.RUSAGE_SELF)
    with MemorySampler() as sampler:
        started = time.perf_counter()
        figures = _run_profiled(step, config, factory)
        seconds = time.perf_counter() - started
    plans = queries.slowest_plans(engine)
    engine.dispose()

    usage = resource.getrusage(resource.RUSAGE_SELF)
    child_usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = own_peak_kib()
    figures |= {
        "step": config["step"],
        "seconds": seconds,
        "baseline_mib": baseline_kib / 1024,
        "peak_mib": max(sampler.peak_kib, own) / 1024,
        "own_peak_mib": own / 1024,
        "cpu_seconds": usage.ru_utime
        + usage.ru_stime
        - before.ru_utime
        - before.ru_stime,
        "worker_cpu_seconds": child_usage.ru_utime + child_usage.ru_stime,
        "queries": queries.total,
        "query_kinds": dict(queries.kinds),
        "plans": plans,
    }
    print(RESULT_PREFIX + json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
