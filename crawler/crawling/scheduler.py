"""What to ask next, read from the journal: the level to work on and its batches.

A level's work is its `new` records (to check) and its `pending` links (to fetch). Records are
checked in batches per database; checked records are buffered per (database, link name) until a
fetch batch is full. A level is *sealed* once no more records can join it (the level above is
complete); only then are the partly filled batches sent, so batching, and the number of
requests, is the same whether the level was known at once or grew while the level above ran.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable
from typing import Any

from ..journal import Journal
from ..linknames import is_scored
from .tasks import CheckTask, FetchTask, LinkWant, Task


class LevelWork:
    """The batches of one level still to send, in flight, and (looking ahead) held back."""

    def __init__(
        self, level: int, batch_size: int, scores: bool, *, sealed: bool = True,
        discovery: str = "acheck",
    ) -> None:
        self.level = level
        self.discovery = discovery
        self.batch_size = batch_size
        self.scores = scores
        self.sealed = sealed
        self.checks: deque[CheckTask] = deque()
        self.fetches: deque[FetchTask] = deque()
        self._unchecked: dict[str, list[str]] = defaultdict(list)
        self._buffers: dict[tuple[str, str | None, str], list[tuple[str, list[LinkWant]]]] = (
            defaultdict(list)
        )
        self.in_flight_checks = 0
        self.in_flight_fetches = 0
        self.errors: list[str] = []
        # answers that may not be committed yet (fetches of the next level, while this one runs)
        self.held: list[tuple[Task, Any]] = []
        self.size = 0  # records to check + links to fetch, as known so far

    # .. work in ..................................................................................

    def add_records(self, db: str, uids: Iterable[str]) -> None:
        """Records to check; full batches are ready at once, the rest when the level is sealed."""
        pending = self._unchecked[db]
        for uid in uids:
            pending.append(uid)
            self.size += 1
            if len(pending) >= self.batch_size:
                self.checks.append(CheckTask(db, pending[:], self.discovery))
                pending.clear()
        if self.sealed:
            self._release_checks()

    def buffer(self, db: str, uid: str, links: list[LinkWant]) -> None:
        """Queue the link names of one checked record; full batches become fetch tasks."""
        groups: dict[tuple[str | None, str], list[LinkWant]] = defaultdict(list)
        for ln, dbto, listed in links:
            if self.scores and is_scored(ln):
                groups[(None, db)].append((ln, dbto, listed))
            else:
                groups[(ln, dbto)].append((ln, dbto, listed))
        for (ln, dbto), group in groups.items():
            key = (db, ln, dbto)
            self._buffers[key].append((uid, group))
            if len(self._buffers[key]) >= self.batch_size:
                self.fetches.append(FetchTask(db, ln, dbto, self._buffers.pop(key)))

    def seal(self) -> None:
        """No more records will join this level: send their partly filled check batches."""
        self.sealed = True
        self._release_checks()

    def _release_checks(self) -> None:
        for db in sorted(self._unchecked):
            uids = self._unchecked[db]
            if uids:
                self.checks.append(CheckTask(db, uids[:], self.discovery))
        self._unchecked.clear()

    def _flush_fetches(self) -> None:
        """Every check is in: send the partly filled fetch batches."""
        for (db, ln, dbto), items in sorted(
            self._buffers.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][2])
        ):
            self.fetches.append(FetchTask(db, ln, dbto, items))
        self._buffers.clear()

    # .. work out .................................................................................

    def checks_done(self) -> bool:
        """Sealed, and every record's check is committed."""
        return self.sealed and not self._unchecked and not self.checks and not (
            self.in_flight_checks
        )

    def next_task(self, *, fetches: bool = True) -> Task | None:
        """The next batch to send: full fetch batches first (they free memory), then checks
        (only checks with `fetches=False`)."""
        if not self.fetches and self._buffers and self.checks_done():
            self._flush_fetches()
        if self.fetches and fetches:
            self.in_flight_fetches += 1
            return self.fetches.popleft()
        if self.checks:
            self.in_flight_checks += 1
            return self.checks.popleft()
        return None

    def answered(self, task: Task) -> None:
        if isinstance(task, CheckTask):
            self.in_flight_checks -= 1
        else:
            self.in_flight_fetches -= 1

    def done(self) -> bool:
        """Nothing left to send or waiting for an answer (held answers aside)."""
        return self.checks_done() and not self._buffers and not self.fetches and not (
            self.in_flight_fetches
        )


class Scheduler:
    """Reads the frontier from the journal (the main thread's connection)."""

    def __init__(
        self, journal: Journal, batch_size: int, scores: bool, discovery: str = "acheck"
    ) -> None:
        self.journal = journal
        self.batch_size = batch_size
        self.scores = scores
        self.discovery = discovery  # how records are checked: "acheck", "named" or "all"

    def frontier_level(self) -> int | None:
        """The smallest depth with records to check or links to fetch."""
        q = self.journal.execute
        row = q("SELECT min(depth) FROM nodes WHERE state IN ('new', 'checked')").fetchone()
        return row[0]

    def candidates_level(self) -> int | None:
        """--max-nodes: the level whose candidates wait to be admitted, if any."""
        return self.journal.execute("SELECT min(level) FROM candidates").fetchone()[0]

    def level_work(self, level: int, *, sealed: bool = True) -> LevelWork:
        """The remaining work of `level` in batches, as the journal holds it now."""
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
        work = LevelWork(level, self.batch_size, self.scores, sealed=False,
                         discovery=self.discovery)
        by_uid: dict[tuple[str, str], list[LinkWant]] = defaultdict(list)
        for db, uid, ln, dbto, listed in pending:
            by_uid[(db, uid)].append((ln, dbto, bool(listed)))
        by_db: dict[str, list[str]] = defaultdict(list)
        for db, uid in new_nodes:
            by_db[db].append(uid)
        for db, uids in by_db.items():
            work.add_records(db, uids)
        for (db, uid), links in by_uid.items():
            work.buffer(db, uid, links)
        work.size += len(pending)
        if sealed:
            work.seal()
        return work
