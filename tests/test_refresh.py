"""`crawl --refresh AGE`: what has aged is asked again; the store ends as a fresh crawl of the world
as it is now (journal, LadybugDB, export; Neo4j where one is configured), links NCBI no longer
returns are gone everywhere, and records NCBI retired are marked.

The emulator's world changes between runs (`--world-version`): the stored crawl is made against
version 0, refreshed against version 1, and compared with a fresh crawl against version 1.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from growcheck import crawl_cli as run
from growcheck import export_rows, graph
from storecheck import assert_store_is_journal

from crawler.emulator import Emulator
from crawler.store import StorePaths

SEEDS = ["gene:672", "protein:6552302", "pubmed:9298984"]
OPTS = ["--depth", "2"]


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path):
    monkeypatch.delenv("NEO4J_URI", raising=False)
    monkeypatch.delenv("NCBI_API_KEY", raising=False)
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))








def elink_count(log: list[dict]) -> int:
    return sum(1 for e in log if e["path"].endswith("elink.fcgi"))


def test_refresh_against_a_changed_world_equals_a_fresh_crawl_of_it(emulator_at, tmp_path):
    old, new = emulator_at(0), emulator_at(1)
    store, fresh = tmp_path / "store", tmp_path / "fresh"
    run(old.url, store, *SEEDS, *OPTS)
    before = graph(store)
    _, err = run(new.url, store, "--refresh", "0s", "--switch-endpoint")
    assert "asking again" in err and "removed" in err
    run(new.url, fresh, *SEEDS, *OPTS)
    after = graph(store)
    assert after == graph(fresh)
    assert after != before  # the world did change: links came and went
    assert set(before[1]) - set(after[1]), "no link went away: the test proves nothing"
    assert set(after[1]) - set(before[1]), "no link came: the test proves nothing"
    assert_store_is_journal(store)
    assert export_rows(store, tmp_path) == export_rows(fresh, tmp_path)
    # every link gone is a change row the sinks applied; every link now carries when it was
    # fetched again, and the history says what ran
    con = sqlite3.connect(StorePaths.of(store).journal)
    changes = Counter(k for (k,) in con.execute("SELECT kind FROM changes"))
    refreshed_at = con.execute("SELECT started FROM runs WHERE kind='refresh'").fetchone()[0]
    stale = con.execute("SELECT count(*) FROM edges WHERE fetched < ?",
                        (refreshed_at,)).fetchone()[0]
    stale_nodes = con.execute("SELECT count(*) FROM nodes n WHERE fetched < ? AND EXISTS (SELECT "
                              "1 FROM pending_links p WHERE p.db=n.db AND p.uid=n.uid)",
                              (refreshed_at,)).fetchone()[0]
    kinds = [k for (k,) in con.execute("SELECT kind FROM runs ORDER BY id")]
    con.close()
    assert changes["edge-"] == len(set(before[1]) - set(after[1]))
    assert stale == 0 and stale_nodes == 0
    assert kinds == ["crawl", "refresh"]


def test_refresh_marks_records_ncbi_retired(emulator_at, world, tmp_path):
    old = emulator_at(0)
    store = tmp_path / "store"
    run(old.url, store, *SEEDS, *OPTS, "--summaries")
    version = 1
    new = emulator_at(version)
    run(new.url, store, "--refresh", "0s", "--switch-endpoint")
    con = sqlite3.connect(StorePaths.of(store).journal)
    nodes = con.execute("SELECT db, uid FROM nodes").fetchall()
    status = dict(((db, uid), s) for db, uid, s in con.execute(
        "SELECT db, uid, json_extract(data, '$.status') FROM props"))
    con.close()
    retired = [(db, uid) for db, uid in nodes if world.record_status(db, uid, version)]
    for key in retired:
        assert status.get(key), f"{key} retired at version {version} but not marked"
    live = [(db, uid) for db, uid in nodes if not world.record_status(db, uid, version)]
    assert not [k for k in live if (status.get(k) or "").startswith(("replaced", "missing"))]
    assert_store_is_journal(store)


def test_only_what_aged_is_asked_again(emulator, tmp_path):
    store = tmp_path / "store"
    run(emulator.url, store, *SEEDS, *OPTS)
    before = len(emulator.log)
    run(emulator.url, store, "--refresh", "30d")
    assert elink_count(emulator.log[before:]) == 0  # nothing is 30 days old
    con = sqlite3.connect(StorePaths.of(store).journal)
    aged = con.execute("SELECT db, uid, linkname FROM pending_links WHERE state='done' "
                       "ORDER BY db, uid, linkname LIMIT 5").fetchall()
    with con:
        con.executemany("UPDATE pending_links SET fetched='2020-01-01T00:00:00Z' WHERE db=? AND "
                        "uid=? AND linkname=?", aged)
    con.close()
    before = len(emulator.log)
    run(emulator.url, store, "--refresh", "30d")
    asked = [e["params"] for e in emulator.log[before:] if e["path"].endswith("elink.fcgi")]
    pairs = set()
    for p in asked:
        ids = p["id"] if isinstance(p["id"], list) else [p["id"]]
        for uid in ids:
            for one in str(uid).split(","):
                pairs.add((p["dbfrom"], one, p.get("linkname")))
    assert pairs <= {(db, uid, ln) for db, uid, ln in aged} | {
        (db, uid, None) for db, uid, _ in aged}
    assert pairs
    assert_store_is_journal(store)


def test_bad_refresh_ages_are_one_line_errors(emulator, tmp_path):
    store = tmp_path / "store"
    _, err = run(emulator.url, store, *SEEDS, "--refresh", "30d", code=2)
    assert "needs a stored crawl" in err
    run(emulator.url, store, *SEEDS)
    for bad in ("soon", "30", "-1d", "5y"):
        _, err = run(emulator.url, store, "--refresh", bad, code=2)
        assert err.strip().startswith("Error: invalid --refresh") and "\n" not in err.strip()


def _cli(store: Path, url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "crawler", "crawl", *args, "--store", str(store),
            "--eutils-url", url, "--rps", "1000", "--batch-size", "7"]


def test_a_refresh_killed_then_resumed_is_exact(world, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("NCBI_API_KEY", "NEO4J_URI")}
    env.update(ENTREZ_GRAPH_RATE_DIR=str(tmp_path / "rate"), NCBI_EMAIL="t@example.org")
    store, fresh = tmp_path / "store", tmp_path / "fresh"
    with Emulator(world, rate_limit=0) as old:
        done = subprocess.run(_cli(store, old.url, *SEEDS, *OPTS), env=env, capture_output=True)
        assert done.returncode == 0, done.stderr
    with Emulator(world.at_version(1), rate_limit=0, latency_ms=15) as new:
        refresh = _cli(store, new.url, "--refresh", "0s", "--switch-endpoint")
        at = len(new.log)
        proc = subprocess.Popen(refresh, env=env, stderr=subprocess.PIPE)
        end = time.monotonic() + 60
        while len(new.log) < at + 20 and time.monotonic() < end and proc.poll() is None:
            time.sleep(0.01)
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # the resume keeps the cutoff of the refresh it finishes
        done = subprocess.run(refresh, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        ref = subprocess.run(_cli(fresh, new.url, *SEEDS, *OPTS), env=env, capture_output=True)
        assert ref.returncode == 0
    assert graph(store) == graph(fresh)
    assert_store_is_journal(store)


NEO4J = os.environ.get("NEO4J_URI")


@pytest.mark.skipif(
    not (NEO4J and os.environ.get("ENTREZ_GRAPH_TEST_NEO4J") == "1"),
    reason="needs a Neo4j server: set NEO4J_URI (and NEO4J_USER/NEO4J_PASSWORD) and "
           "ENTREZ_GRAPH_TEST_NEO4J=1 (its database is emptied)",
)
def test_refresh_reaches_neo4j(emulator_at, tmp_path):  # pragma: no cover - needs a server
    from neo4j import GraphDatabase

    auth = (os.environ.get("NEO4J_USER", "neo4j"), os.environ.get("NEO4J_PASSWORD", ""))
    old, new = emulator_at(0), emulator_at(1)
    store, fresh = tmp_path / "store", tmp_path / "fresh"
    with GraphDatabase.driver(NEO4J, auth=auth) as driver:
        driver.execute_query("MATCH (n) DETACH DELETE n")
        run(old.url, store, *SEEDS, *OPTS, "--neo4j", NEO4J)
        run(new.url, store, "--refresh", "0s", "--switch-endpoint", "--neo4j", NEO4J)
        run(new.url, fresh, *SEEDS, *OPTS, "--no-embedded")
        records, _, _ = driver.execute_query(
            "MATCH (a)-[r]->(b) WHERE NOT a:EntrezGraphCursor RETURN labels(a)[0] AS a, "
            "a.uid AS au, type(r) AS t, labels(b)[0] AS b, b.uid AS bu")
        nodes, _, _ = driver.execute_query(
            "MATCH (n) WHERE n.uid IS NOT NULL RETURN labels(n)[0] AS db, n.uid AS uid, "
            "n.depth AS depth")
    want_nodes, want_edges = graph(fresh)
    got = Counter((r["a"], r["au"], r["t"], r["b"], r["bu"]) for r in records)
    assert got == Counter({(a, au, t, b, bu): n for (a, au, t, b, bu, _), n in want_edges.items()})
    assert Counter((r["db"], r["uid"], r["depth"]) for r in nodes) == want_nodes
