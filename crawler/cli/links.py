"""`entrez-graph links DB ID…`: which link names records have (acheck); Entrez and LinkOut apart.

A thin layer over `crawler.linking.links`.
"""

from __future__ import annotations

import click

from ..output import render
from .options import ROW_FORMATS, eutils_options, format_option


@click.command("links")
@click.argument("db")
@click.argument("ids", nargs=-1)
@format_option(*ROW_FORMATS)
@eutils_options
def command(
    db: str,
    ids: tuple[str, ...],
    fmt: str,
    eutils_url: str | None,
    email: str | None,
    rps: float | None,
) -> None:
    """Link names of records in DB (ELink acheck): Entrez links, then LinkOut.

    \b
    Examples:
      entrez-graph links gene 672 675
      entrez-graph links protein 6552302 --format csv
    """
    from ..linking import LINKS_COLUMNS, links

    found = links(db, ids, eutils_url=eutils_url, email=email, rps=rps)
    if fmt == "table":
        cols = tuple(c for c in LINKS_COLUMNS if c != "kind")
        click.echo("Entrez links:")
        click.echo(render(found.entrez, cols, "table"))
        click.echo("\nLinkOut:")
        click.echo(render(found.linkout, cols, "table"))
    else:
        click.echo(render(found.rows, LINKS_COLUMNS, fmt))
    for uid, error in found.failed.items():
        click.echo(f"Warning: {db} {uid}: {error}", err=True)
