"""`entrez-graph summarize`: names and summaries (ESummary) for the records of a crawl, then sync.

A thin layer over `crawler.syncing.summarize`: the journal gets the properties first, then each
store through its sink's prop cursor (the embedded store when it exists, Neo4j with `--neo4j`).
Running it again only asks NCBI about records that have no summary yet.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ..output import render
from ..summaries import DEFAULT_BATCH, MAX_BATCH, SummaryReport, check_complete
from .options import (
    ROW_FORMATS,
    eutils_options,
    format_option,
    neo4j_config,
    neo4j_options,
    store_option,
)


class _ProgressLine:
    """A `\r` line on stderr while a terminal watches; nothing otherwise (logs stay clean)."""

    def __init__(self) -> None:
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        click.echo(f"\rsummaries: {done}/{total} records", err=True, nl=False)
        self.shown = True

    def close(self) -> None:
        if self.shown:
            click.echo("", err=True)
            self.shown = False


SUMMARY_COLUMNS = ["database", "records", "summarized", "fetched now", "named", "status",
                   "no answer", "requests"]


def summary_rows(report: SummaryReport) -> list[dict[str, Any]]:
    """One row per database (what --format tsv/csv prints; the table's body)."""
    return [
        {
            "database": db,
            "records": c.records,
            "summarized": c.summarized,
            "fetched now": c.fetched,
            "named": c.named,
            "status": c.status,
            "no answer": c.deferred,
            "requests": c.requests,
        }
        for db, c in sorted(report.by_db.items())
    ]


def format_report(report: SummaryReport, syncs: list[dict[str, Any]]) -> str:
    rows = summary_rows(report)
    lines = [
        f"Summaries: {report.fetched} fetched in {report.requests} requests; "
        f"{report.summarized} of {report.records} records summarized "
        f"({report.status} missing/replaced/failed, {report.deferred} without answer)",
        "",
        render(rows, SUMMARY_COLUMNS),
    ]
    for s in syncs:
        state = "in step" if s["ok"] else (s["error"] or f"{s['pending']} rows behind")
        lines.append(f"Store {s['sink']}: {s['props']} property rows loaded, {state}")
    return "\n".join(lines)


@click.command("summarize")
@store_option
@eutils_options
@click.option(
    "--batch-size",
    type=click.IntRange(1, MAX_BATCH),
    default=DEFAULT_BATCH,
    show_default=True,
    metavar="N",
    help="IDs per ESummary request.",
)
@click.option(
    "--db", "dbs", multiple=True, metavar="DB",
    help="Only records of this database (repeatable)."
)
@neo4j_options
@click.option("--no-sync", is_flag=True, help="Only fill the journal; leave the stores alone.")
@format_option(*ROW_FORMATS)
def command(
    store: str,
    eutils_url: str | None,
    email: str | None,
    rps: float | None,
    batch_size: int,
    dbs: tuple[str, ...],
    neo4j_uri: str | None,
    neo4j_user: str | None,
    neo4j_password: str | None,
    neo4j_database: str | None,
    no_sync: bool,
    fmt: str,
) -> None:
    """Fetch names and summaries (ESummary) of a crawl's records into the journal and stores.

    Records NCBI reports as missing or replaced get a `status` property. Interrupt it at any
    time: running it again asks only about records that have no summary yet.

    \b
    Examples:
      entrez-graph summarize --store brca1
      entrez-graph summarize --store brca1 --db gene --db protein
      entrez-graph summarize --store brca1 --format tsv > summaries.tsv
    """
    from ..syncing import summarize  # checks the store and --db before anything is sent

    line = _ProgressLine() if sys.stderr.isatty() else None
    try:
        result = summarize(
            store,
            eutils_url=eutils_url,
            email=email,
            rps=rps,
            batch_size=batch_size,
            dbs=dbs,
            neo4j=neo4j_config(neo4j_uri, neo4j_user, neo4j_password, neo4j_database),
            sync=not no_sync,
            progress=line,
        )
    finally:
        if line is not None:
            line.close()
    report, syncs = result.report, result.stores
    if fmt == "json":
        click.echo(json.dumps(result.as_dict(), indent=2, sort_keys=True))
    elif fmt in ("tsv", "csv"):
        click.echo(render(summary_rows(report), SUMMARY_COLUMNS, fmt))
    else:
        click.echo(format_report(report, syncs))
    check_complete(report)
    if any(not s["ok"] for s in syncs):
        behind = sum(s["pending"] for s in syncs)
        click.echo(
            f"Error: {behind} journal rows are not in every store yet; "
            "run `entrez-graph sync` later",
            err=True,
        )
        sys.exit(3)
