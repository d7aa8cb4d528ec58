"""`entrez-graph summarize`: names and summaries (ESummary) for the records of a crawl, then sync.

A thin layer over `crawler.summaries.summarize`: the journal gets the properties first, then each
store through its sink's prop cursor (the embedded store when it exists, Neo4j with `--neo4j`).
Running it again only asks NCBI about records that have no summary yet.
"""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click

from ..errors import BadInput
from ..journal import Journal
from ..names import normalize_db
from ..output import render
from ..store import StorePaths
from ..summaries import DEFAULT_BATCH, MAX_BATCH, SummaryReport, check_complete, summarize
from .options import eutils_options, format_option, store_option


def _existing_store(store: str | Path) -> StorePaths:
    """The store's paths; never creates a store (a mistyped --store is an error)."""
    paths = StorePaths.of(store)
    if not paths.journal.is_file():
        raise BadInput(
            f"no entrez-graph store at {paths.root} (no {paths.journal.name}); "
            "crawl into it first or pass --store"
        )
    return paths


def _client(eutils_url: str | None, email: str | None, rps: float | None) -> Any:
    from ..eutils.client import EutilsClient

    return EutilsClient.from_env(eutils_url=eutils_url, email=email, rps=rps)


def _sinks(paths: StorePaths, neo4j: str | None, stack: ExitStack) -> list[Any]:
    """The stores to bring in step: the embedded one if the crawl made it, Neo4j when asked."""
    sinks: list[Any] = []
    if paths.graph.exists():
        from ..sinks.ladybug import LadybugSink

        sinks.append(LadybugSink(paths.graph))
        stack.callback(sinks[-1].close)
    if neo4j:
        from ..sinks.neo4j import Neo4jSink

        sinks.append(Neo4jSink.connect(neo4j))  # user, password, database: NEO4J_* env
        stack.callback(sinks[-1].close)
    return sinks


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


def format_report(report: SummaryReport, syncs: list[dict[str, Any]]) -> str:
    rows = [
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
    lines = [
        f"Summaries: {report.fetched} fetched in {report.requests} requests; "
        f"{report.summarized} of {report.records} records summarized "
        f"({report.status} missing/replaced/failed, {report.deferred} without answer)",
        "",
        render(rows, list(rows[0]) if rows else ["database", "records"]),
    ]
    for db, why in sorted(report.unsupported.items()):
        lines.append(f"No summaries for {db}: {why}")
    for s in syncs:
        state = "in step" if s["ok"] else (s["error"] or f"{s['pending']} rows behind")
        lines.append(f"Store {s['sink']}: {s['props']} property rows loaded, {state}")
    return "\n".join(lines)


def run(
    store: str | Path,
    *,
    client: Any,
    batch_size: int = DEFAULT_BATCH,
    dbs: tuple[str, ...] = (),
    neo4j: str | None = None,
    sync: bool = True,
    progress: Any = None,
) -> tuple[SummaryReport, list[dict[str, Any]]]:
    """Summarize the journal of `store`, then sync its stores; the CLI's Python entry point."""
    paths = _existing_store(store)
    chosen = tuple(normalize_db(d) for d in dbs)
    syncs: list[dict[str, Any]] = []
    with ExitStack() as stack:
        # stores first: a locked store or an unreachable Neo4j is refused before any request
        sinks = _sinks(paths, neo4j, stack) if sync else []
        journal = stack.enter_context(Journal(paths.journal, create=False))
        report = summarize(
            journal, client, batch_size=batch_size, dbs=chosen or None, progress=progress
        )
        for sink in sinks:
            r = sink.sync(journal)
            syncs.append(
                {"sink": r.sink, "props": r.props, "pending": r.pending, "error": r.error,
                 "ok": r.ok}
            )
    return report, syncs


@click.command("summarize")
@store_option
@eutils_options
@click.option(
    "--batch-size",
    type=click.IntRange(1, MAX_BATCH),
    default=DEFAULT_BATCH,
    show_default=True,
    help="IDs per ESummary request.",
)
@click.option(
    "--db", "dbs", multiple=True, help="Only records of this database (repeatable)."
)
@click.option(
    "--neo4j",
    envvar="NEO4J_URI",
    default=None,
    help="Also bring this Neo4j in step (NEO4J_USER, NEO4J_PASSWORD, NEO4J_DATABASE).",
)
@click.option("--no-sync", is_flag=True, help="Only fill the journal; leave the stores alone.")
@format_option("table", "json")
def command(
    store: str,
    eutils_url: str | None,
    email: str | None,
    rps: float | None,
    batch_size: int,
    dbs: tuple[str, ...],
    neo4j: str | None,
    no_sync: bool,
    fmt: str,
) -> None:
    """Fetch names and summaries (ESummary) of a crawl's records into the journal and stores.

    Records NCBI reports as missing or replaced get a `status` property. Interrupt it at any
    time: running it again asks only about records that have no summary yet.
    """
    for d in dbs:
        normalize_db(d)
    _existing_store(store)  # before building a client: bad input sends nothing
    line = _ProgressLine() if sys.stderr.isatty() else None
    try:
        with _client(eutils_url, email, rps) as client:
            report, syncs = run(
                store,
                client=client,
                batch_size=batch_size,
                dbs=dbs,
                neo4j=neo4j,
                sync=not no_sync,
                progress=line,
            )
    finally:
        if line is not None:
            line.close()
    if fmt == "json":
        click.echo(json.dumps({**report.as_dict(), "stores": syncs}, indent=2, sort_keys=True))
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
