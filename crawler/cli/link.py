"""`entrez-graph link`: one ELink call with any cmd, printed as a table, TSV or JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from ..errors import BadInput
from ..eutils.client import EutilsClient
from ..eutils.models import ELINK_CMDS, ELinkResult
from ..output import render
from .options import eutils_options, format_option

COLUMNS: dict[str, tuple[str, ...]] = {
    "neighbor": ("source", "dbfrom", "linkname", "dbto", "target", "score"),
    "neighbor_history": ("source", "dbfrom", "linkname", "dbto", "webenv", "query_key"),
    "acheck": ("source", "kind", "dbto", "linkname", "menu_tag", "priority"),
    "ncheck": ("source", "has_neighbor"),
    "lcheck": ("source", "has_linkout"),
    "llinks": ("source", "provider", "category", "link_name", "url", "attributes"),
}
COLUMNS["neighbor_score"] = COLUMNS["neighbor"]
COLUMNS["llinkslib"] = COLUMNS["prlinks"] = COLUMNS["llinks"]


def rows_of(result: ELinkResult) -> list[dict[str, Any]]:
    """Flat rows of an ELink result, one per link / link name / check / URL."""
    rows: list[dict[str, Any]] = []
    for ls in result.linksets:
        source = ",".join(ls.ids)
        for db in ls.linksetdbs:
            for link in db.links:
                rows.append(
                    {
                        "source": source,
                        "dbfrom": ls.dbfrom,
                        "linkname": db.linkname,
                        "dbto": db.dbto,
                        "target": link.uid,
                        "score": link.score,
                    }
                )
        for h in ls.histories:
            rows.append(
                {
                    "source": source,
                    "dbfrom": ls.dbfrom,
                    "linkname": h.linkname,
                    "dbto": h.dbto,
                    "webenv": ls.webenv,
                    "query_key": h.query_key,
                }
            )
    for s in result.idlinksets:
        for info in s.infos:
            rows.append(
                {
                    "source": s.uid,
                    "kind": "entrez" if info.is_entrez else "linkout",
                    "dbto": info.dbto,
                    "linkname": info.linkname,
                    "menu_tag": info.menu_tag,
                    "priority": info.priority,
                }
            )
    for c in result.idchecks:
        rows.append({"source": c.uid, "has_neighbor": c.has_neighbor, "has_linkout": c.has_linkout})
    for s in result.idurlsets:
        for o in s.objurls:
            rows.append(
                {
                    "source": s.uid,
                    "provider": o.provider.name,
                    "category": o.category,
                    "link_name": o.link_name,
                    "url": o.url,
                    "attributes": list(o.attributes),
                }
            )
    return rows


def link(
    dbfrom: str,
    ids: Sequence[str],
    *,
    cmd: str = "neighbor",
    db: str | None = None,
    linkname: str | None = None,
    merge: bool = False,
    term: str | None = None,
    mindate: str | None = None,
    maxdate: str | None = None,
    datetype: str | None = None,
    reldate: int | None = None,
    idtype: str | None = None,
    client: EutilsClient,
) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """Rows and columns of one ELink call; all validation happens before anything is sent."""
    if cmd not in ELINK_CMDS:
        raise BadInput(f"unknown --cmd {cmd!r}; choose from {', '.join(ELINK_CMDS)}")
    if not ids:
        raise BadInput("give at least one --id")
    result = client.elink(
        dbfrom,
        list(ids),
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
    )
    return rows_of(result), COLUMNS[cmd]


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
    if cmd not in ELINK_CMDS:
        raise BadInput(f"unknown --cmd {cmd!r}; choose from {', '.join(ELINK_CMDS)}")
    with EutilsClient.from_env(eutils_url=eutils_url, email=email, rps=rps) as client:
        rows, columns = link(
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
            client=client,
        )
    click.echo(render(rows, columns, fmt))
