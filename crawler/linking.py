"""One ELink call (`link`) and a record's link names (`links`), as rows.

The Python side of `entrez-graph link` and `entrez-graph links`: each function validates its
arguments before anything is sent and returns plain dicts, the same rows the commands print
with `--format json`. Pass a `client` to share one (and its rate limiter) across calls; without
one, a client is built from the options and environment (NCBI_EMAIL, NCBI_API_KEY,
ENTREZ_GRAPH_EUTILS_URL) and closed afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import BadInput
from .eutils.client import client_for
from .eutils.models import ELINK_CMDS, ELinkResult
from .linknames import check_db

if TYPE_CHECKING:
    from .eutils.client import EutilsClient

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

LINKS_COLUMNS = ("source", "kind", "dbto", "linkname", "menu_tag", "priority")


def rows_of(result: ELinkResult) -> list[dict[str, Any]]:
    """Flat rows of an ELink result, one per link / link name / check / URL."""
    rows: list[dict[str, Any]] = []
    for ls in result.linksets:
        source = ",".join(ls.ids)
        for db in ls.linksetdbs:
            for item in db.links:
                rows.append(
                    {
                        "source": source,
                        "dbfrom": ls.dbfrom,
                        "linkname": db.linkname,
                        "dbto": db.dbto,
                        "target": item.uid,
                        "score": item.score,
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


def check_cmd(cmd: str) -> tuple[str, ...]:
    """The columns of `cmd`'s rows; BadInput for a cmd ELink does not have."""
    if cmd not in ELINK_CMDS:
        raise BadInput(f"unknown --cmd {cmd!r}; choose from {', '.join(ELINK_CMDS)}")
    return COLUMNS[cmd]


def link(
    dbfrom: str,
    ids: Sequence[str] | str,
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
    client: EutilsClient | None = None,
    eutils_url: str | None = None,
    email: str | None = None,
    rps: float | None = None,
) -> list[dict[str, Any]]:
    """Rows of one ELink call, each holding exactly `COLUMNS[cmd]` (what `--format json` prints).

    `ids` are sent as repeated `id=` (one LinkSet each) unless `merge`; a bare string is one ID.
    All validation happens before anything is sent.
    """
    columns = check_cmd(cmd)
    dbfrom = check_db(dbfrom, "--dbfrom database")
    if db is not None and db != "all":
        db = check_db(db, "--db database")
    id_list = [ids] if isinstance(ids, str) else list(ids)
    if not id_list:
        raise BadInput("give at least one --id")
    with client_for(client, eutils_url, email, rps) as c:
        result = c.elink(
            dbfrom,
            id_list,
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
    return [{col: row.get(col) for col in columns} for row in rows_of(result)]


class LinkNames(NamedTuple):
    """acheck rows (Entrez links first, then LinkOut) and the IDs NCBI refused, with why."""

    rows: list[dict[str, Any]]
    failed: dict[str, str]

    @property
    def entrez(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["kind"] == "entrez"]

    @property
    def linkout(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["kind"] == "linkout"]


def links(
    db: str,
    ids: Sequence[str] | str,
    *,
    client: EutilsClient | None = None,
    eutils_url: str | None = None,
    email: str | None = None,
    rps: float | None = None,
) -> LinkNames:
    """Which link names records have (acheck): rows in `LINKS_COLUMNS`, and refused IDs.

    Batched and per record, so one bad ID is reported in `failed` without losing the others.
    """
    db = check_db(db)
    id_list = [ids] if isinstance(ids, str) else list(ids)
    if not id_list:
        raise BadInput("give at least one ID")
    with client_for(client, eutils_url, email, rps) as c:
        answered, failed = c.acheck_batch(db, id_list)
    rows: list[dict[str, Any]] = []
    for kind in ("entrez", "linkout"):
        for uid in id_list:
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
    return LinkNames(rows, dict(failed))
