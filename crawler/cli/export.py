"""`entrez-graph export`: the crawl as GraphML, GEXF, node-link JSON, CSV for neo4j-admin, or
tables (an edge list and a node table as TSV, CSV or Parquet).

A thin layer over `crawler.exporting.export`; the format is checked there (not by click) so that a
wrong one is a one-line error like every other bad input.
"""

from __future__ import annotations

import click

from ..exporting import FORMATS, TABLE_FORMATS, export
from .options import store_option


@click.command("export")
@store_option
@click.option(
    "--format", "fmt", default=None, metavar="FORMAT",
    help=f"One of {', '.join(FORMATS)} (default: from OUT's suffix).",
)
@click.option("--db", "dbs", multiple=True, metavar="DB",
              help="Only records of this database and links between them (repeatable).")
@click.option("--link", "links", multiple=True, metavar="NAME",
              help="Only links of this name and the records they join (repeatable).")
@click.option("--query", default=None, metavar="NAME|CYPHER",
              help="Export what a bundled query or a Cypher query returns (nodes, rels, paths).")
@click.option("--param", "params", multiple=True, metavar="K=V",
              help="Query parameter, typed as in `query` (k=v, k:int=5).")
@click.option("--force", is_flag=True,
              help="Replace an existing OUT (a file, or an earlier neo4j-csv export).")
@click.argument("out", type=click.Path(dir_okay=True, file_okay=True, allow_dash=True))
def command(
    store: str, fmt: str | None, dbs: tuple[str, ...], links: tuple[str, ...],
    query: str | None, params: tuple[str, ...], force: bool, out: str,
) -> None:
    """Write the crawled graph to OUT (a file, `-` for stdout; a directory for neo4j-csv).

    tsv, csv and parquet write the edge list to OUT and the node table beside it
    (graph.tsv -> graph.nodes.tsv). Streams from the journal, so any crawl size fits in memory;
    OUT appears only when complete, and an existing OUT is refused unless --force.

    \b
    Examples:
      entrez-graph export crawl.graphml
      entrez-graph export --db gene --db protein genes-proteins.gexf
      entrez-graph export --format json - | jq '.nodes | length'
      entrez-graph export --query paths_between --param hops=2 paths.graphml
      entrez-graph export --format tsv edges.tsv          # and edges.nodes.tsv beside it
      entrez-graph export --format neo4j-csv --force neo4j-import/
    """
    report = export(store, out, fmt, dbs=dbs or None, links=links or None, query=query,
                    params=list(params), force=force)
    # with OUT `-` the graph is on stdout: the summary goes to stderr
    click.echo(f"Wrote {report.nodes} records and {report.edges} links to "
               f"{'stdout' if out == '-' else report.out} ({report.format}).", err=out == "-")
    if len(report.files) == 2 and report.format in TABLE_FORMATS:
        click.echo(f"Node table: {report.files[1]}")
    if report.format == "neo4j-csv":
        click.echo(
            "\nLoad it into a STOPPED Neo4j 5 (the import replaces the database; it must be "
            "empty or overwritten):\n"
            f"  {report.command}\n"
            f"(or run {report.out / 'import.sh'} [database] from any directory)\n"
            "\nThen start Neo4j and create the same constraints as live writes "
            f"({report.out / 'constraints.cypher'}, e.g. cypher-shell -f on it):"
        )
        for statement in report.constraints:
            click.echo(f"  {statement};")
