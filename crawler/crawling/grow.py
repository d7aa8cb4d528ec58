"""Growing a stored crawl (deeper, wider, more seeds) and refreshing what has aged.

The result must be exactly the graph a fresh crawl with the new settings gives (the same records
at the same depths, the same edges, the same caps in the same order), while NCBI is asked only
for what the store does not know. Both follow from one construction: the new crawl is run as a
fresh crawl into a journal beside the stored one (`journal.next.sqlite`), by the same engine,
except that every answer the stored crawl already holds (answers.py) is taken from it instead of
being asked. The new graph is then the stored one's replacement, applied to the stored journal in
one transaction as a difference: records and links added, records whose depth changed, and
records or links the new graph no longer has removed (journal change rows, which every sink
applies from its cursor). A crawl killed while it grows resumes the journal beside, whose answers
are committed as in any crawl; a kill during the apply loses nothing, since it is one transaction.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BadInput, SettingsMismatch
from ..journal import Journal
from .answers import ensure_tables, utc_now
from .settings import CrawlSettings, show_setting

NEXT_JOURNAL = "journal.next.sqlite"
GROWING_KEY = "growing"  # in the stored settings: the crawl being computed beside, while it is
# Test hook: seconds to sleep inside the apply's transaction, before its COMMIT, with a file
# `<store>/test-pause-in-grow` present meanwhile, so that a test can SIGKILL the process there.
PAUSE_ENV = "ENTREZ_GRAPH_TEST_PAUSE_IN_GROW"
PAUSE_FILE = "test-pause-in-grow"


@dataclass(frozen=True, slots=True)
class Growth:
    """A stored crawl to grow or refresh: what changes, and from which answers."""

    kind: str  # "extend" | "refresh"
    settings: CrawlSettings
    widened: tuple[str, ...]  # what grows, as the user types it ("--depth 1 -> 2")
    fresh_after: str | None  # --refresh: answers fetched before this are asked again
    refresh: str | None = None  # the --refresh age as given

    def describe(self) -> str:
        parts = list(self.widened)
        if self.fresh_after:
            parts.append(f"asking again what was fetched before {self.fresh_after}")
        return "; ".join(parts)


# .. which changes widen a crawl ...................................................................


def compare(old: CrawlSettings, new: CrawlSettings) -> tuple[list[str], list[str]]:
    """(what widens, what narrows or changes otherwise), each as the user would say it."""
    wider: list[str] = []
    narrower: list[str] = []

    def note(ok: bool, text: str) -> None:
        (wider if ok else narrower).append(text)

    added = [s for s in new.seed_specs if s not in old.seed_specs]
    dropped = [s for s in old.seed_specs if s not in new.seed_specs]
    if dropped:
        narrower.append(f"seeds without {' '.join(dropped[:5])}")
    if added:
        more = " …" if len(added) > 5 else ""
        wider.append(f"+{len(added)} seed(s) ({' '.join(added[:5])}{more})")
    if (old.query, old.query_db) != (new.query, new.query_db):
        narrower.append("another --query")
    if new.depth != old.depth:
        note(new.depth > old.depth, f"--depth {old.depth} -> {new.depth}")
    of, nf = old.filter, new.filter
    _sets(of.links, nf.links, "--link", note)
    _sets(of.to_dbs, nf.to_dbs, "--db", note)
    if set(of.exclude) != set(nf.exclude):
        gone = sorted(set(of.exclude) - set(nf.exclude))
        more = sorted(set(nf.exclude) - set(of.exclude))
        if gone:
            wider.append(f"--exclude-link without {' '.join(gone)}")
        if more:
            narrower.append(f"--exclude-link {' '.join(more)}")
    if of.include_subsets != nf.include_subsets:
        note(nf.include_subsets, _change("--include-subsets", of.include_subsets,
                                         nf.include_subsets))
    for name, a, b in (("--max-nodes", old.max_nodes, new.max_nodes),
                       ("--max-links-per-record", old.max_links_per_record,
                        new.max_links_per_record)):
        if a != b:
            note(a is not None and (b is None or b > a), _change(name, a, b))
    if old.scores != new.scores:
        narrower.append(_change("--scores", old.scores, new.scores)
                        + " (scores are part of every edge asked so far)")
    if old.expand_hubs != new.expand_hubs:
        note(new.expand_hubs, _change("--expand-hubs", old.expand_hubs, new.expand_hubs))
    return wider, narrower


def _change(option: str, old: Any, new: Any) -> str:
    return f"{option} {show_setting(old)} -> {show_setting(new)}"


def _sets(old: tuple[str, ...], new: tuple[str, ...], option: str, note: Any) -> None:
    """Link names or databases: none named means every one."""
    if set(old) == set(new):
        return
    if not new:
        note(True, f"{option}: every one instead of {' '.join(old)}")
    elif not old:
        note(False, f"{option} {' '.join(new)} instead of every one")
    else:
        gone = sorted(set(old) - set(new))
        more = sorted(set(new) - set(old))
        if more:
            note(True, f"{option} +{' +'.join(more)}")
        if gone:
            note(False, f"{option} without {' '.join(gone)}")


def plan_growth(
    root: Path, old: CrawlSettings, new: CrawlSettings, refresh: str | None,
    growing: dict | None,
) -> Growth | None:
    """The growth the new settings ask of the stored crawl, None for a plain resume;
    SettingsMismatch for what cannot be grown into."""
    wider, narrower = compare(old, new)
    if narrower:
        raise SettingsMismatch(
            f"store {root} holds a crawl these settings would narrow ({'; '.join(narrower)}). "
            "A crawl only grows: take a subset of it with `export --link/--db` or `query`, or "
            "crawl into another --store"
        )
    fresh_after = None
    if growing is not None:
        pending = CrawlSettings.from_dict(growing["settings"])
        if pending != new or refresh != growing.get("refresh"):
            again = " --refresh " + growing["refresh"] if growing.get("refresh") else ""
            raise SettingsMismatch(
                f"store {root} is still growing ({growing['described']}): run that crawl "
                f"again (its options{again}) to finish it first"
            )
        fresh_after = growing.get("fresh_after")
    elif refresh is not None:
        fresh_after = refresh_cutoff(refresh)
    if not wider and fresh_after is None:
        return None
    return Growth("refresh" if fresh_after else "extend", new, tuple(wider), fresh_after,
                  refresh)


_AGE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def refresh_cutoff(older_than: str, now: dt.datetime | None = None) -> str:
    """`30d` -> the `fetched` time before which answers count as aged (BadInput if malformed)."""
    m = _AGE.match(older_than or "")
    if not m:
        raise BadInput(
            f"invalid --refresh {older_than!r}: expected an age such as 30d, 12h, 2w or 0s "
            "(s, m, h, d, w)"
        )
    seconds = int(m.group(1)) * _UNITS[m.group(2)]
    if seconds > 100 * 365 * 86400:
        raise BadInput(f"invalid --refresh {older_than!r}: at most 100 years")
    now = now or dt.datetime.now(dt.UTC)
    # "older than 0s" is everything fetched up to now: the cutoff is just after now
    cutoff = now - dt.timedelta(seconds=seconds) + dt.timedelta(seconds=1 if not seconds else 0)
    return cutoff.strftime("%Y-%m-%dT%H:%M:%SZ")


# .. the journal beside ............................................................................


def next_journal_path(root: Path) -> Path:
    return root / NEXT_JOURNAL


def growing_state(journal: Journal) -> dict | None:
    return (journal.settings() or {}).get(GROWING_KEY)


def start(journal: Journal, growth: Growth, seeds: list[tuple[str, str]]) -> Journal:
    """The journal beside, made (or, after an interruption, reopened) for this growth."""
    root = journal.path.parent
    path = next_journal_path(root)
    if growing_state(journal) is None:
        discard(root)  # a leftover of a growth already applied
        with journal.transaction():
            journal.set_settings({**(journal.settings() or {}), GROWING_KEY: {
                "settings": growth.settings.as_dict(), "fresh_after": growth.fresh_after,
                "refresh": growth.refresh, "described": growth.describe(), "kind": growth.kind,
                "started": utc_now(), "seeds": [list(s) for s in seeds],
            }})
    beside = Journal(path)
    ensure_tables(beside)
    if not beside.settings():
        with beside.transaction():
            stored = journal.settings() or {}
            beside.set_settings({**stored, "settings": growth.settings.as_dict(),
                                 "seeds": [list(s) for s in seeds]})
    return beside


def unmark_aged_summaries(journal: Journal, fresh_after: str) -> int:
    """Let `summarize` ask again for the records whose summary is older than `fresh_after`;
    returns how many records have no fresh summary now."""
    from ..summaries import MARKER_TABLE, ensure_marker_table

    ensure_marker_table(journal)
    with journal.transaction() as c:
        if "fetched" in {row[1] for row in c.execute("PRAGMA table_info(props)")}:
            c.execute(
                f"DELETE FROM {MARKER_TABLE} WHERE NOT EXISTS (SELECT 1 FROM props p WHERE "
                f"p.db={MARKER_TABLE}.db AND p.uid={MARKER_TABLE}.uid AND p.fetched >= ?)",
                (fresh_after,),
            )
        else:  # a journal that does not say when summaries were fetched: all have aged
            c.execute(f"DELETE FROM {MARKER_TABLE}")
        return c.execute(
            f"SELECT count(*) FROM nodes n WHERE NOT EXISTS (SELECT 1 FROM {MARKER_TABLE} s "
            "WHERE s.db=n.db AND s.uid=n.uid)"
        ).fetchone()[0]


def discard(root: Path) -> None:
    """Remove the journal beside (and its WAL files)."""
    path = next_journal_path(root)
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            Path(str(path) + suffix).unlink()


# .. applying the new graph ........................................................................

_KEY_N = "n.db=x.db AND n.uid=x.uid"
_ANSWER = ("LEFT JOIN temp.answered a ON a.db=x.dbfrom AND a.uid=x.uid_from AND "
           "a.linkname=x.linkname")
_KEY_E = ("e.dbfrom=x.dbfrom AND e.uid_from=x.uid_from AND e.linkname=x.linkname AND "
          "e.dbto=x.dbto AND e.uid_to=x.uid_to")


@dataclass(slots=True)
class Applied:
    nodes_added: int = 0
    nodes_removed: int = 0
    nodes_updated: int = 0  # depth changed, or (a refresh) asked again
    edges_added: int = 0
    edges_removed: int = 0
    edges_updated: int = 0


def apply(journal: Journal, beside: Journal, growth: Growth, started: str) -> Applied:
    """Make the stored journal's graph the one computed beside, in one transaction.

    Records and links added keep the order the new crawl gave them (their ids grow in that
    order); what changed or went away is written as change rows for the sinks. The answers
    learnt beside join the stored ones, and the frontier's bookkeeping becomes the new one.
    `started`: when the growth began; with a refresh, what was asked since then is new.
    """
    out = Applied()
    path = beside.path
    beside.close()
    journal.execute("ATTACH DATABASE ? AS nx", (str(path),))
    try:
        with journal.transaction() as c:
            q = c.execute
            _merge_answers(c)
            # what went away, then what changed, then what is new (sinks apply them in order)
            gone_edges = q(
                "SELECT dbfrom, uid_from, linkname, dbto, uid_to FROM main.edges x WHERE NOT "
                f"EXISTS (SELECT 1 FROM nx.edges e WHERE {_KEY_E}) ORDER BY id"
            ).fetchall()
            gone_nodes = q(
                "SELECT db, uid FROM main.nodes x WHERE NOT EXISTS (SELECT 1 FROM nx.nodes n "
                f"WHERE {_KEY_N}) ORDER BY id"
            ).fetchall()
            if gone_edges:
                journal.remove_edges(c, gone_edges)
            if gone_nodes:
                journal.remove_nodes(c, gone_nodes)
            out.edges_removed, out.nodes_removed = len(gone_edges), len(gone_nodes)
            # when each answer beside was fetched (in `answers`, or on its pending_links row)
            q("CREATE TEMP TABLE answered(db TEXT, uid TEXT, linkname TEXT, fetched TEXT, "
              "PRIMARY KEY(db, uid, linkname)) WITHOUT ROWID")
            q("INSERT OR REPLACE INTO temp.answered SELECT db, uid, linkname, fetched FROM "
              "nx.pending_links WHERE state='done' AND fetched IS NOT NULL")
            q("INSERT OR REPLACE INTO temp.answered SELECT db, uid, linkname, fetched FROM "
              "nx.answers")
            has = _has_fetched(c)
            xf, nf, ef = ("x.fetched", "n.fetched", "e.fetched") if has else ("NULL",) * 3
            # a refresh: what was asked again now carries its new time
            since = started if growth.fresh_after else "9999"
            moved = q(
                "WITH asked AS (SELECT db, uid, max(fetched) AS at FROM (SELECT db, uid, fetched "
                "FROM nx.answer_checks WHERE fetched >= :since UNION ALL SELECT db, uid, fetched "
                "FROM temp.answered WHERE fetched >= :since) GROUP BY db, uid) "
                f"SELECT x.db, x.uid, x.depth, coalesce(k.at, {nf}) FROM nx.nodes x "
                f"JOIN main.nodes n ON {_KEY_N} LEFT JOIN asked k ON k.db=x.db AND k.uid=x.uid "
                f"WHERE n.depth != x.depth OR (k.at IS NOT NULL AND {nf} IS NOT k.at) "
                "ORDER BY x.id", {"since": since},
            ).fetchall()
            if moved:
                journal.update_nodes(c, moved)
            out.nodes_updated = len(moved)
            rescored = q(
                "SELECT x.dbfrom, x.uid_from, x.linkname, x.dbto, x.uid_to, x.score, "
                f"CASE WHEN a.fetched >= :since THEN a.fetched ELSE {ef} END "
                f"FROM nx.edges x JOIN main.edges e ON {_KEY_E} {_ANSWER} "
                f"WHERE e.score IS NOT x.score OR (a.fetched >= :since AND {ef} IS NOT "
                "a.fetched) ORDER BY x.id", {"since": since},
            ).fetchall()
            if rescored:
                journal.update_edges(c, rescored)
            out.edges_updated = len(rescored)
            col = ", fetched" if has else ""
            before = c.total_changes
            q(
                f"INSERT INTO main.nodes(db, uid, depth, state{col}) SELECT x.db, x.uid, "
                f"x.depth, x.state{', ' + xf if has else ''} FROM nx.nodes x WHERE NOT EXISTS "
                f"(SELECT 1 FROM main.nodes n WHERE {_KEY_N}) ORDER BY x.id"
            )
            out.nodes_added = c.total_changes - before
            before = c.total_changes
            q(
                f"INSERT INTO main.edges(dbfrom, uid_from, linkname, dbto, uid_to, score{col}) "
                "SELECT x.dbfrom, x.uid_from, x.linkname, x.dbto, x.uid_to, x.score"
                f"{', coalesce(a.fetched, ' + xf + ')' if has else ''} FROM nx.edges x "
                f"{_ANSWER} WHERE NOT EXISTS (SELECT 1 FROM main.edges e WHERE {_KEY_E}) "
                "ORDER BY x.id"
            )
            q("DROP TABLE temp.answered")
            out.edges_added = c.total_changes - before
            # the frontier's bookkeeping is the new crawl's
            q("UPDATE main.nodes SET state=(SELECT x.state FROM nx.nodes x WHERE "
              "x.db=main.nodes.db AND x.uid=main.nodes.uid)")
            for table in ("pending_links", "candidates", "failed"):
                q(f"DELETE FROM main.{table}")
                columns = ", ".join(r[1] for r in q(f"PRAGMA nx.table_info({table})"))
                q(f"INSERT INTO main.{table}({columns}) SELECT {columns} FROM nx.{table}")
            _merge_requests(c)
            stored = {k: v for k, v in (journal.settings() or {}).items() if k != GROWING_KEY}
            journal.set_settings({**stored, **_settings_of(c)})
            _test_pause(journal.path.parent)
    finally:
        journal.execute("DETACH DATABASE nx")
    return out


def _has_fetched(c: Any) -> bool:
    """Whether this journal's graph rows carry when they were fetched (schema 2)."""
    return "fetched" in {row[1] for row in c.execute("PRAGMA main.table_info(edges)")}


def _test_pause(root: Path) -> None:
    seconds = float(os.environ.get(PAUSE_ENV) or 0)
    if seconds > 0:
        marker = root / PAUSE_FILE
        marker.touch()
        time.sleep(seconds)
        marker.unlink()


def _merge_answers(c: Any) -> None:
    """The answers known beside join the stored ones (newer ones replace older ones).

    A stored answer that lived in the graph's edges (a done pending_links row, or own = 0) and
    that the new crawl did not use gets its own copy first, since those edges may go away now
    and the frontier's rows are replaced by the new crawl's."""
    q = c.execute
    q("CREATE TEMP TABLE kept_answers(db TEXT, uid TEXT, linkname TEXT, dbto TEXT, "
      "fetched TEXT, PRIMARY KEY(db, uid, linkname)) WITHOUT ROWID")
    try:
        known_beside = (
            "EXISTS (SELECT 1 FROM nx.answers b WHERE b.db={t}.db AND b.uid={t}.uid AND "
            "b.linkname={t}.linkname) OR EXISTS (SELECT 1 FROM nx.pending_links b WHERE "
            "b.db={t}.db AND b.uid={t}.uid AND b.linkname={t}.linkname AND b.state='done' "
            "AND b.fetched IS NOT NULL)"
        )
        q("INSERT INTO temp.kept_answers SELECT db, uid, linkname, dbto, fetched FROM "
          "main.answers a WHERE own=0 AND NOT (" + known_beside.format(t="a") + ")")
        q("INSERT OR IGNORE INTO temp.kept_answers SELECT db, uid, linkname, dbto, fetched "
          "FROM main.pending_links p WHERE state='done' AND fetched IS NOT NULL AND NOT EXISTS "
          "(SELECT 1 FROM main.answers a WHERE a.db=p.db AND a.uid=p.uid AND "
          "a.linkname=p.linkname) AND NOT (" + known_beside.format(t="p") + ")")
        q("INSERT OR IGNORE INTO main.answer_links(db, uid, linkname, dbto, uid_to, score) "
          "SELECT e.dbfrom, e.uid_from, e.linkname, e.dbto, e.uid_to, e.score FROM "
          "temp.kept_answers k JOIN main.edges e ON e.dbfrom=k.db AND e.uid_from=k.uid AND "
          "e.linkname=k.linkname")
        q("INSERT OR REPLACE INTO main.answers(db, uid, linkname, dbto, fetched, own) "
          "SELECT db, uid, linkname, dbto, fetched, 1 FROM temp.kept_answers")
    finally:
        q("DROP TABLE temp.kept_answers")
    for table in ("answer_links", "answers"):
        q(f"DELETE FROM main.{table} WHERE " + known_beside.format(t=f"main.{table}"))
    q("INSERT OR REPLACE INTO main.answers SELECT * FROM nx.answers")
    q("INSERT OR IGNORE INTO main.answer_links SELECT * FROM nx.answer_links")
    q("INSERT OR REPLACE INTO main.answer_checks SELECT * FROM nx.answer_checks")


def _merge_requests(c: Any) -> None:
    rows = c.execute("SELECT kind, count FROM nx.requests").fetchall()
    for kind, n in rows:
        c.execute(
            "INSERT INTO main.requests(kind, count) VALUES (?, ?) "
            "ON CONFLICT(kind) DO UPDATE SET count = count + excluded.count", (kind, n),
        )


def _settings_of(c: Any) -> dict:
    raw = c.execute("SELECT value FROM nx.meta WHERE key='settings'").fetchone()
    stored = json.loads(raw[0]) if raw else {}
    return {k: stored[k] for k in ("settings", "seeds") if k in stored}
