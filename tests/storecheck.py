"""Reading a store's whole contents for tests: the journal and LadybugDB, as multisets.

A count or a cursor is not evidence; these read every record and every link, so a lost row or a
duplicate shows."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

import ladybug

from crawler.store import StorePaths


def journal_graph(store: Path, *, finished: bool = True) -> tuple[Counter, Counter]:
    """(db, uid, depth, state) of every record and every edge row of the journal."""
    con = sqlite3.connect(StorePaths.of(store).journal)
    try:
        nodes = Counter(con.execute("SELECT db, uid, depth, state FROM nodes").fetchall())
        edges = Counter(
            con.execute("SELECT dbfrom, uid_from, linkname, dbto, uid_to, score FROM edges")
        )
        pending = con.execute(
            "SELECT count(*) FROM nodes WHERE state IN ('new', 'checked')"
        ).fetchone()[0]
    finally:
        con.close()
    if finished:
        assert pending == 0, "the crawl did not finish"
    return nodes, edges


def journal_names(store: Path) -> dict[tuple[str, str], str | None]:
    """(db, uid) -> name, from the journal's props rows."""
    con = sqlite3.connect(StorePaths.of(store).journal)
    try:
        return {
            (db, uid): name for db, uid, name in con.execute(
                "SELECT db, uid, json_extract(data, '$.name') FROM props"
            )
        }
    finally:
        con.close()


def store_graph(store: Path, dbs: set[str] | None = None) -> tuple[Counter, Counter]:
    """Every record (db, uid, depth) and every link in LadybugDB, as multisets."""
    database = ladybug.Database(str(StorePaths.of(store).graph), read_only=True)
    conn = ladybug.Connection(database)
    try:
        tables = conn.execute("CALL show_tables() RETURN name, type").get_all()
        nodes: Counter = Counter()
        edges: Counter = Counter()
        for name, kind in tables:
            if kind == "NODE" and name != "eg_cursor" and (dbs is None or name in dbs):
                for uid, depth in conn.execute(f"MATCH (n:{name}) RETURN n.uid, n.depth").get_all():
                    nodes[(name, uid, depth)] += 1
            elif kind == "REL":
                res = conn.execute(
                    f"MATCH (a)-[r:{name}]->(b) RETURN label(a), a.uid, label(b), b.uid, r.score"
                )
                for a_db, a_uid, b_db, b_uid, score in res.get_all():
                    edges[(a_db, a_uid, name, b_db, b_uid, score)] += 1
    finally:
        conn.close()
        database.close()
    return nodes, edges


def store_names(store: Path) -> dict[tuple[str, str], str | None]:
    """(db, uid) -> name of every record in LadybugDB that has one."""
    database = ladybug.Database(str(StorePaths.of(store).graph), read_only=True)
    conn = ladybug.Connection(database)
    try:
        out = {}
        for name, kind in conn.execute("CALL show_tables() RETURN name, type").get_all():
            if kind == "NODE" and name != "eg_cursor":
                for uid, n in conn.execute(
                    f"MATCH (n:{name}) WHERE n.name IS NOT NULL RETURN n.uid, n.name"
                ).get_all():
                    out[(name, uid)] = n
        return out
    finally:
        conn.close()
        database.close()


def assert_store_is_journal(store: Path) -> None:
    """The embedded store holds exactly its journal: every record, link and name, once."""
    jnodes, jedges = journal_graph(store, finished=False)
    snodes, sedges = store_graph(store)
    assert not sedges or max(sedges.values()) == 1, "duplicate link in the store"
    assert Counter({(db, uid, depth): 1 for db, uid, depth, _ in jnodes}) == snodes
    assert sedges == jedges
    assert {k: v for k, v in journal_names(store).items() if v is not None} == store_names(store)
