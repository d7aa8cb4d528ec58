"""Bundled Cypher queries (`cypher/`) and running Cypher on the embedded store or on Neo4j.

A bundled query is `cypher/<name>.cypher` (portable), or `<name>.ladybug.cypher` and
`<name>.neo4j.cypher` where the stores' dialects differ (`label(r)` vs `type(r)`, `labels(n)` a
string vs a list, list functions). Each file opens with a header:

    // name: gene_refseq_proteins
    // params: gene="672", limit=10
    // answers: the RefSeq proteins of a gene (gene_protein_refseq)

A quoted default is a string parameter (UIDs are strings in every store), a bare integer an int;
`--param k=v` values are typed after the header's defaults. Parameters of ad hoc Cypher are strings
unless typed as `k:int=5` (also `:float`, `:bool`, `:str`).

Results are normalised for both stores: graph values become `GraphNode`, `GraphRel` and
`GraphPath`, so `export --query` and the output formats need not know which store answered.
"""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import BadInput, StoreError
from .names import IDENTIFIER, shorten
from .store import StorePaths

if TYPE_CHECKING:
    import ladybug

STORE_KINDS = ("ladybug", "neo4j")
_KIND_ALIASES = {"embedded": "ladybug", "ladybug": "ladybug", "neo4j": "neo4j"}
_HEADER = re.compile(r"^//\s*(name|params|answers)\s*:(.*)$")
_PARAM = re.compile(
    r'\s*([a-z][a-z0-9_]*)\s*=\s*("[^"]*"|-?\d+|[^,\s(]*)\s*(?:\(([^)]*)\))?\s*(?:,|$)'
)
_RANGE = re.compile(r"^\s*(-?\d+)?\s*\.\.\s*(-?\d+)?\s*$")
_TYPED_PARAM = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::(int|float|bool|str))?=(.*)$", re.S)
_USED_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_MISSING_TABLE = re.compile(r"Table (\S+) does not exist")
# Clauses that change a store, its files or its extensions. A read-only LadybugDB still runs some
# of them (CHECKPOINT left a store needing recovery; COPY TO / EXPORT DATABASE write files;
# INSTALL downloads), so they are refused before the query reaches either store.
_WRITING_WORDS = frozenset({
    "ALTER", "ATTACH", "BEGIN", "CHECKPOINT", "COMMIT", "COPY", "CREATE", "DELETE", "DETACH",
    "DROP", "EXPORT", "FOREACH", "IMPORT", "INSTALL", "LOAD", "MERGE", "REMOVE", "ROLLBACK", "SET",
    "UPDATE", "USE",
})
# String literals, quoted names and comments: words inside them are not clauses.
_NOT_CLAUSES = re.compile(
    r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`|//[^\n]*|/\*.*?\*/", re.S
)
_BARE_WORD = re.compile(r"(?<![\w.$:])[A-Za-z_]+(?!\w)")


def writing_clause(text: str) -> str | None:
    """The first clause of `text` that could change a store, or None for a read-only query."""
    previous = ""
    for word in _BARE_WORD.findall(_NOT_CLAUSES.sub(" ", text)):
        if word.upper() in _WRITING_WORDS and previous != "AS":  # `AS copy` names a column
            return word.upper()
        previous = word.upper()
    return None


def used_params(text: str) -> set[str]:
    """The `$name` parameters a Cypher text uses (not inside strings, quoted names or comments)."""
    return set(_USED_PARAM.findall(_NOT_CLAUSES.sub(" ", text)))


# -- graph values ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GraphNode:
    """One record: its database (label), UID, and the other properties it carries."""

    db: str
    uid: str
    props: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __str__(self) -> str:
        name = self.props.get("name")
        return f"({self.db}:{self.uid}{' ' + str(name) if name else ''})"

    def to_dict(self) -> dict[str, Any]:
        return {"db": self.db, "uid": self.uid, **self.props}


@dataclass(frozen=True, slots=True)
class GraphRel:
    """One link: its link name and its endpoints as (db, uid), direction dbfrom → dbto."""

    linkname: str
    start: tuple[str, str]
    end: tuple[str, str]
    score: int | None = None

    def __str__(self) -> str:
        score = f" {self.score}" if self.score is not None else ""
        (db1, uid1), (db2, uid2) = self.start, self.end
        return f"{db1}:{uid1}-[{self.linkname}{score}]->{db2}:{uid2}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "linkname": self.linkname,
            "start": f"{self.start[0]}:{self.start[1]}",
            "end": f"{self.end[0]}:{self.end[1]}",
            "score": self.score,
        }


@dataclass(frozen=True, slots=True)
class GraphPath:
    """A path: its records in order and the links between them."""

    nodes: tuple[GraphNode, ...]
    rels: tuple[GraphRel, ...]

    def __str__(self) -> str:
        return " ".join(f"{n.db}:{n.uid}" for n in self.nodes) or " ".join(map(str, self.rels))

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodes": [n.to_dict() for n in self.nodes],
            "rels": [r.to_dict() for r in self.rels],
        }


class QueryResult(NamedTuple):
    """Column names and rows (lists, in column order) with graph values normalised."""

    columns: list[str]
    rows: list[list[Any]]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def plain_records(self, *, compact: bool = False) -> list[dict[str, Any]]:
        """Records with graph values as dicts (what `query --format json` prints), or as short
        text with `compact` (what the table and CSV formats show)."""
        return [
            {c: plain(v, compact=compact) for c, v in zip(self.columns, row, strict=True)}
            for row in self.rows
        ]


def plain(value: Any, *, compact: bool = False) -> Any:
    """A value for output: graph values as dicts (JSON) or short text (`compact`, for tables)."""
    if isinstance(value, (GraphNode, GraphRel, GraphPath)):
        return str(value) if compact else value.to_dict()
    if isinstance(value, (list, tuple)):
        return [plain(v, compact=compact) for v in value]
    if isinstance(value, Mapping):
        return {k: plain(v, compact=compact) for k, v in value.items()}
    return value


# -- bundled queries -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Allowed:
    """The values a bundled query answers right for: an integer range, or a set of strings."""

    low: int | None = None
    high: int | None = None
    choices: tuple[str, ...] = ()

    def check(self, query: str, key: str, value: Any) -> None:
        if self.choices:
            if value not in self.choices:
                shown = ", ".join(repr(c) for c in self.choices)
                raise BadInput(
                    f"parameter {key!r} of {query!r} must be one of {shown}, not {value!r}"
                )
            return
        if (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        ):
            raise BadInput(f"parameter {key!r} of {query!r} must be {self}, not {value!r}")

    def values(self, default: int | str, *, upto: int = 1000) -> list[int | str]:
        """Every value allowed (integers without an upper bound: up to `upto`), for tests."""
        if self.choices:
            return list(self.choices)
        low = self.low if self.low is not None else min(0, int(default))
        return list(range(low, (self.high if self.high is not None else upto) + 1))

    def __str__(self) -> str:
        if self.choices:
            return "|".join(c or '""' for c in self.choices)
        if self.high is None:
            return f"at least {self.low}"
        if self.low is None:
            return f"at most {self.high}"
        return f"between {self.low} and {self.high}"


@dataclass(frozen=True, slots=True)
class BundledQuery:
    name: str
    params: dict[str, int | str]
    description: str
    texts: dict[str, str]  # "portable", "ladybug", "neo4j" -> Cypher text (header included)
    allowed: dict[str, Allowed] = field(default_factory=dict)

    def text_for(self, store_kind: str) -> str:
        """The Cypher this query runs on `store_kind` (embedded/ladybug or neo4j)."""
        kind = _KIND_ALIASES.get(store_kind)
        if kind is None:
            raise BadInput(f"unknown store kind {store_kind!r}: expected embedded or neo4j")
        text = self.texts.get(kind) or self.texts.get("portable")
        if text is None:
            raise BadInput(f"bundled query {self.name!r} has no variant for {kind}")
        return text

    @property
    def columns(self) -> list[str]:
        """The RETURN aliases, so a query over tables a store lacks can answer no rows."""
        return return_columns(self.text_for("ladybug"))

    def typed(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The header defaults overlaid with `params`, each typed like its default and checked
        against the values the header allows."""
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            known = ", ".join(self.params) or "none"
            raise BadInput(
                f"query {self.name!r} has no parameter {shorten(unknown[0])!r} "
                f"(parameters: {known})"
            )
        out: dict[str, Any] = dict(self.params)
        for key, value in params.items():
            default = self.params[key]
            if isinstance(default, int) and isinstance(value, str):
                try:
                    value = int(value.strip())
                except ValueError:
                    raise BadInput(
                        f"parameter {key!r} of {self.name!r} must be an integer, "
                        f"not {shorten(value)!r}"
                    ) from None
            elif isinstance(default, int) and (
                isinstance(value, bool) or not isinstance(value, int)
            ):
                raise BadInput(
                    f"parameter {key!r} of {self.name!r} must be an integer, "
                    f"not {shorten(str(value))!r}"
                )
            elif isinstance(default, str) and not isinstance(value, str):
                value = str(value)
            if key in self.allowed:
                self.allowed[key].check(self.name, key, value)
            out[key] = value
        return out

    @property
    def params_text(self) -> str:
        """The parameters as `query --list` shows them: `hops=3 (1..4)`, `gene="672"`."""
        parts = []
        for key, value in self.params.items():
            text = f'"{value}"' if isinstance(value, str) else str(value)
            allowed = self.allowed.get(key)
            if allowed is not None:
                text += f" ({_allowed_text(allowed)})"
            parts.append(f"{key}={text}")
        return ", ".join(parts)

    def params_dict(self) -> dict[str, Any]:
        """The parameters for `query --list --format json`: default, type and allowed values."""
        out: dict[str, Any] = {}
        for key, value in self.params.items():
            entry: dict[str, Any] = {
                "default": value, "type": "int" if isinstance(value, int) else "str"}
            allowed = self.allowed.get(key)
            if allowed is not None and allowed.choices:
                entry["choices"] = list(allowed.choices)
            elif allowed is not None:
                entry["min"], entry["max"] = allowed.low, allowed.high
            out[key] = entry
        return out


def _allowed_text(allowed: Allowed) -> str:
    if allowed.choices:
        return "|".join(c or '""' for c in allowed.choices)
    low = "" if allowed.low is None else str(allowed.low)
    high = "" if allowed.high is None else str(allowed.high)
    return f"{low}..{high}"


def return_columns(text: str) -> list[str]:
    """Column names of the last RETURN clause (every item of a bundled query has `AS name`)."""
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    matches = list(re.finditer(r"\bRETURN\s+(?:DISTINCT\s+)?", body, re.I))
    if not matches:
        return []
    clause = body[matches[-1].end() :]
    clause = re.split(r"\b(?:ORDER\s+BY|SKIP|LIMIT|UNION)\b", clause, flags=re.I)[0]
    columns, depth, start = [], 0, 0
    for i, ch in enumerate(clause + ","):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            item = clause[start:i].strip()
            alias = re.search(r"\bAS\s+`?([A-Za-z_][A-Za-z0-9_]*)`?\s*$", item, re.I)
            columns.append(alias.group(1) if alias else item)
            start = i + 1
    return [c for c in columns if c]


def cypher_dir() -> Path:
    """The bundled queries: package data in a wheel, else the repository's `cypher/` folder."""
    try:
        packaged = importlib.resources.files("crawler") / "cypher"
        if packaged.is_dir():
            return Path(str(packaged))
    except (ModuleNotFoundError, OSError, TypeError):
        pass
    return Path(__file__).resolve().parent.parent / "cypher"


def _parse_default(raw: str) -> int | str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return raw[1:-1]
    if re.fullmatch(r"-?\d+", raw):
        return int(raw)
    return raw


def _parse_allowed(raw: str, default: int | str, source: str) -> Allowed:
    if isinstance(default, int):
        match = _RANGE.match(raw)
        if not match or match.groups() == (None, None):
            raise StoreError(f"{source}: cannot read the range ({raw}); expected (LOW..HIGH)")
        low, high = (None if g is None else int(g) for g in match.groups())
        return Allowed(low=low, high=high)
    choices = tuple(_parse_default(c) for c in raw.split("|"))
    return Allowed(choices=tuple(str(c) for c in choices))


def parse_header(text: str, source: str = "query") -> tuple[str, dict[str, int | str], str]:
    """(name, params with defaults, description) from a file's leading `//` comments."""
    name, params, _, description = parse_header_full(text, source)
    return name, params, description


def parse_header_full(
    text: str, source: str = "query"
) -> tuple[str, dict[str, int | str], dict[str, Allowed], str]:
    """(name, params with defaults, allowed values, description) from the header."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("//"):
            break
        match = _HEADER.match(stripped)
        if match:
            fields[match.group(1)] = match.group(2).strip()
    name = fields.get("name", "")
    if not IDENTIFIER.match(name):
        raise StoreError(f"{source}: header lacks a valid `// name:` line")
    params: dict[str, int | str] = {}
    allowed: dict[str, Allowed] = {}
    rest = fields.get("params", "")
    pos = 0
    while pos < len(rest.rstrip()):
        match = _PARAM.match(rest, pos)
        if not match:
            raise StoreError(f"{source}: cannot read `// params: {rest}`")
        key = match.group(1)
        params[key] = _parse_default(match.group(2))
        if match.group(3) is not None:
            allowed[key] = _parse_allowed(match.group(3), params[key], source)
        pos = match.end()
    return name, params, allowed, fields.get("answers", "")


@cache
def _load(folder: str) -> dict[str, BundledQuery]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(folder).glob("*.cypher")):
        parts = path.name[: -len(".cypher")].split(".")
        kind = parts[1] if len(parts) == 2 else "portable"
        if len(parts) > 2 or (len(parts) == 2 and parts[1] not in STORE_KINDS):
            raise StoreError(f"{path}: expected <name>.cypher or <name>.<ladybug|neo4j>.cypher")
        text = path.read_text(encoding="utf-8")
        name, params, allowed, description = parse_header_full(text, str(path))
        if name != parts[0]:
            raise StoreError(f"{path}: header names {name!r}, file names {parts[0]!r}")
        entry = found.setdefault(
            name,
            {"texts": {}, "params": params, "allowed": allowed, "description": description},
        )
        if entry["params"] != params or entry["allowed"] != allowed:
            raise StoreError(f"{path}: parameters differ from the other variant of {name!r}")
        entry["texts"][kind] = text
    queries = {}
    for name, entry in found.items():
        texts = entry["texts"]
        if "portable" not in texts and not all(k in texts for k in STORE_KINDS):
            raise StoreError(f"bundled query {name!r} needs a portable file or one per store")
        queries[name] = BundledQuery(
            name, entry["params"], entry["description"], texts, entry["allowed"]
        )
    return queries


def list_queries() -> list[BundledQuery]:
    """Every bundled query, by name."""
    return sorted(_load(str(cypher_dir())).values(), key=lambda q: q.name)


def get_query(name: str) -> BundledQuery:
    queries = _load(str(cypher_dir()))
    if name not in queries:
        raise BadInput(
            f"no bundled query {name!r}; bundled: {', '.join(sorted(queries))} "
            "(see `entrez-graph query --list`)"
        )
    return queries[name]


# -- parameters ------------------------------------------------------------------------------


def parse_param(text: str) -> tuple[str, Any]:
    """`k=v` (a string, typed later by a bundled query's header), or `k:int=5` (:float, :bool)."""
    match = _TYPED_PARAM.match(text)
    if not match:
        raise BadInput(f"invalid --param {text!r}: expected NAME=VALUE or NAME:int=VALUE")
    key, kind, raw = match.groups()
    if kind in (None, "str"):
        return key, raw
    try:
        if kind == "int":
            return key, int(raw)
        if kind == "float":
            return key, float(raw)
    except ValueError:
        raise BadInput(f"invalid --param {text!r}: {raw!r} is not a {kind}") from None
    lowered = raw.strip().lower()
    if lowered not in ("true", "false", "1", "0", "yes", "no"):
        raise BadInput(f"invalid --param {text!r}: {raw!r} is not a bool")
    return key, lowered in ("true", "1", "yes")


def parse_params(items: Iterable[str] | Mapping[str, Any] | None) -> dict[str, Any]:
    if items is None:
        return {}
    if isinstance(items, Mapping):
        return dict(items)
    out: dict[str, Any] = {}
    for item in items:
        key, value = parse_param(item)
        if key in out:
            raise BadInput(f"--param {key} given twice")
        out[key] = value
    return out


# -- running ---------------------------------------------------------------------------------


def _is_name(text: str) -> bool:
    return bool(IDENTIFIER.match(text.strip()))


def run_query(
    store: str | Path | None,
    query_or_name: str,
    params: Mapping[str, Any] | Iterable[str] | None = None,
    *,
    neo4j: Any = None,
    write: bool = False,
) -> QueryResult:
    """Run a bundled query (by name) or Cypher text on the embedded store, or on Neo4j when
    `neo4j` is a `crawler.sinks.neo4j.Neo4jConfig`. Read-only unless `write`."""
    text = (query_or_name or "").strip()
    if not text:
        raise BadInput("no query: give a bundled query name or Cypher text")
    values = parse_params(params)
    bundled: BundledQuery | None = None
    if _is_name(text):
        bundled = get_query(text)
        values = bundled.typed(values)
        text = bundled.text_for("neo4j" if neo4j is not None else "ladybug")
    missing = sorted(used_params(text) - set(values))
    if missing:
        # Neo4j refuses such a query, LadybugDB answered it with no rows: say it before either.
        plural = "s" if len(missing) > 1 else ""
        raise BadInput(
            f"missing parameter{plural} {', '.join(missing)}: give "
            + " ".join(f"--param {m}=VALUE" for m in missing)
        )
    clause = None if write else writing_clause(text)
    if clause:
        raise BadInput(
            f"this query can change the store ({clause}); queries are read-only unless "
            "`entrez-graph query --write`"
        )
    if neo4j is not None:
        return _run_neo4j(neo4j, text, values, write=write)
    if store is None:
        raise BadInput("no store: pass --store PATH or --neo4j URI")
    return _run_ladybug(StorePaths.of(store).graph, text, values, write=write, bundled=bundled)


def query(
    store: str | Path | None,
    query: str,
    params: Mapping[str, Any] | Iterable[str] | None = None,
    *,
    neo4j: Any = None,
    write: bool = False,
) -> QueryResult:
    """Run the bundled query `query` (a name, see `list_queries`) or Cypher text, like the
    `query` command: on the embedded store of `store`, or on Neo4j when `neo4j` is given as a
    URI (user, password, database from NEO4J_USER / NEO4J_PASSWORD / NEO4J_DATABASE) or a
    `crawler.sinks.neo4j.Neo4jConfig`.

    `params` is a dict (`{"gene": "672"}`) or `K=V` strings as `--param` takes them; a bundled
    query types them after its header. Read-only unless `write`.
    """
    if isinstance(neo4j, str):
        if not neo4j:
            neo4j = None
        else:
            from .sinks.neo4j import Neo4jConfig  # lazy: the driver is only needed for Neo4j

            neo4j = Neo4jConfig.from_options(neo4j)
    return run_query(store, query, params, neo4j=neo4j, write=write)


def _ladybug_error(exc: BaseException, write: bool) -> BadInput | StoreError:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    # The parser lists every token it could have accepted: keep what went wrong and where.
    expecting = re.search(r"\s+expecting \{.*\}", message)
    if expecting:
        where = re.search(r"\(line: \d+, offset: \d+\)", message)
        message = message[: expecting.start()] + (f" {where.group(0)}" if where else "")
    if "read-only" in message.lower() and not write:
        return BadInput("this query writes to the graph; pass --write to allow it")
    if any(k in message for k in ("Parser exception", "Binder exception", "Catalog exception",
                                  "Runtime exception", "Conversion exception")):
        return BadInput(f"the embedded store refused the query: {message}")
    return StoreError(f"embedded store query failed: {message}")


def _run_ladybug(
    graph: Path, text: str, params: dict[str, Any], *, write: bool,
    bundled: BundledQuery | None = None,
) -> QueryResult:
    if not graph.exists():
        raise BadInput(
            f"no embedded store at {graph}: crawl into --store {graph.parent} first "
            "(or query Neo4j with --neo4j URI)"
        )
    used = set(_USED_PARAM.findall(text))
    params = {k: v for k, v in params.items() if k in used}
    with _ladybug_connection(graph, write=write) as conn:
        try:
            result = conn.execute(text, params) if params else conn.execute(text)
        except RuntimeError as exc:
            missing = _MISSING_TABLE.search(str(exc))
            if bundled is not None and (missing or _holds_no_records(conn)):
                # A crawl without these databases or links, or none yet (a store just made
                # holds only the sink's bookkeeping table, so `MATCH (n)` cannot bind n.name):
                # the honest answer is no rows.
                return QueryResult(bundled.columns, [])
            raise _ladybug_error(exc, write) from None
        results = result if isinstance(result, list) else [result]
        last = results[-1]
        columns = list(last.get_column_names())
        raw_rows = [list(row) for row in last.get_all()]
        for r in results:
            r.close()
        rows = _LadybugNormaliser(conn).rows(raw_rows)
        return QueryResult(columns, rows)


def _holds_no_records(conn: ladybug.Connection) -> bool:
    """True when the embedded store has no Entrez node table yet (only its bookkeeping)."""
    from .sinks.ladybug import CURSOR_TABLE

    tables = conn.execute("CALL show_tables() RETURN name, type").get_all()
    return not any(kind == "NODE" and name != CURSOR_TABLE for name, kind in tables)


@contextmanager
def _ladybug_connection(graph: Path, *, write: bool) -> Iterator[ladybug.Connection]:
    """A reader that waits out checkpoints (see `open_reader`), or a writer under the sink's
    writer lock, so `query --write` never races a crawl's load."""
    from .sinks.ladybug import WriterLock, close_database, open_database, open_reader

    if not write:
        with open_reader(graph) as conn:
            yield conn
        return
    import ladybug

    lock = WriterLock(graph)
    try:
        database = open_database(graph)
        try:
            conn = ladybug.Connection(database)
            try:
                yield conn
            finally:
                conn.close()  # before the database: LadybugDB 0.22 corrupts a file closed under one
        finally:
            close_database(database, graph, read_only=False)
    finally:
        lock.release()


class _LadybugNormaliser:
    """Turns LadybugDB's dicts (`_LABEL`, `_ID`, `_SRC`, `_DST`, `_NODES`, `_RELS`) into ours."""

    def __init__(self, conn: ladybug.Connection) -> None:
        self._conn = conn
        self._ids: dict[tuple[int, int], tuple[str, str]] = {}

    @staticmethod
    def _key(internal: Mapping[str, Any]) -> tuple[int, int]:
        return int(internal["table"]), int(internal["offset"])

    def rows(self, rows: list[list[Any]]) -> list[list[Any]]:
        self._collect(rows)
        return [[self._value(v) for v in row] for row in rows]

    def _collect(self, value: Any) -> None:
        """Remember every node's (db, uid) by internal id, so rel endpoints resolve cheaply."""
        if isinstance(value, Mapping):
            if "_LABEL" in value and "_ID" in value and "_SRC" not in value and value["_ID"]:
                self._ids[self._key(value["_ID"])] = (value["_LABEL"], str(value.get("uid")))
            for v in value.values():
                self._collect(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                self._collect(v)

    def _endpoint(self, internal: Mapping[str, Any]) -> tuple[str, str]:
        key = self._key(internal)
        if key not in self._ids:
            found = self._conn.execute(
                "MATCH (n) WHERE id(n) = internal_id($t, $o) RETURN label(n), n.uid",
                {"t": key[0], "o": key[1]},
            ).get_all()
            self._ids[key] = (found[0][0], str(found[0][1])) if found else ("", "")
        return self._ids[key]

    def _value(self, value: Any) -> Any:
        if isinstance(value, Mapping):
            if "_NODES" in value and "_RELS" in value:
                return GraphPath(
                    tuple(self._value(n) for n in value["_NODES"]),
                    tuple(self._value(r) for r in value["_RELS"]),
                )
            if "_SRC" in value and "_DST" in value and "_LABEL" in value:
                score = value.get("score")
                return GraphRel(
                    value["_LABEL"],
                    self._endpoint(value["_SRC"]),
                    self._endpoint(value["_DST"]),
                    None if score is None else int(score),
                )
            if "_LABEL" in value and "_ID" in value:
                props = {
                    k: v for k, v in value.items()
                    if not k.startswith("_") and k != "uid" and v is not None
                }
                return GraphNode(value["_LABEL"], str(value.get("uid")), props)
            return {k: self._value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._value(v) for v in value]
        return value


def _run_neo4j(config: Any, text: str, params: dict[str, Any], *, write: bool) -> QueryResult:
    from .sinks.neo4j import run_cypher  # lazy: the driver is only needed for --neo4j

    columns, rows = run_cypher(config, text, params, write=write)
    return QueryResult(list(columns), _Neo4jNormaliser(config).rows(rows))


class _Neo4jNormaliser:
    """Turns `neo4j.graph` Node / Relationship / Path objects into ours."""

    def __init__(self, config: Any) -> None:
        self._config = config
        self._ids: dict[str, tuple[str, str]] = {}

    def rows(self, rows: Iterable[Any]) -> list[list[Any]]:
        rows = [list(r.values()) if isinstance(r, Mapping) else list(r) for r in rows]
        self._collect(rows)
        self._resolve(rows)
        return [[self._value(v) for v in row] for row in rows]

    def _collect(self, value: Any) -> None:
        from neo4j.graph import Node, Path, Relationship

        if isinstance(value, Node):
            if value.labels:
                self._ids[value.element_id] = (_first_label(value), str(value.get("uid")))
        elif isinstance(value, Path):
            for n in value.nodes:
                self._collect(n)
        elif isinstance(value, Relationship):
            for n in (value.start_node, value.end_node):
                if n is not None:
                    self._collect(n)
        elif isinstance(value, Mapping):
            for v in value.values():
                self._collect(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                self._collect(v)

    def _missing(self, value: Any, out: set[str]) -> None:
        from neo4j.graph import Path, Relationship

        if isinstance(value, Relationship):
            for n in (value.start_node, value.end_node):
                if n is not None and n.element_id not in self._ids:
                    out.add(n.element_id)
        elif isinstance(value, Path):
            for r in value.relationships:
                self._missing(r, out)
        elif isinstance(value, Mapping):
            for v in value.values():
                self._missing(v, out)
        elif isinstance(value, (list, tuple)):
            for v in value:
                self._missing(v, out)

    def _resolve(self, rows: list[list[Any]]) -> None:
        """Endpoints of relationships returned without their nodes: one lookup by element id."""
        missing: set[str] = set()
        self._missing(rows, missing)
        if not missing:
            return
        from .sinks.neo4j import run_cypher

        _, found = run_cypher(
            self._config,
            "MATCH (n) WHERE elementId(n) IN $ids RETURN elementId(n), labels(n)[0], n.uid",
            {"ids": sorted(missing)},
        )
        for element_id, label, uid in found:
            self._ids[element_id] = (label, str(uid))

    def _value(self, value: Any) -> Any:
        from neo4j.graph import Node, Path, Relationship

        if isinstance(value, Node):
            props = {k: v for k, v in dict(value).items() if k != "uid" and v is not None}
            return GraphNode(_first_label(value), str(value.get("uid")), props)
        if isinstance(value, Relationship):
            score = value.get("score")
            return GraphRel(
                value.type,
                self._ids.get(value.start_node.element_id, ("", "")),
                self._ids.get(value.end_node.element_id, ("", "")),
                None if score is None else int(score),
            )
        if isinstance(value, Path):
            return GraphPath(
                tuple(self._value(n) for n in value.nodes),
                tuple(self._value(r) for r in value.relationships),
            )
        if isinstance(value, Mapping):
            return {k: self._value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._value(v) for v in value]
        return value


def _first_label(node: Any) -> str:
    labels = sorted(node.labels)
    return labels[0] if labels else ""
