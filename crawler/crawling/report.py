"""The crawl's end summary: `CrawlReport` (the stable `--format json`) and its plain text."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..journal import Journal
    from ..sinks import SyncReport
    from .plan import Plan
    from .settings import CrawlSettings


@dataclass(slots=True)
class SinkStatus:
    name: str
    ok: bool
    pending: int
    error: str | None
    repaired: int = 0  # rows reloaded because the store had lost or changed them


@dataclass(slots=True)
class CrawlReport:
    """The crawl's summary; `to_dict()` is the stable `--format json` output."""

    store: str
    complete: bool
    seeds: list[str]
    depth: int
    levels: int
    nodes: int
    edges: int
    by_db: dict[str, int]
    by_link: dict[str, int]
    pending: int
    failed: int
    no_answer: int
    requests: int
    requests_total: int
    elapsed_s: float
    sinks: list[SinkStatus] = field(default_factory=list)
    summaries: dict[str, Any] | None = None

    @property
    def sinks_ok(self) -> bool:
        return all(s.ok for s in self.sinks)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_report(
    root: Path, settings: CrawlSettings, seeds: list[tuple[str, str]], journal: Journal,
    requests: int, sink_reports: dict[str, SyncReport], started: float,
    summary_info: dict | None,
) -> CrawlReport:
    """The report of a crawl that ran (or found nothing to do), from what the journal holds."""
    stats = journal.stats()
    levels = journal.execute("SELECT coalesce(max(depth), 0) FROM nodes").fetchone()[0]
    sinks = [
        SinkStatus(name, rep.ok, rep.pending, rep.error, rep.repaired)
        for name, rep in sink_reports.items()
    ]
    return CrawlReport(
        store=str(root),
        complete=stats["pending"] == 0,
        seeds=[f"{db}:{uid}" for db, uid in seeds],
        depth=settings.depth,
        levels=levels,
        nodes=stats["nodes"],
        edges=stats["edges"],
        by_db=stats["by_db"],
        by_link=stats["by_link"],
        pending=stats["pending"],
        failed=stats["failed"],
        no_answer=stats["no_answer"],
        requests=requests,
        requests_total=sum(stats["requests"].values()),
        elapsed_s=round(time.monotonic() - started, 3),
        sinks=sinks,
        summaries=summary_info,
    )


def describe(report: CrawlReport) -> str:
    """The plain-text summary printed at the end of a crawl."""
    lines = [
        f"{'Crawl complete' if report.complete else 'Crawl incomplete'}: {report.nodes} records, "
        f"{report.edges} edges in {report.store} (depth {report.depth}, "
        f"{report.requests} requests in {report.elapsed_s:.1f} s)",
    ]
    if report.by_db:
        lines.append("  records: " + ", ".join(f"{k} {v}" for k, v in report.by_db.items()))
    if report.by_link:
        lines.append("  edges:   " + ", ".join(f"{k} {v}" for k, v in report.by_link.items()))
    if report.failed or report.no_answer:
        lines.append(
            f"  failed: {report.failed}, no answer: {report.no_answer} "
            "(see `entrez-graph status`; `crawl … --retry-failed` asks again)"
        )
    if report.pending:
        lines.append(f"  pending: {report.pending} records (run the same command to resume)")
    for s in report.sinks:
        repaired = (
            f" ({s.repaired} rows repaired from the journal: the store had lost them)"
            if s.repaired else ""
        )
        if s.ok:
            lines.append(f"  {s.name}: up to date, checked against the journal{repaired}")
        else:
            lines.append(
                f"  {s.name}: {s.pending} rows missing"
                + (f" ({s.error})" if s.error else "")
                + "; run `entrez-graph sync` later"
            )
    return "\n".join(lines)


def dumps(report: CrawlReport | Plan) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=True)
