"""`entrez-graph query`: Cypher, or a bundled query by name, on the embedded store or Neo4j.

A thin layer over `crawler.querying.query`.
"""

from __future__ import annotations

import json

import click

from ..errors import BadInput
from ..output import render
from .options import ROW_FORMATS, format_option, neo4j_config, neo4j_options, store_option


def _list(fmt: str) -> str:
    from ..querying import list_queries

    queries = list_queries()
    if fmt == "json":
        listed = [
            {"name": q.name, "params": q.params, "parameters": q.params_dict(),
             "answers": q.description}
            for q in queries
        ]
        return json.dumps(listed, indent=2)
    rows = [{"name": q.name, "params": q.params_text, "answers": q.description} for q in queries]
    return render(rows, ["name", "params", "answers"], fmt)


@click.command("query")
@store_option
@neo4j_options
@format_option(*ROW_FORMATS)
@click.option(
    "--param", "params", multiple=True, metavar="K=V",
    help="A query parameter (repeatable). Bundled queries type it after their header; for ad "
    "hoc Cypher it is a string unless written K:int=V (also :float, :bool).",
)
@click.option("--write", is_flag=True, help="Allow the query to change the graph.")
@click.option("--list", "list_only", is_flag=True, help="List the bundled queries and exit.")
@click.argument("query", required=False)
def command(
    store: str,
    neo4j_uri: str | None,
    neo4j_user: str | None,
    neo4j_password: str | None,
    neo4j_database: str | None,
    fmt: str,
    params: tuple[str, ...],
    write: bool,
    list_only: bool,
    query: str | None,
) -> None:
    """Run CYPHER, or the bundled query NAME, on the embedded store (read-only unless --write).

    \b
    Examples:
      entrez-graph query --list
      entrez-graph query gene_protein_structures --param gene=672
      entrez-graph query "MATCH (g:gene)-[r]->(x) RETURN label(r) AS link, count(*) AS n"
    """
    if list_only:
        click.echo(_list(fmt))
        return
    if not query:
        raise BadInput("give a bundled query NAME or CYPHER text (see --list)")
    from ..querying import query as run

    neo4j = neo4j_config(neo4j_uri, neo4j_user, neo4j_password, neo4j_database)
    result = run(store, query, list(params), neo4j=neo4j, write=write)
    if fmt == "json":
        click.echo(json.dumps(result.plain_records(), indent=2, default=str))
        return
    click.echo(render(result.plain_records(compact=True), result.columns, fmt))
