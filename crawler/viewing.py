"""`entrez-graph view`: one self-contained HTML file that draws a part of the crawl.

People look at a cross-reference graph before they query it, and the embedded store has no
browser of its own. The page inlines vis-network, the standalone build that the pyvis package
ships (the file is read from the installed package; pyvis itself is never imported), and the
selection as JSON, under a Content-Security-Policy that allows no request at all: the file works
offline, attached to an e-mail or years later. Only a click on "Open at NCBI" leaves it.

The selection is read from the journal (the source of truth, readable while a crawl writes):
a record and its neighbours up to `hops` links away in either direction (`around`), the records
of some databases or links (`dbs`, `links`), or what a Cypher query returns (`query`). Drawing
stays readable up to a few thousand records; a bigger selection is refused with its size.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from . import __version__
from .errors import BadInput
from .exporting import (
    Edge,
    JournalSource,
    Node,
    Params,
    _atomic_file,
    _check_overwrite,
    _open_journal,
    _source,
    coerce_props,
)
from .journal import Journal
from .names import check_linkname, check_token, normalize_db

DEFAULT_MAX_NODES = 2500
EDGES_PER_NODE = 10  # a selection may hold up to this many links per record drawn
DEFAULT_HOPS = 1
NCBI = "https://www.ncbi.nlm.nih.gov/"

# Colours per database (the common ones fixed, so a colour means the same in every view).
COLORS = {
    "gene": "#e8590c", "protein": "#1c7ed6", "nuccore": "#2f9e44", "pubmed": "#868e96",
    "pmc": "#ced4da", "structure": "#ae3ec9", "taxonomy": "#f59f00", "snp": "#e03131",
    "clinvar": "#c2255c", "cdd": "#0c8599", "homologene": "#74b816", "biosample": "#7048e8",
    "sra": "#a61e4d", "bioproject": "#1098ad", "omim": "#d6336c", "medgen": "#5f3dc4",
    "assembly": "#495057", "genome": "#343a40", "popset": "#66a80f", "ipg": "#4263eb",
}
PALETTE = ("#fd7e14", "#20c997", "#845ef7", "#fab005", "#339af0", "#f783ac", "#94d82d",
           "#ff6b6b", "#3bc9db", "#b197fc")

SEQUENCE_DBS = frozenset({"nuccore", "protein", "nucest", "nucgss", "ipg"})

_PAGE = "view_page"


@dataclass(slots=True)
class Selection:
    """The records and links a view draws, and how they were chosen (for the page's title)."""

    nodes: list[Node]
    edges: list[Edge]
    title: str
    center: str | None = None
    hops: dict[str, int] = field(default_factory=dict)  # key -> links from the center


# -- choosing the selection -------------------------------------------------------------------


def _too_big(n_nodes: int, n_edges: int, max_nodes: int, what: str) -> BadInput:
    max_edges = max_nodes * EDGES_PER_NODE
    if n_nodes > max_nodes:
        size = f"{n_nodes:,} records (more than --max-nodes {max_nodes:,})"
    else:
        size = f"{n_edges:,} links (more than {max_edges:,}, {EDGES_PER_NODE} per --max-nodes)"
    return BadInput(
        f"{what} holds {size}, too many to draw readably in a browser; narrow it with "
        "--around db:uid --hops N, --db or --link, or raise --max-nodes"
    )


def _in(column: str, values: list[str] | None) -> tuple[str, list[str]]:
    if not values:
        return "", []
    return f" AND {column} IN ({','.join('?' * len(values))})", list(values)


def find_record(journal: Journal, text: str, max_node: int) -> tuple[str, str]:
    """`db:uid`, or `db:ACCESSION` / `db:NAME` looked up in the journal's properties.

    An accession matches with or without its version (`NM_007294` finds NM_007294.4); a name
    matches exactly, ignoring case. Several matches are an error that names them.
    """
    db, sep, value = text.partition(":")
    if not sep or not value:
        raise BadInput(f"--around {text!r}: give db:uid, e.g. gene:672")
    db, value = normalize_db(db), check_token(value.strip(), "record")
    found = journal.execute("SELECT 1 FROM nodes WHERE db = ? AND uid = ? AND id <= ?",
                            (db, value, max_node)).fetchone()
    if found:
        return db, value
    rows = journal.execute(
        "SELECT p.uid FROM props p JOIN nodes n ON n.db = p.db AND n.uid = p.uid "
        "WHERE p.db = ? AND n.id <= ? AND (json_extract(p.data, '$.accession') = ? "
        "OR json_extract(p.data, '$.accession') LIKE ? ESCAPE '\\' "
        "OR lower(json_extract(p.data, '$.name')) = lower(?)) ORDER BY n.id LIMIT 6",
        (db, max_node, value, value.replace("_", "\\_") + ".%", value),
    ).fetchall()
    if len(rows) == 1:
        return db, rows[0][0]
    if rows:
        listed = ", ".join(f"{db}:{r[0]}" for r in rows[:5]) + (", …" if len(rows) > 5 else "")
        raise BadInput(f"--around {text} matches several records ({listed}); give db:uid")
    raise BadInput(f"--around {text}: no such record in the store's journal "
                   "(give db:uid of a crawled record, e.g. gene:672)")


def select_around(
    journal: Journal, around: str, *, hops: int = DEFAULT_HOPS, dbs: list[str] | None = None,
    links: list[str] | None = None, max_nodes: int = DEFAULT_MAX_NODES,
) -> Selection:
    """A record and every record at most `hops` links away (either direction), with all the
    links between them. `dbs` and `links` restrict the records and the links walked.

    Breadth-first in SQLite: a TEMP table (outside the journal file) holds the records reached,
    one INSERT … SELECT per hop and direction, bounded by `max_ids()` as exports are.
    """
    bounds = journal.max_ids()
    db, uid = find_record(journal, around, bounds.node)
    if dbs and db not in dbs:
        raise BadInput(f"--around {db}:{uid} is not in the chosen --db ({', '.join(dbs)})")
    table = f"temp.view_{uuid.uuid4().hex}"
    journal.execute(f"CREATE TABLE {table}(db TEXT NOT NULL, uid TEXT NOT NULL, "
                    "hop INTEGER NOT NULL, PRIMARY KEY(db, uid)) WITHOUT ROWID")
    try:
        journal.execute(f"INSERT INTO {table} VALUES (?, ?, 0)", (db, uid))
        link_sql, link_args = _in("e.linkname", links)
        for hop in range(1, hops + 1):
            added = 0
            for mine, other in (("from", "to"), ("to", "from")):
                db_sql, db_args = _in(f"e.db{other}", dbs)
                cursor = journal.execute(
                    f"INSERT OR IGNORE INTO {table}(db, uid, hop) "
                    f"SELECT e.db{other}, e.uid_{other}, ? FROM {table} s JOIN edges e "
                    f"ON e.db{mine} = s.db AND e.uid_{mine} = s.uid "
                    f"WHERE s.hop = ? AND e.id <= ?{link_sql}{db_sql} AND EXISTS (SELECT 1 "
                    f"FROM nodes n WHERE n.db = e.db{other} AND n.uid = e.uid_{other} "
                    "AND n.id <= ?)",
                    [hop, hop - 1, bounds.edge, *link_args, *db_args, bounds.node],
                )
                added += max(cursor.rowcount, 0)
            if not added:
                break
        n_nodes = journal.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        edge_sql = (
            f"FROM {table} a JOIN edges e ON e.dbfrom = a.db AND e.uid_from = a.uid "
            f"JOIN {table} b ON b.db = e.dbto AND b.uid = e.uid_to WHERE e.id <= ?{link_sql}"
        )
        n_edges = journal.execute(f"SELECT count(*) {edge_sql}",
                                  [bounds.edge, *link_args]).fetchone()[0]
        where = f"{db}:{uid} and {hops} hop{'s' if hops != 1 else ''} around it"
        if n_nodes > max_nodes or n_edges > max_nodes * EDGES_PER_NODE:
            raise _too_big(n_nodes, n_edges, max_nodes, f"the selection ({where})")
        nodes, hop_of = [], {}
        node_fetched = "n.fetched" if journal.has_fetched else "NULL"
        for r_db, r_uid, depth, data, hop, fetched in journal.execute(
            f"SELECT n.db, n.uid, n.depth, p.data, s.hop, {node_fetched} FROM {table} s "
            "JOIN nodes n ON n.db = s.db AND n.uid = s.uid "
            "LEFT JOIN props p ON p.db = n.db AND p.uid = n.uid ORDER BY s.hop, n.id"
        ):
            node = Node(
                r_db, r_uid, depth, coerce_props(json.loads(data)) if data else {}, fetched
            )
            nodes.append(node)
            hop_of[node.key] = hop
        edge_fetched = "e.fetched" if journal.has_fetched else "NULL"
        edges = [Edge(*r) for r in journal.execute(
            f"SELECT e.id, e.dbfrom, e.uid_from, e.linkname, e.dbto, e.uid_to, e.score, "
            f"{edge_fetched} {edge_sql} ORDER BY e.id", [bounds.edge, *link_args])]
    finally:
        journal.execute(f"DROP TABLE IF EXISTS {table}")
    center = f"{db}:{uid}"
    name = next((label(n) for n in nodes if n.key == center), uid)
    title = f"{center}{f' ({name})' if name != uid else ''}, {hops} hop{'s' if hops != 1 else ''}"
    return Selection(nodes, edges, title, center, hop_of)


def _collect(source: Any, max_nodes: int, what: str, count: int | None = None) -> tuple[
        list[Node], list[Edge]]:
    """Up to the limits from a JournalSource / QuerySource; past them, count and refuse."""
    max_edges = max_nodes * EDGES_PER_NODE
    if count is not None and count > max_nodes:
        raise _too_big(count, 0, max_nodes, what)
    nodes: list[Node] = []
    n_nodes = 0
    for node in source.nodes():
        n_nodes += 1
        if n_nodes <= max_nodes:
            nodes.append(node)
    edges: list[Edge] = []
    n_edges = 0
    if n_nodes <= max_nodes:
        for edge in source.edges():
            n_edges += 1
            if n_edges <= max_edges:
                edges.append(edge)
    if n_nodes > max_nodes or n_edges > max_edges:
        raise _too_big(n_nodes, n_edges, max_nodes, what)
    return nodes, edges


def _describe(dbs: list[str] | None, links: list[str] | None) -> str:
    parts = ([f"databases {', '.join(dbs)}"] if dbs else []) + (
        [f"links {', '.join(links)}"] if links else [])
    return "; ".join(parts) or "the whole crawl"


def select(
    store: str | Path, *, around: str | None = None, hops: int | None = None,
    dbs: Iterable[str] | None = None, links: Iterable[str] | None = None,
    query: str | None = None, params: Params = None, max_nodes: int = DEFAULT_MAX_NODES,
) -> Selection:
    """What `view` draws: checked input, then one read of the journal (or the query's store)."""
    dbs = sorted({normalize_db(d) for d in dbs}) if dbs else None
    links = sorted({check_linkname(x) for x in links}) if links else None
    if max_nodes < 1:
        raise BadInput(f"--max-nodes must be at least 1, not {max_nodes}")
    if hops is not None and around is None:
        raise BadInput("--hops needs --around db:uid")
    if hops is not None and hops < 0:
        raise BadInput(f"--hops must be 0 or more, not {hops}")
    if around is not None and query:
        raise BadInput("give --around or --query, not both")
    if around is not None:
        with _open_journal(store) as journal:
            return select_around(journal, around, hops=DEFAULT_HOPS if hops is None else hops,
                                 dbs=dbs, links=links, max_nodes=max_nodes)
    if query:
        try:
            with _source(store, dbs, links, query, params) as source:
                nodes, edges = _collect(source, max_nodes, f"what query {query!r} returned")
        except BadInput as exc:  # say "draw", not export's "export", for a query of columns
            raise BadInput(str(exc).replace("links to export", "links to draw")) from None
        return Selection(nodes, edges, f"query {query}")
    if params:
        raise BadInput("--param needs --query")
    with _open_journal(store) as journal:
        source = JournalSource(journal, dbs, links)
        count = None
        if not links:  # the record count is one SQL count; with links, the source must select
            db_sql, db_args = _in("db", dbs)
            count = journal.execute(f"SELECT count(*) FROM nodes WHERE id <= ?{db_sql}",
                                    [source.max_node, *db_args]).fetchone()[0]
        try:
            what = "the store" if not (dbs or links) else f"the selection ({_describe(dbs, links)})"
            nodes, edges = _collect(source, max_nodes, what, count)
        finally:
            source.close()
    return Selection(nodes, edges, _describe(dbs, links))


# -- the page ---------------------------------------------------------------------------------


def vis_network() -> tuple[str, str]:
    """(version, text) of the standalone vis-network build inside the installed pyvis package.

    Found through the import system without importing pyvis (which would pull in IPython).
    The newest `vis-<version>` directory wins, so a later pyvis with a newer build just works.
    """
    spec = importlib.util.find_spec("pyvis")
    roots = list(spec.submodule_search_locations or []) if spec else []
    found: list[tuple[tuple[int, ...], Path]] = []
    for root in roots:
        for path in Path(root).glob("*lib/vis-*/vis-network.min.js"):
            version = re.fullmatch(r"vis-([0-9.]+)", path.parent.name)
            if version:
                found.append((tuple(int(p) for p in version[1].split(".") if p), path))
    if not found:
        raise BadInput(
            "view needs the vis-network build that pyvis ships: "
            "pip install 'entrez-graph[view]' (or pip install pyvis)"
        )
    version, path = max(found)
    return ".".join(map(str, version)), path.read_text(encoding="utf-8")


def _asset(name: str) -> str:
    return resources.files("crawler").joinpath(_PAGE, name).read_text(encoding="utf-8")


def _script_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def _html_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace(
        '"', "&quot;")


def _colors(dbs: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    others = iter(PALETTE * 10)
    for db in sorted(set(dbs)):
        out[db] = COLORS.get(db) or next(others, "#868e96")
    return out


def label(node: Node) -> str:
    """A record's label: its name, or its UID. Sequences (whose ESummary title is a sentence)
    show their accession when known, as in NCBI's own displays."""
    props = node.props
    if node.db in SEQUENCE_DBS and props.get("accession"):
        return str(props["accession"])
    return str(props.get("name") or node.uid)


def page_data(selection: Selection) -> dict[str, Any]:
    """The JSON the page draws: records (key, label, properties), links, colours."""
    nodes = []
    for node in selection.nodes:
        item: dict[str, Any] = {"id": node.key, "db": node.db, "uid": node.uid,
                                "label": label(node),
                                "props": {k: v for k, v in node.attrs().items()
                                          if k not in ("db", "uid")}}
        if node.key in selection.hops:
            item["hops"] = selection.hops[node.key]
        nodes.append(item)
    edges = []
    for edge in selection.edges:
        e: dict[str, Any] = {"from": edge.source, "to": edge.target, "linkname": edge.linkname}
        if edge.score is not None:
            e["score"] = edge.score
        if edge.fetched is not None:
            e["fetched"] = edge.fetched
        edges.append(e)
    return {"nodes": nodes, "edges": edges, "center": selection.center, "ncbi": NCBI,
            "colors": _colors(n.db for n in selection.nodes)}


def render_page(selection: Selection) -> str:
    """The whole HTML document: CSP first, then the guard, styles, data, vis-network, the app."""
    vis_version, vis = vis_network()
    guard, app, css = _asset("guard.js"), _asset("app.js"), _asset("page.css")
    # `<` escaped: no text from the crawl can close the data block or open a comment.
    data = json.dumps(page_data(selection), ensure_ascii=False, separators=(",", ":"))
    data = data.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    if "</script" in vis.lower() or "<!--" in vis:
        raise BadInput("this vis-network build cannot be inlined (it holds </script)")
    csp = ("default-src 'none'; "
           f"script-src {_script_hash(guard)} {_script_hash(vis)} {_script_hash(app)}; "
           "style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'")
    n, m = len(selection.nodes), len(selection.edges)
    counts = f"{n:,} record{'s' if n != 1 else ''}, {m:,} link{'s' if m != 1 else ''}"
    replacements = {
        "{{CSP}}": csp, "{{VERSION}}": __version__,
        "{{TITLE}}": _html_text(f"entrez-graph: {selection.title}"),
        "{{COUNTS}}": counts, "{{VIS_VERSION}}": vis_version,
        "{{GUARD}}": guard, "{{CSS}}": css, "{{DATA}}": data, "{{VIS}}": vis, "{{APP}}": app,
    }
    return re.sub(r"\{\{[A-Z_]+\}\}", lambda m: replacements[m.group(0)], _asset("page.html"))


# -- the command's function -------------------------------------------------------------------


@dataclass(slots=True)
class ViewReport:
    """What `write_view` drew (the command prints it; `view` returns only the path)."""

    out: Path
    nodes: int
    edges: int
    title: str


def write_view(
    store: str | Path, out: str | Path = "view.html", *, around: str | None = None,
    hops: int | None = None, dbs: Iterable[str] | None = None,
    links: Iterable[str] | None = None, query: str | None = None, params: Params = None,
    max_nodes: int = DEFAULT_MAX_NODES, open_browser: bool = False, force: bool = False,
) -> ViewReport:
    """`view`, returning what was drawn as well as where."""
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise BadInput(f"view writes an HTML file: give OUT a .html name, not {out.name!r}")
    _check_overwrite(out, True, force)  # the exports' rule: nothing replaced without --force
    vis_network()  # a missing pyvis is said before reading anything
    selection = select(store, around=around, hops=hops, dbs=dbs, links=links, query=query,
                       params=params, max_nodes=max_nodes)
    if not selection.nodes:
        raise BadInput("nothing to view: no records match the chosen --db / --link"
                       if dbs or links else "nothing to view: the store holds no records yet")
    html = render_page(selection)
    with _atomic_file(out) as fh:
        fh.write(html)
    if open_browser:
        import webbrowser  # lazy: only --open needs it

        webbrowser.open(out.resolve().as_uri())
    return ViewReport(out, len(selection.nodes), len(selection.edges), selection.title)


def view(
    store: str | Path, out: str | Path = "view.html", *, around: str | None = None,
    hops: int | None = None, dbs: Iterable[str] | None = None,
    links: Iterable[str] | None = None, query: str | None = None, params: Params = None,
    max_nodes: int = DEFAULT_MAX_NODES, open_browser: bool = False, force: bool = False,
) -> Path:
    """Write one self-contained HTML file drawing the chosen part of the crawl; return its path.

    `around="gene:672", hops=1`: that record and its neighbours (`around` also takes
    `db:ACCESSION` or `db:NAME`); `dbs`, `links`, `query`/`params` choose as for `export`.
    More than `max_nodes` records is a BadInput naming the size. `open_browser` opens it; an
    existing OUT is replaced only with `force`.
    """
    return write_view(store, out, around=around, hops=hops, dbs=dbs, links=links, query=query,
                      params=params, max_nodes=max_nodes, open_browser=open_browser,
                      force=force).out
