"""What NCBI answered, kept apart from the graph: a grown or refreshed crawl never asks twice.

The graph (nodes, edges) is what the settings keep of NCBI's answers: caps cut links, --max-nodes
leaves records out, filters drop link names. A crawl with wider settings needs the answers
themselves, so every journal also keeps them:

- `answer_checks`: the Entrez link names acheck (or db=all) offered a record, before any filter
  (`offers`, a JSON list of [linkname, dbto], one row per record);
- the links of one (record, link name), before any cap. In the common case (no cap cut them,
  the link name fetched by its own request) they are exactly the graph's edges of that (record,
  link name), and the frontier's `pending_links` row (state `done`, with `fetched`) says so: no
  row is written twice. Otherwise `answers` holds the answer: `own` = 0, the edges are the
  answer (--discovery all, which has no pending_links rows); `own` = 1, `answer_links` holds it.

Each row has the time it was fetched, so `--refresh` can ask again for what has aged.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

from ..journal import Journal, bulk, json_rows

ANSWERS_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS answer_checks(db TEXT NOT NULL, uid TEXT NOT NULL, "
    "fetched TEXT NOT NULL, offers TEXT NOT NULL, PRIMARY KEY(db, uid)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS answers(db TEXT NOT NULL, uid TEXT NOT NULL, "
    "linkname TEXT NOT NULL, dbto TEXT NOT NULL, fetched TEXT NOT NULL, own INTEGER NOT NULL, "
    "PRIMARY KEY(db, uid, linkname)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS answer_links(db TEXT NOT NULL, uid TEXT NOT NULL, "
    "linkname TEXT NOT NULL, dbto TEXT NOT NULL, uid_to TEXT NOT NULL, score INTEGER, "
    "PRIMARY KEY(db, uid, linkname, dbto, uid_to)) WITHOUT ROWID",
)

Links = list[tuple[str, str, int | None]]  # (dbto, uid, score)


def utc_now() -> str:
    """When an answer was fetched: UTC, ISO 8601, to the second (sorts as text)."""
    import datetime as dt

    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ensure_tables(journal: Journal, *, uncapped: bool = False) -> None:
    """The answer tables. A journal made before them gains them, with the answers its graph
    shows: where no cap cut links (`uncapped`), a fetched link name's edges are its answer."""
    with journal.transaction() as c:
        for statement in ANSWERS_SCHEMA:
            c.execute(statement)
        columns = {row[1] for row in c.execute("PRAGMA table_info(pending_links)")}
        if "fetched" not in columns:
            c.execute("ALTER TABLE pending_links ADD COLUMN fetched TEXT")
            if uncapped:  # when it was fetched is not known: now, as far as a refresh goes
                c.execute("UPDATE pending_links SET fetched=? WHERE state='done'", (utc_now(),))


# .. writing (the committer, inside its transaction) ..............................................


def write_checks(
    c: sqlite3.Connection, db: str, offers: dict[str, list[tuple[str, str]]],
    fetched: dict[str, str], now: str,
) -> None:
    """acheck's (or db=all's) unfiltered link names of each answered record."""
    if not offers:
        return
    bulk(c, f"INSERT OR REPLACE INTO answer_checks(db, uid, fetched, offers) {json_rows(4)}",
         [(db, uid, fetched.get(uid, now), _json(pairs)) for uid, pairs in offers.items()])


def write_answers(
    c: sqlite3.Connection, db: str, answers: Iterable[tuple[str, str, str, Links, bool]],
    fetched: dict[tuple[str, str], str], now: str, *, pending: bool,
) -> None:
    """The links of each answered (uid, link name): rows (uid, linkname, dbto, links, in_graph),
    where `in_graph` says the graph's edges hold exactly these links. With `pending`, the
    answers' pending_links rows are marked done with their time (`mark_done`), which is all an
    answer in the graph needs."""
    heads: list[tuple[str, str, str, str, str, int]] = []
    own: list[tuple[str, str, str, str, str, int | None]] = []
    for uid, ln, dbto, links, in_graph in answers:
        if in_graph and pending:
            continue
        heads.append((db, uid, ln, dbto, fetched.get((uid, ln), now), 0 if in_graph else 1))
        if not in_graph:
            own += [(db, uid, ln, to, target, score) for to, target, score in links]
    if not heads:
        return
    # (a journal answers a (record, link name) once: committed with the link's state, so
    # never asked again; nothing to delete first)
    bulk(c, "INSERT OR REPLACE INTO answers(db, uid, linkname, dbto, fetched, own) "
         + json_rows(6), heads)
    bulk(c, "INSERT OR IGNORE INTO answer_links(db, uid, linkname, dbto, uid_to, score) "
         + json_rows(6), own)


def count_answers(journal: Journal, fresh_after: str | None) -> tuple[int, int]:
    """(all answers and checks a journal holds, those fetched at or after `fresh_after`)."""
    after = fresh_after or ""
    total = known = 0
    for sql in (
        "SELECT count(*), count(CASE WHEN fetched >= ? THEN 1 END) FROM answer_checks",
        "SELECT count(*), count(CASE WHEN fetched >= ? THEN 1 END) FROM answers",
        "SELECT count(*), count(CASE WHEN fetched >= ? THEN 1 END) FROM pending_links p "
        "WHERE state='done' AND fetched IS NOT NULL AND NOT EXISTS (SELECT 1 FROM answers a "
        "WHERE a.db=p.db AND a.uid=p.uid AND a.linkname=p.linkname)",
    ):
        n, fresh = journal.execute(sql, (after,)).fetchone()
        total += n
        known += fresh
    return total, known


def mark_done(
    c: sqlite3.Connection, db: str, pairs: list[tuple[str, str]],
    fetched: dict[tuple[str, str], str], now: str,
) -> None:
    """The pending_links of answered (uid, link name) pairs: done, with when they were fetched."""
    if not pairs:
        return
    c.execute(
        "UPDATE pending_links SET state='done', fetched=v.f FROM (SELECT json_extract(value, "
        "'$[0]') AS u, json_extract(value, '$[1]') AS l, json_extract(value, '$[2]') AS f FROM "
        "json_each(?)) AS v WHERE pending_links.db=? AND pending_links.uid=v.u AND "
        "pending_links.linkname=v.l",
        (_json([(u, ln, fetched.get((u, ln), now)) for u, ln in pairs]), db),
    )


def _json(rows: object) -> str:
    return json.dumps(rows, separators=(",", ":"))


# .. reading (worker threads of a grown or refreshed crawl) ........................................


class AnswerCache:
    """Answers another journal holds (the stored crawl, while a wider one is computed beside
    it), read from worker threads, each with its own read-only connection. Answers fetched
    before `fresh_after` (a `fetched` time) count as unknown: `--refresh` asks them again."""

    def __init__(self, path: Path, fresh_after: str | None = None) -> None:
        self.path = path
        self.fresh_after = fresh_after or ""
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.hits = 0  # (record, link name) answers and checks served

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            self._local.con = con
            with self._lock:
                self._all.append(con)
        return con

    def offers(self, db: str, uid: str) -> tuple[list[tuple[str, str]], str] | None:
        """The link names a record was offered, and when; None if never checked (or aged)."""
        con = self._con()
        row = con.execute(
            "SELECT fetched, offers FROM answer_checks WHERE db=? AND uid=? AND fetched >= ?",
            (db, uid, self.fresh_after),
        ).fetchone()
        if row is None:
            return None
        self._hit()
        return [(ln, dbto) for ln, dbto in json.loads(row[1])], row[0]

    def links(self, db: str, uid: str, linkname: str) -> tuple[Links, str] | None:
        """The links of (record, link name), and when fetched; None if never fetched (or aged)."""
        con = self._con()
        row = con.execute(
            "SELECT fetched, own FROM answers WHERE db=? AND uid=? AND linkname=?",
            (db, uid, linkname),
        ).fetchone() or con.execute(
            "SELECT fetched, 0 FROM pending_links WHERE db=? AND uid=? AND linkname=? AND "
            "state='done' AND fetched IS NOT NULL", (db, uid, linkname),
        ).fetchone()
        if row is None or row[0] < self.fresh_after:
            return None
        fetched, own = row
        if own:
            found = con.execute(
                "SELECT dbto, uid_to, score FROM answer_links WHERE db=? AND uid=? AND linkname=?",
                (db, uid, linkname),
            ).fetchall()
        else:
            found = con.execute(
                "SELECT dbto, uid_to, score FROM edges WHERE dbfrom=? AND uid_from=? AND "
                "linkname=?", (db, uid, linkname),
            ).fetchall()
        self._hit()
        return [(d, u, s) for d, u, s in found], fetched

    def _hit(self) -> None:
        with self._lock:
            self.hits += 1

    def close(self) -> None:
        with self._lock:
            for con in self._all:
                con.close()
            self._all.clear()
