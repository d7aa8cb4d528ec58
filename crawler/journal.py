"""The journal: a SQLite (WAL) file holding all durable crawl state; the graph's source of truth.

Sinks and exports read from here; nothing here knows about any graph store. Row ids are
AUTOINCREMENT, so they only grow and are never reused: a sink's cursor is "the last id I hold".
Rows are written by one thread; SQLite serialises commits, so ids grow in commit order and a
reader that takes `max_ids()` and then reads up to those ids sees a consistent prefix (an edge is
never committed before the nodes it joins).
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from .errors import (
    BadInput,
    LocalIOError,
    NotAStore,
    StoreError,
    local_io_error,
    read_only_fs,
)

SCHEMA_VERSION = 2
# Versions this code reads; a writer migrates an older one in place (see `_migrate`).
READABLE_VERSIONS = (1, 2)
# Rows per statement of `bulk` (bounds the JSON text held at once; a crawl batch is far smaller).
BULK_CHUNK = 20_000
CACHE_KIB = 65_536  # SQLite page cache per connection (default 2 MiB)
WAL_CHECKPOINT_PAGES = 16_384  # pages of WAL (4 KiB each) before an automatic checkpoint
WAL_SIZE_LIMIT = 64 * 1024 * 1024  # the WAL file is truncated back to this after a checkpoint

# When a row was written (`utc_now()`'s form, so it sorts as text); a writer may pass another.
_NOW = "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')"
FETCHED = f"fetched TEXT DEFAULT ({_NOW})"

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    db TEXT NOT NULL,
    uid TEXT NOT NULL,
    depth INTEGER NOT NULL,
    -- new: to expand; checked: link names known (pending_links filled); done: expanded;
    -- terminal: recorded, not expanded (at --depth, hub database); failed: acheck refused it;
    -- no_answer: acheck kept silent about it
    state TEXT NOT NULL DEFAULT 'new',
    {FETCHED},
    UNIQUE(db, uid)
);
CREATE INDEX IF NOT EXISTS nodes_state ON nodes(state, depth, db);
CREATE TABLE IF NOT EXISTS edges(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dbfrom TEXT NOT NULL,
    uid_from TEXT NOT NULL,
    linkname TEXT NOT NULL,
    dbto TEXT NOT NULL,
    uid_to TEXT NOT NULL,
    score INTEGER,
    {FETCHED},
    UNIQUE(dbfrom, uid_from, linkname, dbto, uid_to)
);
-- Extra node properties (summaries, has_neighbor, LinkOut URLs). Replacing a row gives it a new
-- id, so a sink's prop cursor sees every change.
CREATE TABLE IF NOT EXISTS props(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    db TEXT NOT NULL,
    uid TEXT NOT NULL,
    data TEXT NOT NULL,
    {FETCHED},
    UNIQUE(db, uid)
);
-- Link names to fetch for a node (engine bookkeeping). state: pending, done, no_answer (NCBI
-- stayed silent, apart from "no links"), failed (refused; see `failed`). listed: acheck named it.
CREATE TABLE IF NOT EXISTS pending_links(
    db TEXT NOT NULL,
    uid TEXT NOT NULL,
    linkname TEXT NOT NULL,
    dbto TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    listed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(db, uid, linkname)
);
CREATE INDEX IF NOT EXISTS pending_links_state ON pending_links(state, db, linkname);
-- Links found at a level and not yet admitted (only with --max-nodes: the level's new records are
-- admitted together, in a fixed order, once the level is complete, so the cap is deterministic).
CREATE TABLE IF NOT EXISTS candidates(
    level INTEGER NOT NULL,
    dbfrom TEXT NOT NULL,
    uid_from TEXT NOT NULL,
    linkname TEXT NOT NULL,
    dbto TEXT NOT NULL,
    uid_to TEXT NOT NULL,
    score INTEGER,
    rank INTEGER NOT NULL,
    PRIMARY KEY(dbfrom, uid_from, linkname, dbto, uid_to)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS failed(
    db TEXT NOT NULL,
    uid TEXT NOT NULL,
    step TEXT NOT NULL,
    error TEXT NOT NULL,
    PRIMARY KEY(db, uid, step)
);
CREATE TABLE IF NOT EXISTS requests(kind TEXT PRIMARY KEY, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS cursors(
    sink TEXT PRIMARY KEY,
    node_cursor INTEGER NOT NULL DEFAULT 0,
    edge_cursor INTEGER NOT NULL DEFAULT 0,
    prop_cursor INTEGER NOT NULL DEFAULT 0,
    change_cursor INTEGER NOT NULL DEFAULT 0
);
-- What was removed or updated in the graph tables (a refresh: links NCBI no longer returns,
-- depths and scores that changed), in order, so that every sink applies it from its own cursor
-- as it applies additions. kind: `edge-` (the edge db/uid -linkname-> dbto/uid_to removed),
-- `node-` (the node db/uid removed with its props; its edges have `edge-` rows before it),
-- `node~` (the node now has `depth` and `fetched`), `edge~` (the edge now has `score` and
-- `fetched`). row_id: the id of the nodes/edges row concerned, so a store that never held that
-- row skips the change, and the store proof knows which rows a lagging store still holds.
CREATE TABLE IF NOT EXISTS changes(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    db TEXT NOT NULL,
    uid TEXT NOT NULL,
    linkname TEXT,
    dbto TEXT,
    uid_to TEXT,
    depth INTEGER,
    score INTEGER,
    fetched TEXT,
    row_id INTEGER NOT NULL
);
-- The crawl's history: one row per run of `crawl` on this store. ended NULL with no outcome
-- after the run is over: it was killed (SIGKILL, power loss).
CREATE TABLE IF NOT EXISTS runs(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    started TEXT NOT NULL,
    ended TEXT,
    settings TEXT NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    outcome TEXT
);
"""


def utc_now() -> str:
    """The time now as every `fetched` value holds it: UTC to the second, `2026-12-01T19:05:12Z`."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _statements(script: str) -> list[str]:
    """A script's statements one by one (so they can run inside a transaction we hold)."""
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    return out


def _table_ddl(table: str) -> str:
    """SCHEMA's CREATE TABLE statement of `table`."""
    head = f"CREATE TABLE IF NOT EXISTS {table}("
    return next(s for s in _statements(SCHEMA) if head in s)


def _columns(con: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in con.execute(f"PRAGMA table_info({table})").fetchall()]


def _add_fetched(con: sqlite3.Connection, now: str) -> None:
    """Schema 1 -> 2 for provenance: `fetched` on nodes, edges and props, old rows stamped `now`.

    Not ALTER TABLE ADD COLUMN: SQLite refuses a non-constant DEFAULT there, and the writers rely
    on the default for new rows. So each table is copied into one of the new schema (ids and the
    AUTOINCREMENT sequence kept, so sink cursors stay right). The caller holds the transaction."""
    for table in ("nodes", "edges", "props"):
        columns = _columns(con, table)
        if "fetched" in columns:
            continue
        seq = con.execute("SELECT seq FROM sqlite_sequence WHERE name=?", (table,)).fetchone()
        con.execute(_table_ddl(table).replace(f"EXISTS {table}(", f"EXISTS {table}_v2(", 1))
        names = ", ".join(columns)
        con.execute(
            f"INSERT INTO {table}_v2({names}, fetched) SELECT {names}, ? FROM {table} ORDER BY id",
            (now,),
        )
        con.execute(f"DROP TABLE {table}")
        con.execute(f"ALTER TABLE {table}_v2 RENAME TO {table}")
        if seq is not None:
            con.execute(
                "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name=?", (seq[0], table)
            )


def json_rows(n_columns: int, *, ordered: bool = True) -> str:
    """`SELECT` of the columns of rows passed as one JSON array of arrays (parameter `?`).

    Writing a batch as one statement over `json_each` instead of `executemany` matters under
    load: `executemany` releases and re-takes the GIL for every row, and with worker threads
    parsing XML each re-take waits up to a switch interval (benchmarks/README.md measured 30x).
    `ordered` keeps the array's order, so ids are given in the order of the rows (and with
    INSERT OR IGNORE the first of two equal rows wins, as with executemany).
    """
    cols = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(n_columns))
    return f"SELECT {cols} FROM json_each(?)" + (" ORDER BY key" if ordered else "")


def bulk(con: sqlite3.Connection, sql: str, rows: Iterable[Sequence[object]]) -> int:
    """Run `sql` (one `?`: a JSON array of rows, see `json_rows`) over `rows` in few statements.

    Returns the rows changed (`total_changes`, so ignored duplicates do not count). The caller
    holds the transaction; nothing is sent for no rows.
    """
    before = con.total_changes
    chunk: list[Sequence[object]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= BULK_CHUNK:
            con.execute(sql, (json.dumps(chunk),))
            chunk = []
    if chunk:
        con.execute(sql, (json.dumps(chunk),))
    return con.total_changes - before


def _json_columns(*names: str) -> str:
    """`SELECT` of named columns of rows passed as one JSON array of arrays (parameter `?`)."""
    cols = ", ".join(f"json_extract(value, '$[{i}]') AS {n}" for i, n in enumerate(names))
    return f"SELECT {cols} FROM json_each(?)"


def _has_table(con: sqlite3.Connection, table: str) -> bool:
    return bool(con.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)
    ).fetchone())


def _add_changes(con: sqlite3.Connection) -> None:
    """Schema 1 -> 2 for removals and updates: the sinks' change cursor (the `changes` table
    itself comes from SCHEMA). The caller holds the transaction."""
    if "change_cursor" not in _columns(con, "cursors"):
        con.execute(
            "ALTER TABLE cursors ADD COLUMN change_cursor INTEGER NOT NULL DEFAULT 0"
        )


def _migrate(con: sqlite3.Connection, path: Path) -> None:
    """Bring an older journal to SCHEMA_VERSION in place, in one transaction (all or nothing).

    Each step is its own small function; tables that are only added come from SCHEMA (all
    IF NOT EXISTS)."""
    con.execute("BEGIN IMMEDIATE")
    try:
        row = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = int(row[0]) if row else None
        if version == SCHEMA_VERSION:  # another writer migrated it while we waited
            con.execute("COMMIT")
            return
        if version not in READABLE_VERSIONS:
            raise NotAStore(_incompatible(path, version))
        _add_changes(con)
        _add_fetched(con, utc_now())
        for statement in _statements(SCHEMA):
            con.execute(statement)
        con.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            with suppress(sqlite3.Error):
                con.execute("ROLLBACK")
        raise


def _writable(path: Path) -> bool:
    """Whether SQLite can write `path` and the `-wal`/`-shm` files beside it."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)


def _cannot_open(exc: sqlite3.Error) -> bool:
    """SQLITE_CANTOPEN: here, a WAL journal whose `-shm` cannot be made on a read-only disk."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF == 14
    return "unable to open database file" in str(exc)


def _incompatible(path: Path, version: int | None) -> str:
    return (
        f"{path} was made by an incompatible entrez-graph (journal schema {version}, this "
        f"version reads {SCHEMA_VERSION}); start a new store with --store"
    )


@dataclass(frozen=True, slots=True)
class NodeRow:
    id: int
    db: str
    uid: str
    depth: int
    state: str
    fetched: str | None = None  # first seen, or its links last asked (utc_now's form)


@dataclass(frozen=True, slots=True)
class EdgeRow:
    id: int
    dbfrom: str
    uid_from: str
    linkname: str
    dbto: str
    uid_to: str
    score: int | None
    fetched: str | None = None  # when the answer that gave it was fetched (utc_now's form)


@dataclass(frozen=True, slots=True)
class PropRow:
    id: int
    db: str
    uid: str
    data: dict
    fetched: str | None = None  # when its summary (or other properties) were fetched


@dataclass(frozen=True, slots=True)
class RunRow:
    """One run of `crawl` on this store (the `runs` table)."""

    id: int
    kind: str  # crawl (the first run), resume, extend, refresh
    started: str
    ended: str | None
    settings: dict
    requests: int
    outcome: str | None  # done, failed: <one line>, interrupted; None while running or killed

    @property
    def state(self) -> str:
        """The outcome, or `killed` for a run that never ended (`status` says `running` for the
        last one while a crawl holds the store's lock)."""
        return self.outcome or "killed"


@dataclass(frozen=True, slots=True)
class Cursor:
    node: int = 0
    edge: int = 0
    prop: int = 0
    change: int = 0


@dataclass(frozen=True, slots=True)
class MaxIds:
    node: int
    edge: int
    prop: int
    change: int = 0


@dataclass(frozen=True, slots=True)
class ChangeRow:
    """One row of `changes` (see SCHEMA): a removal (`edge-`, `node-`) or update (`node~`,
    `edge~`) for the sinks to apply; `row_id` is the nodes/edges row it concerns."""

    id: int
    kind: str
    db: str
    uid: str
    linkname: str | None
    dbto: str | None
    uid_to: str | None
    depth: int | None
    score: int | None
    fetched: str | None
    row_id: int


class Journal:
    """Durable crawl state in `<store>/journal.sqlite`."""

    FILENAME = "journal.sqlite"

    def __init__(
        self, path: str | Path, *, create: bool = True, read_only: bool | None = None,
        migrate: bool | None = None,
    ) -> None:
        """Open (and with `create`, make) the journal.

        `read_only` None (the default for `create=False`, which readers use) opens read-only
        only where the file or its directory cannot be written (a read-only mount): readers then
        still work, and a write raises LocalIOError. A disk failure while opening or creating
        is a LocalIOError naming the file. `migrate` (default: `create`, i.e. writers) brings an
        older journal to SCHEMA_VERSION in place; readers read an older one as it is (tables
        and columns it lacks read as empty / NULL)."""
        path = Path(path)
        if path.is_dir() or path.suffix == "":
            path = path / self.FILENAME
        self.path = path
        if not path.exists() and not create:
            raise NotAStore(f"no crawl journal at {path}")
        if read_only is None:
            read_only = not create and not _writable(path)
        self.read_only = read_only
        self._lock = threading.RLock()
        self._in_tx = 0
        if migrate is None:
            migrate = create
        if read_only:
            self._db = self._open_read_only(path)
            self._read_columns()
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=60
            )
        except (OSError, sqlite3.Error) as exc:
            raise local_io_error(path, exc, doing="open") or StoreError(
                f"cannot open journal {path}: {exc}"
            ) from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            # A crawl batch's new rows land at random places of the unique indexes, so each
            # commit dirties about one page per row. A larger page cache and a checkpoint every
            # 64 MB of WAL (not every 4 MB: that is after nearly every batch, each with fsyncs)
            # cut the journal writer's time by about a third (measured, docs in benchmarks/).
            self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            self._db.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
            self._db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
            self._db.execute("PRAGMA foreign_keys=OFF")
            version = self._schema_version()
            if version is None:
                if not create:
                    raise NotAStore(f"{path} is not an entrez-graph journal")
                with self._lock:
                    self._db.executescript(
                        f"BEGIN IMMEDIATE;{SCHEMA}"
                        "INSERT OR REPLACE INTO meta(key, value) "
                        f"VALUES ('schema_version', '{SCHEMA_VERSION}');COMMIT;"
                    )
            elif version not in READABLE_VERSIONS:
                raise NotAStore(_incompatible(path, version))
            elif version != SCHEMA_VERSION and migrate:
                with self._lock:
                    _migrate(self._db, path)
            elif create and version == SCHEMA_VERSION:
                with self._lock:  # tables added since the store was made (all IF NOT EXISTS)
                    self._db.executescript(f"BEGIN IMMEDIATE;{SCHEMA}COMMIT;")
            self._read_columns()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            error = local_io_error(path, exc, doing="open")
            if error is not None:
                raise error from None
            raise NotAStore(f"{path} is not an entrez-graph journal: {exc}") from None
        except BaseException:
            self._db.close()
            raise

    def _open_read_only(self, path: Path) -> sqlite3.Connection:
        """A connection that never writes, for a journal on a read-only file system.

        SQLite reads a WAL database read-only (`mode=ro`) only where it can use the `-shm` index
        beside it; on a read-only directory with no `-shm` left (a writer closed cleanly, so no
        `-wal` either) it cannot, and `immutable=1` reads the file as it is. With a `-wal` that
        still holds rows and no way to read it, reading the main file alone would silently miss
        committed rows: that is refused with the reason instead. `immutable=1` is only used on a
        read-only mount, where no writer can change the file under it (on a directory that is
        merely not ours to write, its owner may start a crawl at any moment)."""
        uri = "file:" + urllib.parse.quote(str(path.resolve()))
        wal = path.with_name(path.name + "-wal")
        on_ro_mount = read_only_fs(path)
        last: sqlite3.Error | None = None
        for flags in ("mode=ro", "mode=ro&immutable=1"):
            if "immutable" in flags and (
                not on_ro_mount or (wal.exists() and wal.stat().st_size > 0)
            ):
                break
            try:
                db = sqlite3.connect(
                    f"{uri}?{flags}", uri=True, isolation_level=None,
                    check_same_thread=False, timeout=60,
                )
            except sqlite3.Error as exc:
                last = exc
                continue
            try:
                db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
                version = self._schema_version(db)
            except sqlite3.DatabaseError as exc:
                db.close()
                if _cannot_open(exc):
                    last = exc
                    continue
                error = local_io_error(path, exc, doing="read")
                if error is not None:
                    raise error from None
                raise NotAStore(f"{path} is not an entrez-graph journal: {exc}") from None
            except BaseException:
                db.close()
                raise
            if version is None:
                db.close()
                raise NotAStore(f"{path} is not an entrez-graph journal")
            if version not in READABLE_VERSIONS:
                db.close()
                raise NotAStore(_incompatible(path, version))
            return db
        reason = f" ({last})" if last is not None else ""
        if not on_ro_mount:
            raise LocalIOError(
                f"cannot read {path}: SQLite must create {path.name}-shm beside it to read it, "
                f"and this user may not write {path.parent}{reason}; run as the store's owner, "
                "or copy the store elsewhere",
                path=path, errno=errno.EACCES,
            )
        raise LocalIOError(
            f"cannot read {path} on this read-only file system{reason}: its write-ahead log "
            f"{wal.name} holds rows SQLite can only read where it may write beside it; mount it "
            "read-write (or copy the store elsewhere) and run the same command again",
            path=path, errno=errno.EROFS,
        )

    @classmethod
    def inspect(cls, path: str | Path) -> dict | None:
        """Stored settings of an existing journal, without creating or changing anything.

        None when there is no journal yet; BadInput when the file is not a journal of this
        version (checked before a crawl touches the store).
        """
        path = Path(path)
        if path.is_dir() or path.suffix == "":
            path = path / cls.FILENAME
        if not path.exists():
            return None
        if not _writable(path):  # a read-only mount: read it the way readers do
            with cls(path, create=False, read_only=True) as journal:
                return journal.settings() or {}
        try:
            # mode=rw never creates the file; nothing is written by these reads.
            db = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=60)
        except sqlite3.Error as exc:
            raise local_io_error(path, exc, doing="open") or BadInput(
                f"cannot open journal {path}: {exc}"
            ) from None
        try:
            has_meta = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
            ).fetchone()
            if not has_meta:
                if not db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    return None  # made, but its schema never committed (a full disk): new
                raise BadInput(f"{path} is not an entrez-graph journal")
            row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row else None
            if version not in READABLE_VERSIONS:  # an older one is migrated by the writer
                raise BadInput(_incompatible(path, version))
            row = db.execute("SELECT value FROM meta WHERE key='settings'").fetchone()
            return json.loads(row[0]) if row else {}
        except sqlite3.DatabaseError as exc:
            raise local_io_error(path, exc, doing="read") or BadInput(
                f"{path} is not an entrez-graph journal: {exc}"
            ) from None
        finally:
            db.close()

    # -- plumbing --------------------------------------------------------------------------

    def _schema_version(self, db: sqlite3.Connection | None = None) -> int | None:
        db = db or self._db
        has_meta = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
        ).fetchone()
        if not has_meta:
            tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if tables:
                raise NotAStore(f"{self.path} is not an entrez-graph journal")
            return None
        row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row else None

    def _read_columns(self) -> None:
        """What this journal's schema has (an older one, opened to read, lacks some)."""
        with self._lock:
            self.has_changes = _has_table(self._db, "changes")
            self.has_fetched = "fetched" in _columns(self._db, "nodes")
            self.has_runs = _has_table(self._db, "runs")
        # the column to select: `fetched`, or NULL where a schema-1 journal has none
        self.fetched_column = "fetched" if self.has_fetched else "NULL"

    def _disk_error(self, exc: sqlite3.Error) -> LocalIOError | None:
        return local_io_error(self.path, exc)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: a response's rows and the frontier change they cause commit as one."""
        with self._lock:
            if self._in_tx:
                self._in_tx += 1
                try:
                    yield self._db
                finally:
                    self._in_tx -= 1
                return
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._disk_error(exc) or exc from None
            self._in_tx = 1
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                # All or nothing: a failed COMMIT (disk full) may leave the transaction open,
                # and SQLite may already have rolled back after an I/O error.
                self._rollback()
                if isinstance(exc, sqlite3.Error):
                    error = self._disk_error(exc)
                    if error is not None:
                        raise error from None
                raise
            finally:
                self._in_tx = 0

    def _rollback(self) -> None:
        if self._db.in_transaction:
            with suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    def execute(self, sql: str, params: Iterable = ()) -> sqlite3.Cursor:
        with self._lock:
            try:
                return self._db.execute(sql, tuple(params))
            except sqlite3.Error as exc:
                raise self._disk_error(exc) or exc from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- meta and settings -----------------------------------------------------------------

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def get_meta(self, key: str) -> str | None:
        row = self.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction():
            self._set_meta(key, value)

    def settings(self) -> dict | None:
        raw = self.get_meta("settings")
        return json.loads(raw) if raw else None

    def set_settings(self, settings: dict) -> None:
        self.set_meta("settings", json.dumps(settings, sort_keys=True))

    # -- writes ----------------------------------------------------------------------------

    def add_nodes(self, rows: Iterable[tuple[str, str, int]], state: str = "new") -> int:
        """Insert (db, uid, depth) rows not yet known; returns how many were new."""
        with self.transaction() as db:
            return bulk(
                db,
                f"INSERT OR IGNORE INTO nodes(db, uid, depth, state) {json_rows(4)}",
                ((d, u, depth, state) for d, u, depth in rows),
            )

    def add_edges(
        self, rows: Iterable[tuple[str, str, str, str, str, int | None]]
    ) -> int:
        """Insert (dbfrom, uid_from, linkname, dbto, uid_to, score) rows; duplicates are ignored."""
        with self.transaction() as db:
            return bulk(
                db,
                "INSERT OR IGNORE INTO edges(dbfrom, uid_from, linkname, dbto, uid_to, score) "
                + json_rows(6),
                rows,
            )

    def set_node_state(self, db_name: str, uids: Iterable[str], state: str) -> None:
        uid_list = [str(u) for u in uids]
        with self.transaction() as db:
            for i in range(0, len(uid_list), BULK_CHUNK):
                db.execute(
                    "UPDATE nodes SET state=? WHERE db=? AND uid IN "
                    "(SELECT value FROM json_each(?))",
                    (state, db_name, json.dumps(uid_list[i : i + BULK_CHUNK])),
                )

    def set_props(self, db_name: str, uid: str, data: dict) -> None:
        """Merge `data` into the node's extra properties (a new row id, so sinks see it)."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT data FROM props WHERE db=? AND uid=?", (db_name, uid)
            ).fetchone()
            merged = {**json.loads(row[0]), **data} if row else dict(data)
            db.execute(
                "INSERT OR REPLACE INTO props(db, uid, data) VALUES (?, ?, ?)",
                (db_name, uid, json.dumps(merged, sort_keys=True)),
            )

    def record_failure(self, db_name: str, uid: str, step: str, error: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO failed(db, uid, step, error) VALUES (?, ?, ?, ?)",
                (db_name, uid, step, error),
            )

    def count_request(self, kind: str, n: int = 1) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO requests(kind, count) VALUES (?, ?) "
                "ON CONFLICT(kind) DO UPDATE SET count = count + excluded.count",
                (kind, n),
            )

    # -- reads -----------------------------------------------------------------------------

    def max_ids(self) -> MaxIds:
        """Upper bounds for one consistent sync pass (read once, then read rows up to them).

        One statement, so the four maxima describe one committed state: a change and the rows
        committed after it are never seen apart. The largest ids ever given (AUTOINCREMENT's
        `sqlite_sequence`), not of the rows left: removing the newest edge must not move the
        bound below a sink's cursor."""
        top = "coalesce((SELECT max(seq) FROM sqlite_sequence WHERE name = '{}'), 0)"
        tables = ("nodes", "edges", "props") + (("changes",) if self.has_changes else ())
        row = self.execute("SELECT " + ", ".join(top.format(t) for t in tables)).fetchone()
        return MaxIds(*(int(v) for v in row))

    def changes_between(self, after: int, upto: int, limit: int = 50_000) -> list[ChangeRow]:
        """Change rows with ids in (after, upto], in order (none in a schema-1 journal)."""
        if not self.has_changes:
            return []
        rows = self.execute(
            "SELECT id, kind, db, uid, linkname, dbto, uid_to, depth, score, fetched, row_id "
            "FROM changes WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
            (after, upto, limit),
        ).fetchall()
        return [ChangeRow(*r) for r in rows]

    def changes_after(self, after: int) -> int:
        """How many change rows have ids past `after` (a sink's change cursor)."""
        if not self.has_changes:
            return 0
        return int(self.execute(
            "SELECT count(*) FROM changes WHERE id > ?", (after,)
        ).fetchone()[0])

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Several reads that see one committed state (a read transaction on this connection;
        inside a transaction already held here, that one). Keep it short: while it is open,
        SQLite cannot checkpoint the write-ahead log past it."""
        with self._lock:
            if self._in_tx or self._db.in_transaction:
                yield
                return
            self.execute("BEGIN")
            try:
                yield
            finally:
                with suppress(sqlite3.Error):
                    self._db.execute("COMMIT")

    def nodes_between(self, after: int, upto: int, limit: int = 50_000) -> list[NodeRow]:
        rows = self.execute(
            f"SELECT id, db, uid, depth, state, {self.fetched_column} FROM nodes "
            "WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
            (after, upto, limit),
        ).fetchall()
        return [NodeRow(*r) for r in rows]

    def edges_between(self, after: int, upto: int, limit: int = 50_000) -> list[EdgeRow]:
        rows = self.execute(
            f"SELECT id, dbfrom, uid_from, linkname, dbto, uid_to, score, {self.fetched_column} "
            "FROM edges WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
            (after, upto, limit),
        ).fetchall()
        return [EdgeRow(*r) for r in rows]

    def props_between(self, after: int, upto: int, limit: int = 50_000) -> list[PropRow]:
        rows = self.execute(
            f"SELECT id, db, uid, data, {self.fetched_column} FROM props "
            "WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
            (after, upto, limit),
        ).fetchall()
        return [PropRow(i, d, u, json.loads(data), f) for i, d, u, data, f in rows]

    def iter_nodes(
        self, dbs: Iterable[str] | None = None, chunk: int = 10_000
    ) -> Iterator[NodeRow]:
        """Every node in id order, in chunks, so memory stays bounded for any journal size."""
        wanted = set(dbs) if dbs else None
        last = 0
        while True:
            rows = self.nodes_between(last, 2**62, chunk)
            if not rows:
                return
            last = rows[-1].id
            yield from (r for r in rows if wanted is None or r.db in wanted)

    def iter_edges(
        self,
        dbs: Iterable[str] | None = None,
        links: Iterable[str] | None = None,
        chunk: int = 10_000,
    ) -> Iterator[EdgeRow]:
        """Every edge in id order, in chunks; `dbs` keeps edges with both ends in those dbs."""
        wanted_db = set(dbs) if dbs else None
        wanted_link = set(links) if links else None
        last = 0
        while True:
            rows = self.edges_between(last, 2**62, chunk)
            if not rows:
                return
            last = rows[-1].id
            for r in rows:
                if wanted_link is not None and r.linkname not in wanted_link:
                    continue
                if wanted_db is not None and (r.dbfrom not in wanted_db or r.dbto not in wanted_db):
                    continue
                yield r

    def iter_props(self, chunk: int = 10_000) -> Iterator[PropRow]:
        last = 0
        while True:
            rows = self.props_between(last, 2**62, chunk)
            if not rows:
                return
            last = rows[-1].id
            yield from rows

    def props_of(self, db_name: str, uid: str) -> dict:
        row = self.execute(
            "SELECT data FROM props WHERE db=? AND uid=?", (db_name, uid)
        ).fetchone()
        return json.loads(row[0]) if row else {}

    # -- sink cursors ----------------------------------------------------------------------

    def get_cursor(self, sink: str) -> Cursor:
        change = "change_cursor" if self.has_changes else "0"
        row = self.execute(
            f"SELECT node_cursor, edge_cursor, prop_cursor, {change} FROM cursors WHERE sink=?",
            (sink,),
        ).fetchone()
        return Cursor(*row) if row else Cursor()

    def set_cursor(self, sink: str, cursor: Cursor) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO cursors(sink, node_cursor, edge_cursor, prop_cursor, "
                "change_cursor) VALUES (?, ?, ?, ?, ?)",
                (sink, cursor.node, cursor.edge, cursor.prop, cursor.change),
            )

    def cursors(self) -> dict[str, Cursor]:
        """Every sink cursor copied into the journal, by sink name."""
        change = "change_cursor" if self.has_changes else "0"
        rows = self.execute(
            f"SELECT sink, node_cursor, edge_cursor, prop_cursor, {change} FROM cursors "
            "ORDER BY sink"
        ).fetchall()
        return {sink: Cursor(n, e, p, c) for sink, n, e, p, c in rows}

    # -- removals and updates (a refresh) --------------------------------------------------
    # Each changes the graph tables AND appends the `changes` rows the sinks apply; the caller
    # holds the transaction (`with journal.transaction() as con:`), so a refresh's answer, its
    # removals and its frontier change commit as one. Rows naming nothing the journal holds are
    # skipped (no change row). Each returns how many rows it removed or changed.

    def remove_edges(
        self, con: sqlite3.Connection, rows: Iterable[Sequence[str]]
    ) -> int:
        """Remove the edges (dbfrom, uid_from, linkname, dbto, uid_to), an `edge-` row each."""
        keys = [tuple(str(v) for v in r[:5]) for r in rows]
        if not keys:
            return 0
        ids: list[int] = []
        for i in range(0, len(keys), BULK_CHUNK):
            ids += [r[0] for r in con.execute(
                f"SELECT e.id FROM ({_json_columns('a', 'b', 'c', 'd', 'f')}) AS j "
                "JOIN edges e ON e.dbfrom = j.a AND e.uid_from = j.b AND e.linkname = j.c "
                "AND e.dbto = j.d AND e.uid_to = j.f",
                (json.dumps(keys[i : i + BULK_CHUNK]),),
            ).fetchall()]
        return self._remove_edge_ids(con, ids)

    def _remove_edge_ids(self, con: sqlite3.Connection, ids: list[int]) -> int:
        ids = sorted(set(ids))
        for i in range(0, len(ids), BULK_CHUNK):
            chunk = json.dumps(ids[i : i + BULK_CHUNK])
            con.execute(
                "INSERT INTO changes(kind, db, uid, linkname, dbto, uid_to, score, row_id) "
                "SELECT 'edge-', dbfrom, uid_from, linkname, dbto, uid_to, score, id FROM edges "
                "WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id",
                (chunk,),
            )
            con.execute("DELETE FROM edges WHERE id IN (SELECT value FROM json_each(?))", (chunk,))
        return len(ids)

    def remove_nodes(self, con: sqlite3.Connection, keys: Iterable[Sequence[str]]) -> int:
        """Remove the nodes (db, uid) with their edges (`edge-` rows first), their props and
        their engine bookkeeping (pending link names, failures, summary markers), a `node-` row
        each. A record seen again later is a new row with a new id."""
        wanted = sorted({(str(k[0]), str(k[1])) for k in keys})
        if not wanted:
            return 0
        removed = 0
        for i in range(0, len(wanted), BULK_CHUNK):
            chunk = json.dumps(wanted[i : i + BULK_CHUNK])
            pairs = "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') " \
                "FROM json_each(?)"
            node_ids = [r[0] for r in con.execute(
                f"SELECT id FROM nodes WHERE (db, uid) IN ({pairs}) ORDER BY id", (chunk,)
            ).fetchall()]
            if not node_ids:
                continue
            edge_ids = [r[0] for r in con.execute(
                f"SELECT id FROM edges WHERE (dbfrom, uid_from) IN ({pairs}) "
                f"OR (dbto, uid_to) IN ({pairs})",
                (chunk, chunk),
            ).fetchall()]
            self._remove_edge_ids(con, edge_ids)
            ids = json.dumps(node_ids)
            con.execute(
                "INSERT INTO changes(kind, db, uid, depth, row_id) "
                "SELECT 'node-', db, uid, depth, id FROM nodes "
                "WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id",
                (ids,),
            )
            for table in ("props", "pending_links", "failed", "summarized"):
                if table == "summarized" and not _has_table(con, table):
                    continue
                con.execute(f"DELETE FROM {table} WHERE (db, uid) IN ({pairs})", (chunk,))
            con.execute("DELETE FROM nodes WHERE id IN (SELECT value FROM json_each(?))", (ids,))
            removed += len(node_ids)
        return removed

    def update_nodes(
        self, con: sqlite3.Connection, rows: Iterable[Sequence[object]]
    ) -> int:
        """Set (db, uid, depth, fetched) on known nodes (fetched None keeps the stored one), a
        `node~` row for each whose values changed."""
        return self._update(
            con, "nodes", "node~", ("db", "uid"), "depth",
            [(str(r[0]), str(r[1]), r[2], r[3]) for r in rows],
        )

    def update_edges(
        self, con: sqlite3.Connection, rows: Iterable[Sequence[object]]
    ) -> int:
        """Set (dbfrom, uid_from, linkname, dbto, uid_to, score, fetched) on known edges
        (fetched None keeps the stored one), an `edge~` row for each whose values changed."""
        return self._update(
            con, "edges", "edge~", ("dbfrom", "uid_from", "linkname", "dbto", "uid_to"),
            "score", [(*(str(v) for v in r[:5]), r[5], r[6]) for r in rows],
        )

    def _update(
        self, con: sqlite3.Connection, table: str, kind: str, key: tuple[str, ...],
        value: str, rows: list[tuple[object, ...]],
    ) -> int:
        """The shared body of update_nodes / update_edges: `rows` are key + (value, fetched)."""
        if not rows:
            return 0
        fetched = "fetched" in _columns(con, table)
        n = len(key)
        names = [f"k{i}" for i in range(n)]
        join = " AND ".join(f"t.{c} = j.k{i}" for i, c in enumerate(key))
        differs = f"t.{value} IS NOT j.v"
        if fetched:
            differs += " OR (j.f IS NOT NULL AND t.fetched IS NOT j.f)"
        changed: list[tuple[int, object, object]] = []
        for i in range(0, len(rows), BULK_CHUNK):
            changed += con.execute(
                f"SELECT t.id, j.v, j.f FROM ({_json_columns(*names, 'v', 'f')}) AS j "
                f"JOIN {table} t ON {join} WHERE {differs}",
                (json.dumps(rows[i : i + BULK_CHUNK]),),
            ).fetchall()
        changed = sorted({r[0]: r for r in changed}.values())
        sets = f"{value} = j.v" + (", fetched = coalesce(j.f, t2.fetched)" if fetched else "")
        cols = (
            "db, uid, depth" if table == "nodes"
            else "db, uid, linkname, dbto, uid_to, score"
        )
        source = (
            "db, uid, depth" if table == "nodes"
            else "dbfrom, uid_from, linkname, dbto, uid_to, score"
        )
        for i in range(0, len(changed), BULK_CHUNK):
            chunk = changed[i : i + BULK_CHUNK]
            con.execute(
                f"UPDATE {table} AS t2 SET {sets} FROM ({_json_columns('id', 'v', 'f')}) AS j "
                "WHERE t2.id = j.id",
                (json.dumps(chunk),),
            )
            con.execute(
                f"INSERT INTO changes(kind, {cols}, fetched, row_id) "
                f"SELECT ?, {source}, {'fetched' if fetched else 'NULL'}, id FROM {table} "
                "WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id",
                (kind, json.dumps([r[0] for r in chunk])),
            )
        return len(changed)

    # -- crawl history ---------------------------------------------------------------------

    def start_run(self, kind: str, settings: dict) -> int:
        """Record that a run of `kind` starts now with `settings`; returns its id for end_run."""
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO runs(kind, started, settings) VALUES (?, ?, ?)",
                (kind, utc_now(), json.dumps(settings, sort_keys=True)),
            )
            return int(cur.lastrowid)

    def end_run(self, run_id: int, *, requests: int, outcome: str) -> None:
        """Record how the run ended (`done`, `failed: <one line>`, `interrupted`) and its
        requests. A run killed before this leaves `ended` NULL: shown as killed."""
        line = outcome.strip().splitlines()[0] if outcome.strip() else outcome
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET ended=?, requests=?, outcome=? WHERE id=?",
                (utc_now(), int(requests), line, run_id),
            )

    def finish_run(
        self, run_id: int, *, requests: int, error: BaseException | None = None
    ) -> None:
        """End a run from how its code ended: `done` (no `error`), `interrupted` (Ctrl-C,
        SIGTERM: KeyboardInterrupt) or `failed: <first line>`. With an `error`, a failure to
        record it is swallowed so that it never hides the error (the run then shows as killed)."""
        if error is None:
            self.end_run(run_id, requests=requests, outcome="done")
            return
        if isinstance(error, KeyboardInterrupt):
            outcome = "interrupted"
        else:
            outcome = "failed: " + (str(error).strip() or type(error).__name__)
        with suppress(Exception):
            self.end_run(run_id, requests=requests, outcome=outcome)

    def runs(self) -> list[RunRow]:
        """Every run in the order they started (none for a journal from before the history)."""
        if not self.has_runs:
            return []
        rows = self.execute(
            "SELECT id, kind, started, ended, settings, requests, outcome FROM runs ORDER BY id"
        ).fetchall()
        return [RunRow(i, k, s, e, json.loads(st), r, o) for i, k, s, e, st, r, o in rows]

    # -- summary ---------------------------------------------------------------------------

    def stats(self) -> dict:
        """What `status` reports."""
        q = self.execute
        by_db = dict(q("SELECT db, count(*) FROM nodes GROUP BY db ORDER BY db").fetchall())
        by_link = dict(
            q("SELECT linkname, count(*) FROM edges GROUP BY linkname ORDER BY linkname").fetchall()
        )
        pending = q(
            "SELECT count(*) FROM nodes WHERE state IN ('new', 'checked')"
        ).fetchone()[0]
        failed = q("SELECT count(*) FROM (SELECT DISTINCT db, uid FROM failed)").fetchone()[0]
        no_answer = q(
            "SELECT count(*) FROM (SELECT db, uid FROM nodes WHERE state='no_answer' UNION "
            "SELECT db, uid FROM pending_links WHERE state='no_answer')"
        ).fetchone()[0]
        requests = dict(q("SELECT kind, count FROM requests ORDER BY kind").fetchall())
        return {
            "nodes": sum(by_db.values()),
            "edges": sum(by_link.values()),
            "by_db": by_db,
            "by_link": by_link,
            "pending": pending,
            "failed": failed,
            "no_answer": no_answer,
            "requests": requests,
        }
