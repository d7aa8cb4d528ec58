"""Neo4j projection of the journal: UNWIND batches, per-label constraints, bounded retries.

Model (design.md): label = Entrez database, `uid` unique per label, relationship type = ELink link
name, `score` where known, `depth` and the journal's props rows as node properties. Labels and
types pass `check_identifier` and are back-quoted; every value travels as a parameter.

Idempotence. Nodes and props are MERGEd on `uid` (backed by the uniqueness constraint); edges are
MERGEd, so re-writing rows already in Neo4j (a crash between the Neo4j commit and the journal's
cursor update, a second journal writing into the same database, a database first filled by
`neo4j-admin import`) never duplicates anything.

Cursors. Each journal owns one `EntrezGraphCursor {journal: <journal id>}` node in the database.
It is write-locked at the start of every batch transaction and moved in that same transaction, so
it always states exactly which journal rows the database holds; the journal's own cursor
(`journal.get_cursor("neo4j:<uri>/<database>")`, read by `status`) mirrors it after each commit.
A database that lost its data (wiped, restored, or never written by this journal) has no cursor
node for us, so everything is pushed again (MERGE makes that safe).

Fast path. When the cursor node was created in a database holding no relationships and no other
journal's cursor node has appeared since (`shared` is false, checked under the lock in every
batch), every relationship in the database is ours and is below our cursor, so new edges are
CREATEd instead of MERGEd (no per-edge existence check). A second journal that starts writing
marks every other cursor node `shared` (taking their locks, so it waits for any batch in flight);
from then on both use MERGE. Writers that bypass cursor nodes (`query --write`) void the proof.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from neo4j import READ_ACCESS, WRITE_ACCESS, GraphDatabase
from neo4j.exceptions import (
    AuthError,
    ClientError,
    ConfigurationError,
    DriverError,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from ..errors import BadInput, StoreError
from ..journal import ChangeRow, Cursor, EdgeRow, NodeRow, PropRow
from ..names import check_identifier
from . import NODE_PROPERTIES, SyncReport
from .verify import (
    Counts,
    Difference,
    coerce_property,
    compare,
    describe,
    expected_counts,
    pending_removals,
    rows_behind,
)

if TYPE_CHECKING:
    from ..journal import Journal

log = logging.getLogger(__name__)

DEFAULT_USER = "neo4j"
# The password docker-compose.yml gives the server unless NEO4J_PASSWORD says otherwise.
DEFAULT_PASSWORD = "entrez-graph"
DEFAULT_BATCH = 5_000  # rows per UNWIND statement
# Journal rows per transaction, in statements' worth: a window of 8 x 5,000 rows gives each link
# name of a crawl's mix statements of thousands of rows instead of hundreds.
WINDOW_STATEMENTS = 8
MAX_WINDOW = 40_000
IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
CURSOR_LABEL = "EntrezGraphCursor"  # capitalised: never the name of an Entrez database
AXES = ("node", "edge", "prop", "change")  # the cursor node's properties, as Cursor's fields
JOURNAL_ID_KEY = "journal_id"
SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
_DATABASE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9.\-]{0,62}$")
RETRYABLE: tuple[type[Exception], ...] = (ServiceUnavailable, SessionExpired, TransientError)
_RESERVED_PROPS = {"uid", "depth", "fetched"}
# The driver's own retry of a managed transaction is kept short: tenacity (Neo4jSink.attempts)
# bounds the whole, so an outage costs a crawl level about attempts x 5 s before it reports.
DRIVER_SETTINGS: dict[str, Any] = {
    "max_transaction_retry_time": 5.0,
    "connection_timeout": 10.0,
    "connection_acquisition_timeout": 20.0,
}
_INT64 = (-(2**63), 2**63 - 1)


# -- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Neo4jConfig:
    """Where and as whom to connect; `password` never appears in repr, logs or cursor keys."""

    uri: str
    user: str = DEFAULT_USER
    password: str = field(default=DEFAULT_PASSWORD, repr=False)
    database: str | None = None  # None: the server's default database

    @classmethod
    def from_options(
        cls,
        uri: str | None = None,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        *,
        env: dict[str, str] | None = None,
    ) -> Neo4jConfig:
        """Options first, then NEO4J_URI / NEO4J_USER (or NEO4J_USERNAME, cypher-shell's name) /
        NEO4J_PASSWORD / NEO4J_DATABASE. (The commands pass `uri` only from --neo4j: NEO4J_URI
        is read here for the Python API's `Neo4jConfig.from_options()`, tests and benchmarks.)

        Credentials written into the URI (`bolt://user:pw@host`) are taken out of it, so the
        URI that reaches keys, messages and the driver never holds them.
        """
        env = os.environ if env is None else env
        uri = uri or env.get("NEO4J_URI") or ""
        if not uri:
            raise BadInput("no Neo4j URI: pass --neo4j URI or set NEO4J_URI")
        try:
            parts = urlsplit(uri.strip())
            port = parts.port
        except ValueError as exc:
            raise BadInput(f"invalid Neo4j URI: {exc}") from None
        if parts.scheme not in SCHEMES or not parts.hostname:
            shown = _strip_credentials(uri)
            raise BadInput(
                f"invalid Neo4j URI {shown!r}: expected {'|'.join(SCHEMES)}://host[:port]"
            )
        uri_user = unquote(parts.username) if parts.username else None
        uri_password = unquote(parts.password) if parts.password else None
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        netloc = host if port is None else f"{host}:{port}"
        clean = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
        database = database or env.get("NEO4J_DATABASE") or None
        if database is not None and not _DATABASE_NAME.match(database):
            raise BadInput(f"invalid Neo4j database name {database!r}")
        return cls(
            uri=clean,
            user=user or uri_user or env.get("NEO4J_USER") or env.get("NEO4J_USERNAME")
            or DEFAULT_USER,
            password=password or uri_password or env.get("NEO4J_PASSWORD") or DEFAULT_PASSWORD,
            database=database,
        )


def _strip_credentials(uri: str) -> str:
    """The URI with any `user:password@` removed, for messages about a URI we refuse."""
    return re.sub(r"//[^/@]*@", "//", uri)


def _default_driver_factory(config: Neo4jConfig, **settings: Any):
    """A real driver. Tests replace the module attribute `_driver_factory` with a stand-in."""
    try:
        return GraphDatabase.driver(
            config.uri, auth=(config.user, config.password), user_agent="entrez-graph", **settings
        )
    except (ValueError, ConfigurationError) as exc:
        raise BadInput(f"invalid Neo4j URI {config.uri!r}: {_first_line(exc)}") from None


_driver_factory: Callable[..., Any] = _default_driver_factory
_sleep: Callable[[float], None] = time.sleep  # the retry backoff's sleep (tests replace it)


def _first_line(exc: BaseException) -> str:
    """The server's message (or the exception text) as one line, for one-line errors."""
    # Neo4jError.message is the server's text; on other driver errors (5.x) it is a preview
    # GQL attribute that warns when read.
    text = exc.message if isinstance(exc, Neo4jError) else None
    if not text or text == "An unknown error occurred":  # the driver's placeholder
        text = str(exc)
    flat = " ".join(str(text).split())  # the driver's messages span lines: keep one
    if len(flat) > 300:
        flat = flat[:297] + "..."
    return flat or type(exc).__name__


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {_first_line(exc)}"


class _DriverLog(logging.Handler):
    """The driver's own log records, kept off the terminal: relayed at DEBUG to our logger.

    The driver warns on its `neo4j` logger for every retry of a managed transaction
    ("Transaction failed and will be retried in 1.9s (Couldn't connect …)", two lines each) and
    for every server notification. With no handler anywhere, Python's last-resort handler prints
    them on stderr beside our own one-line message. We say once that Neo4j is away and once that
    it is back; the details stay available to whoever turns our DEBUG logging on. Attached only
    when nobody configured the `neo4j` logger (`neo4j.debug.watch` adds a handler of its own).
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.retries = 0  # transaction retries the driver logged (the benchmark prints them)
        self.deadlocks = 0

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if "will be retried" in text:
            self.retries += 1
            if "Deadlock" in text:
                self.deadlocks += 1
        log.debug("neo4j driver: %s", " ".join(text.split()))


DRIVER_LOG = _DriverLog()


def quiet_driver_logging() -> None:
    """Keep the driver's retry warnings and notifications off the terminal (idempotent)."""
    driver_log = logging.getLogger("neo4j")
    if DRIVER_LOG not in driver_log.handlers and not driver_log.handlers:
        driver_log.addHandler(DRIVER_LOG)


def open_driver(config: Neo4jConfig, **settings: Any):
    """A connected driver; wrong credentials or an unreachable server are BadInput (exit 2)."""
    quiet_driver_logging()
    driver = _driver_factory(config, **settings)
    try:
        driver.verify_connectivity()
    except AuthError as exc:
        driver.close()
        raise BadInput(
            f"Neo4j at {config.uri} refused the credentials of user {config.user!r} "
            f"({_first_line(exc)}); set --neo4j-user / --neo4j-password "
            "(NEO4J_USER, NEO4J_PASSWORD)"
        ) from None
    except (ServiceUnavailable, SessionExpired, DriverError, OSError) as exc:
        driver.close()
        raise BadInput(f"cannot reach Neo4j at {config.uri}: {_first_line(exc)}") from None
    except Neo4jError as exc:
        driver.close()
        raise BadInput(
            f"Neo4j at {config.uri} refused the connection: {_first_line(exc)}"
        ) from None
    return driver


# -- query text (the only place identifiers enter Cypher) ------------------------------------


def _q(name: str, what: str) -> str:
    """A validated identifier, back-quoted so that no Cypher keyword can clash with it."""
    return f"`{check_identifier(name, what)}`"


def constraint_query(label: str) -> str:
    """The uniqueness constraint on `uid` for one label (created before any data of that label)."""
    check_identifier(label, "database name")
    return (
        f"CREATE CONSTRAINT `{label}_uid` IF NOT EXISTS "
        f"FOR (n:{_q(label, 'database name')}) REQUIRE n.uid IS UNIQUE"
    )


def node_query(label: str) -> str:
    """MERGE a batch of records of one database; `depth` keeps the smallest depth seen, and
    `fetched` is the journal's (kept where an old journal has none)."""
    return (
        f"UNWIND $rows AS r MERGE (n:{_q(label, 'database name')} {{uid: r.uid}}) "
        "SET n.depth = CASE WHEN n.depth IS NULL OR r.depth < n.depth "
        "THEN r.depth ELSE n.depth END, n.fetched = coalesce(r.at, n.fetched) "
        "RETURN count(n) AS n"
    )


def edge_query(dbfrom: str, linkname: str, dbto: str, *, create: bool = False) -> str:
    """Edges of one link name between two labels, with labeled endpoint lookups.

    Returns the number of rows whose endpoints were both found, so a shortfall (endpoints
    missing from the database) is detected rather than silently dropped.
    """
    verb = "CREATE" if create else "MERGE"
    return (
        f"UNWIND $rows AS r "
        f"MATCH (a:{_q(dbfrom, 'database name')} {{uid: r.f}}) "
        f"MATCH (b:{_q(dbto, 'database name')} {{uid: r.t}}) "
        f"{verb} (a)-[e:{_q(linkname, 'link name')}]->(b) "
        "SET e.score = coalesce(r.s, e.score), e.fetched = coalesce(r.at, e.fetched) "
        "RETURN count(e) AS n"
    )


def prop_query(label: str) -> str:
    """Extra properties (name, organism, … from ESummary) set on the records of one database."""
    return (
        f"UNWIND $rows AS r MERGE (n:{_q(label, 'database name')} {{uid: r.uid}}) "
        "SET n += r.data RETURN count(n) AS n"
    )


def remove_edges_query(dbfrom: str, linkname: str, dbto: str) -> str:
    """Delete links of one link name between two labels (idempotent: a missing one matches
    nothing); returns how many were deleted."""
    return (
        f"UNWIND $rows AS r "
        f"MATCH (a:{_q(dbfrom, 'database name')} {{uid: r.f}})"
        f"-[e:{_q(linkname, 'link name')}]->(b:{_q(dbto, 'database name')} {{uid: r.t}}) "
        "DELETE e RETURN count(*) AS n"
    )


def remove_nodes_query(label: str) -> str:
    """Delete records of one label with whatever links they still have (idempotent)."""
    return (
        f"UNWIND $rows AS r MATCH (n:{_q(label, 'database name')} {{uid: r.uid}}) "
        "DETACH DELETE n RETURN count(*) AS n"
    )


def update_nodes_query(label: str) -> str:
    """Set the journal's depth (and `fetched`, when the change carries one) on records."""
    return (
        f"UNWIND $rows AS r MATCH (n:{_q(label, 'database name')} {{uid: r.uid}}) "
        "SET n.depth = r.depth, n.fetched = coalesce(r.fetched, n.fetched) "
        "RETURN count(n) AS n"
    )


def update_edges_query(dbfrom: str, linkname: str, dbto: str) -> str:
    """Set the journal's score (and `fetched`, when the change carries one) on links."""
    return (
        f"UNWIND $rows AS r "
        f"MATCH (a:{_q(dbfrom, 'database name')} {{uid: r.f}})"
        f"-[e:{_q(linkname, 'link name')}]->(b:{_q(dbto, 'database name')} {{uid: r.t}}) "
        "SET e.score = r.s, e.fetched = coalesce(r.fetched, e.fetched) "
        "RETURN count(e) AS n"
    )


def count_nodes_query(label: str) -> str:
    """Records of one label (answered from the count store)."""
    return f"MATCH (n:{_q(label, 'database name')}) RETURN count(n) AS n"


def count_rels_query(linkname: str) -> str:
    """Links of one type (answered from the count store)."""
    return f"MATCH ()-[r:{_q(linkname, 'link name')}]->() RETURN count(r) AS n"


def count_props_query(label: str) -> str:
    """Property values ($keys: NODE_PROPERTIES) that the records of one label hold, as
    `verify.expected_counts` counts them (Neo4j stores no NULL, so a key is a value); `keys(n)`,
    not `n.name IS NOT NULL`, so a property key no record has yet raises no notification."""
    return (
        f"MATCH (n:{_q(label, 'database name')}) "
        "RETURN sum(size([k IN keys(n) WHERE k IN $keys])) AS n"
    )


CLAIM_OTHERS = (
    f"MATCH (o:{CURSOR_LABEL}) WHERE o.journal <> $journal "
    "SET o.shared = true RETURN count(o) AS n"
)
# `properties(c)`, not `c.node, …`: on a database that never held our cursor node the property
# keys do not exist yet, and reading them by name makes the server send 01N52 notifications.
READ_MINE = f"MATCH (c:{CURSOR_LABEL} {{journal: $journal}}) RETURN properties(c) AS c"
COUNT_RELS = "MATCH ()-[r]->() RETURN count(r) AS n"
# MERGE, backed by CURSOR_CONSTRAINT: two processes claiming at once still make one node.
CREATE_MINE = (
    f"MERGE (c:{CURSOR_LABEL} {{journal: $journal}}) "
    "ON CREATE SET c.node = 0, c.edge = 0, c.prop = 0, c.change = 0, c.shared = $shared"
)
CURSOR_CONSTRAINT = (
    "CREATE CONSTRAINT entrez_graph_cursor_journal IF NOT EXISTS "
    f"FOR (c:{CURSOR_LABEL}) REQUIRE c.journal IS UNIQUE"
)
MARK_MINE_SHARED = f"MATCH (c:{CURSOR_LABEL} {{journal: $journal}}) SET c.shared = true"
LOCK_MINE = (
    f"MATCH (c:{CURSOR_LABEL} {{journal: $journal}}) SET c.locked = true "
    "RETURN properties(c) AS c"
)
COUNT_OTHERS = f"MATCH (o:{CURSOR_LABEL}) WHERE o.journal <> $journal RETURN count(o) AS n"
# Real counts (`verify`): labels and types in use first, so no count names a missing token.
LABELS_IN_USE = "CALL db.labels() YIELD label RETURN label"
TYPES_IN_USE = "CALL db.relationshipTypes() YIELD relationshipType RETURN relationshipType"
MOVE_MINE = (
    f"MATCH (c:{CURSOR_LABEL} {{journal: $journal}}) "
    "SET c.node = $node, c.edge = $edge, c.prop = $prop, c.change = $change"
)
DATABASE_NAME = "CALL db.info() YIELD name RETURN name"


def group_nodes(rows: Iterable[NodeRow]) -> dict[str, list[dict[str, Any]]]:
    """Node rows grouped by label (validated), as UNWIND parameter rows."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[check_identifier(r.db, "database name")].append(
            {"uid": r.uid, "depth": r.depth, "at": r.fetched}
        )
    return dict(groups)


def group_edges(rows: Iterable[EdgeRow]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """Edge rows grouped by (dbfrom, link name, dbto), all three validated."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        key = (
            check_identifier(r.dbfrom, "database name"),
            check_identifier(r.linkname, "link name"),
            check_identifier(r.dbto, "database name"),
        )
        groups[key].append({"f": r.uid_from, "t": r.uid_to, "s": r.score, "at": r.fetched})
    return dict(groups)


def group_props(rows: Iterable[PropRow]) -> dict[str, list[dict[str, Any]]]:
    """Props rows grouped by label, their data reduced to values Neo4j can store."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[check_identifier(r.db, "database name")].append(
            {"uid": r.uid, "data": property_values(r.data)}
        )
    return dict(groups)


def _storable(value: Any) -> bool:
    if isinstance(value, bool | str):
        return True
    if isinstance(value, int):
        return _INT64[0] <= value <= _INT64[1]
    return isinstance(value, float) and math.isfinite(value)


def property_values(data: dict[str, Any]) -> dict[str, Any]:
    """Node properties for Neo4j from a journal props row.

    The shared properties (`NODE_PROPERTIES`: name, organism, year, …) get the types the
    embedded store gives them, so queries answer alike on both stores. Any other key is kept if
    Neo4j can store it (primitives, homogeneous lists of them), else as JSON text. `uid` and
    `depth` belong to the crawl and are never overwritten; None removes a property.
    """
    out: dict[str, Any] = {}
    for key, value in data.items():
        key = str(key)
        if key in _RESERVED_PROPS:
            continue
        if key in NODE_PROPERTIES:
            out[key] = coerce_property(value, NODE_PROPERTIES[key])
        elif value is None or _storable(value):
            out[key] = value
        elif (
            isinstance(value, list | tuple)
            and all(_storable(v) for v in value)
            and len({type(v) for v in value}) <= 1
        ):
            out[key] = list(value)
        else:
            out[key] = json.dumps(value, sort_keys=True, default=str)
    return out


# -- the sink --------------------------------------------------------------------------------


class _CursorMoved(Exception):
    """Our cursor node holds other values than this batch started from (another writer)."""

    def __init__(self, state: dict[str, Any] | None) -> None:
        super().__init__("cursor moved")
        self.state = state


class _MissingEndpoints(Exception):
    """Some edges of a batch found no endpoint node: the database lacks records we pushed."""

    def __init__(self, rows: list[EdgeRow]) -> None:
        super().__init__(f"{len(rows)} edges without endpoints")
        self.rows = rows


class Unavailable(StoreError):
    """Neo4j stayed unreachable through every retry."""


@dataclass(slots=True)
class _Claim:
    cursor: Cursor
    shared: bool
    created: bool


def journal_id(journal: Journal) -> str:
    """A stable identity for a journal (kept in its meta table), created on first use."""
    value = journal.get_meta(JOURNAL_ID_KEY)
    if not value:
        journal.set_meta(JOURNAL_ID_KEY, uuid.uuid4().hex)
        value = journal.get_meta(JOURNAL_ID_KEY)
    return str(value)


def pending_rows(journal: Journal, cursor: Cursor) -> int:
    """Journal rows past `cursor` (counted: replaced props rows leave gaps in the ids), and the
    removals and updates past its change cursor."""
    return rows_behind(journal, cursor)["total"]


class Neo4jSink:
    """Pushes journal rows past this journal's cursor into one Neo4j database.

    Writes: records first (every label), then links, then properties, each table in windows of
    `window` journal rows per transaction (default 8 x `batch_size`), each window's rows
    grouped by label / link name and sent as UNWIND statements of at most `batch_size` rows.
    Small groups are what made writes slow (a 5,000-row transaction of 8 link names is 8
    statements of ~600 rows); a larger window fills each statement. `parallel` > 1 writes the
    link names of a window in that many sessions at once where MERGE is used (deadlocks are
    transient errors: retried with backoff), then moves the cursor in a transaction of its own;
    the CREATE fast path always writes a window in one transaction with its cursor move.
    """

    def __init__(
        self,
        driver: Any,
        config: Neo4jConfig,
        database: str,
        *,
        batch_size: int = DEFAULT_BATCH,
        window: int | None = None,
        parallel: int = 1,
        fast: bool = True,
        verify: bool = False,
        attempts: int = 4,
        backoff: tuple[float, float] = (0.5, 8.0),
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.driver = driver
        self.config = config
        self.database = database
        self.name = cursor_key(config.uri, database)
        self.batch_size = max(1, int(batch_size))
        # 8 statements' worth of rows, but no transaction above 40,000 rows unless one
        # statement alone is bigger (`--batch-size` up to 100,000)
        self.window = max(1, int(window)) if window else max(
            self.batch_size, min(self.batch_size * WINDOW_STATEMENTS, MAX_WINDOW)
        )
        self.parallel = max(1, int(parallel))
        self.fast = fast
        self.verify_after_sync = verify
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self._sleep = sleep if sleep is not None else _sleep
        self._labels: set[str] = set()
        self._cursor_constraint = False
        self._down = False
        self._said_back = False
        # every session of this sink reads what its earlier ones wrote (causal consistency:
        # on a cluster, a count right after a write may otherwise go to a lagging follower)
        self._bookmarks = GraphDatabase.bookmark_manager()
        self.fast_batches = 0   # edge windows written with CREATE (for the benchmark)
        self.merge_batches = 0  # edge windows written with MERGE
        self.repaired: list[Difference] = []  # what the last verify found missing and rewrote
        self.surplus: list[Difference] = []   # what it found the journal does not hold

    # -- construction --------------------------------------------------------------------

    @classmethod
    def connect(
        cls,
        uri: str | None = None,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        **options: Any,
    ) -> Neo4jSink:
        """Connect and check the server answers (BadInput, exit 2, when it does not)."""
        config = Neo4jConfig.from_options(uri, user, password, database)
        return cls.from_config(config, **options)

    @classmethod
    def from_config(cls, config: Neo4jConfig, **options: Any) -> Neo4jSink:
        """A sink on `config`'s database; BadInput (exit 2) when it cannot be used at all."""
        driver = open_driver(config, **DRIVER_SETTINGS)
        try:
            with driver.session(database=config.database, default_access_mode=READ_ACCESS) as s:
                name = s.execute_read(_single_value, DATABASE_NAME, {})
        except (AuthError, ServiceUnavailable, SessionExpired) as exc:
            driver.close()
            raise BadInput(f"cannot use Neo4j at {config.uri}: {_first_line(exc)}") from None
        except Neo4jError as exc:
            if "Procedure" not in (getattr(exc, "code", "") or ""):
                driver.close()
                what = f"database {config.database!r}" if config.database else "its default"
                raise BadInput(
                    f"Neo4j at {config.uri} cannot open {what}: {_first_line(exc)}"
                ) from None
            name = None  # no db.info() on this server: name the cursor after the option
        return cls(driver, config, str(name or config.database or "neo4j"), **options)

    def close(self) -> None:
        self.driver.close()

    def __enter__(self) -> Neo4jSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------

    def _retrying(self) -> Retrying:
        return Retrying(
            retry=retry_if_exception_type(RETRYABLE),
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff[0], max=self.backoff[1])
            + wait_random(0, self.backoff[0]),
            sleep=self._sleep,
            reraise=False,
        )

    def _write(self, fn: Callable[..., Any], *args: Any) -> Any:
        """One managed write transaction, retried with backoff on connection/transient errors."""
        return self._transaction(WRITE_ACCESS, fn, *args)

    def _read(self, fn: Callable[..., Any], *args: Any) -> Any:
        """One managed read transaction, retried like writes."""
        return self._transaction(READ_ACCESS, fn, *args)

    def _transaction(self, mode: str, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            for attempt in self._retrying():
                with attempt, self.driver.session(
                    database=self.database, default_access_mode=mode,
                    bookmark_manager=self._bookmarks,
                ) as session:
                    runner = session.execute_write if mode == WRITE_ACCESS else (
                        session.execute_read
                    )
                    return runner(fn, *args)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise Unavailable(
                f"Neo4j at {self.config.uri} unavailable after {self.attempts} attempts "
                f"({_describe(last) if last else 'no answer'})"
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _ensure_labels(self, labels: Iterable[str]) -> None:
        """Constraints first, each in its own transaction (schema and data never share one)."""
        for label in sorted(set(labels) - self._labels):
            self._write(_run_only, constraint_query(label), {})
            self._labels.add(label)

    # -- sync ----------------------------------------------------------------------------

    def sync(self, journal: Journal) -> SyncReport:
        """Push every journal row Neo4j lacks. Never raises for an outage: the report says so.

        With `verify` (what `entrez-graph sync` asks for), the real counts are then compared
        with the journal's and missing rows are written again (`verify_and_repair`).
        """
        report = SyncReport(sink=self.name)
        try:
            if self._down:
                self._probe()
                if not self._said_back:
                    self._said_back = True
                    log.warning("Neo4j at %s is back; writing what the journal kept meanwhile",
                                self.config.uri)
            self._sync(journal, report)
            self._down = False
            if self.verify_after_sync:
                left = self.verify_and_repair(journal)
                if left:
                    report.error = (f"Neo4j at {self.config.uri} still differs from the journal "
                                    f"after rewriting: {describe(left)}")
        except (Unavailable, *RETRYABLE) as exc:
            self._down = True
            report.error = str(exc) if isinstance(exc, Unavailable) else _describe(exc)
            log.info("neo4j sync stopped: %s", report.error)
        except (Neo4jError, DriverError) as exc:
            # Refused rather than unreachable (permissions, a conflicting constraint): the
            # crawl goes on into the journal; the report carries the reason.
            report.error = f"Neo4j at {self.config.uri} refused the write ({_describe(exc)})"
            log.info("neo4j sync stopped: %s", report.error)
        except StoreError as exc:
            # e.g. another process keeps moving this journal's cursor: report, keep crawling
            report.error = str(exc)
            log.info("neo4j sync stopped: %s", report.error)
        report.pending = pending_rows(journal, journal.get_cursor(self.name))
        return report

    def _probe(self) -> None:
        """After an outage, one quick connectivity check before paying for a full retry cycle."""
        try:
            self.driver.verify_connectivity()
        except (DriverError, Neo4jError, OSError) as exc:
            raise Unavailable(
                f"Neo4j at {self.config.uri} still unavailable ({_describe(exc)})"
            ) from None

    def _sync(self, journal: Journal, report: SyncReport) -> None:
        jid = journal_id(journal)
        upto = journal.max_ids()
        if not self._cursor_constraint:
            self._write(_run_only, CURSOR_CONSTRAINT, {})
            self._cursor_constraint = True
        claim = self._write(_claim_tx, jid)
        if claim.created:
            self._labels.clear()  # a new or wiped database: make sure its constraints exist
            if journal.get_cursor(self.name) != Cursor():
                log.info("no cursor of this journal in %s: pushing everything again", self.name)
        cursor = claim.cursor
        journal.set_cursor(self.name, cursor)
        # constraints of every label the journal holds, so a database loaded by
        # `neo4j-admin database import` gets them at its first sync even with nothing to push
        self._ensure_labels(journal_labels(journal))
        # removals and updates first (a removed row is never re-added; a record seen again has
        # a new id and lands after its removal), then the additions; then the changes written
        # meanwhile, so that a row removed while this pass read the additions (never written
        # here) and one removed after (written, then removed) both end as the journal says
        cursor = self._push_changes(journal, jid, cursor, upto.change, report)
        cursor = self._push_nodes(journal, jid, cursor, upto.node, report)
        cursor = self._push_edges(journal, jid, cursor, upto.edge, report)
        cursor = self._push_props(journal, jid, cursor, upto.prop, report)
        self._push_changes(journal, jid, cursor, journal.max_ids().change, report)

    def _commit(
        self,
        journal: Journal,
        jid: str,
        cursor: Cursor,
        axis: str,
        last_id: int,
        batch: _Batch,
    ) -> tuple[Cursor, bool]:
        """Write one window and move the cursor node in the same transaction, then the journal's.

        Returns the cursor now in force and whether the window was written. If our cursor node
        moved meanwhile (another process syncing this journal, or the node was deleted), the
        window is rolled back and the sync continues from wherever the node now stands. A
        window of links may instead be written by parallel sessions (`_commit_parallel`).
        """
        after = {k: getattr(cursor, k) for k in AXES}
        new = {**after, axis: last_id}
        try:
            if self.parallel > 1 and len(batch.parts) > 1 and not self._fast_now(jid):
                self._write_parallel(batch)
                self._write(_batch_tx, jid, after, new, _nothing)
            else:
                self._write(_batch_tx, jid, after, new, batch.write)
        except _CursorMoved as moved:
            if moved.state is None:
                moved_to = self._write(_claim_tx, jid).cursor
            else:
                moved_to = _cursor(moved.state)
            journal.set_cursor(self.name, moved_to)
            return moved_to, False
        done = Cursor(**new)
        journal.set_cursor(self.name, done)
        return done, True

    def _fast_now(self, jid: str) -> bool:
        """Whether the CREATE path applies (read outside the window's transaction: `shared`
        only ever turns true, so reading false here and then taking MERGE is always safe)."""
        if not self.fast:
            return False
        state = self._read(_read_state_tx, jid)
        return state is not None and state.get("shared") is False

    def _write_parallel(self, batch: _Batch) -> None:
        """The window's link names in `parallel` sessions, one transaction per link name."""
        self.merge_batches += 1
        with ThreadPoolExecutor(max_workers=min(self.parallel, len(batch.parts))) as pool:
            futures = [pool.submit(self._write, _part_tx, part) for part in batch.parts]
            errors = [f.exception() for f in futures]
        for error in errors:
            if error is not None:
                raise error

    def _loop(
        self,
        journal: Journal,
        jid: str,
        cursor: Cursor,
        axis: str,
        upto: int,
        fetch: Callable[[int, int], list[Any]],
        prepare: Callable[[list[Any]], _Batch],
    ) -> Iterator[tuple[Cursor, int]]:
        """Windows of one table up to `upto`: yields (cursor in force, rows written).

        Each window is grouped and validated (`prepare`) before any query is sent, and the
        constraints of labels it introduces are created before its data.
        """
        moves = 0
        while getattr(cursor, axis) < upto:
            rows = fetch(getattr(cursor, axis), upto)
            if not rows:
                return
            batch = prepare(rows)
            self._ensure_labels(batch.labels)
            cursor, written = self._commit(journal, jid, cursor, axis, rows[-1].id, batch)
            if not written:
                moves += 1
                if moves > 100:
                    raise StoreError(f"{self.name}: another process keeps moving this cursor")
            yield cursor, len(rows) if written else 0

    def _push_nodes(
        self, journal: Journal, jid: str, cursor: Cursor, upto: int, report: SyncReport
    ) -> Cursor:
        def fetch(after: int, upto: int) -> list[NodeRow]:
            return journal.nodes_between(after, upto, self.window)

        def prepare(rows: list[NodeRow]) -> _Batch:
            return prepare_nodes(rows, self.batch_size)

        for now, n in self._loop(journal, jid, cursor, "node", upto, fetch, prepare):
            cursor = now
            report.nodes += n
        return cursor

    def _push_edges(
        self, journal: Journal, jid: str, cursor: Cursor, upto: int, report: SyncReport
    ) -> Cursor:
        def fetch(after: int, upto: int) -> list[EdgeRow]:
            return journal.edges_between(after, upto, self.window)

        def prepare(rows: list[EdgeRow]) -> _Batch:
            return prepare_edges(
                rows, fast=self.fast, on_path=self._count_path, statement_rows=self.batch_size
            )

        heals = 0
        while True:
            try:
                for now, n in self._loop(journal, jid, cursor, "edge", upto, fetch, prepare):
                    cursor = now
                    report.edges += n
                    heals = 0
                return cursor
            except _MissingEndpoints as missing:
                # The database lacks records the cursor says it holds: put them back, retry.
                heals += 1
                if heals > 3:
                    raise StoreError(
                        f"{self.name}: edges still find no endpoints after rewriting them"
                    ) from None
                self._heal(journal, missing.rows)

    def _count_path(self, create: bool) -> None:
        if create:
            self.fast_batches += 1
        else:
            self.merge_batches += 1

    def _heal(self, journal: Journal, rows: list[dict[str, Any]]) -> None:
        """Write again the journal's records (and their props) that edges of a batch lack."""
        wanted = {(r["dbfrom"], r["f"]) for r in rows} | {(r["dbto"], r["t"]) for r in rows}
        found: list[NodeRow] = []
        for db, uid in sorted(wanted):
            hit = journal.execute(
                f"SELECT id, db, uid, depth, state, {journal.fetched_column} FROM nodes "
                "WHERE db=? AND uid=?", (db, uid)
            ).fetchone()
            if hit is None:
                raise StoreError(f"journal edge refers to a record it does not hold: {db}:{uid}")
            found.append(NodeRow(*hit))
        log.info(
            "%s lacked %d records its cursor covers; writing them again", self.name, len(found)
        )
        for start in range(0, len(found), self.batch_size):
            chunk = found[start:start + self.batch_size]
            nodes = prepare_nodes(chunk, self.batch_size)
            props = prepare_props(
                [PropRow(0, r.db, r.uid, p) for r in chunk if (p := journal.props_of(r.db, r.uid))],
                self.batch_size,
            )
            self._ensure_labels(nodes.labels)
            self._write(_heal_tx, nodes.write, props.write)

    def _push_changes(
        self, journal: Journal, jid: str, cursor: Cursor, upto: int, report: SyncReport
    ) -> Cursor:
        """The journal's changes past the change cursor, in windows, each one transaction with
        the cursor node's move. A change naming a row past the cursor's bounds is skipped (this
        database never got that row). Every statement is idempotent (MATCH … DELETE, DETACH
        DELETE, SET), so a window written again after a crash changes nothing more."""
        def fetch(after: int, upto: int) -> list[ChangeRow]:
            return journal.changes_between(after, upto, self.window)

        def prepare(rows: list[ChangeRow]) -> _Batch:
            held = [
                r for r in rows
                if r.row_id <= (cursor.edge if r.kind.startswith("edge") else cursor.node)
            ]
            report.changes += len(held)
            return prepare_changes(held, self.batch_size)

        for now, _ in self._loop(journal, jid, cursor, "change", upto, fetch, prepare):
            cursor = now
        return cursor

    def _push_props(
        self, journal: Journal, jid: str, cursor: Cursor, upto: int, report: SyncReport
    ) -> Cursor:
        def fetch(after: int, upto: int) -> list[PropRow]:
            return journal.props_between(after, upto, self.window)

        def prepare(rows: list[PropRow]) -> _Batch:
            return prepare_props(rows, self.batch_size)

        for now, n in self._loop(journal, jid, cursor, "prop", upto, fetch, prepare):
            cursor = now
            report.props += n
        return cursor

    # -- real counts (issue 10: never trust the cursor alone) -----------------------------

    def held_cursor(self, journal: Journal) -> tuple[Cursor | None, bool]:
        """This journal's cursor as Neo4j holds it (None: no cursor node), and whether other
        journals write into the same database (their rows are then in the real counts too)."""
        state, others = self._read(_cursor_and_others_tx, journal_id(journal))
        if state is None:
            return None, bool(others)
        return _cursor(state), bool(others) or bool(state["shared"])

    def real_counts(self) -> Counts:
        """What the database really holds: records per label, links per type, and property
        values (NODE_PROPERTIES) per label; one query per label and type."""
        return self._read(_real_counts_tx)

    def verify(self, journal: Journal) -> list[Difference]:
        """Real counts against the journal up to the cursor Neo4j holds (empty: exact)."""
        cursor, _ = self.held_cursor(journal)
        cursor = cursor or Cursor()
        return compare(expected_counts(journal, cursor), self.real_counts(),
                       props=not pending_removals(journal, cursor).nodes)

    def verify_and_repair(self, journal: Journal) -> list[Difference]:
        """Compare, rewrite from the journal what is missing, compare again.

        Missing rows (a count below the journal's) are written again with MERGE, label by label
        and link name by link name, up to the cursor: that repairs exactly what is missing and
        touches nothing else. Rows the journal does not hold (a surplus) are never removed: they
        may belong to another journal writing into the same database or to a user's own
        `query --write`; they are reported once. Returns the deficits still left (normally none).
        """
        self.repaired, self.surplus = [], []
        cursor, shared = self.held_cursor(journal)
        cursor = cursor or Cursor()
        differences = compare(expected_counts(journal, cursor), self.real_counts())
        missing = [d for d in differences if d.actual < d.expected]
        self.surplus = [d for d in differences if d.actual > d.expected]
        if self.surplus:
            why = ("the database is shared with another journal, whose rows count too"
                   if shared else "not written by this journal, e.g. by `query --write`")
            log.warning("Neo4j at %s holds rows the journal does not (%s): %s; left alone",
                        self.config.uri, why, describe(self.surplus))
        if not missing:
            return []
        log.warning("Neo4j at %s lacked rows its cursor covers (%s); writing them again from "
                    "the journal", self.config.uri, describe(missing))
        self.repaired = missing
        self.repair(journal, missing, cursor)
        after = compare(expected_counts(journal, cursor), self.real_counts())
        return [d for d in after if d.actual < d.expected]

    def repair(self, journal: Journal, missing: list[Difference], cursor: Cursor) -> None:
        """MERGE again every journal row (up to `cursor`) of the labels / link names given."""
        kinds: dict[str, set[str]] = defaultdict(set)
        for d in missing:
            kinds[d.kind].add(d.name)
        for label in sorted(kinds["nodes"]):
            for rows in _chunks(journal_rows(journal, "nodes", label, cursor), self.window):
                batch = prepare_nodes(rows, self.batch_size)
                self._ensure_labels(batch.labels)
                self._write(_heal_tx, batch.write)
        for linkname in sorted(kinds["edges"]):
            for rows in _chunks(journal_rows(journal, "edges", linkname, cursor), self.window):
                batch = prepare_edges(rows, statement_rows=self.batch_size)
                self._ensure_labels(batch.labels)
                for _ in range(4):
                    try:
                        self._write(_heal_tx, batch.write)
                        break
                    except _MissingEndpoints as gap:
                        self._heal(journal, gap.rows)
                else:
                    raise StoreError(f"{self.name}: {linkname} links still find no endpoints")
        for label in sorted(kinds["props"]):
            for rows in _chunks(journal_rows(journal, "props", label, cursor), self.window):
                batch = prepare_props(rows, self.batch_size)
                self._write(_heal_tx, batch.write)


def _chunks(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def journal_labels(journal: Journal) -> list[str]:
    """Every database the journal holds records of (each a label with a constraint)."""
    return [
        check_identifier(db, "database name")
        for (db,) in journal.execute("SELECT DISTINCT db FROM nodes ORDER BY db")
    ]


def journal_rows(journal: Journal, table: str, name: str, cursor: Cursor) -> Iterator[Any]:
    """Journal rows of one label (nodes, props) or link name (edges) up to `cursor`, in id order.

    Props rows only of records within the cursor, as `verify.expected_counts` counts them.
    """
    if table == "nodes":
        for row in journal.execute(
            f"SELECT id, db, uid, depth, state, {journal.fetched_column} FROM nodes "
            "WHERE db = ? AND id <= ? ORDER BY id",
            (name, cursor.node),
        ):
            yield NodeRow(*row)
    elif table == "edges":
        for row in journal.execute(
            f"SELECT id, dbfrom, uid_from, linkname, dbto, uid_to, score, "
            f"{journal.fetched_column} FROM edges WHERE linkname = ? AND id <= ? ORDER BY id",
            (name, cursor.edge),
        ):
            yield EdgeRow(*row)
    else:
        for i, db, uid, data in journal.execute(
            "SELECT p.id, p.db, p.uid, p.data FROM props p JOIN nodes n "
            "ON n.db = p.db AND n.uid = p.uid WHERE p.db = ? AND p.id <= ? AND n.id <= ? "
            "ORDER BY p.id",
            (name, cursor.prop, cursor.node),
        ):
            yield PropRow(i, db, uid, json.loads(data))


def cursor_key(uri: str, database: str) -> str:
    """The journal's cursor key for one Neo4j database (no credentials in it)."""
    return f"neo4j:{_strip_credentials(uri)}/{database}"


# -- batches: grouped, validated and turned into query text before any transaction ----------


Statement = tuple[str, list[dict[str, Any]]]


@dataclass(slots=True)
class _Batch:
    labels: set[str]
    write: Callable[[Any, dict[str, Any]], int]  # (tx, cursor-node state) -> rows written
    # links only: the same rows as independent MERGE writes, one per link name, for parallel
    # sessions (`Neo4jSink.parallel`); each is (tx) -> rows written
    parts: list[Callable[[Any], int]] = field(default_factory=list)


def split(rows: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    """UNWIND parameter lists of at most `size` rows."""
    return [rows[i:i + size] for i in range(0, len(rows), size)] or [[]]


def node_statements(rows: list[NodeRow], statement_rows: int = DEFAULT_BATCH) -> list[Statement]:
    """One MERGE statement per label and `statement_rows` rows."""
    return [
        (node_query(label), chunk)
        for label, params in group_nodes(rows).items()
        for chunk in split(params, statement_rows)
    ]


def prop_statements(rows: list[PropRow], statement_rows: int = DEFAULT_BATCH) -> list[Statement]:
    return [
        (prop_query(label), chunk)
        for label, params in group_props(rows).items()
        for chunk in split(params, statement_rows)
    ]


def edge_statements(
    rows: list[EdgeRow], statement_rows: int = DEFAULT_BATCH
) -> list[tuple[tuple[str, str, str], list[dict[str, Any]]]]:
    """(dbfrom, link name, dbto) and its UNWIND rows, at most `statement_rows` per statement."""
    return [
        (key, chunk)
        for key, params in group_edges(rows).items()
        for chunk in split(params, statement_rows)
    ]


def _run_all(tx: Any, statements: list[Statement]) -> int:
    return sum(tx.run(text, {"rows": rows}).single()["n"] for text, rows in statements)


def prepare_nodes(rows: list[NodeRow], statement_rows: int = DEFAULT_BATCH) -> _Batch:
    statements = node_statements(rows, statement_rows)
    return _Batch({r.db for r in rows}, lambda tx, state: _run_all(tx, statements))


def prepare_props(rows: list[PropRow], statement_rows: int = DEFAULT_BATCH) -> _Batch:
    statements = prop_statements(rows, statement_rows)
    return _Batch({r.db for r in rows}, lambda tx, state: _run_all(tx, statements))


def change_statements(
    rows: list[ChangeRow], statement_rows: int = DEFAULT_BATCH
) -> list[Statement]:
    """Statements for a window of changes, in this order: links removed, records removed,
    records updated, links updated (a removed row never comes back under its id, so no later
    change of the window can concern it); the newest change of a row wins."""
    groups: dict[str, dict[Any, dict[Any, dict[str, Any]]]] = {
        kind: defaultdict(dict) for kind in ("edge-", "node-", "node~", "edge~")
    }
    for r in rows:
        if r.kind in ("edge-", "edge~"):
            key = (r.db, str(r.linkname), str(r.dbto))
            groups[r.kind][key][(r.uid, r.uid_to)] = {
                "f": r.uid, "t": r.uid_to, "s": r.score, "fetched": r.fetched}
        elif r.kind in ("node-", "node~"):
            groups[r.kind][r.db][r.uid] = {"uid": r.uid, "depth": r.depth, "fetched": r.fetched}
        else:
            raise StoreError(f"unknown change kind {r.kind!r} in the journal")
    out: list[Statement] = []
    for kind, build in (("edge-", remove_edges_query), ("node-", remove_nodes_query),
                        ("node~", update_nodes_query), ("edge~", update_edges_query)):
        for key, by_row in groups[kind].items():
            text = build(*key) if isinstance(key, tuple) else build(key)
            params = [
                {k: v for k, v in p.items() if k in ("f", "t")} if kind == "edge-"
                else {"uid": p["uid"]} if kind == "node-" else p
                for p in by_row.values()
            ]
            out += [(text, chunk) for chunk in split(params, statement_rows)]
    return out


def prepare_changes(rows: list[ChangeRow], statement_rows: int = DEFAULT_BATCH) -> _Batch:
    statements = change_statements(rows, statement_rows)
    return _Batch(set(), lambda tx, state: _run_all(tx, statements))


def _run_edges(
    tx: Any, statements: list[tuple[tuple[str, str, str], list[dict[str, Any]]]], create: bool
) -> int:
    n = 0
    for (dbfrom, linkname, dbto), params in statements:
        text = edge_query(dbfrom, linkname, dbto, create=create)
        found = tx.run(text, {"rows": params}).single()["n"]
        if found < len(params):
            raise _MissingEndpoints([{**p, "dbfrom": dbfrom, "dbto": dbto} for p in params])
        n += found
    return n


def prepare_edges(
    rows: list[EdgeRow],
    *,
    fast: bool = False,
    on_path: Callable[[bool], None] | None = None,
    statement_rows: int = DEFAULT_BATCH,
) -> _Batch:
    """Edge statements; the transaction picks CREATE only while this journal owns the db."""
    statements = edge_statements(rows, statement_rows)

    def write(tx: Any, state: dict[str, Any]) -> int:
        create = fast and state.get("shared") is False
        if on_path is not None:
            on_path(create)
        return _run_edges(tx, statements, create)

    by_type: dict[str, list[Any]] = defaultdict(list)
    for key, params in statements:
        by_type[key[1]].append((key, params))
    parts = [
        partial(_run_edges, statements=chosen, create=False) for _, chosen in sorted(
            by_type.items(), key=lambda kv: -sum(len(p) for _, p in kv[1])
        )
    ]
    labels = {k[0] for k, _ in statements} | {k[2] for k, _ in statements}
    return _Batch(labels, write, parts)


# -- transaction functions (may be re-run by the driver: no side effects outside `tx`) -------


def _single_value(tx: Any, text: str, params: dict[str, Any]) -> Any:
    record = tx.run(text, params).single()
    return None if record is None else record[0]


def _run_only(tx: Any, text: str, params: dict[str, Any]) -> None:
    tx.run(text, params).consume()


def _state(record: Any) -> dict[str, Any] | None:
    """Our cursor node's properties (READ_MINE / LOCK_MINE), missing ones as None."""
    if record is None:
        return None
    props = dict(record["c"] or {})
    return {k: props.get(k) for k in (*AXES, "shared")}


def _cursor(state: dict[str, Any]) -> Cursor:
    """Our cursor node's state as a Cursor (a node from before removals has no `change`)."""
    return Cursor(*(int(state.get(k) or 0) for k in AXES))


def _claim_tx(tx: Any, jid: str) -> _Claim:
    """Find or create this journal's cursor node; mark every other journal's node shared."""
    others = tx.run(CLAIM_OTHERS, {"journal": jid}).single()["n"]
    mine = _state(tx.run(READ_MINE, {"journal": jid}).single())
    if mine is None:
        rels = tx.run(COUNT_RELS, {}).single()["n"]
        shared = bool(others or rels)
        tx.run(CREATE_MINE, {"journal": jid, "shared": shared}).consume()
        return _Claim(Cursor(), shared, True)
    shared = bool(mine["shared"]) or bool(others)
    if shared and not mine["shared"]:
        tx.run(MARK_MINE_SHARED, {"journal": jid}).consume()
    return _Claim(_cursor(mine), shared, False)


def _batch_tx(
    tx: Any,
    jid: str,
    after: dict[str, int],
    new: dict[str, int],
    write: Callable[[Any, dict[str, Any]], int],
) -> int:
    """Lock our cursor node, check it stands where the batch starts, write, move it."""
    state = _state(tx.run(LOCK_MINE, {"journal": jid}).single())
    if state is None or any((state[k] or 0) != after[k] for k in AXES):
        raise _CursorMoved(state)
    n = write(tx, state)
    tx.run(MOVE_MINE, {"journal": jid, **new}).consume()
    return n


def _heal_tx(tx: Any, *writes: Callable[[Any, dict[str, Any]], int]) -> None:
    for write in writes:
        write(tx, {})


def _nothing(tx: Any, state: dict[str, Any]) -> int:
    """The cursor move after a window that parallel sessions wrote."""
    return 0


def _part_tx(tx: Any, part: Callable[[Any], int]) -> int:
    return part(tx)


def _read_state_tx(tx: Any, jid: str) -> dict[str, Any] | None:
    return _state(tx.run(READ_MINE, {"journal": jid}).single())


def _cursor_and_others_tx(tx: Any, jid: str) -> tuple[dict[str, Any] | None, int]:
    # a database no sync ever wrote to has no cursor label: asking for it would draw 01N50
    if not any(r["label"] == CURSOR_LABEL for r in tx.run(LABELS_IN_USE, {})):
        return None, 0
    mine = _state(tx.run(READ_MINE, {"journal": jid}).single())
    others = tx.run(COUNT_OTHERS, {"journal": jid}).single()["n"]
    return mine, others


def _ours(name: str) -> bool:
    return bool(IDENTIFIER.match(name))


def _real_counts_tx(tx: Any) -> Counts:
    """One count per label and per relationship type in use, and per label the NODE_PROPERTIES
    values its records hold. Only labels and types in use are named, so no count raises a
    notification; labels and types that are not identifiers (not ours) are left out."""
    labels = sorted(r["label"] for r in tx.run(LABELS_IN_USE, {}) if _ours(r["label"]))
    types = sorted(
        r["relationshipType"] for r in tx.run(TYPES_IN_USE, {}) if _ours(r["relationshipType"])
    )
    nodes = {lb: tx.run(count_nodes_query(lb), {}).single()["n"] for lb in labels}
    edges = {t: tx.run(count_rels_query(t), {}).single()["n"] for t in types}
    keys = sorted(NODE_PROPERTIES)
    props = {lb: tx.run(count_props_query(lb), {"keys": keys}).single()["n"] for lb in labels}
    return Counts(
        {k: int(v) for k, v in nodes.items() if v},
        {k: int(v) for k, v in edges.items() if v},
        {k: int(v) for k, v in props.items() if v},
    )


# -- queries for `entrez-graph query --neo4j` ------------------------------------------------


def _collect(tx: Any, text: str, params: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    result = tx.run(text, params)
    columns = list(result.keys())
    rows = [list(record.values()) for record in result]
    return columns, rows


def run_cypher(
    config: Neo4jConfig,
    text: str,
    params: dict[str, Any] | None = None,
    *,
    write: bool = False,
) -> tuple[list[str], list[list[Any]]]:
    """Run one Cypher statement; read access mode unless `write`. Rows hold driver values.

    Nodes, relationships and paths come back as `neo4j.graph` objects (querying.py normalises
    them). A Cypher error or a write attempted without `write` is BadInput (one line).
    """
    driver = open_driver(config, **DRIVER_SETTINGS)
    mode = WRITE_ACCESS if write else READ_ACCESS
    try:
        with driver.session(database=config.database, default_access_mode=mode) as session:
            runner = session.execute_write if write else session.execute_read
            return runner(_collect, text, dict(params or {}))
    except ClientError as exc:
        code = getattr(exc, "code", "") or ""
        if code.endswith("Statement.AccessMode") or "read access mode" in str(exc).lower():
            raise BadInput("this query writes to the graph; pass --write to allow it") from None
        raise BadInput(f"Neo4j refused the query: {_first_line(exc)}") from None
    except (ServiceUnavailable, SessionExpired) as exc:
        raise StoreError(f"Neo4j at {config.uri} unavailable: {_first_line(exc)}") from None
    except Neo4jError as exc:
        raise StoreError(f"Neo4j query failed: {_first_line(exc)}") from None
    finally:
        driver.close()


# -- `entrez-graph status --neo4j URI` -------------------------------------------------------


def status_of(config: Neo4jConfig, journal: Journal) -> tuple[str, dict[str, Any]]:
    """(sink name, what `status` shows) for one Neo4j database: its real counts against the
    journal up to the cursor Neo4j holds, and the journal rows past that cursor.

    "In step" (`in_step`) only when nothing is behind and every count equals the journal's.
    Connecting is where a wrong URI or credentials are refused (BadInput, exit 2).
    """
    with Neo4jSink.from_config(config) as sink:
        try:
            held, shared = sink.held_cursor(journal)
            cursor = held or Cursor()
            expected = expected_counts(journal, cursor)
            real = sink.real_counts()
        except (Unavailable, Neo4jError, DriverError) as exc:
            return sink.name, {"error": f"Neo4j at {config.uri} not readable now ({exc})"}
    behind = rows_behind(journal, cursor)
    differences = compare(expected, real, props=not pending_removals(journal, cursor).nodes)
    return sink.name, {
        **behind,
        "cursor": {"node": cursor.node, "edge": cursor.edge, "prop": cursor.prop,
                   "change": cursor.change, "held": held is not None},
        "shared": shared,
        "real": real.as_dict(),
        "expected": expected.as_dict(),
        "differences": [str(d) for d in differences],
        "in_step": not differences and not behind["total"],
    }
