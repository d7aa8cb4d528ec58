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
from dataclasses import dataclass, field
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
from ..journal import Cursor, NodeRow, PropRow
from ..names import check_identifier
from . import NODE_PROPERTIES, SyncReport

if TYPE_CHECKING:
    from ..journal import EdgeRow, Journal

log = logging.getLogger(__name__)

DEFAULT_USER = "neo4j"
# The password docker-compose.yml gives the server unless NEO4J_PASSWORD says otherwise.
DEFAULT_PASSWORD = "entrez-graph"
DEFAULT_BATCH = 5_000
CURSOR_LABEL = "EntrezGraphCursor"  # capitalised: never the name of an Entrez database
JOURNAL_ID_KEY = "journal_id"
SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
_DATABASE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9.\-]{0,62}$")
RETRYABLE: tuple[type[Exception], ...] = (ServiceUnavailable, SessionExpired, TransientError)
_RESERVED_PROPS = {"uid", "depth"}
# The driver's own retry of a managed transaction is kept short: tenacity (Neo4jSink.attempts)
# bounds the whole, so an outage costs a crawl level about attempts x 5 s before it reports.
DRIVER_SETTINGS: dict[str, Any] = {
    "max_transaction_retry_time": 5.0,
    "connection_timeout": 10.0,
    "connection_acquisition_timeout": 20.0,
}
_INT64 = (-(2**63), 2**63 - 1)
_LEADING_INT = re.compile(r"^(\d{1,9})")


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


def open_driver(config: Neo4jConfig, **settings: Any):
    """A connected driver; wrong credentials or an unreachable server are BadInput (exit 2)."""
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
    """MERGE a batch of records of one database; `depth` keeps the smallest depth seen."""
    return (
        f"UNWIND $rows AS r MERGE (n:{_q(label, 'database name')} {{uid: r.uid}}) "
        "SET n.depth = CASE WHEN n.depth IS NULL OR r.depth < n.depth "
        "THEN r.depth ELSE n.depth END "
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
        "SET e.score = coalesce(r.s, e.score) "
        "RETURN count(e) AS n"
    )


def prop_query(label: str) -> str:
    """Extra properties (name, organism, … from ESummary) set on the records of one database."""
    return (
        f"UNWIND $rows AS r MERGE (n:{_q(label, 'database name')} {{uid: r.uid}}) "
        "SET n += r.data RETURN count(n) AS n"
    )


CLAIM_OTHERS = (
    f"MATCH (o:{CURSOR_LABEL}) WHERE o.journal <> $journal "
    "SET o.shared = true RETURN count(o) AS n"
)
READ_MINE = (
    f"MATCH (c:{CURSOR_LABEL} {{journal: $journal}}) "
    "RETURN c.node AS node, c.edge AS edge, c.prop AS prop, c.shared AS shared"
)
COUNT_RELS = "MATCH ()-[r]->() RETURN count(r) AS n"
# MERGE, backed by CURSOR_CONSTRAINT: two processes claiming at once still make one node.
CREATE_MINE = (
    f"MERGE (c:{CURSOR_LABEL} {{journal: $journal}}) "
    "ON CREATE SET c.node = 0, c.edge = 0, c.prop = 0, c.shared = $shared"
)
CURSOR_CONSTRAINT = (
    "CREATE CONSTRAINT entrez_graph_cursor_journal IF NOT EXISTS "
    f"FOR (c:{CURSOR_LABEL}) REQUIRE c.journal IS UNIQUE"
)
MARK_MINE_SHARED = f"MATCH (c:{CURSOR_LABEL} {{journal: $journal}}) SET c.shared = true"
LOCK_MINE = (
    f"MATCH (c:{CURSOR_LABEL} {{journal: $journal}}) SET c.locked = true "
    "RETURN c.node AS node, c.edge AS edge, c.prop AS prop, c.shared AS shared"
)
MOVE_MINE = (
    f"MATCH (c:{CURSOR_LABEL} {{journal: $journal}}) "
    "SET c.node = $node, c.edge = $edge, c.prop = $prop"
)
DATABASE_NAME = "CALL db.info() YIELD name RETURN name"


def group_nodes(rows: Iterable[NodeRow]) -> dict[str, list[dict[str, Any]]]:
    """Node rows grouped by label (validated), as UNWIND parameter rows."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[check_identifier(r.db, "database name")].append({"uid": r.uid, "depth": r.depth})
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
        groups[key].append({"f": r.uid_from, "t": r.uid_to, "s": r.score})
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


def _typed(value: Any, kind: str) -> Any:
    """A shared node property as every store types it (NODE_PROPERTIES); misfits become None."""
    if value is None:
        return None
    if kind == "INT64":
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value if _INT64[0] <= value <= _INT64[1] else None
        # ESummary dates: "2001", "2001/05/12", "2001 May 12": the leading year.
        match = _LEADING_INT.match(str(value).strip())
        return int(match.group(1)) if match else None
    if isinstance(value, list | tuple):
        return "; ".join(str(v) for v in value)
    return str(value)


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
            out[key] = _typed(value, NODE_PROPERTIES[key])
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
    """Journal rows past `cursor` (counted: replaced props rows leave gaps in the ids)."""
    total = 0
    for table, after in (("nodes", cursor.node), ("edges", cursor.edge), ("props", cursor.prop)):
        total += journal.execute(
            f"SELECT count(*) FROM {table} WHERE id > ?", (after,)
        ).fetchone()[0]
    return total


class Neo4jSink:
    """Pushes journal rows past this journal's cursor into one Neo4j database."""

    def __init__(
        self,
        driver: Any,
        config: Neo4jConfig,
        database: str,
        *,
        batch_size: int = DEFAULT_BATCH,
        fast: bool = True,
        attempts: int = 4,
        backoff: tuple[float, float] = (0.5, 8.0),
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.driver = driver
        self.config = config
        self.database = database
        self.name = cursor_key(config.uri, database)
        self.batch_size = max(1, int(batch_size))
        self.fast = fast
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self._sleep = sleep if sleep is not None else _sleep
        self._labels: set[str] = set()
        self._cursor_constraint = False
        self._down = False
        self.fast_batches = 0   # edge batches written with CREATE (for the benchmark)
        self.merge_batches = 0  # edge batches written with MERGE

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

    def _write(self, fn: Callable[..., Any], *args: Any) -> Any:
        """One managed write transaction, retried with backoff on connection/transient errors."""
        retrying = Retrying(
            retry=retry_if_exception_type(RETRYABLE),
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff[0], max=self.backoff[1])
            + wait_random(0, self.backoff[0]),
            sleep=self._sleep,
            reraise=False,
        )
        try:
            for attempt in retrying:
                with attempt, self.driver.session(
                    database=self.database, default_access_mode=WRITE_ACCESS
                ) as session:
                    return session.execute_write(fn, *args)
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
        """Push every journal row Neo4j lacks. Never raises for an outage: the report says so."""
        report = SyncReport(sink=self.name)
        try:
            if self._down:
                self._probe()
            self._sync(journal, report)
            self._down = False
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
        cursor = self._push_nodes(journal, jid, cursor, upto.node, report)
        cursor = self._push_edges(journal, jid, cursor, upto.edge, report)
        self._push_props(journal, jid, cursor, upto.prop, report)

    def _commit(
        self,
        journal: Journal,
        jid: str,
        cursor: Cursor,
        axis: str,
        last_id: int,
        write: Callable[[Any, dict[str, Any]], int],
    ) -> tuple[Cursor, bool]:
        """Write one batch and move the cursor node in the same transaction, then the journal's.

        Returns the cursor now in force and whether the batch was written. If our cursor node
        moved meanwhile (another process syncing this journal, or the node was deleted), the
        batch is rolled back and the sync continues from wherever the node now stands.
        """
        after = {"node": cursor.node, "edge": cursor.edge, "prop": cursor.prop}
        new = {**after, axis: last_id}
        try:
            self._write(_batch_tx, jid, after, new, write)
        except _CursorMoved as moved:
            if moved.state is None:
                moved_to = self._write(_claim_tx, jid).cursor
            else:
                moved_to = Cursor(*(moved.state[k] or 0 for k in ("node", "edge", "prop")))
            journal.set_cursor(self.name, moved_to)
            return moved_to, False
        done = Cursor(new["node"], new["edge"], new["prop"])
        journal.set_cursor(self.name, done)
        return done, True

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
        """Batches of one table up to `upto`: yields (cursor in force, rows written).

        Each batch is grouped and validated (`prepare`) before any query is sent, and the
        constraints of labels it introduces are created before its data.
        """
        moves = 0
        while getattr(cursor, axis) < upto:
            rows = fetch(getattr(cursor, axis), upto)
            if not rows:
                return
            batch = prepare(rows)
            self._ensure_labels(batch.labels)
            cursor, written = self._commit(journal, jid, cursor, axis, rows[-1].id, batch.write)
            if not written:
                moves += 1
                if moves > 100:
                    raise StoreError(f"{self.name}: another process keeps moving this cursor")
            yield cursor, len(rows) if written else 0

    def _push_nodes(
        self, journal: Journal, jid: str, cursor: Cursor, upto: int, report: SyncReport
    ) -> Cursor:
        def fetch(after: int, upto: int) -> list[NodeRow]:
            return journal.nodes_between(after, upto, self.batch_size)

        for now, n in self._loop(journal, jid, cursor, "node", upto, fetch, prepare_nodes):
            cursor = now
            report.nodes += n
        return cursor

    def _push_edges(
        self, journal: Journal, jid: str, cursor: Cursor, upto: int, report: SyncReport
    ) -> Cursor:
        def fetch(after: int, upto: int) -> list[EdgeRow]:
            return journal.edges_between(after, upto, self.batch_size)

        def prepare(rows: list[EdgeRow]) -> _Batch:
            return prepare_edges(rows, fast=self.fast, on_path=self._count_path)

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
                "SELECT id, db, uid, depth, state FROM nodes WHERE db=? AND uid=?", (db, uid)
            ).fetchone()
            if hit is None:
                raise StoreError(f"journal edge refers to a record it does not hold: {db}:{uid}")
            found.append(NodeRow(*hit))
        log.info(
            "%s lacked %d records its cursor covers; writing them again", self.name, len(found)
        )
        for start in range(0, len(found), self.batch_size):
            chunk = found[start:start + self.batch_size]
            nodes = prepare_nodes(chunk)
            props = prepare_props(
                [PropRow(0, r.db, r.uid, p) for r in chunk if (p := journal.props_of(r.db, r.uid))]
            )
            self._ensure_labels(nodes.labels)
            self._write(_heal_tx, nodes.write, props.write)

    def _push_props(
        self, journal: Journal, jid: str, cursor: Cursor, upto: int, report: SyncReport
    ) -> Cursor:
        def fetch(after: int, upto: int) -> list[PropRow]:
            return journal.props_between(after, upto, self.batch_size)

        for now, n in self._loop(journal, jid, cursor, "prop", upto, fetch, prepare_props):
            cursor = now
            report.props += n
        return cursor


def cursor_key(uri: str, database: str) -> str:
    """The journal's cursor key for one Neo4j database (no credentials in it)."""
    return f"neo4j:{_strip_credentials(uri)}/{database}"


# -- batches: grouped, validated and turned into query text before any transaction ----------


@dataclass(slots=True)
class _Batch:
    labels: set[str]
    write: Callable[[Any, dict[str, Any]], int]  # (tx, cursor-node state) -> rows written


def prepare_nodes(rows: list[NodeRow]) -> _Batch:
    statements = [(node_query(label), params) for label, params in group_nodes(rows).items()]

    def write(tx: Any, state: dict[str, Any]) -> int:
        return sum(tx.run(text, {"rows": p}).single()["n"] for text, p in statements)

    return _Batch({r.db for r in rows}, write)


def prepare_props(rows: list[PropRow]) -> _Batch:
    statements = [(prop_query(label), params) for label, params in group_props(rows).items()]

    def write(tx: Any, state: dict[str, Any]) -> int:
        return sum(tx.run(text, {"rows": p}).single()["n"] for text, p in statements)

    return _Batch({r.db for r in rows}, write)


def prepare_edges(
    rows: list[EdgeRow], *, fast: bool = False, on_path: Callable[[bool], None] | None = None
) -> _Batch:
    """Edge statements in both forms; the transaction picks CREATE only while it owns the db."""
    groups = group_edges(rows)
    statements = [
        (edge_query(*key, create=False), edge_query(*key, create=True), key, params)
        for key, params in groups.items()
    ]

    def write(tx: Any, state: dict[str, Any]) -> int:
        create = fast and state.get("shared") is False
        if on_path is not None:
            on_path(create)
        n = 0
        for merge_text, create_text, (dbfrom, _, dbto), params in statements:
            found = tx.run(create_text if create else merge_text, {"rows": params}).single()["n"]
            if found < len(params):
                raise _MissingEndpoints([{**p, "dbfrom": dbfrom, "dbto": dbto} for p in params])
            n += found
        return n

    labels = {k[0] for k in groups} | {k[2] for k in groups}
    return _Batch(labels, write)


# -- transaction functions (may be re-run by the driver: no side effects outside `tx`) -------


def _single_value(tx: Any, text: str, params: dict[str, Any]) -> Any:
    record = tx.run(text, params).single()
    return None if record is None else record[0]


def _run_only(tx: Any, text: str, params: dict[str, Any]) -> None:
    tx.run(text, params).consume()


def _state(record: Any) -> dict[str, Any] | None:
    if record is None:
        return None
    return {k: record[k] for k in ("node", "edge", "prop", "shared")}


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
    return _Claim(
        Cursor(mine["node"] or 0, mine["edge"] or 0, mine["prop"] or 0), shared, False
    )


def _batch_tx(
    tx: Any,
    jid: str,
    after: dict[str, int],
    new: dict[str, int],
    write: Callable[[Any, dict[str, Any]], int],
) -> int:
    """Lock our cursor node, check it stands where the batch starts, write, move it."""
    state = _state(tx.run(LOCK_MINE, {"journal": jid}).single())
    if state is None or any((state[k] or 0) != after[k] for k in ("node", "edge", "prop")):
        raise _CursorMoved(state)
    n = write(tx, state)
    tx.run(MOVE_MINE, {"journal": jid, **new}).consume()
    return n


def _heal_tx(tx: Any, *writes: Callable[[Any, dict[str, Any]], int]) -> None:
    for write in writes:
        write(tx, {})


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
