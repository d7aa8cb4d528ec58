"""`entrez-graph link`: one ELink call with any cmd, printed as a table, TSV or JSON.

A thin layer over `crawler.linking.link`.
"""

from __future__ import annotations

import click

from ..eutils.models import ELINK_CMDS
from ..output import render
from .options import ROW_FORMATS, eutils_options, format_option


@click.command("link")
@click.option("--dbfrom", required=True, metavar="DB",
              help="Source database (gene, protein, pubmed, …): ELink's dbfrom.")
@click.option("--db", default=None, metavar="DB",
              help="Target database (or `all`): ELink's db, not a filter as in export --db.")
@click.option("--id", "ids", multiple=True, metavar="UID", help="A source UID; repeat for several.")
@click.option(
    "--cmd", default="neighbor", show_default=True, metavar="CMD",
    help=f"One of: {', '.join(ELINK_CMDS)}.",
)
@click.option("--linkname", default=None, metavar="NAME",
              help="Only this link name (needs --db): ELink's linkname, crawl's --link.")
@click.option("--merge", is_flag=True, help="Send IDs comma-joined: one merged LinkSet.")
@click.option("--term", default=None, metavar="QUERY", help="Entrez query limiting the links.")
@click.option("--mindate", default=None, metavar="DATE", help="YYYY[/MM[/DD]].")
@click.option("--maxdate", default=None, metavar="DATE", help="YYYY[/MM[/DD]].")
@click.option("--datetype", default=None, metavar="TYPE", help="pdat, edat, mdat, …")
@click.option("--reldate", type=click.IntRange(min=0), default=None, metavar="DAYS",
              help="Last N days.")
@click.option("--idtype", default=None, metavar="TYPE",
              help="`acc` to get accessions instead of UIDs.")
@format_option(*ROW_FORMATS)
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
    """One ELink call, with E-utilities' own parameter names (--dbfrom, --db, --id, --cmd,
    --linkname, …), so a request reads as NCBI documents it.

    \b
    Examples:
      entrez-graph link --dbfrom gene --db protein --id 672
      entrez-graph link --dbfrom gene --db protein --id 672 --linkname gene_protein_refseq
      entrez-graph link --dbfrom pubmed --id 20210808 --cmd neighbor_score --format tsv
      entrez-graph link --dbfrom gene --id 672 --id 675 --cmd acheck --format json
    """
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
