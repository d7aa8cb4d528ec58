"""`entrez-graph view`: one self-contained HTML file drawing part of the crawl (no network).

A thin layer over `crawler.viewing.write_view` (what `crawler.view` does, with the counts).
"""

from __future__ import annotations

import click

from ..viewing import DEFAULT_HOPS, DEFAULT_MAX_NODES, write_view
from .options import store_option


@click.command("view")
@store_option
@click.option("--around", default=None, metavar="DB:UID",
              help="Draw this record and its neighbours (db:uid, or db:accession / db:name).")
@click.option("--hops", type=int, default=None, metavar="N",
              help=f"With --around: links away from it, either direction (default {DEFAULT_HOPS}).")
@click.option("--link", "links", multiple=True, metavar="NAME",
              help="Only links of this name (repeatable); with --around, the links walked.")
@click.option("--db", "dbs", multiple=True, metavar="DB",
              help="Only records of this database (repeatable).")
@click.option("--query", default=None, metavar="NAME|CYPHER",
              help="Draw what a bundled query or a Cypher query returns (nodes, rels, paths).")
@click.option("--param", "params", multiple=True, metavar="K=V",
              help="Query parameter, typed as in `query` (k=v, k:int=5).")
@click.option("--max-nodes", type=int, default=DEFAULT_MAX_NODES, show_default=True,
              metavar="N", help="Refuse a bigger selection (a browser draws a few thousand well).")
@click.option("--open", "open_browser", is_flag=True,
              help="Open the file in the default browser when written.")
@click.option("--force", is_flag=True, help="Replace an existing OUT.")
@click.argument("out", type=click.Path(dir_okay=False))
def command(
    store: str, around: str | None, hops: int | None, links: tuple[str, ...],
    dbs: tuple[str, ...], query: str | None, params: tuple[str, ...], max_nodes: int,
    open_browser: bool, force: bool, out: str,
) -> None:
    """Write OUT.html: an interactive drawing of the crawl or a part of it.

    Records are coloured by database and labelled by name (or uid), links by link name; the
    page has a legend, search by name or uid, and a record's properties with a link to NCBI on
    click. The JavaScript library is inlined: the file makes no network requests. An existing
    OUT is refused unless --force.

    \b
    Examples:
      entrez-graph view --store brca1 brca1.html --open
      entrez-graph view --store brca1 --around gene:672 --hops 2 brca1-near.html
      entrez-graph view --store brca1 --around nuccore:NM_007294 --link nuccore_protein nm.html
      entrez-graph view --store brca1 --query paths_between --param to_db=structure paths.html
    """
    report = write_view(store, out, around=around, hops=hops, dbs=dbs or None,
                        links=links or None, query=query, params=list(params),
                        max_nodes=max_nodes, open_browser=open_browser, force=force)
    click.echo(f"Wrote {report.nodes} records and {report.edges} links "
               f"({report.title}) to {report.out}.")
