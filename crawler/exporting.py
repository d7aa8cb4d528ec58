"""networkx graphs and graph files (GraphML, GEXF, node-link JSON, neo4j-admin CSV) from a crawl.

The journal is the source of truth, so exports read it directly, never a graph store: every
file is streamed from the journal in id-ordered chunks by our own writers, so exporting millions
of edges keeps memory bounded (networkx's writers would need the whole graph in memory first).
`to_networkx` is the in-memory API for analysis. With a Cypher query, the export holds the
records and links the query returns (those results are in memory anyway).

The graph model is the stores' one: node key `db:uid` with `db`, `uid`, `depth`, `fetched` and
the `NODE_PROPERTIES` that are known; one edge per ELink link with key and attribute `linkname`,
`score` where known and `fetched` (provenance: when NCBI gave it, `2026-12-01T19:05:12Z`).
Files are written to a temporary name beside the target and renamed at the end, so an error
never leaves a partial file behind.
"""

from __future__ import annotations

import csv
import errno
import itertools
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .errors import BadInput, local_io_error
from .journal import Journal
from .linknames import check_db
from .names import check_identifier, check_linkname, normalize_db
from .sinks import NODE_PROPERTIES
from .store import StorePaths

if TYPE_CHECKING:
    import networkx as nx

FORMATS = ("graphml", "gexf", "json", "neo4j-csv", "tsv", "csv", "parquet")
# Query parameters as `querying.run_query` takes them: a mapping, or `k=v` / `k:int=v` strings.
Params = Mapping[str, Any] | Iterable[str] | None
SUFFIXES = {".graphml": "graphml", ".gexf": "gexf", ".json": "json", ".tsv": "tsv",
            ".csv": "csv", ".parquet": "parquet"}
CHUNK = 20_000
BUFFER = 1 << 20
CSV_BUFFER = 1 << 16  # one file per label and per link name may be open at once

# Files of a neo4j-csv export; `import.sh` also marks a directory as one we may replace.
IMPORT_SCRIPT = "import.sh"
CONSTRAINTS_FILE = "constraints.cypher"
NODES_DIR = "nodes"
RELS_DIR = "relationships"

# XML 1.0 cannot carry these characters at all, escaped or not.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


# -- the graph elements every writer consumes -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Node:
    db: str
    uid: str
    depth: int | None
    props: dict[str, str | int]  # only NODE_PROPERTIES, already coerced, never None
    fetched: str | None = None  # the journal's time stamp (None: a journal from before them)

    @property
    def key(self) -> str:
        return f"{self.db}:{self.uid}"

    def attrs(self) -> dict[str, str | int]:
        """Scalar attributes only (no None), the same in every format."""
        out: dict[str, str | int] = {"db": self.db, "uid": self.uid}
        if self.depth is not None:
            out["depth"] = self.depth
        if self.fetched is not None:
            out["fetched"] = self.fetched
        out.update(self.props)
        return out


@dataclass(frozen=True, slots=True)
class Edge:
    id: int  # unique within one export (the journal's row id, or a counter for query results)
    dbfrom: str
    uid_from: str
    linkname: str
    dbto: str
    uid_to: str
    score: int | None
    fetched: str | None = None

    @property
    def source(self) -> str:
        return f"{self.dbfrom}:{self.uid_from}"

    @property
    def target(self) -> str:
        return f"{self.dbto}:{self.uid_to}"


@dataclass(slots=True)
class ExportReport:
    """What `export` wrote; for neo4j-csv also the import command and the constraints."""

    format: str
    out: Path
    nodes: int = 0
    edges: int = 0
    files: list[Path] = field(default_factory=list)
    command: str | None = None
    constraints: list[str] = field(default_factory=list)


def coerce_props(data: Mapping[str, Any]) -> dict[str, str | int]:
    """The NODE_PROPERTIES present in `data`, as scalars of their declared type.

    Lists become `; `-joined text and other values their string form, so that GraphML, GEXF and
    CSV (scalar-only formats) get the same attributes as the in-memory graph; a value that does
    not fit an integer property is dropped rather than stored with the wrong type.
    """
    out: dict[str, str | int] = {}
    for name, kind in NODE_PROPERTIES.items():
        value = data.get(name)
        if value is None:
            continue
        if kind == "INT64":
            if isinstance(value, bool):
                continue
            try:
                out[name] = int(value)
            except (TypeError, ValueError):
                continue
        elif isinstance(value, (list, tuple)):
            out[name] = "; ".join(str(v) for v in value if v is not None)
        elif isinstance(value, dict):
            out[name] = json.dumps(value, sort_keys=True)
        else:
            out[name] = str(value)
    return out


# -- sources ----------------------------------------------------------------------------------


class JournalSource:
    """Nodes and edges streamed from the journal, optionally restricted to databases / link names.

    Only `dbs`: the records of those databases and the links between them. With `links`: those
    links (both ends in `dbs` when given) and the records they join. Bounds are taken once from
    `max_ids()`, so a crawl writing meanwhile never yields an edge whose record is missing.
    """

    def __init__(
        self, journal: Journal, dbs: Iterable[str] | None = None,
        links: Iterable[str] | None = None, chunk: int | None = None,
    ) -> None:
        self.journal = journal
        self.dbs = sorted({check_db(d, "database in --db") for d in dbs}) if dbs else None
        self.links = sorted({check_linkname(x) for x in links}) if links else None
        self.chunk = chunk or CHUNK
        bounds = journal.max_ids()
        self.max_node, self.max_edge = bounds.node, bounds.edge
        self._selected: str | None = None  # temp table of node ids joined by the chosen links

    def _fetched(self, alias: str) -> str:
        """The `fetched` column of `alias`, or NULL in a journal from before time stamps."""
        return f"{alias}.fetched" if self.journal.has_fetched else "NULL"

    def _edge_filter(self) -> tuple[str, list[Any]]:
        # Unary `+` keeps SQLite from using the (dbfrom, uid_from, ...) index for these terms:
        # with it, every chunk would re-sort all matches by id (quadratic); without, each chunk
        # is a plain range scan of the rowid from the last id on.
        sql, params = "", []
        if self.links:
            sql += f" AND +e.linkname IN ({','.join('?' * len(self.links))})"
            params += self.links
        if self.dbs:
            marks = ",".join("?" * len(self.dbs))
            sql += f" AND +e.dbfrom IN ({marks}) AND +e.dbto IN ({marks})"
            params += self.dbs + self.dbs
        return sql, params

    def _both_ends(self) -> str:
        return (
            " AND EXISTS (SELECT 1 FROM nodes a WHERE a.db = e.dbfrom AND a.uid = e.uid_from"
            " AND a.id <= ?) AND EXISTS (SELECT 1 FROM nodes b WHERE b.db = e.dbto"
            " AND b.uid = e.uid_to AND b.id <= ?)"
        )

    def edges(self) -> Iterator[Edge]:
        where, params = self._edge_filter()
        sql = (
            "SELECT e.id, e.dbfrom, e.uid_from, e.linkname, e.dbto, e.uid_to, e.score, "
            f"{self._fetched('e')} FROM edges e "
            f"WHERE e.id > ? AND e.id <= ?{where}{self._both_ends()} ORDER BY e.id LIMIT ?"
        )
        last = 0
        while True:
            rows = self.journal.execute(
                sql, [last, self.max_edge, *params, self.max_node, self.max_node, self.chunk]
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            for r in rows:
                yield Edge(*r)

    def _select_linked_nodes(self) -> str:
        """Fill a connection-local temp table with the ids of records the chosen links join.

        A TEMP table lives outside the journal file (nothing in the journal changes) and lets
        SQLite, not Python, hold the set, so memory stays bounded however many records qualify.
        """
        if self._selected:
            return self._selected
        name = f"export_nodes_{uuid.uuid4().hex}"
        self.journal.execute(f"CREATE TEMP TABLE {name}(id INTEGER PRIMARY KEY)")
        self._selected = name
        where, params = self._edge_filter()
        for mine, other in (("from", "to"), ("to", "from")):
            db_mine, db_other = ("dbfrom", "dbto") if mine == "from" else ("dbto", "dbfrom")
            self.journal.execute(
                f"INSERT OR IGNORE INTO temp.{name}(id) SELECT n.id FROM edges e "
                f"JOIN nodes n ON n.db = e.{db_mine} AND n.uid = e.uid_{mine} "
                f"WHERE e.id <= ? AND n.id <= ?{where} AND EXISTS (SELECT 1 FROM nodes o "
                f"WHERE o.db = e.{db_other} AND o.uid = e.uid_{other} AND o.id <= ?)",
                [self.max_edge, self.max_node, *params, self.max_node],
            )
        return name

    def nodes(self) -> Iterator[Node]:
        select = f"SELECT n.id, n.db, n.uid, n.depth, p.data, {self._fetched('n')} FROM "
        props = " LEFT JOIN props p ON p.db = n.db AND p.uid = n.uid "
        if self.links:
            table = self._select_linked_nodes()
            sql = (f"{select}temp.{table} x JOIN nodes n ON n.id = x.id{props}"
                   "WHERE x.id > ? ORDER BY x.id LIMIT ?")
            extra: list[Any] = []
        else:
            sql = f"{select}nodes n{props}WHERE n.id > ? AND n.id <= ?"
            extra = [self.max_node]
            if self.dbs:
                sql += f" AND +n.db IN ({','.join('?' * len(self.dbs))})"  # see _edge_filter
                extra += self.dbs
            sql += " ORDER BY n.id LIMIT ?"
        last = 0
        while True:
            rows = self.journal.execute(sql, [last, *extra, self.chunk]).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            for _, db, uid, depth, data, fetched in rows:
                yield Node(
                    db, uid, depth, coerce_props(json.loads(data)) if data else {}, fetched
                )

    def close(self) -> None:
        if self._selected:
            with suppress(Exception):
                self.journal.execute(f"DROP TABLE IF EXISTS temp.{self._selected}")
            self._selected = None


class QuerySource:
    """The records and links a Cypher query returns (nodes, relationships, paths, in any column).

    Records keep the journal's depth and properties when the journal knows them (the journal is
    the source of truth); a relationship's endpoints are included even when not returned
    themselves, so that every file is a valid graph.
    """

    def __init__(
        self, journal: Journal, rows: Iterable[Any], dbs: Iterable[str] | None = None,
        links: Iterable[str] | None = None,
    ) -> None:
        wanted_db = {check_db(d, "database in --db") for d in dbs} if dbs else None
        wanted_link = {check_linkname(x) for x in links} if links else None
        found_nodes: dict[tuple[str, str], dict[str, Any]] = {}
        found_rels: dict[tuple[str, str, str, str, str], int | None] = {}
        for value in _walk(rows):
            kind = _kind(value)
            if kind == "node":
                key = (normalize_db(value.db), str(value.uid))
                found_nodes.setdefault(key, dict(getattr(value, "props", None) or {}))
            elif kind == "rel":
                (db1, uid1), (db2, uid2) = value.start, value.end
                rel = (normalize_db(db1), str(uid1), check_linkname(value.linkname),
                       normalize_db(db2), str(uid2))
                if wanted_link is not None and rel[2] not in wanted_link:
                    continue
                score = getattr(value, "score", None)
                found_rels[rel] = score if score is None else int(score)
        rels = {
            r: s for r, s in found_rels.items()
            if wanted_db is None or (r[0] in wanted_db and r[3] in wanted_db)
        }
        for db1, uid1, _, db2, uid2 in rels:
            found_nodes.setdefault((db1, uid1), {})
            found_nodes.setdefault((db2, uid2), {})
        self._nodes = [
            _journal_node(journal, db, uid, props)
            for (db, uid), props in found_nodes.items()
            if wanted_db is None or db in wanted_db
        ]
        self._edges = [
            Edge(i, *rel, score, _journal_fetched(journal, rel))
            for i, (rel, score) in enumerate(sorted(rels.items()), start=1)
        ]

    @property
    def empty(self) -> bool:
        return not self._nodes

    def nodes(self) -> Iterator[Node]:
        return iter(self._nodes)

    def edges(self) -> Iterator[Edge]:
        return iter(self._edges)

    def close(self) -> None:
        return None


def _kind(value: Any) -> str | None:
    """`node`, `rel` or `path` for querying's GraphNode / GraphRel / GraphPath (duck-typed)."""
    if hasattr(value, "rels") and hasattr(value, "nodes"):
        return "path"
    if all(hasattr(value, a) for a in ("linkname", "start", "end")):
        return "rel"
    if all(hasattr(value, a) for a in ("db", "uid")) and not isinstance(value, Mapping):
        return "node"
    return None


def _walk(value: Any) -> Iterator[Any]:
    """Every graph element inside query rows, however nested (dicts, lists, tuples, paths)."""
    kind = _kind(value)
    if kind == "path":
        yield from _walk(list(value.nodes))
        yield from _walk(list(value.rels))
    elif kind is not None:
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            yield from _walk(v)


def _journal_fetched(journal: Journal, rel: tuple[str, str, str, str, str]) -> str | None:
    """When the journal's link `rel` was fetched (None for a link it does not hold)."""
    if not journal.has_fetched:
        return None
    row = journal.execute(
        "SELECT fetched FROM edges WHERE dbfrom = ? AND uid_from = ? AND linkname = ? "
        "AND dbto = ? AND uid_to = ?", rel,
    ).fetchone()
    return row[0] if row else None


def _journal_node(journal: Journal, db: str, uid: str, fallback: Mapping[str, Any]) -> Node:
    fetched = "n.fetched" if journal.has_fetched else "NULL"
    row = journal.execute(
        f"SELECT n.depth, p.data, {fetched} FROM nodes n "
        "LEFT JOIN props p ON p.db = n.db AND p.uid = n.uid WHERE n.db = ? AND n.uid = ?",
        (db, uid),
    ).fetchone()
    if row is not None:
        depth, data, when = row
        return Node(db, uid, depth, coerce_props(json.loads(data)) if data else {}, when)
    depth = fallback.get("depth")
    try:
        depth = None if depth is None or isinstance(depth, bool) else int(depth)
    except (TypeError, ValueError):
        depth = None
    return Node(db, uid, depth, coerce_props(fallback))


# -- opening the store ------------------------------------------------------------------------


def _open_journal(store: str | Path) -> Journal:
    paths = StorePaths.of(store)
    if not paths.journal.is_file():
        raise BadInput(
            f"no entrez-graph store at {paths.root} (no {paths.journal.name}); "
            "crawl into it first or pass --store"
        )
    return Journal(paths.journal, create=False)


@contextmanager
def _source(
    store: str | Path, dbs: Iterable[str] | None, links: Iterable[str] | None,
    query: str | None, params: Params,
) -> Iterator[JournalSource | QuerySource]:
    dbs = list(dbs) if dbs else None
    links = list(links) if links else None
    if params and not query:
        raise BadInput("--param needs --query")
    with _open_journal(store) as journal:
        if query:
            from .querying import run_query  # lazy: it loads the store's database driver

            result = run_query(store, query, params)
            rows = getattr(result, "rows", result)  # QueryResult(columns, rows), or bare rows
            source: JournalSource | QuerySource = QuerySource(journal, rows, dbs, links)
            if source.empty:
                raise BadInput(
                    "the query returned no records or links to export; return nodes, "
                    "relationships or paths (e.g. MATCH p = (:gene)-[]->() RETURN p)"
                )
        else:
            source = JournalSource(journal, dbs, links)
        try:
            yield source
        finally:
            source.close()


# -- in-memory API ----------------------------------------------------------------------------


def to_networkx(
    store: str | Path, *, dbs: Iterable[str] | None = None, links: Iterable[str] | None = None,
    query: str | None = None, params: Params = None,
) -> nx.MultiDiGraph:
    """The crawl, or the part chosen by databases, link names or a Cypher query, in networkx.

    Node key `db:uid` with `db`, `uid`, `depth`, `fetched` and the known NODE_PROPERTIES; one
    edge per link, keyed by its link name, with attributes `linkname`, `score` (when known) and
    `fetched`.
    """
    import networkx as nx

    graph = nx.MultiDiGraph(store=str(store))
    with _source(store, dbs, links, query, params) as source:
        for node in source.nodes():
            graph.add_node(node.key, **node.attrs())
        for edge in source.edges():
            data: dict[str, Any] = {"linkname": edge.linkname}
            if edge.score is not None:
                data["score"] = edge.score
            if edge.fetched is not None:
                data["fetched"] = edge.fetched
            graph.add_edge(edge.source, edge.target, key=edge.linkname, **data)
    return graph


# -- streaming writers ------------------------------------------------------------------------


def _xml_text(value: object) -> str:
    text = _XML_ILLEGAL.sub("\ufffd", str(value))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _xml_attr(value: object) -> str:
    """Attribute-safe text: parsers turn raw tabs and newlines in attributes into spaces."""
    return (
        _xml_text(value).replace('"', "&quot;").replace("\n", "&#10;")
        .replace("\r", "&#13;").replace("\t", "&#9;")
    )


def _node_schema() -> list[tuple[str, str]]:
    """(attribute, GraphML type) for nodes, in file order."""
    types = {"STRING": "string", "INT64": "long"}
    return [("db", "string"), ("uid", "string"), ("depth", "int"), ("fetched", "string")] + [
        (name, types.get(kind, "string")) for name, kind in NODE_PROPERTIES.items()
    ]


EDGE_SCHEMA = [("linkname", "string"), ("score", "long"), ("fetched", "string")]


def write_graphml(
    fh: IO[str], nodes: Iterable[Node], edges: Callable[[], Iterable[Edge]]
) -> tuple[int, int]:
    """GraphML with typed keys; every edge has a unique id (`e<n>`), never the link name."""
    node_keys = {name: f"n{i}" for i, (name, _) in enumerate(_node_schema())}
    edge_keys = {name: f"e{i}" for i, (name, _) in enumerate(EDGE_SCHEMA)}
    w = fh.write
    w('<?xml version="1.0" encoding="UTF-8"?>\n'
      '<graphml xmlns="http://graphml.graphdrawing.org/xmlns" '
      'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
      'xsi:schemaLocation="http://graphml.graphdrawing.org/xmlns '
      'http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd">\n')
    for name, kind in _node_schema():
        w(f'  <key id="{node_keys[name]}" for="node" attr.name="{name}" attr.type="{kind}"/>\n')
    for name, kind in EDGE_SCHEMA:
        w(f'  <key id="{edge_keys[name]}" for="edge" attr.name="{name}" attr.type="{kind}"/>\n')
    w('  <graph id="entrez-graph" edgedefault="directed">\n')
    n_nodes = n_edges = 0
    for node in nodes:
        parts = [f'    <node id="{_xml_attr(node.key)}">']
        for name, value in node.attrs().items():
            parts.append(f'<data key="{node_keys[name]}">{_xml_text(value)}</data>')
        parts.append("</node>\n")
        w("".join(parts))
        n_nodes += 1
    for edge in edges():
        score = ("" if edge.score is None
                 else f'<data key="{edge_keys["score"]}">{edge.score}</data>')
        if edge.fetched is not None:
            score += f'<data key="{edge_keys["fetched"]}">{_xml_text(edge.fetched)}</data>'
        w(f'    <edge id="e{edge.id}" source="{_xml_attr(edge.source)}" '
          f'target="{_xml_attr(edge.target)}"><data key="{edge_keys["linkname"]}">'
          f"{edge.linkname}</data>{score}</edge>\n")
        n_edges += 1
    w("  </graph>\n</graphml>\n")
    return n_nodes, n_edges


def write_gexf(
    fh: IO[str], nodes: Iterable[Node], edges: Callable[[], Iterable[Edge]]
) -> tuple[int, int]:
    """GEXF 1.2draft with node and edge attributes declared; node label = name, else db:uid."""
    node_ids = {name: str(i) for i, (name, _) in enumerate(_node_schema())}
    edge_ids = {name: str(i) for i, (name, _) in enumerate(EDGE_SCHEMA)}
    w = fh.write
    w('<?xml version="1.0" encoding="UTF-8"?>\n'
      '<gexf xmlns="http://www.gexf.net/1.2draft" '
      'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
      'xsi:schemaLocation="http://www.gexf.net/1.2draft http://www.gexf.net/1.2draft/gexf.xsd" '
      'version="1.2">\n'
      '  <meta><creator>entrez-graph</creator><description>NCBI Entrez ELink cross-references'
      '</description></meta>\n'
      '  <graph defaultedgetype="directed" mode="static">\n'
      '    <attributes class="node" mode="static">\n')
    for name, kind in _node_schema():
        w(f'      <attribute id="{node_ids[name]}" title="{name}" type="{kind}"/>\n')
    w('    </attributes>\n    <attributes class="edge" mode="static">\n')
    for name, kind in EDGE_SCHEMA:
        w(f'      <attribute id="{edge_ids[name]}" title="{name}" type="{kind}"/>\n')
    w("    </attributes>\n    <nodes>\n")
    n_nodes = n_edges = 0
    for node in nodes:
        label = node.props.get("name") or node.key
        parts = [f'      <node id="{_xml_attr(node.key)}" label="{_xml_attr(label)}"><attvalues>']
        for name, value in node.attrs().items():
            parts.append(f'<attvalue for="{node_ids[name]}" value="{_xml_attr(value)}"/>')
        parts.append("</attvalues></node>\n")
        w("".join(parts))
        n_nodes += 1
    w("    </nodes>\n    <edges>\n")
    for edge in edges():
        score = ("" if edge.score is None
                 else f'<attvalue for="{edge_ids["score"]}" value="{edge.score}"/>')
        if edge.fetched is not None:
            score += f'<attvalue for="{edge_ids["fetched"]}" value="{_xml_attr(edge.fetched)}"/>'
        w(f'      <edge id="{edge.id}" source="{_xml_attr(edge.source)}" '
          f'target="{_xml_attr(edge.target)}" label="{edge.linkname}"><attvalues>'
          f'<attvalue for="{edge_ids["linkname"]}" value="{edge.linkname}"/>{score}'
          "</attvalues></edge>\n")
        n_edges += 1
    w("    </edges>\n  </graph>\n</gexf>\n")
    return n_nodes, n_edges


def write_json(
    fh: IO[str], nodes: Iterable[Node], edges: Callable[[], Iterable[Edge]]
) -> tuple[int, int]:
    """networkx node-link JSON with the edges under `"edges"`: node_link_graph(d, edges="edges")."""
    w = fh.write
    w('{"directed": true, "multigraph": true, "graph": {"name": "entrez-graph"},\n"nodes": [')
    n_nodes = n_edges = 0
    for node in nodes:
        w(("\n" if n_nodes == 0 else ",\n") + json.dumps({"id": node.key, **node.attrs()}))
        n_nodes += 1
    w('\n],\n"edges": [')
    for edge in edges():
        data: dict[str, Any] = {"source": edge.source, "target": edge.target,
                                "key": edge.linkname, "linkname": edge.linkname}
        if edge.score is not None:
            data["score"] = edge.score
        if edge.fetched is not None:
            data["fetched"] = edge.fetched
        w(("\n" if n_edges == 0 else ",\n") + json.dumps(data))
        n_edges += 1
    w("\n]}\n")
    return n_nodes, n_edges


_WRITERS = {"graphml": write_graphml, "gexf": write_gexf, "json": write_json}


# -- neo4j-admin CSV --------------------------------------------------------------------------


def constraint_statement(label: str) -> str:
    """The uniqueness constraint the live Neo4j sink creates for a label."""
    label = check_identifier(label, "label")
    return f"CREATE CONSTRAINT {label}_uid IF NOT EXISTS FOR (n:{label}) REQUIRE n.uid IS UNIQUE"


def _csv_node_header(label: str) -> list[str]:
    suffix = {"INT64": ":long"}
    return [f"uid:ID({label})", "depth:int", "fetched"] + [
        name + suffix.get(kind, "") for name, kind in NODE_PROPERTIES.items()
    ] + [":LABEL"]


def _csv_rel_header(dbfrom: str, dbto: str) -> list[str]:
    return [f":START_ID({dbfrom})", f":END_ID({dbto})", "score:int", "fetched", ":TYPE"]


@dataclass(slots=True)
class _CsvFile:
    path: Path
    handle: IO[str]
    writer: Any
    rows: int = 0


def write_neo4j_csv(
    directory: Path, nodes: Iterable[Node], edges: Callable[[], Iterable[Edge]]
) -> tuple[int, int, dict[str, Path], dict[tuple[str, str, str], Path], bool]:
    """One node file per label and one relationship file per link name (and endpoint labels).

    Each label is its own ID space (`uid:ID(gene)`, `:START_ID(gene)`), since a UID is unique
    only within its database. Returns counts, the files, and whether a value spans lines
    (neo4j-admin then needs --multiline-fields).
    """
    (directory / NODES_DIR).mkdir()
    (directory / RELS_DIR).mkdir()
    node_files: dict[str, _CsvFile] = {}
    rel_files: dict[tuple[str, str, str], _CsvFile] = {}
    multiline = False
    n_nodes = n_edges = 0

    def open_csv(path: Path, header: list[str]) -> _CsvFile:
        handle = path.open("w", encoding="utf-8", newline="", buffering=CSV_BUFFER)
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        return _CsvFile(path, handle, writer)

    try:
        for node in nodes:
            label = check_identifier(node.db, "label")
            out = node_files.get(label)
            if out is None:
                out = node_files[label] = open_csv(
                    directory / NODES_DIR / f"{label}.csv", _csv_node_header(label)
                )
            values = [node.props.get(name) for name in NODE_PROPERTIES]
            if not multiline:
                multiline = any(isinstance(v, str) and ("\n" in v or "\r" in v) for v in values)
            out.writer.writerow([node.uid, "" if node.depth is None else node.depth,
                                 node.fetched or "",
                                 *("" if v is None else v for v in values), label])
            out.rows += 1
            n_nodes += 1
        for i, edge in enumerate(edges()):
            key = (check_linkname(edge.linkname), check_identifier(edge.dbfrom, "label"),
                   check_identifier(edge.dbto, "label"))
            out = rel_files.get(key)
            if out is None:
                out = rel_files[key] = open_csv(
                    directory / RELS_DIR / f".part{len(rel_files)}.csv",
                    _csv_rel_header(edge.dbfrom, edge.dbto),
                )
            out.writer.writerow([edge.uid_from, edge.uid_to,
                                 "" if edge.score is None else edge.score, edge.fetched or "",
                                 edge.linkname])
            out.rows += 1
            n_edges = i + 1
    finally:
        for f in itertools.chain(node_files.values(), rel_files.values()):
            f.handle.close()
    # Name relationship files by link name; the rare link name seen between several label pairs
    # (e.g. a nucleotide alias) gets one file per pair, since a file has one pair of ID spaces.
    per_link: dict[str, int] = {}
    for linkname, _, _ in rel_files:
        per_link[linkname] = per_link.get(linkname, 0) + 1
    rel_paths: dict[tuple[str, str, str], Path] = {}
    for (linkname, dbfrom, dbto), f in sorted(rel_files.items()):
        name = linkname if per_link[linkname] == 1 else f"{linkname}.{dbfrom}-{dbto}"
        final = directory / RELS_DIR / f"{name}.csv"
        f.path.rename(final)
        rel_paths[(linkname, dbfrom, dbto)] = final
    node_paths = {label: f.path for label, f in sorted(node_files.items())}
    return n_nodes, n_edges, node_paths, rel_paths, multiline


def import_command(
    node_files: Mapping[str, Path], rel_files: Mapping[tuple[str, str, str], Path],
    *, base: Path | None = None, database: str = "neo4j", multiline: bool = False,
) -> list[str]:
    """argv of `neo4j-admin database import full` for these files (relative to `base` if given).

    The database name comes first (neo4j-admin 5.19+ reads it before the options).
    `--overwrite-destination` because a full import needs a stopped, empty or replaced database.
    """
    def rel(p: Path) -> str:
        return str(p.relative_to(base)) if base is not None else str(p)

    argv = ["neo4j-admin", "database", "import", "full", database, "--overwrite-destination"]
    if multiline:
        argv.append("--multiline-fields=true")
    argv += [f"--nodes={label}={rel(path)}" for label, path in node_files.items()]
    argv += [f"--relationships={linkname}={rel(path)}"
             for (linkname, _, _), path in rel_files.items()]
    return argv


def _import_script(argv: list[str]) -> str:
    options = " \\\n  ".join(shlex.quote(a) for a in argv[5:])
    return (
        "#!/bin/sh\n"
        "# Bulk-load this entrez-graph export into Neo4j 5 with neo4j-admin.\n"
        "# Neo4j must be STOPPED; the import REPLACES the database (--overwrite-destination).\n"
        "# Usage: ./import.sh [database]   (default neo4j; NEO4J_ADMIN=path picks the binary)\n"
        f"# Then start Neo4j and run: cypher-shell -d <database> -f {CONSTRAINTS_FILE}\n"
        "set -eu\n"
        'cd "$(dirname "$0")"\n'
        'DATABASE="${1:-neo4j}"\n'
        'exec "${NEO4J_ADMIN:-neo4j-admin}" database import full "$DATABASE" \\\n'
        f"  {options}\n"
    )


# -- atomic output ----------------------------------------------------------------------------


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _cannot_write(out: Path, exc: OSError) -> Exception:
    """A full or read-only disk is LocalIOError (exit 4), naming `out`; an output path the user
    may not write (EACCES, a missing parent) stays bad input (exit 2). No partial file is left."""
    if exc.errno not in (errno.EACCES, errno.EPERM):
        # named by `out`, not by the temp file beside it that the OSError names
        error = local_io_error(out, OSError(exc.errno, exc.strerror), resumes=False)
        if error is not None:
            return error
    return BadInput(f"cannot write {out}: {exc.strerror or exc}")


def _check_parent(out: Path) -> None:
    parent = out.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise BadInput(f"cannot write {out}: {parent} {what}")


@contextmanager
def _atomic_file(out: Path) -> Iterator[IO[str]]:
    """A temp file beside `out`, renamed over it only when the body finished without error."""
    if out.is_dir():
        raise BadInput(f"cannot write {out}: it is a directory (give a file name)")
    _check_parent(out)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    except OSError as exc:
        raise _cannot_write(out, exc) from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8", buffering=BUFFER) as fh:
            yield fh
        os.replace(tmp, out)
    except BaseException as exc:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _cannot_write(out, exc) from None
        raise


def _check_overwrite(out: Path, is_file: bool, force: bool) -> None:
    """The one rule for every export: nothing existing is replaced without --force, and --force
    never replaces a directory that an earlier neo4j-csv export did not write."""
    if not out.exists() and not out.is_symlink():
        return
    if out.is_dir() and not is_file:
        if not any(out.iterdir()):
            return  # an empty directory: nothing to overwrite
        if not _is_previous_export(out):
            raise BadInput(f"{out} exists and is not an earlier neo4j-csv export; choose a new "
                           "directory (--force replaces only an earlier export)")
    elif out.is_dir():
        raise BadInput(f"cannot write {out}: it is a directory (give a file name)")
    elif not is_file:
        raise BadInput(f"cannot write {out}: it is a file (neo4j-csv writes a directory)")
    if not force:
        raise BadInput(f"{out} exists; pass --force to replace it")


def _is_previous_export(path: Path) -> bool:
    return (path / IMPORT_SCRIPT).is_file() and (path / CONSTRAINTS_FILE).is_file()


@contextmanager
def _atomic_dir(out: Path) -> Iterator[Path]:
    """A temp directory beside `out`, moved into place when complete.

    An existing `out` is replaced only if it is empty or an earlier neo4j-csv export (never an
    unrelated directory); the old one is removed only after the new one is in place.
    """
    out = out.resolve()  # a real name even for "." or "..", so the temp sibling is beside it
    cwd = Path.cwd().resolve()
    if out == cwd or out in cwd.parents:
        raise BadInput(f"cannot replace {out}: it holds the current directory; name a new one")
    if out.exists() and not out.is_dir():
        raise BadInput(f"cannot write {out}: it is a file (neo4j-csv writes a directory)")
    if out.is_dir() and any(out.iterdir()) and not _is_previous_export(out):
        raise BadInput(f"{out} exists and is not an earlier neo4j-csv export; choose a new "
                       "directory (--force replaces only an earlier export)")
    _check_parent(out)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
    except OSError as exc:
        raise _cannot_write(out, exc) from None
    old: Path | None = None
    try:
        tmp.chmod(0o777 & ~_umask())
        yield tmp
        if out.exists():
            old = out.with_name(f".{out.name}.{uuid.uuid4().hex}.old")
            out.rename(old)
        tmp.rename(out)
    except BaseException as exc:
        if old is not None and not out.exists():
            old.rename(out)
            old = None
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise _cannot_write(out, exc) from None
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


# -- the export command's function ------------------------------------------------------------


def resolve_format(fmt: str | None, out: str | Path) -> str:
    """The export format, given or guessed from OUT's suffix (.graphml, .gexf, .json, .tsv, …)."""
    if fmt is None:
        guessed = SUFFIXES.get(Path(out).suffix.lower())
        if guessed is None:
            raise BadInput(f"give --format ({', '.join(FORMATS)}); cannot tell it from {out}")
        return guessed
    name = fmt.strip().lower()
    if name not in FORMATS:
        raise BadInput(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    return name


def _nothing(source: JournalSource | QuerySource) -> BadInput:
    if isinstance(source, JournalSource) and (source.dbs or source.links):
        return BadInput("nothing to export: no records match the chosen --db / --link")
    return BadInput("nothing to export: the store's journal holds no records yet")


def export(
    store: str | Path, out: str | Path, fmt: str | None = None, *,
    dbs: Iterable[str] | None = None, links: Iterable[str] | None = None,
    query: str | None = None, params: Params = None, force: bool = False,
) -> ExportReport:
    """Write the crawl (or the chosen part) to OUT as GraphML, GEXF, node-link JSON, neo4j-csv,
    or tables (tsv, csv, parquet: the edge list at OUT, the node table beside it).

    Streams from the journal; nothing is left at OUT unless the whole export succeeded. An
    existing OUT (or node table beside it) is refused unless `force` (then a file is replaced,
    or a directory an earlier neo4j-csv export wrote; never another directory). OUT `-` is
    stdout, for the formats that stream (graphml, gexf, json).
    """
    to_stdout = str(out) == "-"
    if to_stdout and fmt is None:
        raise BadInput("give --format (graphml, gexf or json) to export to stdout (-)")
    name = resolve_format(fmt, out)
    if to_stdout and name not in _WRITERS:
        what = "a directory" if name == "neo4j-csv" else "two files (edges and nodes)"
        raise BadInput(f"{name} writes {what}, not a stream: give a path, not -")
    out = Path(out)
    if not to_stdout:
        is_file = name in _WRITERS or name in TABLE_FORMATS
        _check_overwrite(out, is_file, force)
        if name in TABLE_FORMATS:
            _check_overwrite(node_table_path(out), True, force)
    report = ExportReport(name, out)
    with _source(store, dbs, links, query, params) as source:
        if name in TABLE_FORMATS:
            report.nodes, report.edges, report.files = write_tables(
                out, name, source.nodes(), source.edges, empty=lambda: _nothing(source)
            )
            return report
        if name in _WRITERS and to_stdout:
            report.nodes, report.edges = _WRITERS[name](sys.stdout, source.nodes(),
                                                        source.edges)
            sys.stdout.flush()
            if report.nodes == 0:
                raise _nothing(source)
            return report
        if name in _WRITERS:
            with _atomic_file(out) as fh:
                report.nodes, report.edges = _WRITERS[name](fh, source.nodes(), source.edges)
                if report.nodes == 0:
                    raise _nothing(source)
            report.files = [out]
            return report
        with _atomic_dir(out) as tmp:
            n_nodes, n_edges, node_files, rel_files, multiline = write_neo4j_csv(
                tmp, source.nodes(), source.edges
            )
            if n_nodes == 0:
                raise _nothing(source)
            report.nodes, report.edges = n_nodes, n_edges
            report.constraints = [constraint_statement(label) for label in node_files]
            (tmp / CONSTRAINTS_FILE).write_text(
                "// Run once the import is done and Neo4j is started:\n"
                f"//   cypher-shell -d neo4j -f {CONSTRAINTS_FILE}\n"
                + "".join(f"{s};\n" for s in report.constraints),
                encoding="utf-8",
            )
            script = tmp / IMPORT_SCRIPT
            script.write_text(
                _import_script(import_command(node_files, rel_files, base=tmp,
                                              multiline=multiline)),
                encoding="utf-8",
            )
            script.chmod(0o755)
            final_nodes = {k: out / p.relative_to(tmp) for k, p in node_files.items()}
            final_rels = {k: out / p.relative_to(tmp) for k, p in rel_files.items()}
        absolute = out.absolute()
        report.command = shlex.join(import_command(
            {k: absolute / p.relative_to(out) for k, p in final_nodes.items()},
            {k: absolute / p.relative_to(out) for k, p in final_rels.items()},
            multiline=multiline,
        ))
        report.files = [*final_nodes.values(), *final_rels.values(),
                        out / IMPORT_SCRIPT, out / CONSTRAINTS_FILE]
        return report


# -- tables: edge list and node table (tsv, csv, parquet) and pandas --------------------------

TABLE_FORMATS = ("tsv", "csv", "parquet")
EDGE_COLUMNS = ("source_db", "source_uid", "linkname", "target_db", "target_uid", "score",
                "fetched")
NODE_COLUMNS = ("db", "uid", "depth", "fetched", *NODE_PROPERTIES)
_INT_COLUMNS = {"depth", "score", *(n for n, kind in NODE_PROPERTIES.items() if kind == "INT64")}


def node_table_path(out: str | Path) -> Path:
    """Where the node table goes beside the edge list OUT: `g.tsv` → `g.nodes.tsv`.

    A name ending in `.edges`/`_edges`/`-edges` swaps that word (`g.edges.tsv` → `g.nodes.tsv`).
    """
    out = Path(out)
    stem, suffix = out.stem, out.suffix
    for sep in (".", "_", "-"):
        if stem.lower().endswith(f"{sep}edges"):
            return out.with_name(f"{stem[:-5]}nodes{suffix}")
    return out.with_name(f"{stem}.nodes{suffix}")


def edge_row(edge: Edge) -> tuple[str, str, str, str, str, int | None, str | None]:
    """One edge-list row in EDGE_COLUMNS order (`fetched` None only from an old journal)."""
    return (edge.dbfrom, edge.uid_from, edge.linkname, edge.dbto, edge.uid_to, edge.score,
            edge.fetched)


def node_row(node: Node) -> tuple[Any, ...]:
    """One node-table row in NODE_COLUMNS order (None where unknown)."""
    return (node.db, node.uid, node.depth, node.fetched,
            *(node.props.get(n) for n in NODE_PROPERTIES))


@contextmanager
def _atomic_paths(*outs: Path) -> Iterator[list[Path]]:
    """Temp files beside each of `outs`, all renamed into place only when the body succeeded."""
    for out in outs:
        if out.is_dir():
            raise BadInput(f"cannot write {out}: it is a directory (give a file name)")
        _check_parent(out)
    tmps: list[Path] = []
    try:
        for out in outs:
            try:
                fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
            except OSError as exc:
                raise _cannot_write(out, exc) from None
            os.fchmod(fd, 0o666 & ~_umask())
            os.close(fd)
            tmps.append(Path(tmp))
        yield tmps
        for tmp, out in zip(tmps, outs, strict=True):
            os.replace(tmp, out)
    except BaseException as exc:
        for tmp in tmps:
            with suppress(FileNotFoundError):
                tmp.unlink()
        if isinstance(exc, OSError):  # a full or read-only disk: exit 4, naming the file
            named = {str(t): o for t, o in zip(tmps, outs, strict=False)}
            raise _cannot_write(named.get(str(exc.filename), outs[0]), exc) from None
        raise


def _write_delimited(
    path: Path, delimiter: str, columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]
) -> int:
    """A header and rows; None is an empty field, text needing it is quoted (RFC 4180 style,
    which pandas, R's read.delim and csv readers all take back, tabs and newlines included)."""
    n = 0
    with path.open("w", encoding="utf-8", newline="", buffering=BUFFER) as fh:
        writer = csv.writer(fh, delimiter=delimiter, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if v is None else v for v in row])
            n += 1
    return n


def _arrow_schema(columns: tuple[str, ...]):
    import pyarrow as pa

    return pa.schema([(c, pa.int64() if c in _INT_COLUMNS else pa.string()) for c in columns])


def _write_parquet(path: Path, columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> int:
    """Parquet in row groups of CHUNK rows, so memory stays bounded however long the table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _arrow_schema(columns)
    n = 0
    with pq.ParquetWriter(str(path), schema) as writer:
        rows = iter(rows)
        while batch := list(itertools.islice(rows, CHUNK)):
            arrays = [pa.array(col, type=f.type)
                      for col, f in zip(_transpose(batch, len(columns)), schema, strict=True)]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            n += len(batch)
        if n == 0:
            writer.write_table(schema.empty_table())
    return n


def _transpose(rows: Iterable[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows to columns (one list each), also for no rows at all."""
    columns: list[list[Any]] = [[] for _ in range(width)]
    appends = [c.append for c in columns]
    for row in rows:
        for append, value in zip(appends, row, strict=True):
            append(value)
    return columns


def _needs_pyarrow() -> None:
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise BadInput(
            "parquet needs pyarrow: pip install 'entrez-graph[pandas]' (or use --format tsv)"
        ) from None


def write_tables(
    out: Path, fmt: str, nodes: Iterable[Node], edges: Callable[[], Iterable[Edge]], *,
    empty: Callable[[], Exception] | None = None,
) -> tuple[int, int, list[Path]]:
    """The edge list at OUT and the node table beside it (`node_table_path`), streamed.

    Both files appear together only when both are complete; `empty()` is raised (nothing
    written) when there are no nodes. Returns (nodes, edges, [edge file, node file]).
    """
    node_out = node_table_path(out)
    if fmt == "parquet":
        _needs_pyarrow()
    with _atomic_paths(out, node_out) as (edge_tmp, node_tmp):
        if fmt == "parquet":
            n_nodes = _write_parquet(node_tmp, NODE_COLUMNS, map(node_row, nodes))
        else:
            delimiter = "\t" if fmt == "tsv" else ","
            n_nodes = _write_delimited(node_tmp, delimiter, NODE_COLUMNS, map(node_row, nodes))
        if n_nodes == 0 and empty is not None:
            raise empty()
        if fmt == "parquet":
            n_edges = _write_parquet(edge_tmp, EDGE_COLUMNS, map(edge_row, edges()))
        else:
            n_edges = _write_delimited(edge_tmp, delimiter, EDGE_COLUMNS, map(edge_row, edges()))
    return n_nodes, n_edges, [out, node_out]


def to_pandas(
    store: str | Path, *, dbs: Iterable[str] | None = None, links: Iterable[str] | None = None,
    query: str | None = None, params: Params = None,
):
    """`(nodes_df, edges_df)`: the crawl, or the part chosen as for `export`, as data frames.

    Columns are NODE_COLUMNS and EDGE_COLUMNS (the table export's), with text as pandas'
    string dtype (a UID stays text: `"0012"` is not 12) and integers as nullable `Int64`.
    Needs pandas (`pip install 'entrez-graph[pandas]'`).
    """
    try:
        import pandas as pd
    except ImportError:
        raise BadInput("to_pandas needs pandas: pip install 'entrez-graph[pandas]'") from None

    def frame(columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]):
        return pd.DataFrame({
            c: pd.array(v, dtype="Int64" if c in _INT_COLUMNS else "string")
            for c, v in zip(columns, _transpose(rows, len(columns)), strict=True)
        })

    with _source(store, dbs, links, query, params) as source:
        nodes = frame(NODE_COLUMNS, map(node_row, source.nodes()))
        edges = frame(EDGE_COLUMNS, map(edge_row, source.edges()))
    return nodes, edges
