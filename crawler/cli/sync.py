"""`entrez-graph sync`: push what the journal holds and a store lacks.

After a Neo4j outage during a crawl, into a new or different Neo4j database, or to bring the
embedded store level with the journal. Each sink starts from its own cursor and writes
idempotently, so running it again (or after a crash) pushes only what is still missing.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import BadInput, StoreError
from ..journal import Journal
from ..output import render
from ..sinks import SyncReport
from ..sinks.neo4j import DEFAULT_BATCH, Neo4jConfig, Neo4jSink
from ..store import StorePaths
from .options import format_option, store_option


class SyncIncomplete(StoreError):
    """A sink could not take everything (exit 3, as `crawl` does when a sink is behind)."""

    exit_code = 3


def sync(
    store: str | Path,
    *,
    neo4j: Neo4jConfig | None = None,
    embedded: bool = False,
    batch_size: int = DEFAULT_BATCH,
    fast: bool = True,
) -> list[SyncReport]:
    """Bring each named sink level with the journal of `store`; one report per sink."""
    paths = StorePaths.of(store)
    if not paths.journal.is_file():
        raise BadInput(
            f"no entrez-graph store at {paths.root} (no {paths.journal.name}); "
            "crawl into it first or pass --store"
        )
    if neo4j is None and not embedded:
        raise BadInput("nothing to sync: pass --neo4j URI (or set NEO4J_URI) and/or --embedded")
    reports: list[SyncReport] = []
    with Journal(paths.journal, create=False) as journal:
        if embedded:
            from ..sinks.ladybug import LadybugSink  # lazy: LadybugDB loads a native library

            ladybug_sink = LadybugSink(paths.graph)
            try:
                reports.append(ladybug_sink.sync(journal))
            finally:
                ladybug_sink.close()
        if neo4j is not None:
            neo4j_sink = Neo4jSink.from_config(neo4j, batch_size=batch_size, fast=fast)
            try:
                reports.append(neo4j_sink.sync(journal))
            finally:
                neo4j_sink.close()
    return reports


def _as_dict(report: SyncReport) -> dict[str, object]:
    return {
        "sink": report.sink,
        "nodes": report.nodes,
        "edges": report.edges,
        "props": report.props,
        "pending": report.pending,
        "error": report.error,
    }


@click.command("sync")
@store_option
@click.option(
    "--neo4j",
    "neo4j_uri",
    envvar="NEO4J_URI",
    default=None,
    metavar="URI",
    help="Neo4j to bring level (NEO4J_URI); user and password from NEO4J_USER / NEO4J_PASSWORD.",
)
@click.option(
    "--neo4j-user", envvar="NEO4J_USER", default=None, help="Neo4j user (NEO4J_USER; neo4j)."
)
@click.option(
    "--neo4j-database",
    envvar="NEO4J_DATABASE",
    default=None,
    help="Neo4j database (NEO4J_DATABASE, default: the server's default database).",
)
@click.option(
    "--embedded", is_flag=True, help="Bring the embedded store (LadybugDB) level with the journal."
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1, max=100_000),
    default=DEFAULT_BATCH,
    show_default=True,
    help="Journal rows per Neo4j transaction.",
)
@click.option(
    "--merge-only",
    is_flag=True,
    help="MERGE every edge, even where this journal provably owns the database.",
)
@format_option("table", "json")
def command(
    store: str,
    neo4j_uri: str | None,
    neo4j_user: str | None,
    neo4j_database: str | None,
    embedded: bool,
    batch_size: int,
    merge_only: bool,
    fmt: str,
) -> None:
    """Push what the journal holds and a store lacks (after a Neo4j outage, or to a new Neo4j)."""
    config = (
        Neo4jConfig.from_options(neo4j_uri, neo4j_user, None, neo4j_database)
        if neo4j_uri
        else None
    )
    reports = sync(
        store, neo4j=config, embedded=embedded, batch_size=batch_size, fast=not merge_only
    )
    rows = [_as_dict(r) for r in reports]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
    else:
        shown = [
            {**r, "status": r["error"] or ("in step" if not r["pending"] else "behind")}
            for r in rows
        ]
        click.echo(render(shown, ["sink", "nodes", "edges", "props", "pending", "status"]))
    behind = [r for r in reports if not r.ok]
    if behind:
        reasons = "; ".join(
            f"{r.sink}: {r.pending} rows missing" + (f" ({r.error})" if r.error else "")
            for r in behind
        )
        raise SyncIncomplete(f"{reasons}; the journal keeps everything, run sync again later")
