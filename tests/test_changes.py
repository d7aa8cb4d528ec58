"""Removals and updates flow through the sinks (issue 13): the journal's `changes` and its API.

The refresh engine removes links NCBI no longer returns and updates depths and scores through
`Journal.remove_edges / remove_nodes / update_nodes / update_edges`; each change is a row with a
growing id, applied by every sink from its own change cursor, before the additions of its pass.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from crawler import journal as journal_module
from crawler.journal import Cursor, Journal
from crawler.sinks.verify import rows_behind


def _small(journal: Journal) -> None:
    journal.add_nodes([("gene", "1", 0), ("protein", "2", 1), ("protein", "3", 1),
                       ("pubmed", "4", 1)])
    journal.add_edges([
        ("gene", "1", "gene_protein", "protein", "2", None),
        ("gene", "1", "gene_protein", "protein", "3", None),
        ("gene", "1", "gene_pubmed", "pubmed", "4", None),
        ("pubmed", "4", "pubmed_gene", "gene", "1", 5),
        ("protein", "3", "protein_gene", "gene", "1", None),
    ])
    journal.set_props("protein", "3", {"name": "P3"})


def _changes(journal: Journal) -> list[tuple]:
    return [(c.kind, c.db, c.uid, c.linkname, c.uid_to, c.depth, c.score)
            for c in journal.changes_between(0, 10**9)]


def test_removals_change_the_graph_and_append_change_rows(tmp_path: Path) -> None:
    with Journal(tmp_path / "s") as journal:
        _small(journal)
        before = journal.max_ids()
        with journal.transaction() as con:
            assert journal.remove_edges(con, [
                ("gene", "1", "gene_protein", "protein", "2"),
                ("gene", "1", "gene_protein", "protein", "2"),  # twice: removed once
                ("gene", "9", "gene_protein", "protein", "2"),  # unknown: skipped
            ]) == 1
            assert journal.remove_nodes(con, [("protein", "3"), ("nuccore", "7")]) == 1
        assert _changes(journal) == [
            ("edge-", "gene", "1", "gene_protein", "2", None, None),
            # the node's edges first (both directions, in id order), then the node
            ("edge-", "gene", "1", "gene_protein", "3", None, None),
            ("edge-", "protein", "3", "protein_gene", "1", None, None),
            ("node-", "protein", "3", None, None, 1, None),
        ]
        assert [(n.db, n.uid) for n in journal.iter_nodes()] == [
            ("gene", "1"), ("protein", "2"), ("pubmed", "4")]
        assert {e.linkname for e in journal.iter_edges()} == {"gene_pubmed", "pubmed_gene"}
        assert journal.props_of("protein", "3") == {}
        # the bounds never move back, so no sink's cursor is ever past them
        after = journal.max_ids()
        assert (after.node, after.edge, after.prop) == (before.node, before.edge, before.prop)
        assert after.change == 4
        behind = rows_behind(journal, Cursor(after.node, after.edge, after.prop, 1))
        assert behind["changes"] == 3 and behind["total"] == 3
        # a record seen again is a new row, after its removal
        journal.add_nodes([("protein", "3", 2)])
        assert journal.nodes_between(after.node, 10**9)[0].uid == "3"


def test_updates_write_a_change_only_where_a_value_changed(tmp_path: Path) -> None:
    with Journal(tmp_path / "s") as journal:
        _small(journal)
        with journal.transaction() as con:
            assert journal.update_nodes(con, [("pubmed", "4", 2, None), ("gene", "1", 0, None),
                                              ("gene", "99", 1, None)]) == 1
            assert journal.update_edges(con, [
                ("pubmed", "4", "pubmed_gene", "gene", "1", 9, None),
                ("gene", "1", "gene_pubmed", "pubmed", "4", None, None),  # unchanged
            ]) == 1
        assert _changes(journal) == [
            ("node~", "pubmed", "4", None, None, 2, None),
            ("edge~", "pubmed", "4", "pubmed_gene", "1", None, 9),
        ]
        assert {(n.uid, n.depth) for n in journal.iter_nodes()} >= {("4", 2), ("1", 0)}
        assert {e.score for e in journal.iter_edges() if e.linkname == "pubmed_gene"} == {9}


def test_changes_roll_back_with_the_callers_transaction(tmp_path: Path) -> None:
    with Journal(tmp_path / "s") as journal:
        _small(journal)
        with pytest.raises(RuntimeError), journal.transaction() as con:
            journal.remove_nodes(con, [("gene", "1")])
            raise RuntimeError("the refresh failed midway")
        assert journal.max_ids().change == 0 and len(list(journal.iter_edges())) == 5


def _schema_1(path: Path) -> None:
    """A journal as schema 1 made it: no `changes`, no change cursor."""
    schema = journal_module.SCHEMA
    schema = schema[: schema.index("-- What was removed")]
    schema = schema.replace(",\n    change_cursor INTEGER NOT NULL DEFAULT 0", "")
    db = sqlite3.connect(path)
    db.executescript(
        schema + "INSERT INTO meta VALUES ('schema_version', '1');"
        "INSERT INTO nodes(db, uid, depth) VALUES ('gene', '1', 0);"
        "INSERT INTO cursors(sink, node_cursor) VALUES ('neo4j:x', 1);"
    )
    db.commit()
    db.close()


def test_a_schema_1_journal_is_read_as_it_is_and_migrated_by_writers(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    _schema_1(path)
    with Journal(path, create=False) as reader:  # a reader changes nothing
        assert reader.get_cursor("neo4j:x") == Cursor(1, 0, 0, 0)
        assert reader.max_ids().change == 0 and reader.changes_between(0, 10) == []
        assert rows_behind(reader, Cursor())["changes"] == 0
    assert sqlite3.connect(path).execute("SELECT value FROM meta").fetchone()[0] == "1"
    with Journal(path) as writer:
        assert writer.get_meta("schema_version") == str(journal_module.SCHEMA_VERSION)
        assert writer.get_cursor("neo4j:x") == Cursor(1, 0, 0, 0)
        with writer.transaction() as con:
            writer.remove_nodes(con, [("gene", "1")])
        writer.set_cursor("neo4j:x", Cursor(1, 0, 0, 1))
        assert writer.cursors() == {"neo4j:x": Cursor(1, 0, 0, 1)}


# -- through the sinks: a real crawl, changes written as the refresh engine writes them ---------

import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402

from click.testing import CliRunner  # noqa: E402
from storecheck import assert_store_is_journal, journal_graph, store_graph  # noqa: E402

from crawler.cli import main  # noqa: E402
from crawler.emulator import Emulator  # noqa: E402
from crawler.store import StorePaths  # noqa: E402

CRAWL = ["gene:672", "--depth", "2", "--rps", "1000", "--summaries"]


def _run(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def served(world, tmp_path_factory: pytest.TempPathFactory):
    """One emulator for the module (a crawl keeps its endpoint) and one crawl into a template
    store, which each test copies: crawling once keeps this file fast."""
    with pytest.MonkeyPatch.context() as mp, Emulator(world, rate_limit=0) as emu:
        tmp = tmp_path_factory.mktemp("changes")
        mp.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp / "rate"))
        store = tmp / "template"
        code, out = _run(["crawl", *CRAWL, "--store", str(store), "--eutils-url", emu.url])
        assert code == 0, out
        assert_store_is_journal(store)
        yield emu, store


@pytest.fixture
def emulator(served) -> Emulator:
    return served[0]


@pytest.fixture
def crawled(served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import shutil

    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))
    store = tmp_path / "store"
    shutil.copytree(served[1], store)
    return store


def _embedded(store: Path) -> dict:
    code, out = _run(["status", "--store", str(store), "--format", "json"])
    assert code == 0, out
    return json.loads(out)["sinks"]["embedded"]


def _refresh_like(store: Path, seed: int = 7) -> dict[str, int]:
    """Remove ~15% of the links (of every link name), two records with all their links, and
    update depths and scores: what a refresh against a changed world writes."""
    rng = random.Random(seed)
    with Journal(StorePaths.of(store).journal) as journal:
        edges = list(journal.iter_edges())
        nodes = [n for n in journal.iter_nodes() if n.depth == 2]
        gone = [e for e in edges if rng.random() < 0.15]
        records = rng.sample(nodes, 2)
        kept = [e for e in edges if e not in gone]
        with journal.transaction() as con:
            n_edges = journal.remove_edges(
                con, [(e.dbfrom, e.uid_from, e.linkname, e.dbto, e.uid_to) for e in gone])
            n_nodes = journal.remove_nodes(con, [(n.db, n.uid) for n in records])
            n_depth = journal.update_nodes(
                con, [(n.db, n.uid, 3, None) for n in rng.sample(nodes, 5) if n not in records])
            n_score = journal.update_edges(con, [
                (e.dbfrom, e.uid_from, e.linkname, e.dbto, e.uid_to, 4242, None)
                for e in rng.sample(kept, 20)])
    assert n_edges and n_nodes == 2 and n_depth and n_score
    return {"edges": n_edges, "nodes": n_nodes, "depth": n_depth, "score": n_score}


def test_sync_applies_removals_and_updates_exactly(crawled: Path) -> None:
    before = store_graph(crawled)
    done = _refresh_like(crawled)
    behind = _embedded(crawled)
    assert behind["state"] == "behind" and behind["changes"] >= sum(done.values())
    assert behind["differences"] == []  # a lagging store still proves itself, exactly
    code, out = _run(["sync", "--embedded", "--store", str(crawled), "--format", "json"])
    assert code == 0, out
    (report,) = json.loads(out)
    assert report["repaired"] == 0 and report["changes"] >= sum(done.values())
    assert_store_is_journal(crawled)  # every record, depth, link, score and name
    nodes, edges = store_graph(crawled)
    assert sum(nodes.values()) == sum(before[0].values()) - 2
    assert 4242 in {score for (*_, score) in edges}
    assert _embedded(crawled)["state"] == "in step"


def test_removed_then_seen_again_lands_after_its_removal(crawled: Path) -> None:
    paths = StorePaths.of(crawled)
    with Journal(paths.journal) as journal:
        node = next(n for n in journal.iter_nodes() if n.depth == 2)
        links = [e for e in journal.iter_edges()
                 if (e.dbto, e.uid_to) == (node.db, node.uid)
                 or (e.dbfrom, e.uid_from) == (node.db, node.uid)]
        assert links
        for synced_between in (True, False):
            with journal.transaction() as con:
                journal.remove_nodes(con, [(node.db, node.uid)])
            if synced_between:
                code, out = _run(["sync", "--embedded", "--store", str(crawled)])
                assert code == 0, out
                assert (node.db, node.uid, node.depth) not in store_graph(crawled)[0]
            # seen again (a refresh finds the record linked once more): new rows, new ids
            journal.add_nodes([(node.db, node.uid, node.depth)], state=node.state)
            journal.add_edges([(e.dbfrom, e.uid_from, e.linkname, e.dbto, e.uid_to, e.score)
                               for e in links])
            code, out = _run(["sync", "--embedded", "--store", str(crawled)])
            assert code == 0, out
            assert_store_is_journal(crawled)
            assert (node.db, node.uid, node.depth) in store_graph(crawled)[0]


def test_crawl_resume_applies_changes_and_exports_reflect_them(
    crawled: Path, emulator: Emulator, tmp_path: Path
) -> None:
    _refresh_like(crawled, seed=11)
    code, out = _run(["crawl", *CRAWL, "--store", str(crawled), "--eutils-url", emulator.url])
    assert code == 0, out
    assert_store_is_journal(crawled)
    jnodes, jedges = journal_graph(crawled)
    want_nodes = {(db, uid) for db, uid, _, _ in jnodes}
    want_edges = Counter((a, b, ln, c, d) for a, b, ln, c, d, _ in jedges)
    # graphml (networkx reads it back), node-link json, tsv edge list
    import networkx as nx

    for fmt in ("graphml", "json", "tsv"):
        out_path = tmp_path / f"graph.{fmt}"
        code, out = _run(["export", "--store", str(crawled), str(out_path)])
        assert code == 0, out
        if fmt == "graphml":
            graph = nx.read_graphml(out_path)
            got_nodes = {(d["db"], d["uid"]) for _, d in graph.nodes(data=True)}
            got_edges = Counter(
                (graph.nodes[a]["db"], graph.nodes[a]["uid"], d["linkname"],
                 graph.nodes[b]["db"], graph.nodes[b]["uid"])
                for a, b, d in graph.edges(data=True))
            assert got_nodes == want_nodes
        elif fmt == "json":
            data = json.loads(out_path.read_text())
            by_id = {n["id"]: (n["db"], n["uid"]) for n in data["nodes"]}
            assert set(by_id.values()) == want_nodes
            links = data.get("links") or data.get("edges")
            got_edges = Counter((*by_id[e["source"]], e["linkname"], *by_id[e["target"]])
                                for e in links)
        else:
            lines = out_path.read_text().splitlines()
            head = lines[0].split("\t")
            rows = [dict(zip(head, line.split("\t"), strict=True)) for line in lines[1:]]
            got_edges = Counter((r["source_db"], r["source_uid"], r["linkname"], r["target_db"],
                                 r["target_uid"]) for r in rows)
            table = (tmp_path / "graph.nodes.tsv").read_text().splitlines()[1:]
            assert {tuple(line.split("\t")[:2]) for line in table} == want_nodes
        assert got_edges == want_edges, fmt


def _sleeping(pid: int) -> bool:
    """True while the process's main thread sleeps in time.sleep (the sink's pause before a
    COMMIT: ENTREZ_GRAPH_TEST_PAUSE_IN_COPY)."""
    try:
        return Path(f"/proc/{pid}/task/{pid}/wchan").read_text().strip() == "hrtimer_nanosleep"
    except OSError:
        return False


def _wait(cond, proc: subprocess.Popen, timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    raise AssertionError("the sync neither paused nor ended in time")


@pytest.mark.skipif(not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/wchan").exists(),
                    reason="needs Linux /proc/<pid>/wchan to see the sync in its pause")
def test_sigkill_while_changes_are_applied_then_resume_is_exact(
    crawled: Path, tmp_path: Path
) -> None:
    """A kill inside the changes' transaction (deletions done, not committed), then one in the
    next batch's (changes committed with their cursor, new rows not): each resume ends exact."""
    _refresh_like(crawled, seed=3)
    with Journal(StorePaths.of(crawled).journal) as journal:  # a removed record seen again
        gone = next(c for c in journal.changes_between(0, 10**9) if c.kind == "node-")
        journal.add_nodes([(gone.db, gone.uid, gone.depth)], state="terminal")
    env = {k: v for k, v in os.environ.items() if k != "NCBI_API_KEY"}
    env.update(ENTREZ_GRAPH_RATE_DIR=str(tmp_path / "rate"), PYTHONUNBUFFERED="1",
               ENTREZ_GRAPH_TEST_PAUSE_IN_COPY="0.5")
    sync = [sys.executable, "-m", "crawler", "sync", "--embedded", "--store", str(crawled)]
    for pauses_before_kill in (1, 2):
        proc = subprocess.Popen(sync, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        seen = 0
        while seen < pauses_before_kill:
            assert _wait(lambda p=proc: _sleeping(p.pid), proc), proc.communicate()[1][-2000:]
            seen += 1
            if seen < pauses_before_kill:
                assert _wait(lambda p=proc: not _sleeping(p.pid), proc)
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, err[-2000:]
    env.pop("ENTREZ_GRAPH_TEST_PAUSE_IN_COPY")
    done = subprocess.run(sync, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert_store_is_journal(crawled)
    assert _embedded(crawled)["state"] == "in step"


# -- Neo4j: the same changes, the same order; query building on the stand-in ------------------

import crawler.sinks.neo4j as neo  # noqa: E402
from crawler.errors import BadInput  # noqa: E402
from crawler.journal import ChangeRow  # noqa: E402


def _neo4j_view_of(fake) -> tuple[set, list]:
    nodes = {(lb, uid, n.get("depth")) for (lb, uid), n in fake.graph.nodes.items()}
    return nodes, fake.graph.edge_keys()


def _journal_view_of(journal: Journal) -> tuple[set, list]:
    nodes = {(n.db, n.uid, n.depth) for n in journal.iter_nodes()}
    edges = sorted((e.dbfrom, e.uid_from, e.linkname, e.dbto, e.uid_to, e.score)
                   for e in journal.iter_edges())
    return nodes, edges


def test_neo4j_applies_changes_first_idempotently_with_parameters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from neo4j_fake import fill, install, make_sink

    fake = install(monkeypatch)
    with Journal(tmp_path / "s") as journal:
        fill(journal, n_genes=6)
        with make_sink() as sink:
            assert sink.sync(journal).ok
            with journal.transaction() as con:
                journal.remove_edges(con, [("gene", "1000", "gene_protein_refseq", "protein",
                                            "50000")])
                journal.remove_nodes(con, [("structure", "7001"), ("gene", "1002")])
                journal.update_nodes(con, [("protein", "50031", 4, None)])
                journal.update_edges(con, [("protein", "50040", "protein_protein", "protein",
                                            "50041", 77, None)])
            status = rows_behind(journal, journal.get_cursor(sink.name))
            assert status["changes"] > 0
            fake.log.clear()
            report = sink.sync(journal)
            assert report.ok and report.changes == journal.max_ids().change
            assert _neo4j_view_of(fake) == _journal_view_of(journal)
            texts = [t for t, _ in fake.log if t.startswith("UNWIND")]
            assert texts and all(" MERGE " not in t for t in texts)  # no addition to write
            assert any("DETACH DELETE" in t for t in texts)
            for text, _ in fake.log:  # values travel as parameters, never in the text
                assert "50000" not in text and "7001" not in text
            state = fake.graph.cursors[neo.journal_id(journal)]
            assert state["change"] == journal.max_ids().change
            # the statements are idempotent: the same windows written again change nothing
            state["change"] = 0
            before = _neo4j_view_of(fake)
            assert sink.sync(journal).ok
            assert _neo4j_view_of(fake) == before
            # a removed record seen again: removed first, then written again, in one pass
            with journal.transaction() as con:
                journal.remove_nodes(con, [("gene", "1003")])
            journal.add_nodes([("gene", "1002", 0), ("gene", "1003", 0)])
            journal.add_edges([("gene", "1003", "gene_protein_refseq", "protein", "50030", None)])
            fake.log.clear()
            assert sink.sync(journal).ok
            texts = [t for t, _ in fake.log if t.startswith("UNWIND")]
            first_add = next(i for i, t in enumerate(texts) if " MERGE " in t)
            assert any("DETACH DELETE" in t for t in texts[:first_add])
            assert all("DELETE" not in t for t in texts[first_add:])
            assert _neo4j_view_of(fake) == _journal_view_of(journal)
            assert sink.verify(journal) == []


def test_change_statements_validate_identifiers_and_keep_the_order() -> None:
    def row(i: int, kind: str, linkname: str = "gene_protein", db: str = "gene") -> ChangeRow:
        edge = kind.startswith("edge")
        return ChangeRow(i, kind, db, str(i), linkname if edge else None,
                         "protein" if edge else None, "9" if edge else None, 1, 5, None, i)

    rows = [row(1, "edge~"), row(2, "node~"), row(3, "node-"), row(4, "edge-"),
            row(5, "edge-")]
    texts = [t for t, _ in neo.change_statements(rows)]
    assert all(t.startswith("UNWIND $rows AS r MATCH ") for t in texts)
    kinds = ["edge-" if "DELETE e " in t else "node-" if "DETACH" in t
             else "node~" if "n.depth" in t else "edge~" for t in texts]
    assert kinds == ["edge-", "node-", "node~", "edge~"]
    assert neo.change_statements([row(1, "edge-"), row(2, "edge-")])[0][1] == [
        {"f": "1", "t": "9"}, {"f": "2", "t": "9"}]
    for bad in (row(1, "edge-", linkname="x`]->() DETACH DELETE a //"),
                row(1, "node-", db="Gene"), row(1, "node~", db="gene; DROP")):
        with pytest.raises(BadInput):
            neo.change_statements([bad])


@pytest.fixture
def neo4j_server():
    from test_neo4j_integration import _skip_reason

    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    from crawler.sinks.neo4j import Neo4jConfig

    return Neo4jConfig.from_options()


def test_neo4j_server_ends_equal_to_the_journal_after_changes(
    neo4j_server, tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real server (opt-in: NEO4J_URI and ENTREZ_GRAPH_TEST_NEO4J=1; it EMPTIES the
    database): crawl into it, write changes, `sync`: Neo4j holds exactly the journal."""
    from neo4j import GraphDatabase
    from test_neo4j_integration import cli_neo4j, cypher, journal_view, neo4j_view

    config = neo4j_server
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))
    driver = GraphDatabase.driver(config.uri, auth=(config.user, config.password))
    try:
        cypher(driver, config, "MATCH (n) DETACH DELETE n")
        store = tmp_path / "store"
        code, out = _run(["crawl", *CRAWL, "--store", str(store), "--eutils-url", emulator.url,
                          *cli_neo4j(config)])
        assert code == 0, out
        _refresh_like(store, seed=5)
        code, out = _run(["sync", "--store", str(store), *cli_neo4j(config)])
        assert code == 0, out
        assert neo4j_view(driver, config) == journal_view(store)
    finally:
        driver.close()
