"""Answers -> journal: each batch outcome and the frontier change it causes, in one transaction.

Only the main thread commits. Edge rows are ranked here (self-links dropped, best score first, a
--max-links-per-record cap applied), and with --max-nodes they wait in `candidates` until their
level is complete, when `promote` admits new records in a fixed order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..eutils.models import BatchOutcome
from ..journal import BULK_CHUNK, Journal, bulk, json_rows
from ..linknames import is_scored
from .answers import ensure_tables, mark_done, utc_now, write_answers, write_checks
from .pipeline import links_of
from .settings import CrawlSettings
from .tasks import CheckResult, CheckTask, DiscoverResult, FetchResult, FetchTask, LinkWant

if TYPE_CHECKING:
    import sqlite3


class Committer:
    """Writes answers into the journal and keeps the counts the progress line shows."""

    def __init__(self, journal: Journal, settings: CrawlSettings) -> None:
        self.journal = journal
        self.settings = settings
        self.filter = settings.filter
        self.staged = settings.max_nodes is not None
        ensure_tables(journal, uncapped=settings.max_nodes is None
                      and settings.max_links_per_record is None)
        q = journal.execute
        self.n_nodes = q("SELECT count(*) FROM nodes").fetchone()[0]
        self.n_edges = q("SELECT count(*) FROM edges").fetchone()[0]
        self.n_failed = 0
        self.left = 0  # records to check + links to fetch in the level at work

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
                "pending_links p WHERE p.db=nodes.db AND p.uid=nodes.uid AND +p.state='pending')"
            )
            c.execute("UPDATE nodes SET state='new' WHERE state IN ('failed', 'no_answer')")
            c.execute("DELETE FROM failed WHERE step='acheck' OR step LIKE 'neighbor:%'")
            return c.total_changes - before

    # .. checks ...................................................................................

    def named_check(self, task: CheckTask) -> list[tuple[str, list[LinkWant]]]:
        """--link: the link names are known; record them without a request."""
        links = [(ln, dbto, False) for ln, dbto in self.filter.named_for(task.db)]
        chosen = {uid: links for uid in task.uids}
        return self._write_check(task.db, chosen, {}, set(), kind=None, requests=0, offers={})

    def check(
        self, task: CheckTask, result: CheckResult, level: int
    ) -> list[tuple[str, list[LinkWant]]]:
        """acheck's answer: the filtered link names per record; returns those to fetch."""
        answers, failed = result.answers, result.failed
        chosen: dict[str, list[LinkWant]] = {}
        offers: dict[str, list[tuple[str, str]]] = {}
        silent: set[str] = set()
        for uid in task.uids:
            if uid in failed:
                continue
            if uid in answers:
                offered = offers[uid] = [(i.linkname, i.dbto) for i in answers[uid].entrez]
                chosen[uid] = [(ln, to, True) for ln, to in self.filter.select(offered)]
            else:
                silent.add(uid)
        fails = {uid: failed[uid] for uid in task.uids if uid in failed}
        return self._write_check(task.db, chosen, fails, silent, kind="acheck",
                                 requests=result.requests, offers=offers, fetched=result.fetched)

    def _write_check(
        self, db: str, chosen: dict[str, list[LinkWant]], failed: dict[str, str],
        silent: set[str], *, kind: str | None, requests: int,
        offers: dict[str, list[tuple[str, str]]], fetched: dict[str, str] | None = None,
    ) -> list[tuple[str, list[LinkWant]]]:
        """The check of one batch and its frontier change, in one transaction."""
        with self.journal.transaction() as c:
            write_checks(c, db, offers, fetched or {}, utc_now())
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
        return [(uid, links) for uid, links in chosen.items() if links]

    # .. fetches ..................................................................................

    def fetch(self, task: FetchTask, result: FetchResult, level: int) -> list[tuple[str, str]]:
        """One fetch batch: its edges, new records, link states and failures in one transaction.

        Returns the records it added that are to be expanded (`new`), in id order."""
        db = task.db
        done = [(uid, ln) for uid, ln in result.links]
        with self.journal.transaction() as c:
            fresh = self._write_links(c, db, result.links, level, result.fetched, pending=True)
            mark_done(c, db, done, result.fetched, utc_now())
            if done:
                c.execute(
                    "DELETE FROM failed WHERE db=? AND (uid, step) IN (SELECT "
                    "json_extract(value, '$[0]'), 'neighbor:' || json_extract(value, '$[1]') "
                    "FROM json_each(?))",
                    (db, json.dumps(done)),
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
        return fresh

    def discover(
        self, task: CheckTask, result: DiscoverResult | BatchOutcome, level: int
    ) -> list[tuple[str, str]]:
        """`--discovery all`: one db=all answer is the check and the fetches of its records.

        The link names offered are those with links in the answer (db=all marks the others
        `Empty result`), filtered exactly as acheck's list; scores are kept only where the
        acheck route would have them (--scores, computed neighbours), so the graph is the
        same. Records are done (or failed / no_answer) in the same transaction."""
        db = task.db
        if isinstance(result, BatchOutcome):
            result = DiscoverResult(result)
        outcome: BatchOutcome = result.outcome
        links: dict[tuple[str, str], list[tuple[str, str, int | None]]] = {}
        offers: dict[str, list[tuple[str, str]]] = {}
        done: list[str] = []
        for uid in task.uids:
            if uid in result.offers:  # known from the stored crawl
                offers[uid] = result.offers[uid]
                for ln, _ in self.filter.select(offers[uid]):
                    links[(uid, ln)] = result.links[(uid, ln)]
                done.append(uid)
                continue
            linkset = outcome.answered.get(uid)
            if linkset is None or uid in outcome.failed:
                continue
            offered = offers[uid] = [
                (lsdb.linkname, lsdb.dbto) for lsdb in linkset.linksetdbs if lsdb.links
            ]
            for ln, dbto in self.filter.select(offered):
                found = links_of(linkset, ln, dbto)
                if not (self.settings.scores and is_scored(ln)):
                    found = [(d, u, None) for d, u, _ in found]
                links[(uid, ln)] = found
            done.append(uid)
        failed = {uid: outcome.failed[uid] for uid in task.uids if uid in outcome.failed}
        silent = sorted(uid for uid in task.uids if uid not in failed and uid not in done
                        and (uid in outcome.no_answer or uid not in outcome.answered))
        with self.journal.transaction() as c:
            write_checks(c, db, offers, result.fetched, utc_now())
            fresh = self._write_links(c, db, links, level, result.links_fetched)
            _set_states(c, db, done, "done", only_new=True)
            _set_states(c, db, list(failed), "failed")
            bulk(
                c,
                "INSERT OR REPLACE INTO failed(db, uid, error, step) "
                + _select_rows(3, "neighbor:all"),
                [(db, uid, err) for uid, err in failed.items()],
            )
            _set_states(c, db, silent, "no_answer")
            _count(c, "neighbor_all", outcome.requests)
        self.n_failed += len(failed)
        self.left -= len(task.uids)
        return fresh

    def _write_links(
        self, c: sqlite3.Connection, db: str,
        links: dict[tuple[str, str], list[tuple[str, str, int | None]]], level: int,
        fetched: dict[tuple[str, str], str], *, pending: bool = False,
    ) -> list[tuple[str, str]]:
        """Edges and the new records they reach (or, with --max-nodes, candidates); returns
        the records added that are to be expanded, in id order. The answers themselves are
        kept too (answers.py), before any cap."""
        cap = self.settings.max_links_per_record
        next_depth = level + 1
        node_rows: dict[tuple[str, str], str] = {}
        edge_rows: list[tuple[str, str, str, str, str, int | None, int]] = []
        answers = []
        # by link name first: consecutive edge ids of one type load into a store in one COPY
        for (uid, ln), found in sorted(links.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            every = rank(uid, db, found, None)
            kept = every[:cap] if cap is not None else every
            dbto = found[0][0] if found else ""
            answers.append((uid, ln, dbto, every, not self.staged and len(kept) == len(every)))
            for position, (dbto, target, score) in enumerate(kept):
                edge_rows.append((db, uid, ln, dbto, target, score, position))
                if (dbto, target) not in node_rows:
                    node_rows[(dbto, target)] = self.settings.initial_state(dbto, next_depth)
        write_answers(c, db, answers, fetched, utc_now(), pending=pending)
        # One statement per kind of row (json_each), not executemany: see journal.bulk.
        if self.staged:
            bulk(
                c,
                "INSERT OR IGNORE INTO candidates(level, dbfrom, uid_from, linkname, dbto, "
                f"uid_to, score, rank) {json_rows(8)}",
                [(level, *row) for row in edge_rows],
            )
            return []
        added = _insert_nodes(c, [(d, u, next_depth, s) for (d, u), s in node_rows.items()])
        self.n_nodes += len(added)
        self.n_edges += bulk(
            c,
            "INSERT OR IGNORE INTO edges(dbfrom, uid_from, linkname, dbto, uid_to, score) "
            + json_rows(6),
            [row[:6] for row in edge_rows],
        )
        return [(d, u) for _, d, u, state in added if state == "new"]

    # .. levels ...................................................................................

    def finish_level(self, level: int) -> None:
        """Records whose every link name was fetched (or given up) are done."""
        with self.journal.transaction() as c:
            c.execute(
                # `+p.state`: look a record's links up by its key, never by the state index
                # (with the next level checked ahead, pending rows are many)
                "UPDATE nodes SET state='done' WHERE depth=? AND state='checked' AND NOT EXISTS "
                "(SELECT 1 FROM pending_links p WHERE p.db=nodes.db AND p.uid=nodes.uid "
                "AND +p.state='pending')",
                (level,),
            )

    def promote(self, level: int) -> None:
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


def rank(
    uid: str, db: str, links: list[tuple[str, str, int | None]], cap: int | None
) -> list[tuple[str, str, int | None]]:
    """Self-links dropped; best first (score, then UID) so a cap keeps a deterministic top N."""
    kept = [link for link in links if not (link[0] == db and link[1] == uid)]
    kept.sort(key=lambda t: (-(t[2] if t[2] is not None else -1), int(t[1]), t[0]))
    return kept[:cap] if cap is not None else kept


def _insert_nodes(
    c: sqlite3.Connection, rows: list[tuple[str, str, int, str]]
) -> list[tuple[int, str, str, str]]:
    """INSERT OR IGNORE nodes; the (id, db, uid, state) of those actually added, in id order."""
    added: list[tuple[int, str, str, str]] = []
    sql = (f"INSERT OR IGNORE INTO nodes(db, uid, depth, state) {json_rows(4)} "
           "RETURNING id, db, uid, state")
    for i in range(0, len(rows), BULK_CHUNK):
        added += c.execute(sql, (json.dumps(rows[i : i + BULK_CHUNK]),)).fetchall()
    added.sort()
    return added


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
