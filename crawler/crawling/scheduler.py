"""What to ask next, read from the journal: the level to work on and its batches.

A level's work is its `new` records (to check) and its `pending` links (to fetch). Checked records
are buffered per (database, link name) until a batch is full; `flush()` sends the partly filled
batches once every check of the level is in.
"""

from __future__ import annotations

from collections import defaultdict, deque

from ..journal import Journal
from ..linknames import is_scored
from .tasks import CheckTask, FetchTask, LinkWant


class LevelWork:
    """The batches of one level still to send: checks first in, fetches as they fill up."""

    def __init__(self, level: int, batch_size: int, scores: bool) -> None:
        self.level = level
        self.batch_size = batch_size
        self.scores = scores
        self.checks: deque[CheckTask] = deque()
        self.fetches: deque[FetchTask] = deque()
        self.buffers: dict[tuple[str, str | None, str], list[tuple[str, list[LinkWant]]]] = (
            defaultdict(list)
        )
        self.size = 0  # records to check + links to fetch, when the level was read

    def has_tasks(self) -> bool:
        return bool(self.checks or self.fetches)

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
            self.buffers[key].append((uid, group))
            if len(self.buffers[key]) >= self.batch_size:
                self.fetches.append(FetchTask(db, ln, dbto, self.buffers.pop(key)))

    def flush(self) -> bool:
        """Every check is in: send the partly filled batches; False if there were none."""
        if not self.buffers:
            return False
        for (db, ln, dbto), items in sorted(
            self.buffers.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][2])
        ):
            self.fetches.append(FetchTask(db, ln, dbto, items))
        self.buffers.clear()
        return True


class Scheduler:
    """Reads the frontier from the journal (the main thread's connection)."""

    def __init__(self, journal: Journal, batch_size: int, scores: bool) -> None:
        self.journal = journal
        self.batch_size = batch_size
        self.scores = scores

    def frontier_level(self) -> int | None:
        """The smallest depth with records to check or links to fetch."""
        q = self.journal.execute
        row = q("SELECT min(depth) FROM nodes WHERE state IN ('new', 'checked')").fetchone()
        return row[0]

    def candidates_level(self) -> int | None:
        """--max-nodes: the level whose candidates wait to be admitted, if any."""
        return self.journal.execute("SELECT min(level) FROM candidates").fetchone()[0]

    def level_work(self, level: int) -> LevelWork | None:
        """The remaining work of `level` in batches, or None if nothing is left."""
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
            return None
        work = LevelWork(level, self.batch_size, self.scores)
        work.size = len(new_nodes) + len(pending)
        by_uid: dict[tuple[str, str], list[LinkWant]] = defaultdict(list)
        for db, uid, ln, dbto, listed in pending:
            by_uid[(db, uid)].append((ln, dbto, bool(listed)))
        by_db: dict[str, list[str]] = defaultdict(list)
        for db, uid in new_nodes:
            by_db[db].append(uid)
        for db, uids in by_db.items():
            for i in range(0, len(uids), self.batch_size):
                work.checks.append(CheckTask(db, uids[i : i + self.batch_size]))
        for (db, uid), links in by_uid.items():
            work.buffer(db, uid, links)
        return work
