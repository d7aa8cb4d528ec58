"""`entrez-graph sync`: push what the journal holds and a store lacks.

After a Neo4j outage during a crawl, into a new or different Neo4j database, or to bring the
embedded store level with the journal. A thin layer over `crawler.syncing.sync`; a store left
behind exits 3 (`SyncIncomplete`), as `crawl` does.
"""

from __future__ import annotations

import json

import click

from ..output import render
from .options import ROW_FORMATS, format_option, neo4j_config, neo4j_options, store_option


@click.command("sync")
@store_option
@neo4j_options
@click.option(
    "--embedded", is_flag=True, help="Bring the embedded store (LadybugDB) level with the journal."
)
@click.option(
    "--rebuild",
    is_flag=True,
    help="Make the embedded store anew from the journal (implies --embedded).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1, max=100_000),
    default=None,
    metavar="N",
    help="Rows per Neo4j UNWIND statement; a transaction takes up to 8 statements' worth "
    "of journal rows  [default: 5000].",
)
@click.option(
    "--merge-only",
    is_flag=True,
    help="MERGE every edge, even where this journal provably owns the database.",
)
@click.option(
    "--bulk",
    is_flag=True,
    help="Load a new or empty Neo4j database with neo4j-admin database import instead: Neo4j "
    "on this machine and stopped; REPLACES that database. Then start Neo4j and run sync.",
)
@format_option(*ROW_FORMATS)
def command(
    store: str,
    neo4j_uri: str | None,
    neo4j_user: str | None,
    neo4j_password: str | None,
    neo4j_database: str | None,
    embedded: bool,
    rebuild: bool,
    batch_size: int | None,
    merge_only: bool,
    bulk: bool,
    fmt: str,
) -> None:
    """Push what the journal holds and a store lacks (after a Neo4j outage, or to a new Neo4j).

    With --embedded, the embedded store's real contents are counted and compared with the
    journal, and whatever differs is reloaded from it; --rebuild makes the store anew.

    \b
    Examples:
      entrez-graph sync --embedded
      entrez-graph sync --neo4j bolt://localhost:7687
      entrez-graph sync --store brca1 --neo4j bolt://localhost:7687 --format json
    """
    from ..syncing import check_synced, report_dict, sync

    config = neo4j_config(neo4j_uri, neo4j_user, neo4j_password, neo4j_database)
    reports = sync(
        store, neo4j=config, embedded=embedded, batch_size=batch_size, fast=not merge_only,
        bulk=bulk,
        rebuild=rebuild,
    )
    rows = [report_dict(r) for r in reports]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
    else:
        shown = [
            {**r, "status": r["error"] or ("in step" if not r["pending"] else "behind")}
            for r in rows
        ]
        click.echo(render(
            shown,
            ["sink", "nodes", "edges", "props", "changes", "repaired", "pending", "status"],
            fmt,
        ))
    if bulk:
        click.echo(
            f"Imported with neo4j-admin. Start Neo4j, then run `entrez-graph sync --store {store} "
            f"--neo4j {config.uri}`: it creates the constraints, writes the records' "
            "properties and checks the real counts.", err=True,
        )
    check_synced(reports)
