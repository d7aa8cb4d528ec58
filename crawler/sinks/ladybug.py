"""The embedded store: journal rows projected into a LadybugDB database file with bulk COPY.

Model (design.md): one NODE TABLE per Entrez database `(uid STRING PRIMARY KEY, depth INT64,
<NODE_PROPERTIES>, fetched STRING)` and one REL TABLE per link name `(FROM <dbfrom> TO <dbto>,
score INT64, fetched STRING)` (`fetched`: the journal's time stamps), both created the first time
they are seen (a link name met between a new pair of databases gets the pair
added with `ALTER TABLE … ADD FROM … TO …`).

Why COPY and an in-store cursor: `COPY … FROM` a file or Arrow table is the only fast bulk path in
LadybugDB (per-row MERGE of edges does not scale), but COPY is not idempotent: a duplicate primary
key fails a node COPY and a rel table silently accepts the same rows twice. So the sink loads
exactly the journal rows past its cursor, and the cursor `(node, edge, prop)` lives in LadybugDB
itself (node table `eg_cursor`, which no Entrez database can be called) and moves in the same
transaction as the COPY it covers. A crash before COMMIT rolls both back; a crash after leaves
both done. A batch is never loaded twice and never skipped.

Order inside one sync pass: the three journal maxima are read in one SQLite statement (a consistent
snapshot), then nodes up to the node maximum, edges up to the edge maximum (the engine commits a
link's target node no later than the link), then properties (ESummary data, applied with one
`LOAD FROM <arrow> MATCH … SET` per database and batch: measured ~10x faster than UNWIND $rows).

Memory (issue 4: a 1M-edge crawl must stay under 500 MB; this sink alone used to take 1.9 GB).
Measured in LadybugDB 0.22, and each point below is what the sink does about it:
- a COPY from an in-memory Arrow table stays cached (the Python binding keeps the prepared
  statement with its bound table) until the Connection closes, 15-25 MB per COPY; and the first
  Arrow table costs ~100 MB (pyarrow loaded and its pool). So nodes and edges reach COPY through a
  small CSV file (Python's csv writer; LadybugDB's reader, `PARALLEL=false` so a quoted line break
  in a field is read right); pyarrow is loaded only for ESummary properties.
- a transaction holds ~10-20 MB per rel table it COPYs into (its CSR node groups), released at
  COMMIT. So an edge batch is cut into runs of consecutive rows touching at most
  MAX_RELS_PER_COMMIT rel tables, each run its own transaction with its own cursor move.
- an open Database keeps memory per table it has written, which neither COMMIT, CHECKPOINT nor a
  new Connection gives back; closing the Database does. So after a batch, when this process's
  resident memory has grown by REOPEN_GROWTH_MB since the Database was opened, the Connection and
  then the Database are closed and opened again. LadybugDB's file lock is released meanwhile, so
  the sink also holds its own `flock` on `<graph>.writer` (see WriterLock) for its whole life.
`benchmarks/store_load.py` measures rows/s and the peak of a sync alone.

Test hook: when the environment variable `ENTREZ_GRAPH_TEST_PAUSE_IN_COPY` holds a number of
seconds, the sink sleeps that long after each COPY and before its COMMIT, so that a test can SIGKILL
the process while the store is loading. Never set it outside tests.

A second process opening the same store for writing gets `StoreLocked` (LadybugDB: "Could not set
lock on file"); readers (`query`, `status`) open it read-only, which works while a crawl writes.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import EntrezGraphError, LocalIOError, StoreError, StoreLocked, local_io_error
from ..journal import Cursor, EdgeRow, MaxIds, PropRow
from ..names import IDENTIFIER, check_identifier
from ..store import GRAPH_FILE, JOURNAL_FILE
from . import NODE_PROPERTIES, SyncReport
from .verify import (
    Counts,
    Difference,
    coerce_property,
    compare,
    describe,
    expected_counts,
    fetched_between,
    links_between,
    pending_removals,
    property_values,
    props_comparable,
    records_between,
    rows_behind,
    with_pending,
)

if TYPE_CHECKING:
    import ladybug
    import pyarrow as pa

    from ..journal import Journal, NodeRow

_log = logging.getLogger(__name__)

CURSOR_TABLE = "eg_cursor"
CURSOR_KEY = "journal"
PAUSE_ENV = "ENTREZ_GRAPH_TEST_PAUSE_IN_COPY"
BATCH_ROWS = 50_000
# Edges are loaded in passes of at most this many journal rows, rel table by rel table (see
# `_edge_pass`): a COMMIT of a COPY into a non-empty rel table rewrites that table (its cost grows
# with the table, not with the rows added), so each table is best written once per pass.
EDGE_PASS_ROWS = 200_000
PASS_PREFIX = "pass:"  # eg_cursor rows `pass:<link name>`: that table holds the pass up to `edge`
MAX_RELS_PER_COMMIT = 6
REOPEN_GROWTH_MB = 64  # 0: after every batch
# The writer's Database: a buffer pool of 256 MB instead of LadybugDB's default 80% of the RAM
# (the pool is what grows with the store), and one thread (measured: less memory per COPY, no
# slower, as the loads are checkpoint-bound).
LOAD_OPTIONS: dict[str, Any] = {"buffer_pool_size": 256 * 2**20, "max_num_threads": 1}

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
# Rows go to COPY through CSV files: every COPY of an in-memory Arrow table keeps 15-25 MB, and
# the first one costs ~100 MB more (pyarrow loaded and initialised). See "Memory" above.
_CSV_OPTIONS = "HEADER=true, DELIM=',', QUOTE='\"', ESCAPE='\"', AUTO_DETECT=false, PARALLEL=false"


_CSV_HEADERS = {
    "nodes": ["uid", "depth", "fetched"],
    "edges": ["from", "to", "score", "fetched"],
    "stamps": ["uid", "fetched"],
}


def graph_path(path: str | Path) -> Path:
    """The database file: `path` itself, or the store's graph file when `path` is a directory."""
    path = Path(path)
    return path / GRAPH_FILE if path.is_dir() else path


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# LadybugDB's file lock only keeps other processes out: a second writable Database on the same file
# in this process would open fine and corrupt it. So writers are also registered here.
_WRITERS: set[Path] = set()
_WRITERS_LOCK = threading.Lock()


def _locked(path: Path, holder: str) -> StoreLocked:
    return StoreLocked(
        f"the embedded store {path} is in use by {holder}: Could not set lock on file. "
        "Wait for it to finish, or use another --store."
    )


def open_database(
    path: str | Path, *, read_only: bool = False, **options: Any
) -> ladybug.Database:
    """Open a LadybugDB file, turning its lock and I/O failures into our one-line errors.

    `options` go to `ladybug.Database` (the sink's writer uses LOAD_OPTIONS). A writable database
    must be given back with `close_database`."""
    import ladybug

    path = Path(path)
    key = path.resolve()
    if not read_only:
        with _WRITERS_LOCK:
            if key in _WRITERS:
                raise _locked(path, "this process (it is already open for writing)")
            _WRITERS.add(key)
    try:
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        return ladybug.Database(str(path), read_only=read_only, **options)
    except BaseException as exc:
        if not read_only:
            with _WRITERS_LOCK:
                _WRITERS.discard(key)
        if isinstance(exc, RuntimeError):
            message = _first_line(exc)
            if "Could not set lock" in message:
                holder = "another process"
                if "PID" in message:
                    holder += " (" + message[message.index("PID") :].split(")")[0] + ")"
                raise _locked(path, holder) from None
            raise local_io_error(path, exc, doing="open") or StoreError(
                f"cannot open the embedded store {path}: {message}"
            ) from None
        if isinstance(exc, OSError):
            raise local_io_error(path, exc, doing="open") or StoreError(
                f"cannot open the embedded store {path}: {exc}"
            ) from None
        raise


def close_database(database: ladybug.Database, path: str | Path, *, read_only: bool) -> None:
    """Close a database from `open_database` (its connections must be closed first)."""
    try:
        database.close()
    finally:
        if not read_only:
            with _WRITERS_LOCK:
                _WRITERS.discard(Path(path).resolve())


class WriterLock:
    """An exclusive `flock` on `<graph>.writer`, held for a sink's whole life.

    LadybugDB's own file lock is dropped whenever the sink closes its Database between batches
    (see "Memory" above); this lock is not, so a second writer still gets `StoreLocked` at any
    moment. The file holds the holder's PID for the message; it is left in place (removing a lock
    file races with the next process taking it)."""

    def __init__(self, path: Path) -> None:
        self.path = path.with_name(path.name + ".writer")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise local_io_error(self.path, exc, doing="open") or StoreError(
                f"cannot open the embedded store {path}: {exc}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pid = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            holder = "this process" if pid == str(os.getpid()) else "another process"
            if pid.isdigit() and pid != str(os.getpid()):
                holder += f" (PID {pid})"
            raise _locked(path, holder) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd: int | None = fd

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


def journal_snapshot(journal: Journal) -> MaxIds:
    """The row-id maxima read in ONE statement, so they describe one committed state."""
    return journal.max_ids()


def journal_origin(journal: Journal) -> str | None:
    """The journal's first record (`db:uid`): tells a store loaded from another crawl apart."""
    row = journal.execute("SELECT db, uid FROM nodes ORDER BY id LIMIT 1").fetchone()
    return f"{row[0]}:{row[1]}" if row else None


def _read_cursor(conn: ladybug.Connection) -> Cursor | None:
    tables = {r[0] for r in conn.execute("CALL show_tables() RETURN name").get_all()}
    if CURSOR_TABLE not in tables:
        return None
    # a store made before removals has no change column (the writer adds it; readers read 0)
    change = "c.change" if "change" in _columns(conn, CURSOR_TABLE) else "0"
    rows = conn.execute(
        f"MATCH (c:{CURSOR_TABLE}) WHERE c.key = $key RETURN c.node, c.edge, c.prop, {change}",
        {"key": CURSOR_KEY},
    ).get_all()
    if not rows:
        return None
    node, edge, prop, changed = rows[0]
    return Cursor(int(node or 0), int(edge or 0), int(prop or 0), int(changed or 0))


def _columns(conn: ladybug.Connection, table: str) -> set[str]:
    """The property names of a table (`table` is an identifier or the cursor table)."""
    return {
        r[0] for r in conn.execute(f"CALL table_info('{table}') RETURN name").get_all()
    }


def pass_marks(conn: ladybug.Connection, after: int) -> dict[str, int]:
    """Rel tables an unfinished edge pass loaded beyond the cursor: link name -> pass end."""
    rows = conn.execute(
        f"MATCH (c:{CURSOR_TABLE}) WHERE c.key STARTS WITH $prefix RETURN c.key, c.edge",
        {"prefix": PASS_PREFIX},
    ).get_all()
    return {key[len(PASS_PREFIX):]: int(edge) for key, edge in rows
            if edge is not None and int(edge) > after}


def _with_pass_marks(journal: Journal, counts: Counts, cursor: Cursor,
                     marks: dict[str, int]) -> Counts:
    """The counts a store holds at `cursor` plus the tables an unfinished pass already loaded."""
    if not marks:
        return counts
    edges = Counter(counts.edges)
    for end in set(marks.values()):
        for linkname, n in links_between(journal, cursor.edge, end).items():
            if marks.get(linkname) == end:
                edges[linkname] += n
    return replace(counts, edges=dict(sorted(edges.items())))


def real_counts(conn: ladybug.Connection) -> Counts:
    """Records per node table, links per rel table, property values per node table: counted.

    A table this sink cannot have made (not an identifier, no property columns) counts -1, so
    that it always shows as a difference."""
    nodes: dict[str, int] = {}
    edges: dict[str, int] = {}
    props: dict[str, int] = {}
    fetched: dict[str, int] = {}
    values = " + ".join(f"count(n.`{k}`)" for k in NODE_PROPERTIES)

    def count(cypher: str, missing: int = -1) -> int:
        try:
            return int(conn.execute(cypher).get_all()[0][0])
        except RuntimeError:
            return missing

    def stamps(cypher: str) -> int:  # 0 for a table made before `fetched` (no such column)
        return count(cypher, 0)

    for name, kind in conn.execute("CALL show_tables() RETURN name, type").get_all():
        if name == CURSOR_TABLE:
            continue
        valid = bool(IDENTIFIER.match(name))
        if kind == "NODE":
            nodes[name] = count(f"MATCH (n:`{name}`) RETURN count(*)") if valid else -1
            props[name] = (
                count(f"MATCH (n:`{name}`) RETURN {values}") if valid else -1
            )
            if valid:
                fetched[name] = stamps(f"MATCH (n:`{name}`) RETURN count(n.fetched)")
        elif kind == "REL":
            edges[name] = count(f"MATCH ()-[r:`{name}`]->() RETURN count(*)") if valid else -1
            if valid:
                fetched[name] = stamps(f"MATCH ()-[r:`{name}`]->() RETURN count(r.fetched)")
        else:
            nodes[name] = -1  # a table kind the sink never makes
    keep = lambda d: {k: v for k, v in sorted(d.items()) if v}  # noqa: E731
    return Counts(keep(nodes), keep(edges), keep(props), keep(fetched))


def store_files(path: Path) -> list[Path]:
    """The database file and LadybugDB's companions (WAL, shadow, checkpoint locks), not ours
    (the writer lock, the load folder)."""
    ours = {path.name + ".writer", path.name + ".load"}
    if not path.parent.is_dir():
        return []
    return sorted(
        p for p in path.parent.iterdir()
        if (p.name == path.name or p.name.startswith(path.name + "."))
        and p.name not in ours and not p.name.startswith(path.name + ".broken-")
        and not p.is_dir()
    )


# How long a reader waits for a crawl's checkpoint to finish before it gives up (a checkpoint
# takes well under a second per batch; a busy machine can stretch that).
READ_WAIT_S = 60.0
# What LadybugDB says to a reader while a checkpoint is being made or left to recover, or while
# the writer has just created its WAL file and not yet written it (".wal with size 0 at offset").
_CHECKPOINTING = ("checkpoint recovery is pending", "may be checkpointing", ".wal with size 0")


@contextlib.contextmanager
def open_reader(path: str | Path) -> Iterator[ladybug.Connection]:
    """A read-only connection to the embedded store that never fails for a pending checkpoint.

    LadybugDB refuses read-only opens while a checkpoint is being made (during a crawl, after
    each load) or is left to recover (after a SIGKILL). So: retry while a writer holds the
    store; when none does, recover it in place (a brief writable open under the writer lock);
    where the store's folder is read-only, read a recovered copy in a temporary folder."""
    import ladybug

    path = graph_path(path)
    deadline = time.monotonic() + READ_WAIT_S
    pause = 0.02
    while True:
        try:
            db = open_database(path, read_only=True)
        except StoreError as exc:
            if not any(marker in str(exc) for marker in _CHECKPOINTING):
                raise
            state = _recover_if_unheld(path)
            if state == "read-only":
                yield from _read_copy(path)
                return
            if state == "recovered":
                continue
            if time.monotonic() > deadline:
                raise StoreError(
                    f"the embedded store {path} stayed in a checkpoint for {READ_WAIT_S:.0f} s "
                    "while a crawl writes it; run the command again"
                ) from None
            time.sleep(pause)
            pause = min(pause * 1.5, 0.25)
            continue
        try:
            conn = ladybug.Connection(db)
            try:
                yield conn
            finally:
                conn.close()  # before the database (see close_database)
        finally:
            close_database(db, path, read_only=True)
        return


def _recover_if_unheld(path: Path) -> str:
    """'recovered' when no writer held the store and it was recovered now; 'held' when a writer
    holds it (wait for it); 'read-only' when the folder cannot be written (read a copy).

    Recovering is opening it for writing, as the sink does; and since LadybugDB may drop
    committed rows while it recovers, the sink then proves the store against its journal and
    repairs it, so the reader after a crash reads exactly the journal."""
    from ..journal import Journal

    try:
        WriterLock(path).release()  # only a probe: LadybugSink takes the lock itself
    except StoreLocked:
        return "held"
    except (StoreError, LocalIOError):
        return "read-only"
    try:
        sink = LadybugSink(path)
    except StoreLocked:
        return "held"
    except LocalIOError:
        return "read-only"
    except StoreError as exc:
        if "Read-only" in str(exc):
            return "read-only"
        raise
    try:
        journal_file = path.parent / JOURNAL_FILE
        if journal_file.is_file():
            try:
                with Journal(journal_file, create=False) as journal:
                    sink.sync(journal)
            except EntrezGraphError as exc:  # recovered all the same; the writer will repair
                _log.warning("embedded store %s recovered but not checked: %s", path, exc)
    finally:
        sink.close()
    return "recovered"


def _read_copy(path: Path) -> Iterator[ladybug.Connection]:
    """Recover a copy of the store in a temporary folder and read that (read-only media)."""
    import ladybug

    folder = Path(tempfile.mkdtemp(prefix="entrez-graph-read-"))
    try:
        for part in store_files(path):
            if part.is_file():
                shutil.copy2(part, folder / part.name)
        copy = folder / path.name
        db = ladybug.Database(str(copy))
        try:
            conn = ladybug.Connection(db)
            try:
                yield conn
            finally:
                conn.close()
        finally:
            db.close()
    except RuntimeError as exc:
        raise StoreError(f"cannot read the embedded store {path}: {_first_line(exc)}") from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def inspect_store(path: str | Path, journal: Journal) -> dict[str, Any]:
    """What the embedded store really holds beside what its cursor says, for `status`.

    `behind`: journal rows past the cursor, by kind; `held`: the real counts; `differences`:
    labels and link names whose real count is not the journal's at the cursor; `state`:
    "in step" (nothing behind, nothing different), "behind" or "diverged"."""
    path = graph_path(path)
    if not path.exists():
        held = Counts()
        behind = rows_behind(journal, Cursor())
        differences: list[Difference] = []
    else:
        try:
            with open_reader(path) as conn:
                stored = _read_cursor(conn)
                cursor = stored or Cursor()
                held = real_counts(conn)
                marks = pass_marks(conn, cursor.edge) if stored is not None else {}
        except RuntimeError as exc:
            raise StoreError(f"embedded store {path}: {_first_line(exc)}") from None
        behind = rows_behind(journal, cursor)
        expected = _with_pass_marks(
            journal, expected_counts(journal, cursor, fetched=not marks), cursor, marks
        )
        # mid-pass (marked tables) the rows' times are not counted: only when no pass is open
        differences = compare(
            expected, held, props=props_comparable(journal, cursor), fetched=not marks
        )
    state = "diverged" if differences else ("behind" if behind["total"] else "in step")
    return {
        "state": state,
        "behind": behind,
        "held": held.as_dict(),
        "differences": [str(d) for d in differences],
    }


class LadybugSink:
    """Projects the journal into `<store>/graph.lbdb`; holds the write lock while open."""

    name = "embedded"

    def __init__(self, path: str | Path) -> None:
        self.path = graph_path(path)
        self._lock = WriterLock(self.path)
        self._db: ladybug.Database | None = None
        self._conn: ladybug.Connection | None = None
        self._tmp: Path | None = None
        self._origin: str | None = None
        self._proven = False  # set once the real contents were found equal to the journal
        # (bounds, newest change id, journal counts within the bounds): see _expected_at
        self._expected: tuple[Cursor, int, Counts] | None = None
        self._node_tables: set[str] = set()
        self._rel_pairs: dict[str, set[tuple[str, str]]] = {}
        self._unstamped: dict[str, str] = {}  # tables made before `fetched`: name -> NODE/REL
        try:
            try:
                self._open()
            except StoreLocked:
                raise
            except StoreError as exc:
                local = local_io_error(self.path, exc)
                if local is not None:
                    raise local from None
                self._set_aside(exc)
                self._open()
            self._init_store()
        except (RuntimeError, OSError) as exc:
            self.close()
            local = local_io_error(self.path, exc)
            raise (local or StoreError(f"embedded store {self.path}: {_first_line(exc)}")) from None
        except BaseException:
            self.close()
            raise

    def _init_store(self) -> None:
        self._conn.execute(
            f"CREATE NODE TABLE IF NOT EXISTS {CURSOR_TABLE}"
            "(key STRING PRIMARY KEY, node INT64, edge INT64, prop INT64, origin STRING, "
            "change INT64)"
        )
        # the change cursor (removals and updates), in a store made before them (only then:
        # DDL on every open would write LadybugDB's WAL each time a crawl or a reader opens it)
        if "change" not in _columns(self._conn, CURSOR_TABLE):
            self._conn.execute(f"ALTER TABLE {CURSOR_TABLE} ADD change INT64 DEFAULT 0")
        self._node_tables.clear()
        self._rel_pairs.clear()
        self._load_schema()

    def _set_aside(self, why: BaseException) -> None:
        """A database file LadybugDB cannot open (damaged, foreign): move it and its companions
        into `<graph>.broken-<time>/` and start anew; the journal holds everything it held."""
        folder = self.path.with_name(f"{self.path.name}.broken-{time.strftime('%Y%m%dT%H%M%S')}")
        folder.mkdir(exist_ok=True)
        for part in store_files(self.path):
            if part.is_file():
                part.rename(folder / part.name)
        _log.warning(
            "embedded store %s cannot be opened (%s); moved it to %s and rebuilding it from the "
            "journal", self.path, _first_line(why), folder.name,
        )

    def _open(self) -> None:
        import ladybug

        self._db = open_database(self.path, **LOAD_OPTIONS)
        self._conn = ladybug.Connection(self._db)
        self._opened_rss_mb = _rss_mb() or 0.0

    def _reopen(self) -> None:
        """Close the Connection, then the Database, and open both again (see "Memory" above).

        The writer lock stays held throughout, so no other writer can slip in between."""
        self._close_db()
        self._open()

    # -- schema ----------------------------------------------------------------------------

    def _load_schema(self) -> None:
        self._unstamped.clear()
        for name, kind in self._conn.execute("CALL show_tables() RETURN name, type").get_all():
            if kind in ("NODE", "REL") and name != CURSOR_TABLE and IDENTIFIER.match(name):
                columns = {r[0] for r in self._conn.execute(
                    f"CALL table_info('{name}') RETURN name"
                ).get_all()}
                if "fetched" not in columns:
                    self._unstamped[name] = kind
            if kind == "NODE" and name != CURSOR_TABLE:
                self._node_tables.add(name)
            elif kind == "REL":
                pairs = self._conn.execute(
                    f"CALL show_connection('{check_identifier(name)}') RETURN *"
                ).get_all()
                self._rel_pairs[name] = {(p[0], p[1]) for p in pairs}

    def _ensure_node_table(self, db: str) -> None:
        if db in self._node_tables:
            return
        check_identifier(db, "database name")
        if db == CURSOR_TABLE:
            raise StoreError(f"{db!r} is reserved for the embedded store's cursor")
        columns = "".join(f", `{k}` {t}" for k, t in NODE_PROPERTIES.items())
        self._conn.execute(
            f"CREATE NODE TABLE IF NOT EXISTS `{db}`(uid STRING PRIMARY KEY, depth INT64{columns}"
            ", fetched STRING)"
        )
        self._node_tables.add(db)

    def _ensure_rel_table(self, linkname: str, dbfrom: str, dbto: str) -> None:
        pairs = self._rel_pairs.get(linkname)
        if pairs is not None and (dbfrom, dbto) in pairs:
            return
        check_identifier(linkname, "link name")
        self._ensure_node_table(dbfrom)
        self._ensure_node_table(dbto)
        if pairs is None:
            self._conn.execute(
                f"CREATE REL TABLE IF NOT EXISTS `{linkname}`"
                f"(FROM `{dbfrom}` TO `{dbto}`, score INT64, fetched STRING)"
            )
            self._rel_pairs[linkname] = {(dbfrom, dbto)}
        else:
            self._conn.execute(
                f"ALTER TABLE `{linkname}` ADD IF NOT EXISTS FROM `{dbfrom}` TO `{dbto}`"
            )
            pairs.add((dbfrom, dbto))

    # -- cursor ----------------------------------------------------------------------------

    def cursor(self) -> Cursor:
        """The last journal row ids this store holds."""
        return _read_cursor(self._conn) or Cursor()

    def _write_cursor(self, cursor: Cursor) -> None:
        self._conn.execute(
            f"MERGE (c:{CURSOR_TABLE} {{key: $key}}) SET c.node = $node, c.edge = $edge, "
            "c.prop = $prop, c.change = $change, c.origin = $origin",
            {"key": CURSOR_KEY, "node": cursor.node, "edge": cursor.edge, "prop": cursor.prop,
             "change": cursor.change, "origin": self._origin},
        )

    def _stored_origin(self) -> str | None:
        rows = self._conn.execute(
            f"MATCH (c:{CURSOR_TABLE}) WHERE c.key = $key RETURN c.origin", {"key": CURSOR_KEY}
        ).get_all()
        return rows[0][0] if rows else None

    def behind(self, journal: Journal) -> dict[str, int]:
        """Journal rows this store does not hold yet, by kind, plus their total."""
        return rows_behind(journal, self.cursor())

    def pending(self, journal: Journal) -> int:
        """How many journal rows this store lacks (0 when in step)."""
        return self.behind(journal)["total"]

    @staticmethod
    def pending_in(path: str | Path, journal: Journal) -> dict[str, int]:
        """Rows behind for a store nobody here holds open (read-only; works during a crawl)."""
        return inspect_store(path, journal)["behind"]

    # -- sync ------------------------------------------------------------------------------

    def sync(self, journal: Journal) -> SyncReport:
        """Load every journal row past the cursor, batch by batch, each batch one transaction,
        and prove the result.

        The proof: the store's real counts (per label, link name, property values) equal the
        journal's up to the cursor. It runs before the first load of this sink (a crash or a
        full disk may have lost committed rows, or a `query --write` deleted some) and after
        every load; whatever differs is repaired from the journal (see `_prove`)."""
        report = SyncReport(sink=self.name)
        self._origin = journal_origin(journal)
        try:
            self._check_same_crawl(journal)
            if self._unstamped:
                self._stamp_old_tables(journal, report)
            if not self._proven:
                self._resume_pass(journal, report)
                self._prove(journal, report)
            self._load(journal, report)
            self._prove(journal, report)
            if report.nodes or report.edges or report.props or report.changes or report.repaired:
                # COPY commits checkpoint by themselves; property updates and repairs stay in
                # the WAL, where a kill could lose them and readers must wait: checkpoint now.
                self._conn.execute("CHECKPOINT")
        except RuntimeError as exc:
            self._proven = False  # whatever failed, check the store again before trusting it
            local = local_io_error(self.path, exc)
            if local is not None:
                # LadybugDB says committed data "will be recovered on restart": reopen (which
                # recovers) when it can, and the next sync proves and repairs it.
                with contextlib.suppress(Exception):
                    self._reopen()
                raise local from None
            message = _first_line(exc)
            if "duplicated primary key" in message:
                message += (
                    f"; the store holds records this journal has not loaded into it (another "
                    f"crawl?): delete {self.path.name} to rebuild it from the journal"
                )
            raise StoreError(f"loading the embedded store {self.path}: {message}") from None
        except OSError as exc:
            self._proven = False
            raise local_io_error(self.path, exc) or StoreError(
                f"loading the embedded store {self.path}: {exc}"
            ) from None
        report.pending = rows_behind(journal, self.cursor())["total"]
        return report

    def _stamp_old_tables(self, journal: Journal, report: SyncReport) -> None:
        """Tables made before the `fetched` property get it (ALTER TABLE … ADD) and their
        values from the journal: records by one LOAD … SET per table, links by reloading their
        rel table (a rel property cannot be set in bulk by key)."""
        cursor = self.cursor()
        tables = dict(sorted(self._unstamped.items()))
        for name, kind in tables.items():
            if kind == "NODE":  # a rel table is made again below, with the column
                self._conn.execute(f"ALTER TABLE `{check_identifier(name)}` ADD fetched STRING")
        stamped = 0
        for name, kind in tables.items():
            if kind == "NODE":
                stamped += self._restamp_nodes(journal, name, cursor)
            else:
                stamped += self._rebuild_rel(journal, name, cursor)
        self._unstamped.clear()
        report.repaired += stamped
        self._conn.execute("CHECKPOINT")
        _log.warning(
            "embedded store %s was made before `fetched` time stamps: added them to %d tables "
            "from the journal (%d rows)", self.path, len(tables), stamped,
        )

    def _restamp_nodes(self, journal: Journal, db: str, cursor: Cursor) -> int:
        """Set `fetched` on the table's records from the journal (records up to the cursor)."""
        rows = journal.execute(
            f"SELECT uid, {journal.fetched_column} FROM nodes WHERE db = ? AND id <= ? "
            "ORDER BY id", (db, cursor.node),
        ).fetchall()
        if not rows:
            return 0
        csv_path = self._write_csv("stamps", rows)
        self._conn.execute(
            f"LOAD WITH HEADERS (uid STRING, fetched STRING) FROM '{csv_path}' ({_CSV_OPTIONS}) "
            f"MATCH (n:`{db}` {{uid: uid}}) SET n.fetched = fetched"
        )
        return len(rows)

    def _check_same_crawl(self, journal: Journal) -> None:
        """Refuse a store loaded from another crawl: repairing it would destroy someone's data."""
        upto = journal_snapshot(journal)
        cursor = self.cursor()
        stored = self._stored_origin()
        if (
            cursor.node > upto.node or cursor.edge > upto.edge or cursor.prop > upto.prop
            or cursor.change > upto.change or (stored and self._origin and stored != self._origin)
        ):
            raise StoreError(
                f"the embedded store {self.path} holds rows this journal does not "
                f"(it was loaded from a crawl starting at {stored}): it belongs to another "
                f"crawl; delete {self.path.name} to rebuild it from the journal"
            )

    def _load(self, journal: Journal, report: SyncReport) -> None:
        """The incremental load: journal changes, then rows, past the cursor up to one
        consistent snapshot.

        Removals and updates first (design: a removed row is never re-added, and a record seen
        again has a new id and lands after its removal). Each batch of new rows is read in one
        journal snapshot with the newest change id, and the changes up to that id are applied
        (their own transactions) before the batch is loaded: a row removed before it was read
        is then never held, and one removed after is held until its change is applied. So the
        store always holds exactly the journal's rows within its bounds as they were at its
        change cursor (what `verify.expected_counts` counts)."""
        upto = journal_snapshot(journal)
        cursor = self._apply_changes_upto(journal, self.cursor(), upto.change, report)
        while cursor.node < upto.node:
            with journal.snapshot():
                seen = journal.max_ids().change
                rows = journal.nodes_between(cursor.node, upto.node, BATCH_ROWS)
            cursor = self._apply_changes_upto(journal, cursor, seen, report)
            if not rows:
                cursor = replace(cursor, node=upto.node)
                break
            cursor = replace(cursor, node=rows[-1].id)
            self._commit_batch(self._copy_nodes, rows, cursor)
            report.nodes += len(rows)
        while cursor.edge < upto.edge:
            end = _pass_end(journal, cursor.edge, upto.edge, EDGE_PASS_ROWS)
            cursor = self._edge_pass(journal, cursor, end, report)
        while cursor.prop < upto.prop:
            with journal.snapshot():
                seen = journal.max_ids().change
                rows = journal.props_between(cursor.prop, upto.prop, BATCH_ROWS)
            cursor = self._apply_changes_upto(journal, cursor, seen, report)
            if not rows:
                break
            cursor = replace(cursor, prop=rows[-1].id)
            self._commit_batch(self._apply_props, rows, cursor)
            report.props += len(rows)

    def _apply_changes_upto(
        self, journal: Journal, cursor: Cursor, upto: int, report: SyncReport
    ) -> Cursor:
        """Apply the journal's changes in (cursor.change, upto], batch by batch, each batch one
        transaction with the cursor it reaches; returns that cursor.

        A change naming a row past the store's bounds is skipped: the store never held that row
        (the row's addition, read later, reads it as it is now)."""
        while cursor.change < upto:
            rows = journal.changes_between(cursor.change, upto, BATCH_ROWS)
            if not rows:
                break
            held = [
                r for r in rows
                if r.row_id <= (cursor.edge if r.kind.startswith("edge") else cursor.node)
            ]
            cursor = replace(cursor, change=rows[-1].id)
            self._commit_batch(self._apply_changes, held, cursor)
            report.changes += len(held)
        return cursor

    def catch_up_changes(self, journal: Journal, report: SyncReport | None = None) -> Cursor:
        """Apply every change the journal holds now (before a repair reads the journal as it
        is, so what it reloads and what the store already holds agree)."""
        return self._apply_changes_upto(
            journal, self.cursor(), journal.max_ids().change, report or SyncReport(self.name)
        )

    def _edge_pass(self, journal: Journal, cursor: Cursor, end: int, report: SyncReport) -> Cursor:
        """Load the edges with ids in (cursor.edge, end], rel table by rel table; the new cursor.

        Why not in id order: rows of many link names interleave in the journal, and each COMMIT
        of a COPY into a rel table rewrites the whole table, so id-ordered runs (at most
        MAX_RELS_PER_COMMIT tables each, for memory) wrote the big tables over and over (a
        1.1M-edge load: 76 commits, 63 s of its 103 s). Here a pass is one transaction per group
        of at most MAX_RELS_PER_COMMIT rel tables, each table COPYd once, and the cursor moves
        in the last one. Each earlier transaction also writes, for its tables, a marker
        `pass:<link name>` = `end`, so a kill in the middle of a pass never loads a table twice:
        the next sync finishes the pass first (`_resume_pass`), skipping the marked tables.

        The pass's rows are read in one journal snapshot with the newest change id, and the
        changes up to it are applied before the pass is loaded (as for every batch, `_load`)."""
        marks = self._pass_marks(cursor.edge)
        end = max([end, *marks.values()])
        tables: dict[str, list[tuple[str, str]]] = defaultdict(list)
        files: dict[tuple[str, str, str], tuple[str, int]] = {}
        with journal.snapshot():
            seen = journal.max_ids().change
            for linkname, dbfrom, dbto in journal.execute(
                "SELECT DISTINCT linkname, dbfrom, dbto FROM edges WHERE id > ? AND id <= ?",
                (cursor.edge, end),
            ).fetchall():
                if marks.get(linkname, cursor.edge) < end:
                    tables[linkname].append((dbfrom, dbto))
            for linkname in sorted(tables):
                after = max(cursor.edge, marks.get(linkname, cursor.edge))
                for dbfrom, dbto in sorted(tables[linkname]):
                    files[(linkname, dbfrom, dbto)] = self._write_edge_csv(
                        journal, len(files), after, end, linkname, dbfrom, dbto)
        cursor = self._apply_changes_upto(journal, cursor, seen, report)
        groups: list[list[str]] = []
        pairs = 0
        for linkname in sorted(tables):
            if not groups or pairs + len(tables[linkname]) > MAX_RELS_PER_COMMIT:
                groups.append([])
                pairs = 0
            groups[-1].append(linkname)
            pairs += len(tables[linkname])
        final = replace(cursor, edge=end)
        if not groups:  # no rows, or every table was loaded before a kill: move the cursor
            self._in_transaction(lambda: self._close_pass(final))
            return final
        for i, group in enumerate(groups):
            keys = [(ln, a, b) for ln in group for a, b in sorted(tables[ln])]
            for linkname, dbfrom, dbto in keys:
                self._ensure_rel_table(linkname, dbfrom, dbto)  # DDL commits on its own
            last = i == len(groups) - 1

            def work(group: list[str] = group, keys: list = keys, last: bool = last) -> None:
                self._copy_edges({k: files[k][0] for k in keys}, prepare=False)
                if last:
                    self._close_pass(final)
                else:
                    for linkname in group:
                        self._conn.execute(
                            f"MERGE (c:{CURSOR_TABLE} {{key: $key}}) SET c.edge = $edge",
                            {"key": PASS_PREFIX + linkname, "edge": end},
                        )
                pause = os.environ.get(PAUSE_ENV)
                if pause:
                    time.sleep(float(pause))

            self._in_transaction(work)
            report.edges += sum(files[k][1] for k in keys)
            self._after_commit()
        return final

    def _resume_pass(self, journal: Journal, report: SyncReport) -> None:
        """A pass a kill interrupted (markers past the cursor): finish it before anything else."""
        cursor = self.cursor()
        marks = self._pass_marks(cursor.edge)
        if marks:
            self._edge_pass(journal, cursor, max(marks.values()), report)

    def _pass_marks(self, after: int) -> dict[str, int]:
        return pass_marks(self._conn, after)

    def _close_pass(self, cursor: Cursor) -> None:
        """Inside the pass's last transaction: the cursor moves, the markers go."""
        self._write_cursor(cursor)
        self._conn.execute(
            f"MATCH (c:{CURSOR_TABLE}) WHERE c.key STARTS WITH $prefix DELETE c",
            {"prefix": PASS_PREFIX},
        )

    def _write_edge_csv(
        self, journal: Journal, index: int, after: int, end: int, linkname: str, dbfrom: str,
        dbto: str,
    ) -> tuple[str, int]:
        """One rel table pair's rows in (after, end] as a CSV file, streamed from SQLite (the
        `+` keeps SQLite on the id range rather than the (dbfrom, uid_from, …) index)."""
        rows = journal.execute(
            f"SELECT uid_from, uid_to, score, {journal.fetched_column} FROM edges "
            "WHERE id > ? AND id <= ? AND +linkname = ? AND +dbfrom = ? AND +dbto = ? ORDER BY id",
            (after, end, linkname, dbfrom, dbto),
        )
        path = self._csv_dir() / f"edges{index}.csv"
        n = 0
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(_CSV_HEADERS["edges"])
            while chunk := rows.fetchmany(10_000):
                writer.writerows(chunk)
                n += len(chunk)
        return str(path), n

    # -- proof and repair --------------------------------------------------------------------

    def real_counts(self) -> Counts:
        """What the store really holds, counted (one query per table)."""
        return real_counts(self._conn)

    def verify(self, journal: Journal) -> list[Difference]:
        """Every label / link name whose real count differs from the journal's at the cursor."""
        cursor = self.cursor()
        return compare(
            self._expected_at(journal, cursor), self.real_counts(),
            props=props_comparable(journal, cursor), fetched=True,
        )

    def _expected_at(self, journal: Journal, cursor: Cursor) -> Counts:
        """What the store must hold at `cursor` (`verify.expected_counts`), in one journal
        snapshot: the journal's current counts within its bounds, plus the rows removed after
        its change cursor that it still holds.

        The current counts are read in full once, then only for the rows past the bounds they
        were read at, while no change was written meanwhile (new journal records and links only
        add; property values are read again whenever the prop cursor moved, and for the new
        records when only the node cursor did); any new change (a removal) reads them in full."""
        with journal.snapshot():
            top = journal.max_ids().change
            current = self._current_counts(journal, cursor, top)
            return with_pending(current, pending_removals(journal, cursor, top))

    def _current_counts(self, journal: Journal, cursor: Cursor, top: int) -> Counts:
        bounds = replace(cursor, change=0)
        cached = self._expected
        if (
            cached is None or cached[1] != top
            or cached[0].node > cursor.node or cached[0].edge > cursor.edge
        ):
            counts = Counts(
                records_between(journal, 0, cursor.node),
                links_between(journal, 0, cursor.edge),
                property_values(journal, cursor),
                fetched_between(journal, Cursor(), cursor),
            )
        else:
            at, _, known = cached
            if at == bounds:
                return known
            nodes = Counter(known.nodes)
            nodes.update(records_between(journal, at.node, cursor.node))
            edges = Counter(known.edges)
            edges.update(links_between(journal, at.edge, cursor.edge))
            if at.prop != cursor.prop:  # props rows loaded (or replaced): count them all again
                props = property_values(journal, cursor)
            elif at.node != cursor.node:  # new records only: add the values of their props rows
                props = Counter(known.props)
                props.update(property_values(journal, cursor, nodes_after=at.node))
                props = dict(sorted(props.items()))
            else:
                props = known.props
            fetched = Counter(known.fetched)
            fetched.update(fetched_between(journal, at, cursor))
            counts = Counts(
                dict(sorted(nodes.items())), dict(sorted(edges.items())), props,
                dict(sorted(fetched.items())),
            )
        self._expected = (bounds, top, counts)
        return counts

    def _prove(self, journal: Journal, report: SyncReport) -> None:
        """Make the store's real contents equal the journal up to the cursor, or raise.

        Missing records are reloaded exactly (COPY of the table's journal rows skipping those
        present); a rel table that differs is rebuilt from the journal (and so is every rel table
        of a node table that lost records: its rows pointed at them); properties are set
        again. Anything else, or a repair that did not make the counts equal, rebuilds the whole
        store from the journal."""
        differences = self.verify(journal)
        if differences and self.cursor().change < journal.max_ids().change:
            # removals written meanwhile: apply them, so that the store and what a repair
            # reads from the journal agree (the counts above allowed for them already)
            self.catch_up_changes(journal)
            differences = self.verify(journal)
        if not differences:
            self._proven = True
            return
        found = describe(differences)
        # Said once, after the repair: a repair that fails (a full disk) says only why.
        repaired = self._repair(journal, differences)
        how = "repaired it from the journal"
        if self.verify(journal):
            repaired += self.rebuild(journal)
            how = "rebuilt it from the journal"
            left = self.verify(journal)
            if left:
                raise StoreError(
                    f"the embedded store {self.path} cannot be made equal to its journal "
                    f"({describe(left)}); delete {self.path.name} and run "
                    "`entrez-graph sync --embedded`"
                )
        report.repaired += repaired
        _log.warning(
            "embedded store %s differed from its journal (%s): %s (%d rows)",
            self.path, found, how, repaired,
        )
        self._proven = True

    def _repair(self, journal: Journal, differences: list[Difference]) -> int:
        """Reload what differs, table by table; returns the rows loaded."""
        if any(d.actual < 0 or (d.kind == "nodes" and d.actual > d.expected) for d in differences):
            return self.rebuild(journal)  # records the journal does not hold, or a foreign table
        cursor = self.cursor()
        self._node_tables.clear()
        self._rel_pairs.clear()
        self._load_schema()
        short = {d.name for d in differences if d.kind == "nodes"}
        loaded = sum(self._reload_nodes(journal, db, cursor) for db in sorted(short))
        rels = {d.name for d in differences if d.kind == "edges"}
        rels |= {
            name for name, pairs in self._rel_pairs.items()
            if any(a in short or b in short for a, b in pairs)
        }
        loaded += sum(self._rebuild_rel(journal, name, cursor) for name in sorted(rels))
        named = {d.name for d in differences if d.kind == "props"} | short
        loaded += sum(self._reapply_props(journal, db, cursor) for db in sorted(named))
        stamps = {d.name for d in differences if d.kind == "fetched"}
        loaded += sum(
            self._restamp_nodes(journal, name, cursor) for name in sorted(stamps - rels)
            if name in self._node_tables
        )
        loaded += sum(
            self._rebuild_rel(journal, name, cursor) for name in sorted(stamps - rels)
            if name in self._rel_pairs
        )
        return loaded

    def _reload_nodes(self, journal: Journal, db: str, cursor: Cursor) -> int:
        """COPY the journal's records of `db` (up to the cursor), skipping those the table has."""
        rows = journal.execute(
            f"SELECT uid, depth, {journal.fetched_column} FROM nodes WHERE db = ? AND id <= ? "
            "ORDER BY id", (db, cursor.node)
        ).fetchall()
        self._ensure_node_table(db)
        before = self._count(f"MATCH (n:`{db}`) RETURN count(*)")
        csv_path = self._write_csv("nodes", rows)
        self._conn.execute(
            f"COPY `{db}`(uid, depth, fetched) FROM '{csv_path}' "
            f"({_CSV_OPTIONS}, IGNORE_ERRORS=true)"
        )
        return self._count(f"MATCH (n:`{db}`) RETURN count(*)") - before

    def _rebuild_rel(self, journal: Journal, linkname: str, cursor: Cursor) -> int:
        """Drop the rel table and COPY its journal rows (up to the cursor) again."""
        check_identifier(linkname, "link name")
        if linkname in self._rel_pairs:
            self._conn.execute(f"DROP TABLE `{linkname}`")
            del self._rel_pairs[linkname]
        loaded, last = 0, 0
        while True:
            rows = [
                EdgeRow(*r) for r in journal.execute(
                    "SELECT id, dbfrom, uid_from, linkname, dbto, uid_to, score, "
                    f"{journal.fetched_column} FROM edges "
                    "WHERE linkname = ? AND id > ? AND id <= ? ORDER BY id LIMIT ?",
                    (linkname, last, cursor.edge, BATCH_ROWS),
                ).fetchall()
            ]
            if not rows:
                return loaded
            last = rows[-1].id
            groups = self._copy_edges(rows, prepare=True)
            self._in_transaction(lambda groups=groups: self._copy_edges(groups, prepare=False))
            loaded += len(rows)

    def _reapply_props(self, journal: Journal, db: str, cursor: Cursor) -> int:
        """Clear the table's node properties and set them again from the journal's props rows."""
        if db not in self._node_tables:
            return 0
        cleared = ", ".join(f"n.`{k}` = NULL" for k in NODE_PROPERTIES)
        self._conn.execute(f"MATCH (n:`{db}`) SET {cleared}")
        loaded, last = 0, 0
        while True:
            rows = [
                PropRow(i, d, u, json.loads(data)) for i, d, u, data in journal.execute(
                    "SELECT id, db, uid, data FROM props WHERE db = ? AND id > ? AND id <= ? "
                    "ORDER BY id LIMIT ?",
                    (db, last, cursor.prop, BATCH_ROWS),
                ).fetchall()
            ]
            if not rows:
                return loaded
            last = rows[-1].id
            groups = self._apply_props(rows, prepare=True)
            self._in_transaction(lambda groups=groups: self._apply_props(groups, prepare=False))
            loaded += len(rows)

    def rebuild(self, journal: Journal) -> int:
        """Delete the database file and load the whole journal into a new one; rows loaded.

        Killed midway, the new store holds a prefix of the journal with its cursor (every
        batch commits with its cursor), and the next sync goes on from there."""
        self._close_db()
        for path in store_files(self.path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self._open()
        self._init_store()
        report = SyncReport(sink=self.name)
        self._load(journal, report)
        return report.nodes + report.edges + report.props

    def _count(self, cypher: str) -> int:
        return int(self._conn.execute(cypher).get_all()[0][0])

    def _in_transaction(self, work: Any) -> None:
        self._conn.execute("BEGIN TRANSACTION")
        try:
            work()
            self._conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(RuntimeError):
                self._conn.execute("ROLLBACK")
            raise

    def _commit_batch(self, load: Any, rows: list[Any], cursor: Cursor) -> None:
        """DDL first (it commits on its own), then the COPY and the cursor in one transaction."""
        groups = load(rows, prepare=True)
        self._conn.execute("BEGIN TRANSACTION")
        try:
            load(groups, prepare=False)
            self._write_cursor(cursor)
            pause = os.environ.get(PAUSE_ENV)
            if pause:
                time.sleep(float(pause))
            self._conn.execute("COMMIT")
        except BaseException:
            # The failed statement may already have ended the transaction.
            with contextlib.suppress(RuntimeError):
                self._conn.execute("ROLLBACK")
            raise
        self._after_commit()

    def _after_commit(self) -> None:
        """Reopen the Database when this process has grown enough (see "Memory" above)."""
        now = _rss_mb()
        if REOPEN_GROWTH_MB <= 0 or now is None or now - self._opened_rss_mb >= REOPEN_GROWTH_MB:
            self._reopen()

    def _copy_nodes(self, rows: Any, *, prepare: bool) -> Any:
        if prepare:
            by_db: dict[str, list[NodeRow]] = defaultdict(list)
            for r in rows:
                by_db[r.db].append(r)
            for db in by_db:
                self._ensure_node_table(db)
            return by_db
        for db, group in rows.items():
            csv_path = self._write_csv("nodes", ((r.uid, r.depth, r.fetched) for r in group))
            self._conn.execute(
                f"COPY `{db}`(uid, depth, fetched) FROM '{csv_path}' ({_CSV_OPTIONS})"
            )
        return None

    def _copy_edges(self, rows: Any, *, prepare: bool) -> Any:
        """Edge rows (`EdgeRow`s) grouped by rel table, then COPYd; a group may also be the path
        of a CSV file already written (`_edge_pass`)."""
        if prepare:
            if rows and isinstance(rows[0], EdgeRow):
                rows = [(r.id, r.linkname, r.dbfrom, r.dbto, r.uid_from, r.uid_to, r.score,
                         r.fetched) for r in rows]
            by_rel: dict[tuple[str, str, str], list[tuple[Any, ...]]] = defaultdict(list)
            for r in rows:
                by_rel[r[1:4]].append(r[4:])
            for linkname, dbfrom, dbto in by_rel:
                self._ensure_rel_table(linkname, dbfrom, dbto)
            return by_rel
        for (linkname, dbfrom, dbto), group in rows.items():
            csv_path = group if isinstance(group, str) else self._write_csv("edges", group)
            options = f"from='{dbfrom}', to='{dbto}', {_CSV_OPTIONS}"
            self._conn.execute(f"COPY `{linkname}` FROM '{csv_path}' ({options})")
        return None

    def _csv_dir(self) -> Path:
        if self._tmp is None:
            # Beside the graph, under the writer lock: a killed sink's files are reused, not left.
            folder = self.path.with_name(self.path.name + ".load")
            if "'" in str(folder) or "\\" in str(folder):  # it goes into a Cypher string
                folder = Path(tempfile.mkdtemp(prefix="entrez-graph-load-"))
            folder.mkdir(exist_ok=True)
            self._tmp = folder
        return self._tmp

    def _write_csv(self, kind: str, rows: Iterable[tuple[Any, ...]]) -> str:
        """One COPY's rows as a CSV file in this sink's temp folder (None becomes NULL)."""
        path = self._csv_dir() / f"{kind}.csv"
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(_CSV_HEADERS[kind])
            writer.writerows(rows)
        return str(path)

    def _apply_props(self, rows: Any, *, prepare: bool) -> Any:
        if prepare:
            by_db: dict[str, dict[str, PropRow]] = defaultdict(dict)
            for r in rows:
                # Only databases the store has records of; props of unknown records have no node.
                if r.db in self._node_tables:
                    by_db[r.db][r.uid] = r  # the newest row per record wins
            return by_db
        for db, latest in rows.items():
            batch_rows = _props_table(latest.values())
            sets = ", ".join(f"n.`{k}` = `{k}`" for k in NODE_PROPERTIES)
            self._conn.execute(
                f"LOAD FROM $rows MATCH (n:`{db}` {{uid: uid}}) SET {sets}", {"rows": batch_rows}
            )
        return None

    def _apply_changes(self, rows: Any, *, prepare: bool) -> Any:
        """Removals and updates: `LOAD FROM` an Arrow table of the rows (measured in LadybugDB
        0.22, 300k links over 200k records: ~6,000 links/s removed or updated this way, against
        ~400/s with `UNWIND $rows MATCH … DELETE`), per link name and database pair, or per
        database. Order: links removed, records removed (DETACH DELETE), records updated,
        links updated; a removed row never comes back under its id, so no later change of the
        batch can concern it."""
        if prepare:
            plan: dict[str, dict[Any, dict[Any, Any]]] = {
                "edge-": defaultdict(dict), "node-": defaultdict(dict),
                "node~": defaultdict(dict), "edge~": defaultdict(dict),
            }
            for r in rows:
                if r.kind.startswith("edge"):
                    pairs = self._rel_pairs.get(r.linkname)
                    if pairs is None or (r.db, r.dbto) not in pairs:
                        continue  # the store has no such link at all
                    plan[r.kind][(r.linkname, r.db, r.dbto)][(r.uid, r.uid_to)] = r
                elif r.db in self._node_tables:
                    plan[r.kind][r.db][r.uid] = r  # the newest change of a row wins
            return plan
        import pyarrow as pa

        for (linkname, dbfrom, dbto), group in rows["edge-"].items():
            table = pa.table({"a": [k[0] for k in group], "b": [k[1] for k in group]})
            self._conn.execute(
                f"LOAD FROM $rows MATCH (x:`{dbfrom}` {{uid: a}})-[e:`{linkname}`]->"
                f"(y:`{dbto}` {{uid: b}}) DELETE e",
                {"rows": table},
            )
        for db, group in rows["node-"].items():
            self._conn.execute(
                f"UNWIND $uids AS u MATCH (n:`{db}` {{uid: u}}) DETACH DELETE n",
                {"uids": list(group)},
            )
        for db, group in rows["node~"].items():
            fetched = ", n.fetched = r.f" if "fetched" in self._table_columns(db) else ""
            self._conn.execute(
                f"UNWIND $rows AS r MATCH (n:`{db}` {{uid: r.u}}) SET n.depth = r.d{fetched}",
                {"rows": [{"u": u, "d": c.depth, "f": c.fetched} for u, c in group.items()]},
            )
        for (linkname, dbfrom, dbto), group in rows["edge~"].items():
            fetched = ", e.fetched = f" if "fetched" in self._table_columns(linkname) else ""
            table = pa.table({
                "a": pa.array([k[0] for k in group], pa.string()),
                "b": pa.array([k[1] for k in group], pa.string()),
                "s": pa.array([c.score for c in group.values()], pa.int64()),
                "f": pa.array([c.fetched for c in group.values()], pa.string()),
            })
            self._conn.execute(
                f"LOAD FROM $rows MATCH (x:`{dbfrom}` {{uid: a}})-[e:`{linkname}`]->"
                f"(y:`{dbto}` {{uid: b}}) SET e.score = s{fetched}",
                {"rows": table},
            )
        return None

    def _table_columns(self, table: str) -> set[str]:
        return _columns(self._conn, check_identifier(table))

    # -- lifetime --------------------------------------------------------------------------

    def _close_db(self) -> None:
        # Connection first: closing a Database with an open Connection corrupts the file.
        conn = getattr(self, "_conn", None)
        if conn is not None:
            self._conn = None
            conn.close()
        db = getattr(self, "_db", None)
        if db is not None:
            self._db = None
            close_database(db, self.path, read_only=False)

    def close(self) -> None:
        """Release the database and then the write lock (idempotent)."""
        try:
            self._close_db()
        finally:
            tmp = getattr(self, "_tmp", None)
            if tmp is not None:
                self._tmp = None
                shutil.rmtree(tmp, ignore_errors=True)
            lock = getattr(self, "_lock", None)
            if lock is not None:
                self._lock = None
                lock.release()

    def __del__(self) -> None:
        # A sink dropped without close(): release in the safe order (connection, then database).
        with contextlib.suppress(Exception):
            self.close()

    def __enter__(self) -> LadybugSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _rss_mb() -> float | None:
    """This process's resident memory in MB; None where /proc is missing (then: always reopen)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE / 2**20
    except (OSError, ValueError, IndexError):
        return None


def _pass_end(journal: Journal, after: int, upto: int, most: int) -> int:
    """The id that ends a pass of at most `most` edges after `after` (and at most `upto`)."""
    row = journal.execute(
        "SELECT id FROM edges WHERE id > ? AND id <= ? ORDER BY id LIMIT 1 OFFSET ?",
        (after, upto, most - 1),
    ).fetchone()
    return int(row[0]) if row else upto


def _split_by_rel(rows: list[EdgeRow], most: int) -> Iterable[list[EdgeRow]]:
    """Consecutive runs of `rows` (id order kept) that each touch at most `most` rel table pairs.

    Every run ends at a row id the cursor can stop at, so each run can be its own transaction."""
    start, seen = 0, set()
    for i, r in enumerate(rows):
        key = (r.linkname, r.dbfrom, r.dbto)
        if key not in seen and len(seen) == most:
            yield rows[start:i]
            start, seen = i, set()
        seen.add(key)
    if start < len(rows):
        yield rows[start:]


def _props_table(rows: Iterable[PropRow]) -> pa.Table:
    """uid plus every NODE_PROPERTIES column (missing keys NULL: props rows hold the full dict).

    Arrow, not CSV, here: ESummary text holds any character; pyarrow is only loaded when a crawl
    fetched summaries."""
    import pyarrow as pa

    types = {"STRING": pa.string(), "INT64": pa.int64()}
    rows = list(rows)
    data: dict[str, pa.Array] = {"uid": pa.array([r.uid for r in rows], pa.string())}
    for key, kind in NODE_PROPERTIES.items():
        data[key] = pa.array([coerce_property(r.data.get(key), kind) for r in rows], types[kind])
    return pa.Table.from_pydict(data)
