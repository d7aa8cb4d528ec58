"""`entrez-graph links DB ID…`: which link names records have (acheck); Entrez and LinkOut apart."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from ..errors import BadInput
from ..eutils.client import EutilsClient
from ..output import render
from .options import eutils_options, format_option

COLUMNS = ("source", "kind", "dbto", "linkname", "menu_tag", "priority")


def links(
    db: str, ids: Sequence[str], *, client: EutilsClient
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """acheck rows (Entrez links first, then LinkOut) and the IDs NCBI refused."""
    if not ids:
        raise BadInput("give at least one ID")
    answered, failed = client.acheck_batch(db, list(ids))
    rows: list[dict[str, Any]] = []
    for kind in ("entrez", "linkout"):
        for uid in ids:
            s = answered.get(uid)
            if s is None:
                continue
            for info in s.entrez if kind == "entrez" else s.linkout:
                rows.append(
                    {
                        "source": uid,
                        "kind": kind,
                        "dbto": info.dbto,
                        "linkname": info.linkname,
                        "menu_tag": info.menu_tag,
                        "priority": info.priority,
                    }
                )
    return rows, failed


@click.command("links")
@click.argument("db")
@click.argument("ids", nargs=-1)
@format_option("table", "tsv", "json")
@eutils_options
def command(
    db: str,
    ids: tuple[str, ...],
    fmt: str,
    eutils_url: str | None,
    email: str | None,
    rps: float | None,
) -> None:
    """Link names of records: `links gene 672 675` (Entrez links, then LinkOut)."""
    with EutilsClient.from_env(eutils_url=eutils_url, email=email, rps=rps) as client:
        rows, failed = links(db, ids, client=client)
    if fmt == "table":
        entrez = [r for r in rows if r["kind"] == "entrez"]
        linkout = [r for r in rows if r["kind"] == "linkout"]
        cols = tuple(c for c in COLUMNS if c != "kind")
        click.echo("Entrez links:")
        click.echo(render(entrez, cols, "table"))
        click.echo("\nLinkOut:")
        click.echo(render(linkout, cols, "table"))
    else:
        click.echo(render(rows, COLUMNS, fmt))
    for uid, error in failed.items():
        click.echo(f"Warning: {db} {uid}: {error}", err=True)
