"""`entrez-graph link`: one ELink call with any cmd, printed as a table, TSV or JSON.

A thin layer over `crawler.linking.link`.
"""

from __future__ import annotations

import click

from ..eutils.models import ELINK_CMDS
from ..output import render
from .options import eutils_options, format_option


@click.command("link")
@click.option("--dbfrom", required=True, help="Source database (gene, protein, pubmed, …).")
@click.option("--db", default=None, help="Target database (or `all`).")
@click.option("--id", "ids", multiple=True, help="A source UID; repeat for several.")
@click.option(
    "--cmd", default="neighbor", show_default=True, help=f"One of: {', '.join(ELINK_CMDS)}."
)
@click.option("--linkname", default=None, help="Only this link name (needs --db).")
@click.option("--merge", is_flag=True, help="Send IDs comma-joined: one merged LinkSet.")
@click.option("--term", default=None, help="Entrez query limiting the links.")
@click.option("--mindate", default=None, help="YYYY[/MM[/DD]].")
@click.option("--maxdate", default=None, help="YYYY[/MM[/DD]].")
@click.option("--datetype", default=None, help="pdat, edat, mdat, …")
@click.option("--reldate", type=click.IntRange(min=0), default=None, help="Last N days.")
@click.option("--idtype", default=None, help="`acc` to get accessions instead of UIDs.")
@format_option("table", "tsv", "json")
@eutils_options
def command(
    dbfrom: str,
    db: str | None,
    ids: tuple[str, ...],
    cmd: str,
    linkname: str | None,
    merge: bool,
    term: str | None,
    mindate: str | None,
    maxdate: str | None,
    datetype: str | None,
    reldate: int | None,
    idtype: str | None,
    fmt: str,
    eutils_url: str | None,
    email: str | None,
    rps: float | None,
) -> None:
    """One ELink call: `link --dbfrom gene --db protein --id 672`."""
    from ..linking import check_cmd, link

    columns = check_cmd(cmd)
    rows = link(
        dbfrom,
        ids,
        cmd=cmd,
        db=db,
        linkname=linkname,
        merge=merge,
        term=term,
        mindate=mindate,
        maxdate=maxdate,
        datetype=datetype,
        reldate=reldate,
        idtype=idtype,
        eutils_url=eutils_url,
        email=email,
        rps=rps,
    )
    click.echo(render(rows, columns, fmt))
