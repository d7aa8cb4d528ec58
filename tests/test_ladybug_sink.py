"""The embedded store sink: COPY loads, in-store cursor, idempotence, props, crash and lock safety.

The journal is filled here straight from the emulator's world (the BFS rule the engine follows), so
that these tests pin the sink alone; test_cypher_bundled.py also runs the real `crawl` command.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import ladybug
import pytest

from crawler.emulator.world import World
from crawler.errors import BadInput, StoreError, StoreLocked
from crawler.journal import Cursor, Journal
from crawler.sinks import ladybug as sink_module
from crawler.sinks.ladybug import CURSOR_TABLE, LadybugSink
from crawler.store import StorePaths

REPO = Path(__file__).resolve().parent.parent
CHAIN = ("gene_protein_refseq", "protein_structure", "gene_nuccore", "nuccore_gene",
         "nuccore_pubmed", "protein_pubmed", "pubmed_pubmed", "gene_pubmed", "pubmed_gene")


# -- helpers shared with test_query.py / test_cypher_bundled.py -----------------------------------


def fill_journal(
    journal: Journal,
    world: World,
    seeds: list[tuple[str, str]],
    depth: int,
    links: tuple[str, ...] | None = CHAIN,
    *,
    props: bool = True,
    levels: tuple[int, ...] | None = None,
) -> None:
    """BFS over `world` into `journal` the way the engine writes it: per expanded record, its new
    targets and its links in one transaction. `levels` limits which BFS levels are expanded now."""
    known: dict[tuple[str, str], int] = {
        (db, uid): d for db, uid, d in journal.execute("SELECT db, uid, depth FROM nodes")
    }
    new_seeds = [(db, uid, 0) for db, uid in seeds if (db, uid) not in known]
    journal.add_nodes(new_seeds)
    for db, uid, _ in new_seeds:
        known[(db, uid)] = 0
    for level in range(depth):
        frontier = sorted(k for k, d in known.items() if d == level)
        if levels is not None and level not in levels:
            continue
        for db, uid in frontier:
            targets, edges = [], []
            for link in world.links_from(db, uid):
                if links is not None and link.linkname not in links:
                    continue
                if (link.dbto, link.target) == (db, uid):
                    continue
                if (link.dbto, link.target) not in known:
                    known[(link.dbto, link.target)] = level + 1
                    targets.append((link.dbto, link.target, level + 1))
                edges.append((db, uid, link.linkname, link.dbto, link.target, link.score))
            with journal.transaction():
                journal.add_nodes(targets)
                journal.add_edges(edges)
    if props:
        for db, uid in sorted(known):
            record = world.record(db, uid) or {}
            data = {k: record[k] for k in ("name", "organism", "description", "accession")
                    if record.get(k)}
            if data:
                journal.set_props(db, uid, data)


def journal_graph(journal: Journal) -> tuple[set, Counter]:
    nodes = set(journal.execute("SELECT db, uid, depth FROM nodes").fetchall())
    edges = Counter(
        journal.execute("SELECT linkname, dbfrom, uid_from, dbto, uid_to, score FROM edges")
    )
    return nodes, edges


def store_graph(graph: Path) -> tuple[set, Counter]:
    """Every record and link in the LadybugDB file (edges as a multiset: duplicates show)."""
    db = ladybug.Database(str(graph), read_only=True)
    conn = ladybug.Connection(db)
    try:
        nodes = {
            (label, uid, depth)
            for label, uid, depth in conn.execute(
                f"MATCH (n) WHERE label(n) <> '{CURSOR_TABLE}' RETURN label(n), n.uid, n.depth"
            ).get_all()
        }
        kinds = {kind for _, kind in conn.execute("CALL show_tables() RETURN name, type").get_all()}
        edges = Counter(
            tuple(row)
            for row in conn.execute(
                "MATCH (a)-[r]->(b) RETURN label(r), label(a), a.uid, label(b), b.uid, r.score"
            ).get_all()
        ) if "REL" in kinds else Counter()
    finally:
        conn.close()
        db.close()
    return nodes, edges


def store_cursor(graph: Path) -> Cursor:
    db = ladybug.Database(str(graph), read_only=True)
    conn = ladybug.Connection(db)
    try:
        rows = conn.execute(f"MATCH (c:{CURSOR_TABLE}) RETURN c.node, c.edge, c.prop").get_all()
    finally:
        conn.close()
        db.close()
    assert len(rows) == 1
    return Cursor(*rows[0])


@pytest.fixture(scope="module")
def small_world() -> World:
    return World.generate(seed=7, size=300)


@pytest.fixture
def store(tmp_path: Path) -> StorePaths:
    return StorePaths.of(tmp_path / "store")


# -- loading ------------------------------------------------------------------------------------


def test_sync_loads_every_journal_row_once(small_world: World, store: StorePaths) -> None:
    with Journal(store.journal) as journal:
        fill_journal(journal, small_world, [("gene", "672")], depth=2)
        expected_nodes, expected_edges = journal_graph(journal)
        with LadybugSink(store.graph) as sink:
            report = sink.sync(journal)
            assert report.nodes == len(expected_nodes)
            assert report.edges == sum(expected_edges.values())
            assert report.ok and report.pending == 0
            again = sink.sync(journal)
            assert (again.nodes, again.edges, again.props) == (0, 0, 0)
        maxima = journal.max_ids()
    assert len(expected_edges) > 100 and max(expected_edges.values()) == 1
    nodes, edges = store_graph(store.graph)
    assert nodes == expected_nodes
    assert edges == expected_edges  # a multiset: a duplicate edge would count 2
    assert store_cursor(store.graph) == Cursor(maxima.node, maxima.edge, maxima.prop)
    # Several databases and link names became tables; pubmed_pubmed kept its scores.
    assert {n[0] for n in nodes} >= {"gene", "protein", "structure", "nuccore", "pubmed"}
    assert any(e[0] == "pubmed_pubmed" and e[5] is not None for e in edges)


def test_incremental_sync_across_sessions(small_world: World, store: StorePaths) -> None:
    """Level by level, each in a new sink session (as crawl + later sync do): nothing twice."""
    with Journal(store.journal) as journal:
        fill_journal(journal, small_world, [("gene", "672")], depth=1, props=False)
        with LadybugSink(store.graph) as sink:
            first = sink.sync(journal)
        assert first.nodes > 0 and first.props == 0
        after_first = store_cursor(store.graph)
        fill_journal(journal, small_world, [("gene", "672")], depth=2, levels=(1,))
        behind = LadybugSink.pending_in(store.graph, journal)
        assert behind["nodes"] > 0 and behind["edges"] > 0 and behind["props"] > 0
        assert behind["total"] == behind["nodes"] + behind["edges"] + behind["props"]
        with LadybugSink(store.root) as sink:  # a store directory works too
            assert sink.cursor() == after_first
            assert sink.pending(journal) == behind["total"]
            second = sink.sync(journal)
            assert (second.nodes, second.edges, second.props) == (
                behind["nodes"], behind["edges"], behind["props"])
            assert sink.pending(journal) == 0
        expected = journal_graph(journal)
        assert LadybugSink.pending_in(store.graph, journal)["total"] == 0
    assert store_graph(store.graph) == expected


def test_props_applied_and_replaced(small_world: World, store: StorePaths) -> None:
    with Journal(store.journal) as journal:
        fill_journal(journal, small_world, [("gene", "672")], depth=1)
        journal.set_props("pubmed", "999999", {"name": "not a crawled record"})  # no such node
        with LadybugSink(store.graph) as sink:
            sink.sync(journal)
            # A later summary replaces the row (new id); the store follows, types are coerced.
            journal.set_props("gene", "672", {"name": "BRCA1 (renamed)", "year": "1994/10/07",
                                              "status": 3, "has_neighbor": True})
            report = sink.sync(journal)
            assert report.props == 1
    want = small_world.record("gene", "672")
    db = ladybug.Database(str(store.graph), read_only=True)
    conn = ladybug.Connection(db)
    try:
        row = conn.execute(
            "MATCH (g:gene {uid: '672'}) RETURN g.name, g.organism, g.description, g.year, "
            "g.status"
        ).get_all()[0]
        named = conn.execute("MATCH (p:protein) WHERE p.name IS NOT NULL RETURN count(*)")
        named_count = named.get_all()[0][0]
        absent = conn.execute("MATCH (p:pubmed {uid: '999999'}) RETURN count(*)").get_all()[0][0]
    finally:
        conn.close()
        db.close()
    assert row == ["BRCA1 (renamed)", want["organism"], want["description"], 1994, "3"]
    assert named_count > 0
    assert absent == 0


def test_link_name_between_two_pairs_of_databases(store: StorePaths) -> None:
    with Journal(store.journal) as journal:
        journal.add_nodes([("gene", "1", 0), ("protein", "2", 1), ("nuccore", "3", 1)])
        journal.add_edges([("gene", "1", "gene_seq", "protein", "2", None)])
        with LadybugSink(store.graph) as sink:
            sink.sync(journal)
            journal.add_edges([("gene", "1", "gene_seq", "nuccore", "3", 5)])
            sink.sync(journal)
        _, edges = store_graph(store.graph)
    assert edges == Counter({("gene_seq", "gene", "1", "protein", "2", None): 1,
                             ("gene_seq", "gene", "1", "nuccore", "3", 5): 1})


def test_batches_are_separate_transactions(
    small_world: World, store: StorePaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sink_module, "BATCH_ROWS", 37)
    with Journal(store.journal) as journal:
        fill_journal(journal, small_world, [("gene", "672"), ("pubmed", "100000")], depth=2)
        expected = journal_graph(journal)
        with LadybugSink(store.graph) as sink:
            assert sink.sync(journal).pending == 0
    assert store_graph(store.graph) == expected


# -- failure paths ------------------------------------------------------------------------------


def test_failure_inside_the_transaction_rolls_back_copy_and_cursor(
    small_world: World, store: StorePaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash between COPY and the cursor write loses both; the next sync loads it once."""
    with Journal(store.journal) as journal:
        fill_journal(journal, small_world, [("gene", "672")], depth=1, props=False)
        with LadybugSink(store.graph) as sink:
            sink.sync(journal)
        before = store_graph(store.graph), store_cursor(store.graph)
        fill_journal(journal, small_world, [("gene", "672")], depth=2, levels=(1,), props=False)
        real_write = LadybugSink._write_cursor

        def crash_after_copy(self: LadybugSink, cursor: Cursor) -> None:
            raise RuntimeError("simulated crash between COPY and COMMIT")

        monkeypatch.setattr(LadybugSink, "_write_cursor", crash_after_copy)
        with LadybugSink(store.graph) as sink, pytest.raises(StoreError, match="simulated"):
            sink.sync(journal)
        assert (store_graph(store.graph), store_cursor(store.graph)) == before
        monkeypatch.setattr(LadybugSink, "_write_cursor", real_write)
        with LadybugSink(store.graph) as sink:
            sink.sync(journal)
        expected = journal_graph(journal)
    assert store_graph(store.graph) == expected


_KILL_CHILD = textwrap.dedent(
    """
    import sys, time
    from crawler.journal import Journal
    from crawler.sinks import ladybug as m

    m.BATCH_ROWS = int(sys.argv[2])
    pauses = []
    real_sleep = time.sleep

    def sleep(seconds):
        pauses.append(seconds)
        if len(pauses) == int(sys.argv[3]):
            print("paused", flush=True)
            real_sleep(600)

    m.time.sleep = sleep
    with Journal(sys.argv[1]) as journal:
        sink = m.LadybugSink(sys.argv[1])
        sink.sync(journal)
        sink.close()
    print("done", flush=True)
    """
)


def test_sigkill_while_loading_never_loads_a_batch_twice(
    small_world: World, store: StorePaths
) -> None:
    """SIGKILL between a COPY and its COMMIT (ENTREZ_GRAPH_TEST_PAUSE_IN_COPY): the batches before
    it stay, the one in flight vanishes with its cursor, and a new sync completes exactly."""
    with Journal(store.journal) as journal:
        fill_journal(journal, small_world, [("gene", "672")], depth=2)
        expected = journal_graph(journal)
    batch = 40
    env = {**os.environ, sink_module.PAUSE_ENV: "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", _KILL_CHILD, str(store.root), str(batch), "3"],
        stdout=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "paused"
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    # Two batches committed, the third (in flight) rolled back with its cursor.
    nodes, edges = store_graph(store.graph)
    cursor = store_cursor(store.graph)
    assert cursor.node == 2 * batch and cursor.edge == 0
    assert len(nodes) == 2 * batch and not edges
    with Journal(store.journal) as journal, LadybugSink(store.graph) as sink:
        report = sink.sync(journal)
    assert report.nodes == len(expected[0]) - 2 * batch
    assert store_graph(store.graph) == expected


def test_second_writer_gets_store_locked(small_world: World, store: StorePaths) -> None:
    with Journal(store.journal) as journal:
        fill_journal(journal, small_world, [("gene", "672")], depth=1)
    with LadybugSink(store.graph):
        result = subprocess.run(
            [sys.executable, "-m", "crawler", "sync", "--store", str(store.root), "--embedded"],
            capture_output=True, text=True, cwd=REPO, timeout=120,
            env={k: v for k, v in os.environ.items() if not k.startswith("NEO4J")},
        )
        # Readers are not locked out while the writer holds the store.
        with Journal(store.journal) as journal:
            assert LadybugSink.pending_in(store.graph, journal)["total"] > 0
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert "Could not set lock on file" in lines[0] and "Traceback" not in result.stderr
    assert str(os.getpid()) in lines[0]  # names the process holding the lock


def test_store_of_another_crawl_is_refused(small_world: World, tmp_path: Path) -> None:
    big, small = StorePaths.of(tmp_path / "big"), StorePaths.of(tmp_path / "small")
    with Journal(big.journal) as journal:
        fill_journal(journal, small_world, [("gene", "672")], depth=1)
        with LadybugSink(big.graph) as sink:
            sink.sync(journal)
    with Journal(small.journal) as journal:
        journal.add_nodes([("gene", "1", 0)])
        with LadybugSink(big.graph) as sink, pytest.raises(StoreError, match="another crawl"):
            sink.sync(journal)
    # A new crawl from another seed that already has more rows than the store's cursor.
    other = StorePaths.of(tmp_path / "other")
    with Journal(other.journal) as journal:
        journal.add_nodes([("gene", "675", 0)])
        journal.add_nodes([("protein", str(i), 1) for i in range(5000)])
        journal.add_edges([("gene", "675", "gene_protein", "protein", str(i), None)
                           for i in range(5000)])
        with LadybugSink(big.graph) as sink:
            with pytest.raises(StoreError, match=r"gene:672.*another crawl"):
                sink.sync(journal)
            assert sink.pending(journal) > 0


def test_unsafe_names_never_reach_ddl(store: StorePaths) -> None:
    with Journal(store.journal) as journal:
        journal.add_nodes([("gene", "1", 0), ("protein", "2", 1)])
        journal.add_edges([("gene", "1", "x`) DETACH DELETE n //", "protein", "2", None)])
        with LadybugSink(store.graph) as sink:
            with pytest.raises(BadInput, match="link name"):
                sink.sync(journal)
            assert sink.cursor() == Cursor(2, 0, 0)  # the nodes' batch committed, no edge
    with Journal(tmp := store.root.parent / "cursor_db") as journal:
        journal.add_nodes([(CURSOR_TABLE, "1", 0)])
        with LadybugSink(tmp / "graph.lbdb") as sink, pytest.raises(StoreError, match="reserved"):
            sink.sync(journal)


def test_pending_in_without_a_store(store: StorePaths) -> None:
    with Journal(store.journal) as journal:
        journal.add_nodes([("gene", "1", 0)])
        journal.set_props("gene", "1", {"name": json.dumps("x")})
        assert LadybugSink.pending_in(store.graph, journal) == {
            "nodes": 1, "edges": 0, "props": 1, "changes": 0, "total": 2}
    assert not store.graph.exists()


# -- bounded memory (issue 4): CSV COPY, rel runs per transaction, Database reopens -------------


def test_split_by_rel_keeps_order_and_caps_rel_tables_per_run() -> None:
    from crawler.journal import EdgeRow

    links = ["a", "b", "a", "c", "d", "c", "e", "a", "b", "b", "f"]
    rows = [EdgeRow(i + 1, "gene", str(i), name, "gene", str(i + 1), None)
            for i, name in enumerate(links)]
    runs = list(sink_module._split_by_rel(rows, 2))
    assert [r for run in runs for r in run] == rows  # every row once, in id order
    assert all(len({r.linkname for r in run}) <= 2 for run in runs)
    assert [[r.linkname for r in run] for run in runs] == [
        ["a", "b", "a"], ["c", "d", "c"], ["e", "a"], ["b", "b", "f"]]
    assert list(sink_module._split_by_rel([], 2)) == []


def test_runs_and_reopens_load_every_row_once(
    small_world: World, store: StorePaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At most 2 rel tables per transaction and a new Database after every batch: the store still
    holds each journal row exactly once, and the cursor ends on the journal's last rows."""
    monkeypatch.setattr(sink_module, "BATCH_ROWS", 53)
    monkeypatch.setattr(sink_module, "EDGE_PASS_ROWS", 53)
    monkeypatch.setattr(sink_module, "MAX_RELS_PER_COMMIT", 2)
    monkeypatch.setattr(sink_module, "REOPEN_GROWTH_MB", 0)
    loads: list[int] = []
    reopens: list[int] = []
    real_copy, real_reopen = LadybugSink._copy_edges, LadybugSink._reopen

    def copy_edges(self: LadybugSink, rows: dict, *, prepare: bool) -> object:
        if not prepare:
            loads.append(len(rows))
        return real_copy(self, rows, prepare=prepare)

    def reopen(self: LadybugSink) -> None:
        reopens.append(1)
        real_reopen(self)

    monkeypatch.setattr(LadybugSink, "_copy_edges", copy_edges)
    monkeypatch.setattr(LadybugSink, "_reopen", reopen)
    with Journal(store.journal) as journal:
        fill_journal(journal, small_world, [("gene", "672"), ("pubmed", "100000")], depth=2)
        expected = journal_graph(journal)
        last = sink_module.journal_snapshot(journal)
        with LadybugSink(store.graph) as sink:
            report = sink.sync(journal)
            assert report.edges == sum(expected[1].values()) and report.pending == 0
            # Props too go through batches and reopens.
            assert sink.cursor() == Cursor(last.node, last.edge, last.prop)
    assert store_graph(store.graph) == expected
    assert loads and max(loads) <= 2
    assert len(loads) > -(-sum(expected[1].values()) // 53)  # runs split the batches
    assert len(reopens) >= len(loads)


def test_a_pass_cut_between_its_transactions_is_finished_not_loaded_twice(
    small_world: World, store: StorePaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Edges load rel table by rel table, one transaction per group of tables, the cursor moving
    in the last one. Cut after the first (as a kill would): the store holds those tables beyond
    its cursor, marked; `status` does not call it diverged, and the next sync finishes the pass
    without loading any table twice and without a repair."""
    monkeypatch.setattr(sink_module, "MAX_RELS_PER_COMMIT", 2)
    real_copy = LadybugSink._copy_edges
    calls: list[int] = []

    def copy_edges(self: LadybugSink, rows: dict, *, prepare: bool) -> object:
        if not prepare:
            calls.append(len(rows))
            if len(calls) == 2:
                raise KeyboardInterrupt  # the second transaction of the pass never commits
        return real_copy(self, rows, prepare=prepare)

    with Journal(store.journal) as journal:
        fill_journal(journal, small_world, [("gene", "672"), ("pubmed", "100000")], depth=2)
        expected = journal_graph(journal)
        monkeypatch.setattr(LadybugSink, "_copy_edges", copy_edges)
        with LadybugSink(store.graph) as sink, pytest.raises(KeyboardInterrupt):
            sink.sync(journal)
        monkeypatch.setattr(LadybugSink, "_copy_edges", real_copy)
        info = sink_module.inspect_store(store.graph, journal)
        assert info["state"] == "behind" and info["differences"] == [], info
        with ladybug.Database(str(store.graph), read_only=True) as db:
            conn = ladybug.Connection(db)
            cursor = sink_module._read_cursor(conn)
            marks = sink_module.pass_marks(conn, cursor.edge)
            conn.close()
        assert marks and cursor.edge < max(marks.values())
        with LadybugSink(store.graph) as sink:
            report = sink.sync(journal)
            assert report.repaired == 0 and report.pending == 0
            assert sink._pass_marks(0) == {}
        assert sink_module.inspect_store(store.graph, journal)["state"] == "in step"
    assert store_graph(store.graph) == expected


def test_csv_copy_keeps_odd_uids_and_null_scores(store: StorePaths) -> None:
    """Fields with commas, quotes, line breaks and non-ASCII text survive the CSV files."""
    odd = ["1,2", 'say "hi"', "line\nbreak", "crlf\r\nx", "ünï", " padded "]
    with Journal(store.journal) as journal:
        journal.add_nodes([("gene", "g", 0), *[("protein", u, 1) for u in odd]])
        journal.add_edges([("gene", "g", "gene_protein", "protein", u, i if i % 2 else None)
                           for i, u in enumerate(odd)])
        expected = journal_graph(journal)
        with LadybugSink(store.graph) as sink:
            sink.sync(journal)
            tmp = sink._tmp
            assert tmp is not None and tmp.is_dir()
        assert not tmp.exists()  # the CSV folder goes with the sink
    assert store_graph(store.graph) == expected


def test_writer_lock_held_across_database_reopen(
    small_world: World, store: StorePaths
) -> None:
    """LadybugDB's own lock is released while the sink reopens its Database; the writer lock is
    not: another process and a second sink in this one are refused at any moment."""
    with Journal(store.journal) as journal:
        fill_journal(journal, small_world, [("gene", "672")], depth=1)
    sink = LadybugSink(store.graph)
    try:
        sink._close_db()  # the window inside a reopen: no LadybugDB lock is held now
        result = subprocess.run(
            [sys.executable, "-m", "crawler", "sync", "--store", str(store.root), "--embedded"],
            capture_output=True, text=True, cwd=REPO, timeout=120,
            env={k: v for k, v in os.environ.items() if not k.startswith("NEO4J")},
        )
        with pytest.raises(StoreLocked, match="this process"):
            LadybugSink(store.graph)
        sink._open()
        with Journal(store.journal) as journal:
            assert sink.sync(journal).pending == 0
    finally:
        sink.close()
    assert result.returncode == 2, result.stderr
    assert "Could not set lock on file" in result.stderr and str(os.getpid()) in result.stderr
    with LadybugSink(store.graph) as again:  # released on close
        assert again.cursor().node > 0


def test_sync_without_props_never_loads_pyarrow(small_world: World, store: StorePaths) -> None:
    """pyarrow costs ~100 MB once used; nodes and edges do not need it."""
    with Journal(store.journal) as journal:
        fill_journal(journal, small_world, [("gene", "672")], depth=1, props=False)
    code = textwrap.dedent(
        """
        import sys
        from crawler.journal import Journal
        from crawler.sinks.ladybug import LadybugSink
        with Journal(sys.argv[1]) as journal, LadybugSink(sys.argv[2]) as sink:
            report = sink.sync(journal)
        print(report.nodes, report.edges, "pyarrow" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code, str(store.journal), str(store.graph)],
                         capture_output=True, text=True, cwd=REPO, timeout=120, check=True)
    nodes, edges, loaded = out.stdout.split()
    assert int(nodes) > 0 and int(edges) > 0 and loaded == "False"
