"""The breadth-first crawl: seeds -> ELink (through the client) -> the journal -> sinks.

Level by level (design.md, "Crawl"): the records of one depth are checked (`acheck` in batches,
or the named link names when `--link` is given), then every (record, link name) pair is fetched
with one `neighbor` request per link name per batch (`neighbor_score` for computed neighbours with
`--scores`). Requests run on a small thread pool; the client's limiter keeps the rate. Only the
main thread writes the journal, and each batch outcome commits in one transaction together with
the frontier change it causes, so a crawl killed at any moment and run again ends with exactly the
graph an uninterrupted crawl makes:

- node states: `new` (to check) -> `checked` (its link names are in `pending_links`) -> `done`;
  `terminal` (recorded, not expanded: at --depth or a hub database), `failed` / `no_answer`
  (acheck refused it / stayed silent). A pending link is `pending` -> `done` | `no_answer` |
  `failed`. Work left is exactly the `new` nodes and `pending` links, re-asked on resume.
- a level is finished before the next starts, so a record's depth is its smallest BFS depth, and
  the graph does not depend on the order in which batches come back.
- with `--max-nodes`, the links found at a level wait in `candidates` until the level is complete;
  the new records are then admitted in one transaction in a fixed order (by source record, link
  name and rank) until the cap, so the capped graph is the same with or without interruptions.

The Python API `crawl(...)` is what `entrez-graph crawl` runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .errors import (
    BadInput,
    NCBIError,
    PermanentError,
    SettingsMismatch,
    StoreLocked,
    TransientError,
)
from .eutils.models import BatchOutcome, IdLinkSet, SearchResult
from .journal import Journal, bulk, json_rows
from .linknames import HUB_DBS, SUBSETS, LinkFilter, check_db, is_hub, is_scored, split_linkname
from .names import normalize_db
from .progress import NullProgress, Progress
from .seeds import parse_seeds, resolve_seeds
from .store import StorePaths

if TYPE_CHECKING:
    import sqlite3

    from .sinks import Sink, SyncReport

SETTINGS_VERSION = 1
DEFAULT_BATCH = 200
DEFAULT_DEPTH = 1
DEFAULT_WORKERS = 8
MAX_BATCH = 500
# Counts and depths are stored in SQLite, whose integers are 64-bit.
MAX_COUNT = 2**62
LOCK_FILE = "crawl.lock"
# Rounds of re-asking the batches of one level that failed transiently (after the client's own
# retries) before the crawl stops with "run the same command again to resume".
TRANSIENT_ROUNDS = 3
# Dry-run estimate: what an average record is assumed to bring (the real fan-out is unknown
# until acheck answers): link names per record when acheck chooses, new records per record.
ASSUMED_LINKNAMES = 8
ASSUMED_FANOUT = 20


class Client(Protocol):
    """The part of `EutilsClient` the engine uses (a stand-in in unit tests)."""

    @property
    def requests_sent(self) -> int: ...

    def elink_batch(
        self, dbfrom: str, ids: Iterable[str], *, cmd: str = ..., db: str | None = ...,
        linkname: str | None = ...,
    ) -> BatchOutcome: ...

    def acheck_batch(
        self, dbfrom: str, ids: Iterable[str]
    ) -> tuple[dict[str, IdLinkSet], dict[str, str]]: ...

    def esearch(self, db: str, term: str, retmax: int = 20) -> SearchResult: ...


# -- settings -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CrawlSettings:
    """What decides the graph; stored in the journal, compared on resume."""

    seed_specs: tuple[str, ...]
    query: str | None
    query_db: str | None
    depth: int
    filter: LinkFilter
    max_nodes: int | None
    max_links_per_record: int | None
    scores: bool
    expand_hubs: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": SETTINGS_VERSION,
            "seed_specs": list(self.seed_specs),
            "query": self.query,
            "query_db": self.query_db,
            "depth": self.depth,
            **self.filter.as_settings(),
            "max_nodes": self.max_nodes,
            "max_links_per_record": self.max_links_per_record,
            "scores": self.scores,
            "expand_hubs": self.expand_hubs,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CrawlSettings:
        return cls(
            seed_specs=tuple(d["seed_specs"]),
            query=d.get("query"),
            query_db=d.get("query_db"),
            depth=int(d["depth"]),
            filter=LinkFilter(
                tuple(d["links"]), tuple(d["exclude"]), tuple(d["to"]),
                bool(d["include_subsets"]),
            ),
            max_nodes=d.get("max_nodes"),
            max_links_per_record=d.get("max_links_per_record"),
            scores=bool(d["scores"]),
            expand_hubs=bool(d["expand_hubs"]),
        )

    def differences(self, stored: dict[str, Any]) -> list[str]:
        """Human-readable `option: stored -> given` for every setting that differs."""
        mine = self.as_dict()
        out = []
        for key, value in mine.items():
            if stored.get(key) != value:
                out.append(f"{key} {_show(stored.get(key))} (given {_show(value)})")
        return out

    def initial_state(self, db: str, depth: int) -> str:
        """State of a record first seen at `depth`: expand it, or only record it."""
        if depth >= self.depth or (is_hub(db) and not self.expand_hubs):
            return "terminal"
        return "new"


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    return "none" if value is None else str(value)


# -- reports --------------------------------------------------------------------------------------


@dataclass(slots=True)
class SinkStatus:
    name: str
    ok: bool
    pending: int
    error: str | None


@dataclass(slots=True)
class CrawlReport:
    """The crawl's summary; `to_dict()` is the stable `--format json` output."""

    store: str
    complete: bool
    seeds: list[str]
    depth: int
    levels: int
    nodes: int
    edges: int
    by_db: dict[str, int]
    by_link: dict[str, int]
    pending: int
    failed: int
    no_answer: int
    requests: int
    requests_total: int
    elapsed_s: float
    sinks: list[SinkStatus] = field(default_factory=list)
    summaries: dict[str, Any] | None = None

    @property
    def sinks_ok(self) -> bool:
        return all(s.ok for s in self.sinks)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Plan:
    """What `--dry-run` prints: the crawl that would run, and a rough cost."""

    store: str
    seeds: list[str]
    databases: list[str]
    depth: int
    link_names: dict[str, list[str]] | str
    exclude: list[str]
    to: list[str]
    hub_databases: list[str]
    max_nodes: int | None
    max_links_per_record: int | None
    scores: bool
    batch_size: int
    rps: float
    estimated_requests: int
    estimated_seconds: float
    assumptions: str
    resumes: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- the store lock -------------------------------------------------------------------------------


class StoreLock:
    """An exclusive `fcntl` lock on `<store>/crawl.lock`: one crawl writes a store at a time."""

    def __init__(self, root: Path) -> None:
        self.path = root / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip()
            os.close(fd)
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise StoreLocked(
                f"store {self.path.parent} is being written by another entrez-graph crawl{who}; "
                "wait for it to finish or use another --store"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def check_store_path(store: Path) -> None:
    """BadInput unless the store directory exists and is writable, or can be created."""
    if store.exists() and not store.is_dir():
        raise BadInput(f"store {store} is not a directory")
    probe = store
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise BadInput(f"cannot write store {store}: {probe} is not a writable directory")


# -- the crawler ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _CheckTask:
    db: str
    uids: list[str]


@dataclass(slots=True)
class _FetchTask:
    """One request group: a plain link name, or every scored link name of a database."""

    db: str
    linkname: str | None  # None: neighbor_score
    dbto: str
    items: list[tuple[str, list[tuple[str, str, bool]]]]  # (uid, [(linkname, dbto, listed)])


@dataclass(slots=True)
class _FetchResult:
    links: dict[tuple[str, str], list[tuple[str, str, int | None]]] = field(default_factory=dict)
    no_answer: set[tuple[str, str]] = field(default_factory=set)
    failed: dict[tuple[str, str], str] = field(default_factory=dict)
    requests: int = 0


class Crawler:
    """Runs the BFS of one stored crawl; the main thread alone writes the journal."""

    def __init__(
        self,
        journal: Journal,
        client: Client,
        settings: CrawlSettings,
        *,
        batch_size: int = DEFAULT_BATCH,
        workers: int = DEFAULT_WORKERS,
        progress: Progress | None = None,
        sinks: Sequence[Sink] = (),
    ) -> None:
        self.journal = journal
        self.client = client
        self.settings = settings
        self.filter = settings.filter
        self.batch_size = batch_size
        self.workers = max(1, workers)
        self.progress = progress or NullProgress()
        self.sinks = list(sinks)
        self.staged = settings.max_nodes is not None
        self.levels_run = 0
        self._warned: set[str] = set()
        self.last_reports: dict[str, SyncReport] = {}
        self._requests_at_start = client.requests_sent
        self.requests_before = 0  # sent by this run before the crawler started (seed lookups)
        q = journal.execute
        self.n_nodes = q("SELECT count(*) FROM nodes").fetchone()[0]
        self.n_edges = q("SELECT count(*) FROM edges").fetchone()[0]
        self.n_failed = 0
        self.left = 0

    # .. seeds and retries ........................................................................

    def add_seeds(self, seeds: Sequence[tuple[str, str]]) -> None:
        """Seeds at depth 0, in the order given (the order fixes node ids)."""
        with self.journal.transaction() as c:
            self.n_nodes += bulk(
                c, f"INSERT OR IGNORE INTO nodes(db, uid, depth, state) {json_rows(4)}",
                [(db, uid, 0, self.settings.initial_state(db, 0)) for db, uid in seeds],
            )

    def retry_failed(self) -> int:
        """Put what failed or stayed unanswered back into the frontier; returns how many."""
        with self.journal.transaction() as c:
            before = c.total_changes
            c.execute(
                "UPDATE pending_links SET state='pending' WHERE state IN ('failed', 'no_answer')"
            )
            c.execute(
                "UPDATE nodes SET state='checked' WHERE state='done' AND EXISTS (SELECT 1 FROM "
                "pending_links p WHERE p.db=nodes.db AND p.uid=nodes.uid AND p.state='pending')"
            )
            c.execute("UPDATE nodes SET state='new' WHERE state IN ('failed', 'no_answer')")
            c.execute("DELETE FROM failed WHERE step='acheck' OR step LIKE 'neighbor:%'")
            return c.total_changes - before

    # .. the level loop ...........................................................................

    def run(self) -> None:
        """Crawl until no work is left; sinks sync after each level."""
        while True:
            level = self._frontier_level()
            staged_level = self._candidates_level()
            if staged_level is not None and (level is None or staged_level < level):
                self._promote(staged_level)  # a level finished before an interruption
                self.sync_sinks()
                continue
            if level is None:
                return
            self._run_level(level)
            self._finish_level(level)
            if self.staged:
                self._promote(level)
            self.levels_run += 1
            self.sync_sinks()

    def _frontier_level(self) -> int | None:
        q = self.journal.execute
        row = q("SELECT min(depth) FROM nodes WHERE state IN ('new', 'checked')").fetchone()
        return row[0]

    def _candidates_level(self) -> int | None:
        return self.journal.execute("SELECT min(level) FROM candidates").fetchone()[0]

    def _run_level(self, level: int) -> None:
        for round_no in range(TRANSIENT_ROUNDS + 1):
            errors = self._level_round(level)
            if not errors:
                return
            if round_no == TRANSIENT_ROUNDS:
                raise NCBIError(
                    f"E-utilities kept failing at level {level} ({errors[-1]}); everything "
                    "answered so far is in the journal: run the same command again to resume"
                )
            self.progress.note(
                f"level {level}: {len(errors)} batch(es) failed ({errors[-1]}); asking again"
            )

    def _level_round(self, level: int) -> list[str]:
        """One pass over the level's remaining work; returns the transient errors met."""
        q = self.journal.execute
        new_nodes = q(
            "SELECT db, uid FROM nodes WHERE depth=? AND state='new' ORDER BY db, id", (level,)
        ).fetchall()
        pending = q(
            "SELECT p.db, p.uid, p.linkname, p.dbto, p.listed FROM pending_links p JOIN nodes n "
            "ON n.db=p.db AND n.uid=p.uid WHERE n.depth=? AND p.state='pending' "
            "ORDER BY p.db, n.id, p.linkname",
            (level,),
        ).fetchall()
        if not new_nodes and not pending:
            return []
        self.left = len(new_nodes) + len(pending)
        self.progress.update(level=level, frontier=self.left, force=True)

        buffers: dict[tuple[str, str | None, str], list[tuple[str, list]]] = defaultdict(list)
        by_uid: dict[tuple[str, str], list[tuple[str, str, bool]]] = defaultdict(list)
        for db, uid, ln, dbto, listed in pending:
            by_uid[(db, uid)].append((ln, dbto, bool(listed)))
        check_tasks: deque[_CheckTask] = deque()
        by_db: dict[str, list[str]] = defaultdict(list)
        for db, uid in new_nodes:
            by_db[db].append(uid)
        for db, uids in by_db.items():
            for i in range(0, len(uids), self.batch_size):
                check_tasks.append(_CheckTask(db, uids[i : i + self.batch_size]))

        fetch_ready: deque[_FetchTask] = deque()

        def buffer(db: str, uid: str, links: list[tuple[str, str, bool]]) -> None:
            groups: dict[tuple[str | None, str], list[tuple[str, str, bool]]] = defaultdict(list)
            for ln, dbto, listed in links:
                if self.settings.scores and is_scored(ln):
                    groups[(None, db)].append((ln, dbto, listed))
                else:
                    groups[(ln, dbto)].append((ln, dbto, listed))
            for (ln, dbto), group in groups.items():
                key = (db, ln, dbto)
                buffers[key].append((uid, group))
                if len(buffers[key]) >= self.batch_size:
                    fetch_ready.append(_FetchTask(db, ln, dbto, buffers.pop(key)))

        for (db, uid), links in by_uid.items():
            buffer(db, uid, links)

        errors: list[str] = []
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="elink")
        in_flight: dict[Future, _CheckTask | _FetchTask] = {}
        limit = self.workers * 2
        finished = False

        def fill() -> None:
            # Full fetch batches first, so the frontier held in memory stays small.
            while len(in_flight) < limit and (check_tasks or fetch_ready):
                if fetch_ready:
                    ftask = fetch_ready.popleft()
                    in_flight[pool.submit(self._fetch, ftask)] = ftask
                elif self.filter.named:
                    # --link: the link names are known; no request to learn them.
                    ntask = check_tasks.popleft()
                    for uid, links in self._commit_named_check(ntask):
                        buffer(ntask.db, uid, links)
                else:
                    ctask = check_tasks.popleft()
                    in_flight[pool.submit(self._check, ctask)] = ctask

        try:
            while True:
                fill()
                if not in_flight:
                    if buffers:  # every check is in: send the partly filled batches
                        for (db, ln, dbto), items in sorted(
                            buffers.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][2])
                        ):
                            fetch_ready.append(_FetchTask(db, ln, dbto, items))
                        buffers.clear()
                        continue
                    break
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                answered = [(fut, in_flight.pop(fut)) for fut in done]
                fill()  # the workers get more to do before this thread writes
                for fut, task in answered:  # one transaction per batch
                    try:
                        result = fut.result()
                    except TransientError as exc:
                        errors.append(str(exc))
                        continue
                    if isinstance(task, _CheckTask):
                        for uid, links in self._commit_check(task, result, level):
                            buffer(task.db, uid, links)
                    else:
                        self._commit_fetch(task, result, level)
            finished = True
        finally:
            # On an error or interrupt, do not wait for requests in flight: their rows stay
            # pending in the journal and are asked again on resume.
            pool.shutdown(wait=finished, cancel_futures=True)
        return errors

    # .. requests (worker threads; no journal access) .............................................

    def _check(self, task: _CheckTask) -> tuple[dict[str, IdLinkSet], dict[str, str], int]:
        try:
            answers, failed = self.client.acheck_batch(task.db, task.uids)
        except PermanentError as exc:
            return {}, {uid: str(exc) for uid in task.uids}, 1
        return answers, failed, 1

    def _fetch(self, task: _FetchTask) -> _FetchResult:
        result = _FetchResult()
        if task.linkname is None:
            self._fetch_scored(task, result)
        else:
            self._fetch_plain(
                task.db, task.linkname, task.dbto,
                [(uid, any(listed for _, _, listed in links)) for uid, links in task.items],
                result,
            )
        return result

    def _ask(self, dbfrom: str, uids: list[str], result: _FetchResult, **kw: Any) -> BatchOutcome:
        try:
            outcome = self.client.elink_batch(dbfrom, uids, **kw)
        except PermanentError as exc:
            outcome = BatchOutcome(failed={uid: str(exc) for uid in uids}, requests=1)
        result.requests += outcome.requests
        return outcome

    def _fetch_plain(
        self, db: str, linkname: str, dbto: str, uids: list[tuple[str, bool]],
        result: _FetchResult,
    ) -> None:
        """`neighbor` for one link name; empty where acheck listed the name: re-asked once."""
        listed = {uid for uid, was_listed in uids if was_listed}
        ask = [uid for uid, _ in uids]
        for attempt in range(2):
            outcome = self._ask(db, ask, result, cmd="neighbor", db=dbto, linkname=linkname)
            again: list[str] = []
            for uid in ask:
                key = (uid, linkname)
                if uid in outcome.failed:
                    result.failed[key] = outcome.failed[uid]
                elif uid in outcome.answered:
                    links = _links_of(outcome.answered[uid], linkname, dbto)
                    if not links and uid in listed and attempt == 0:
                        again.append(uid)  # NCBI sometimes answers "nothing" intermittently
                    elif not links and uid in listed:
                        result.no_answer.add(key)
                    else:
                        result.links[key] = links
                else:
                    result.no_answer.add(key)
            if not again:
                return
            ask = again

    def _fetch_scored(self, task: _FetchTask, result: _FetchResult) -> None:
        """`neighbor_score` (db = dbfrom) answers every scored link name of a record at once."""
        uids = [uid for uid, _ in task.items]
        outcome = self._ask(task.db, uids, result, cmd="neighbor_score", db=task.db)
        fallback: dict[tuple[str, str], list[tuple[str, bool]]] = defaultdict(list)
        for uid, links in task.items:
            if uid in outcome.failed:
                for ln, _, _ in links:
                    result.failed[(uid, ln)] = outcome.failed[uid]
                continue
            linkset = outcome.answered.get(uid)
            if linkset is None:
                for ln, _, _ in links:
                    result.no_answer.add((uid, ln))
                continue
            present = {lsdb.linkname for lsdb in linkset.linksetdbs}
            for ln, dbto, listed in links:
                found = _links_of(linkset, ln, dbto)
                if found or (not listed and ln not in present):
                    result.links[(uid, ln)] = found  # absent and never listed: no such links
                else:  # acheck listed it, the scored answer has nothing: ask for it by name
                    fallback[(ln, dbto)].append((uid, listed))
        for (ln, dbto), items in sorted(fallback.items()):
            self._fetch_plain(task.db, ln, dbto, items, result)

    # .. journal writes (main thread) .............................................................

    def _commit_named_check(self, task: _CheckTask) -> list[tuple[str, list]]:
        links = [(ln, dbto, False) for ln, dbto in self.filter.named_for(task.db)]
        chosen = {uid: links for uid in task.uids}
        return self._write_check(task.db, chosen, {}, set(), kind=None, requests=0)

    def _commit_check(
        self, task: _CheckTask, result: tuple[dict[str, IdLinkSet], dict[str, str], int],
        level: int,
    ) -> list[tuple[str, list]]:
        answers, failed, requests = result
        chosen: dict[str, list[tuple[str, str, bool]]] = {}
        silent: set[str] = set()
        for uid in task.uids:
            if uid in failed:
                continue
            if uid in answers:
                offered = [(i.linkname, i.dbto) for i in answers[uid].entrez]
                chosen[uid] = [(ln, to, True) for ln, to in self.filter.select(offered)]
            else:
                silent.add(uid)
        fails = {uid: failed[uid] for uid in task.uids if uid in failed}
        return self._write_check(task.db, chosen, fails, silent, kind="acheck", requests=requests)

    def _write_check(
        self, db: str, chosen: dict[str, list[tuple[str, str, bool]]], failed: dict[str, str],
        silent: set[str], *, kind: str | None, requests: int,
    ) -> list[tuple[str, list]]:
        """The check of one batch and its frontier change, in one transaction."""
        with self.journal.transaction() as c:
            bulk(
                c,
                "INSERT OR IGNORE INTO pending_links(db, uid, linkname, dbto, listed, state) "
                + _select_rows(5, "pending"),
                [(db, uid, ln, to, int(listed)) for uid, links in chosen.items()
                 for ln, to, listed in links],
            )
            _set_states(c, db, [uid for uid, links in chosen.items() if links], "checked",
                        only_new=True)
            _set_states(c, db, [uid for uid, links in chosen.items() if not links], "done",
                        only_new=True)
            _set_states(c, db, list(failed), "failed")
            bulk(
                c,
                "INSERT OR REPLACE INTO failed(db, uid, error, step) " + _select_rows(3, "acheck"),
                [(db, uid, err) for uid, err in failed.items()],
            )
            _set_states(c, db, sorted(silent), "no_answer")
            if kind:
                _count(c, kind, requests)
        self.n_failed += len(failed)
        n_links = sum(len(v) for v in chosen.values())
        self.left += n_links - len(chosen) - len(failed) - len(silent)
        self._show()
        return [(uid, links) for uid, links in chosen.items() if links]

    def _commit_fetch(self, task: _FetchTask, result: _FetchResult, level: int) -> None:
        """One fetch batch: its edges, new records, link states and failures in one transaction."""
        db = task.db
        cap = self.settings.max_links_per_record
        next_depth = level + 1
        node_rows: dict[tuple[str, str], str] = {}
        edge_rows: list[tuple[str, str, str, str, str, int | None, int]] = []
        for (uid, ln), links in sorted(result.links.items()):
            kept = _rank(uid, db, links, cap)
            for rank, (dbto, target, score) in enumerate(kept):
                edge_rows.append((db, uid, ln, dbto, target, score, rank))
                if (dbto, target) not in node_rows:
                    node_rows[(dbto, target)] = self.settings.initial_state(dbto, next_depth)
        done = [(db, uid, ln) for uid, ln in result.links]
        with self.journal.transaction() as c:
            # One statement per kind of row (json_each), not executemany: see journal.bulk.
            if self.staged:
                bulk(
                    c,
                    "INSERT OR IGNORE INTO candidates(level, dbfrom, uid_from, linkname, dbto, "
                    f"uid_to, score, rank) {json_rows(8)}",
                    [(level, *row) for row in edge_rows],
                )
            else:
                self.n_nodes += bulk(
                    c, f"INSERT OR IGNORE INTO nodes(db, uid, depth, state) {json_rows(4)}",
                    [(d, u, next_depth, s) for (d, u), s in node_rows.items()],
                )
                self.n_edges += bulk(
                    c,
                    "INSERT OR IGNORE INTO edges(dbfrom, uid_from, linkname, dbto, uid_to, score) "
                    + json_rows(6),
                    [row[:6] for row in edge_rows],
                )
            _set_link_states(c, db, [(uid, ln) for _, uid, ln in done], "done")
            if done:
                c.execute(
                    "DELETE FROM failed WHERE db=? AND (uid, step) IN (SELECT "
                    "json_extract(value, '$[0]'), 'neighbor:' || json_extract(value, '$[1]') "
                    "FROM json_each(?))",
                    (db, json.dumps([(uid, ln) for _, uid, ln in done])),
                )
            _set_link_states(c, db, sorted(result.no_answer), "no_answer")
            _set_link_states(c, db, sorted(result.failed), "failed")
            bulk(
                c,
                f"INSERT OR REPLACE INTO failed(db, uid, step, error) {json_rows(4)}",
                [(db, uid, f"neighbor:{ln}", err) for (uid, ln), err in result.failed.items()],
            )
            _count(c, "neighbor_score" if task.linkname is None else "neighbor", result.requests)
        self.n_failed += len({uid for uid, _ in result.failed})
        self.left -= len(result.links) + len(result.no_answer) + len(result.failed)
        self._show()

    def _finish_level(self, level: int) -> None:
        """Records whose every link name was fetched (or given up) are done."""
        with self.journal.transaction() as c:
            c.execute(
                "UPDATE nodes SET state='done' WHERE depth=? AND state='checked' AND NOT EXISTS "
                "(SELECT 1 FROM pending_links p WHERE p.db=nodes.db AND p.uid=nodes.uid "
                "AND p.state='pending')",
                (level,),
            )

    def _promote(self, level: int) -> None:
        """--max-nodes: admit the level's new records in a fixed order, then their links."""
        limit = self.settings.max_nodes or 0
        with self.journal.transaction() as c:
            room = max(limit - c.execute("SELECT count(*) FROM nodes").fetchone()[0], 0)
            fresh = c.execute(
                "SELECT c.dbto, c.uid_to, min(printf('%015d|%s|%09d', s.id, c.linkname, c.rank)) "
                "AS k FROM candidates c JOIN nodes s ON s.db=c.dbfrom AND s.uid=c.uid_from "
                "WHERE c.level=? AND NOT EXISTS (SELECT 1 FROM nodes t WHERE t.db=c.dbto AND "
                "t.uid=c.uid_to) GROUP BY c.dbto, c.uid_to ORDER BY k LIMIT ?",
                (level, room),
            ).fetchall()
            self.n_nodes += bulk(
                c, f"INSERT OR IGNORE INTO nodes(db, uid, depth, state) {json_rows(4)}",
                [(d, u, level + 1, self.settings.initial_state(d, level + 1)) for d, u, _ in fresh],
            )
            before = c.total_changes
            c.execute(
                "INSERT OR IGNORE INTO edges(dbfrom, uid_from, linkname, dbto, uid_to, score) "
                "SELECT c.dbfrom, c.uid_from, c.linkname, c.dbto, c.uid_to, c.score "
                "FROM candidates c JOIN nodes s ON s.db=c.dbfrom AND s.uid=c.uid_from "
                "WHERE c.level=? AND EXISTS (SELECT 1 FROM nodes t WHERE t.db=c.dbto AND "
                "t.uid=c.uid_to) ORDER BY s.id, c.linkname, c.rank",
                (level,),
            )
            self.n_edges += c.total_changes - before
            c.execute("DELETE FROM candidates WHERE level=?", (level,))

    # .. sinks and progress .......................................................................

    def sync_sinks(self) -> None:
        """Push the journal into every sink; an unreachable one is reported once, not fatal."""
        for sink in self.sinks:
            self.progress.update(phase=f"syncing {sink.name}", force=True)
            report = sink.sync(self.journal)
            self.last_reports[sink.name] = report
            if report.error and sink.name not in self._warned:
                self._warned.add(sink.name)
                self.progress.note(
                    f"{_sink_label(sink.name)} unavailable: {report.error}; the journal keeps "
                    "everything; run `entrez-graph sync` later"
                )
        self.progress.fields.pop("phase", None)

    @property
    def requests(self) -> int:
        return self.client.requests_sent - self._requests_at_start + self.requests_before

    def _show(self) -> None:
        self.progress.update(
            requests=self.requests, records=self.n_nodes, edges=self.n_edges,
            frontier=max(self.left, 0), failed=self.n_failed,
        )


def _sink_label(name: str) -> str:
    return "Neo4j" if name.lower().startswith("neo4j") else f"store {name!r}"


def _count(c: sqlite3.Connection, kind: str, n: int) -> None:
    if n:
        c.execute(
            "INSERT INTO requests(kind, count) VALUES (?, ?) "
            "ON CONFLICT(kind) DO UPDATE SET count = count + excluded.count",
            (kind, n),
        )


def _select_rows(n_columns: int, constant: str) -> str:
    """`json_rows(n_columns)` plus one constant text column, e.g. a state or a step name."""
    return json_rows(n_columns).replace(" FROM json_each", f", '{constant}' FROM json_each", 1)


def _set_states(
    c: sqlite3.Connection, db: str, uids: list[str], state: str, *, only_new: bool = False
) -> None:
    """Set the state of some records of one database in one statement."""
    if not uids:
        return
    # `+state`: look rows up by (db, uid), never by the state index
    c.execute(
        "UPDATE nodes SET state=? WHERE db=? AND uid IN (SELECT value FROM json_each(?))"
        + (" AND +state='new'" if only_new else ""),
        (state, db, json.dumps(uids)),
    )


def _set_link_states(
    c: sqlite3.Connection, db: str, pairs: list[tuple[str, str]], state: str
) -> None:
    """Set the state of some (uid, link name) pending links of one database in one statement."""
    if not pairs:
        return
    c.execute(
        "UPDATE pending_links SET state=? WHERE db=? AND (uid, linkname) IN (SELECT "
        "json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))",
        (state, db, json.dumps(pairs)),
    )


def _links_of(linkset: Any, linkname: str, dbto: str) -> list[tuple[str, str, int | None]]:
    """(dbto, uid, score) of one link name in a LinkSet; the target db comes from DbTo."""
    out: dict[tuple[str, str], int | None] = {}
    for lsdb in linkset.linksetdbs:
        if lsdb.linkname != linkname:
            continue
        try:
            target_db = normalize_db(lsdb.dbto) if lsdb.dbto else dbto
        except BadInput:
            continue  # a DbTo that could never be a label
        for link in lsdb.links:
            uid = str(link.uid)
            if not uid.isdigit() or uid == "0":
                continue
            key = (target_db, uid)
            if key not in out or (link.score or 0) > (out[key] or 0):
                out[key] = link.score
    return [(d, u, s) for (d, u), s in out.items()]


def _rank(
    uid: str, db: str, links: list[tuple[str, str, int | None]], cap: int | None
) -> list[tuple[str, str, int | None]]:
    """Self-links dropped; best first (score, then UID) so a cap keeps a deterministic top N."""
    kept = [link for link in links if not (link[0] == db and link[1] == uid)]
    kept.sort(key=lambda t: (-(t[2] if t[2] is not None else -1), int(t[1]), t[0]))
    return kept[:cap] if cap is not None else kept


# -- the Python API -------------------------------------------------------------------------------


@dataclass(slots=True)
class Neo4jTarget:
    uri: str
    user: str | None = None
    password: str | None = None
    database: str | None = None


def build_settings(
    seeds: Iterable[str] = (),
    *,
    query: str | None = None,
    query_db: str | None = None,
    depth: int = DEFAULT_DEPTH,
    links: Iterable[str] = (),
    exclude_links: Iterable[str] = (),
    to_dbs: Iterable[str] = (),
    max_nodes: int | None = None,
    max_links_per_record: int | None = None,
    scores: bool = False,
    expand_hubs: bool = False,
    include_subsets: bool = False,
) -> CrawlSettings:
    """Validated settings (BadInput on anything malformed); sends nothing, touches nothing."""
    specs = parse_seeds(seeds)
    if isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= MAX_COUNT:
        raise BadInput(f"invalid depth {depth!r}: must be a whole number >= 0")
    for name, value in (("--max-nodes", max_nodes), ("--max-links-per-record",
                                                      max_links_per_record)):
        if value is not None and (not isinstance(value, int) or not 1 <= value <= MAX_COUNT):
            raise BadInput(f"invalid {name} {value!r}: must be a whole number >= 1")
    if query is not None:
        query = query.strip()
        if not query:
            raise BadInput("--query is empty")
        if query_db is None:
            raise BadInput("--query needs --query-db")
        query_db = check_db(query_db, "database in --query-db")
    elif query_db is not None:
        raise BadInput("--query-db needs --query")
    if not specs and query is None:
        raise BadInput("no seeds: give DB:UID arguments, --seeds-file or --query")
    flt = LinkFilter.build(links, exclude_links, to_dbs, include_subsets)
    return CrawlSettings(
        seed_specs=tuple(str(s) for s in specs),
        query=query,
        query_db=query_db,
        depth=depth,
        filter=flt,
        max_nodes=max_nodes,
        max_links_per_record=max_links_per_record,
        scores=bool(scores),
        expand_hubs=bool(expand_hubs),
    )


def open_sinks(store: Path, *, embedded: bool, neo4j: Any = None) -> list[Sink]:
    """The embedded store (LadybugDB) unless disabled, plus a connected Neo4j sink if any."""
    sinks: list[Sink] = []
    if embedded:
        from .sinks.ladybug import LadybugSink

        sinks.append(LadybugSink(StorePaths.of(store).graph))
    if neo4j is not None:
        sinks.append(neo4j)
    return sinks


def connect_neo4j(target: Neo4jTarget) -> Any:
    """Connect before anything is written: wrong credentials or no server -> BadInput (exit 2)."""
    from .sinks.neo4j import Neo4jSink

    return Neo4jSink.connect(target.uri, target.user, target.password, target.database)


def crawl(
    store: str | Path,
    seeds: Iterable[str] = (),
    *,
    query: str | None = None,
    query_db: str | None = None,
    depth: int = DEFAULT_DEPTH,
    links: Iterable[str] = (),
    exclude_links: Iterable[str] = (),
    to_dbs: Iterable[str] = (),
    max_nodes: int | None = None,
    max_links_per_record: int | None = None,
    scores: bool = False,
    expand_hubs: bool = False,
    include_subsets: bool = False,
    batch_size: int = DEFAULT_BATCH,
    summaries: bool = False,
    embedded: bool = True,
    neo4j: Neo4jTarget | None = None,
    sinks: Sequence[Sink] | None = None,
    client: Client | None = None,
    eutils_url: str | None = None,
    email: str | None = None,
    rps: float | None = None,
    dry_run: bool = False,
    retry_failed: bool = False,
    workers: int = DEFAULT_WORKERS,
    progress: Progress | None = None,
) -> CrawlReport | Plan:
    """Crawl (or resume crawling) `store` from seeds; returns the report, or the plan if dry_run.

    Everything is validated and the seeds resolved before the store is created or changed.
    `sinks` overrides the default sinks (embedded store unless `embedded=False`, plus Neo4j when
    `neo4j` is given). `client` defaults to `EutilsClient.from_env(eutils_url, email, rps)`.
    """
    started = time.monotonic()
    settings = build_settings(
        seeds, query=query, query_db=query_db, depth=depth, links=links,
        exclude_links=exclude_links, to_dbs=to_dbs, max_nodes=max_nodes,
        max_links_per_record=max_links_per_record, scores=scores, expand_hubs=expand_hubs,
        include_subsets=include_subsets,
    )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not (
        1 <= batch_size <= MAX_BATCH
    ):
        raise BadInput(f"invalid --batch-size {batch_size!r}: must be 1..{MAX_BATCH}")
    root = Path(store)
    check_store_path(root)
    stored = Journal.inspect(StorePaths.of(root).journal) or {}
    previous = stored.get("settings")
    _check_settings(settings, previous, root)

    progress = progress or NullProgress()
    own_client = client is None
    if client is None:
        from .eutils.client import EutilsClient

        client = EutilsClient.from_env(eutils_url=eutils_url, email=email, rps=rps)
    neo4j_sink = None
    try:
        sent_before = client.requests_sent
        if previous:  # resuming: the seeds as resolved when the crawl started
            resolved = [tuple(s) for s in stored["seeds"]]
        else:
            try:
                resolved = resolve_seeds(
                    parse_seeds(settings.seed_specs), client, query=settings.query,
                    query_db=settings.query_db,
                )
            except BadInput:
                # No network is not bad input: say so once, exit 1 (seeds report lookups
                # that failed as bad seeds)
                unreachable = getattr(client, "unreachable", None)
                if unreachable is not None:
                    raise unreachable from None
                raise
        flt = settings.filter
        skipped = [ln for ln in flt.links if SUBSETS.get(ln) in flt.links]
        if skipped and not flt.include_subsets:
            progress.note(
                f"note: {', '.join(skipped)} skipped beside {SUBSETS[skipped[0]]} (a subset of "
                "it); add --include-subsets to follow both"
            )
        for db, _ in resolved:
            if is_hub(db) and not settings.expand_hubs and settings.depth > 0:
                progress.note(
                    f"note: seeds in hub database {db} are recorded, not expanded "
                    "(add --expand-hubs to expand them)"
                )
                break
        if dry_run:
            rate = float(getattr(client, "rps", 0) or rps or 3.0)
            return make_plan(root, settings, resolved, batch_size, rate, bool(previous))
        if sinks is None and neo4j is not None:
            neo4j_sink = connect_neo4j(neo4j)
        return _run(
            root, settings, resolved, client, batch_size=batch_size, workers=workers,
            progress=progress, sinks=sinks, embedded=embedded, neo4j_sink=neo4j_sink,
            summaries=summaries, retry_failed=retry_failed, started=started,
            seed_requests=client.requests_sent - sent_before,
        )
    finally:
        if own_client:
            client.close()  # type: ignore[attr-defined]


def stored_settings(store: str | Path) -> CrawlSettings | None:
    """The settings of the crawl held in `store`, if any (read-only; BadInput if unreadable)."""
    stored = Journal.inspect(StorePaths.of(Path(store)).journal) or {}
    raw = stored.get("settings")
    return CrawlSettings.from_dict(raw) if raw else None


def _check_settings(settings: CrawlSettings, stored: dict | None, root: Path) -> None:
    if not stored:
        return
    diffs = settings.differences(stored)
    if diffs:
        raise SettingsMismatch(
            f"store {root} holds a crawl with other settings: {'; '.join(diffs)}. To resume "
            "it, repeat its original options; to start another crawl, use another --store"
        )


def _run(
    root: Path, settings: CrawlSettings, seeds: list[tuple[str, str]], client: Client, *,
    batch_size: int, workers: int, progress: Progress, sinks: Sequence[Sink] | None,
    embedded: bool, neo4j_sink: Any, summaries: bool, retry_failed: bool, started: float,
    seed_requests: int = 0,
) -> CrawlReport:
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"cannot create store {root}: {exc.strerror or exc}") from None
    lock = StoreLock(root)
    try:
        lock.acquire()
    except BaseException:
        if neo4j_sink is not None:
            neo4j_sink.close()
        raise
    journal: Journal | None = None
    opened: list[Sink] = []
    try:
        journal = Journal(StorePaths.of(root).journal)
        with journal.transaction():
            stored = journal.settings()
            if stored:  # checked again under the lock
                _check_settings(settings, stored.get("settings"), root)
            else:
                journal.set_settings(
                    {"settings": settings.as_dict(), "seeds": [list(s) for s in seeds]}
                )
        if sinks is None:
            opened = open_sinks(root, embedded=embedded, neo4j=None)
            if neo4j_sink is not None:
                opened.append(neo4j_sink)
            neo4j_sink = None
            use_sinks: Sequence[Sink] = opened
        else:
            use_sinks = sinks
        crawler = Crawler(
            journal, client, settings, batch_size=batch_size, workers=workers,
            progress=progress, sinks=use_sinks,
        )
        crawler.add_seeds(seeds)
        if seed_requests:  # the ESearch lookups that resolved the seeds, sent before the journal
            journal.count_request("esearch", seed_requests)
        crawler.requests_before = seed_requests
        if retry_failed:
            crawler.retry_failed()
        try:
            crawler.run()
        except NCBIError:
            crawler.sync_sinks()  # keep the stores as far as the journal got
            raise
        summary_info = None
        if summaries:
            summary_info = _summaries(journal, client, progress)
            crawler.sync_sinks()
        if not crawler.levels_run:
            crawler.sync_sinks()  # nothing to crawl (finished before): still bring sinks up
        progress.close()
        return _report(root, settings, seeds, journal, crawler, started, summary_info)
    finally:
        for sink in opened:
            with contextlib.suppress(Exception):  # must not hide the crawl's own outcome
                sink.close()
        if neo4j_sink is not None:
            neo4j_sink.close()
        if journal is not None:
            journal.close()
        lock.release()


def _summaries(journal: Journal, client: Client, progress: Progress) -> dict[str, Any]:
    from .summaries import summarize

    def show(done: int, total: int) -> None:
        progress.update(phase=f"summaries {done}/{total}")

    report = summarize(journal, client, progress=show)
    progress.fields.pop("phase", None)
    return report.as_dict()


def _report(
    root: Path, settings: CrawlSettings, seeds: list[tuple[str, str]], journal: Journal,
    crawler: Crawler, started: float, summary_info: dict | None,
) -> CrawlReport:
    stats = journal.stats()
    levels = journal.execute("SELECT coalesce(max(depth), 0) FROM nodes").fetchone()[0]
    sinks = [
        SinkStatus(name, rep.ok, rep.pending, rep.error)
        for name, rep in crawler.last_reports.items()
    ]
    return CrawlReport(
        store=str(root),
        complete=stats["pending"] == 0,
        seeds=[f"{db}:{uid}" for db, uid in seeds],
        depth=settings.depth,
        levels=levels,
        nodes=stats["nodes"],
        edges=stats["edges"],
        by_db=stats["by_db"],
        by_link=stats["by_link"],
        pending=stats["pending"],
        failed=stats["failed"],
        no_answer=stats["no_answer"],
        requests=crawler.requests,
        requests_total=sum(stats["requests"].values()),
        elapsed_s=round(time.monotonic() - started, 3),
        sinks=sinks,
        summaries=summary_info,
    )


def make_plan(
    root: Path, settings: CrawlSettings, seeds: list[tuple[str, str]], batch_size: int,
    rps: float, resumes: bool,
) -> Plan:
    """The crawl that would run and a rough request count (later levels depend on fan-out)."""
    flt = settings.filter
    dbs = sorted({db for db, _ in seeds})
    if flt.named:
        sources = sorted({pair[0] for pair in map(split_linkname, flt.links) if pair})
        per_db: dict[str, list[str]] = {
            db: [ln for ln, _ in flt.named_for(db)] for db in sources
        }
        link_names: dict[str, list[str]] | str = per_db
        names_per_record = max(1.0, sum(len(v) for v in per_db.values()) / max(len(per_db), 1))
    else:
        link_names = "whatever acheck lists for each record, after the filters"
        names_per_record = float(ASSUMED_LINKNAMES)
    requests = 0.0
    records = float(len(seeds))
    total = records
    for level in range(settings.depth):
        expandable = records if level else sum(
            1 for db, _ in seeds if not (is_hub(db) and not settings.expand_hubs)
        )
        batches = math.ceil(expandable / batch_size) if expandable else 0
        requests += batches * ((0 if flt.named else 1) + names_per_record)
        records = expandable * ASSUMED_FANOUT
        if settings.max_nodes is not None:
            records = max(min(records, settings.max_nodes - total), 0)
        total += records
    return Plan(
        store=str(root),
        seeds=[f"{db}:{uid}" for db, uid in seeds],
        databases=dbs,
        depth=settings.depth,
        link_names=link_names,
        exclude=list(flt.exclude),
        to=list(flt.to_dbs),
        hub_databases=[] if settings.expand_hubs else sorted(HUB_DBS),
        max_nodes=settings.max_nodes,
        max_links_per_record=settings.max_links_per_record,
        scores=settings.scores,
        batch_size=batch_size,
        rps=rps,
        estimated_requests=math.ceil(requests),
        estimated_seconds=round(requests / rps, 1) if rps else 0.0,
        assumptions=(
            f"level 0 is exact for --link; later levels assume ~{ASSUMED_FANOUT} new records per "
            f"record{'' if flt.named else f' and ~{ASSUMED_LINKNAMES} link names per record'}"
        ),
        resumes=resumes,
    )


def describe(report: CrawlReport) -> str:
    """The plain-text summary printed at the end of a crawl."""
    lines = [
        f"{'Crawl complete' if report.complete else 'Crawl incomplete'}: {report.nodes} records, "
        f"{report.edges} edges in {report.store} (depth {report.depth}, "
        f"{report.requests} requests in {report.elapsed_s:.1f} s)",
    ]
    if report.by_db:
        lines.append("  records: " + ", ".join(f"{k} {v}" for k, v in report.by_db.items()))
    if report.by_link:
        lines.append("  edges:   " + ", ".join(f"{k} {v}" for k, v in report.by_link.items()))
    if report.failed or report.no_answer:
        lines.append(
            f"  failed: {report.failed}, no answer: {report.no_answer} "
            "(see `entrez-graph status`; `crawl … --retry-failed` asks again)"
        )
    if report.pending:
        lines.append(f"  pending: {report.pending} records (run the same command to resume)")
    for s in report.sinks:
        if s.ok:
            lines.append(f"  {s.name}: up to date")
        else:
            lines.append(
                f"  {s.name}: {s.pending} rows missing"
                + (f" ({s.error})" if s.error else "")
                + "; run `entrez-graph sync` later"
            )
    return "\n".join(lines)


def describe_plan(plan: Plan) -> str:
    """The plain-text plan printed by --dry-run."""
    if isinstance(plan.link_names, dict):
        links = "; ".join(f"{db}: {', '.join(v) or '(none)'}" for db, v in plan.link_names.items())
    else:
        links = plan.link_names
    lines = [
        f"Plan (dry run, nothing written to {plan.store}"
        + (", resuming the stored crawl)" if plan.resumes else ")"),
        f"  seeds:       {', '.join(plan.seeds)}",
        f"  databases:   {', '.join(plan.databases)}",
        f"  depth:       {plan.depth}",
        f"  link names:  {links}",
    ]
    if plan.exclude:
        lines.append(f"  excluded:    {', '.join(plan.exclude)}")
    if plan.to:
        lines.append(f"  to:          {', '.join(plan.to)}")
    if plan.hub_databases:
        lines.append(f"  not expanded (hubs): {', '.join(plan.hub_databases)}")
    caps = []
    if plan.max_nodes is not None:
        caps.append(f"max {plan.max_nodes} records")
    if plan.max_links_per_record is not None:
        caps.append(f"top {plan.max_links_per_record} links per record and link name")
    if caps:
        lines.append(f"  caps:        {', '.join(caps)}")
    lines.append(
        f"  estimate:    ~{plan.estimated_requests} requests, ~{plan.estimated_seconds:g} s at "
        f"{plan.rps:g} requests/s, batches of {plan.batch_size} ({plan.assumptions})"
    )
    return "\n".join(lines)


def dumps(report: CrawlReport | Plan) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=True)

