"""Neo4j writes without a server: statements and their grouping, windows, parallel sessions,
quiet driver logging, notification-free reads (against the stand-in in tests/neo4j_fake.py)."""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from neo4j.exceptions import TransientError
from neo4j_fake import FakeNeo4j, expected_edges, fill, install, make_sink, open_journal

import crawler.sinks.neo4j as neo
from crawler.cli import main
from crawler.journal import Journal, NodeRow


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeNeo4j:
    return install(monkeypatch)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    yield from open_journal(tmp_path)


LINKS = [("gene", "gene_protein", "protein"), ("gene", "gene_pubmed", "pubmed"),
         ("protein", "protein_pubmed", "pubmed"), ("pubmed", "pubmed_pubmed", "pubmed")]


def mixed(journal: Journal, n_edges: int) -> None:
    """Records of three databases and `n_edges` links cycling through four link names."""
    for db in ("gene", "protein", "pubmed"):
        journal.add_nodes((db, str(i), 1) for i in range(1, 201))
    edges = []
    for i in range(n_edges):
        dbfrom, link, dbto = LINKS[i % len(LINKS)]
        edges.append((dbfrom, str(1 + i % 200), link, dbto, str(1 + (i * 7 + i // 200) % 200),
                      None))
    journal.add_edges(edges)


def edge_statements(fake: FakeNeo4j) -> list[tuple[str, int]]:
    return [(re.search(r"\[e:`(\w+)`\]", t).group(1), len(p["rows"]))
            for t, p in fake.statements("UNWIND $rows AS r MATCH")]


# -- statements and their grouping ------------------------------------------------------------


def test_statements_are_split_per_label_and_link_name_at_the_row_limit() -> None:
    rows = [NodeRow(i, "gene" if i % 3 else "protein", str(i), 0, "new") for i in range(1, 26)]
    statements = neo.node_statements(rows, statement_rows=4)
    assert [len(p) for _, p in statements] == [4, 4, 4, 4, 1, 4, 4]  # 17 genes, 8 proteins
    assert [t for t, _ in statements] == [neo.node_query("gene")] * 5 + [
        neo.node_query("protein")] * 2
    assert [r["uid"] for _, p in statements for r in p] == (
        [str(i) for i in range(1, 26) if i % 3] + [str(i) for i in range(1, 26) if not i % 3]
    )


def test_a_window_fills_each_statement_and_is_one_transaction(
    fake: FakeNeo4j, journal: Journal
) -> None:
    """Four link names interleaved: 5,000-row windows would give statements of 1,250 rows;
    a window of 8 statements' worth gives full statements, in far fewer transactions."""
    mixed(journal, 4_000)
    sink = make_sink(batch_size=500)  # window 4,000 rows: every link in one transaction
    sink.sync(journal)
    sizes = edge_statements(fake)
    assert Counter(t for t, _ in sizes) == {link: 2 for _, link, _ in LINKS}
    assert all(n == 500 for _, n in sizes)
    moves = [p for t, p in fake.log if t == neo.MOVE_MINE]
    assert [m["edge"] for m in moves if m["edge"]] == [journal.max_ids().edge]  # one window
    assert fake.graph.edge_keys() == expected_edges(journal)
    assert sink.fast_batches == 1 and sink.merge_batches == 0


def test_windows_move_the_cursor_in_the_same_transaction(
    fake: FakeNeo4j, journal: Journal
) -> None:
    mixed(journal, 1_000)
    sink = make_sink(batch_size=100, window=300)
    sink.sync(journal)
    transactions: list[list[str]] = []
    current: list[str] = []
    for text, _ in fake.log:
        if text == neo.LOCK_MINE:
            current = [text]
            transactions.append(current)
        else:
            current.append(text)
    edge_txs = [tx for tx in transactions if any("[e:" in t for t in tx)]
    assert len(edge_txs) == 4  # 1,000 rows in windows of 300
    for tx in edge_txs:  # lock, statements of up to 100 rows, then the move: one transaction
        assert tx[0] == neo.LOCK_MINE and tx[-1] == neo.MOVE_MINE
    assert all(n <= 100 for _, n in edge_statements(fake))
    assert fake.graph.edge_keys() == expected_edges(journal)


def test_records_of_every_label_before_any_link(fake: FakeNeo4j, journal: Journal) -> None:
    mixed(journal, 400)
    make_sink(batch_size=50).sync(journal)
    kinds = ["node" if "SET n.depth" in t else "edge" for t, _ in fake.statements("UNWIND")]
    assert kinds == sorted(kinds, key=lambda k: k != "node")  # all nodes, then all edges


def test_constraints_for_every_label_even_with_nothing_to_push(
    fake: FakeNeo4j, journal: Journal
) -> None:
    """A database loaded by neo4j-admin import holds the rows; its first sync still makes the
    constraints the live writes rely on."""
    fill(journal, 1)
    make_sink().sync(journal)
    fake.graph.constraints.clear()
    make_sink().sync(journal)  # a new sink process: nothing to push
    assert {"gene", "protein", "structure"} <= fake.graph.constraints


# -- parallel sessions --------------------------------------------------------------------------


def test_parallel_sessions_write_link_names_apart_then_move_the_cursor(
    fake: FakeNeo4j, journal: Journal
) -> None:
    mixed(journal, 2_000)
    sink = make_sink(batch_size=250, parallel=3, fast=False)
    report = sink.sync(journal)
    assert report.ok and report.edges == 2_000
    assert fake.graph.edge_keys() == expected_edges(journal)
    # each link name's statements ran in a transaction of their own (no cursor lock in it)
    assert sink.merge_batches == 1
    again = sink.sync(journal)
    assert again.ok and again.edges == 0
    assert len(fake.graph.rels) == 2_000  # MERGE: nothing doubled


def test_parallel_deadlocks_are_retried_with_backoff(fake: FakeNeo4j, journal: Journal) -> None:
    mixed(journal, 800)
    waits: list[float] = []
    sink = make_sink(batch_size=100, parallel=4, fast=False, sleep=waits.append, attempts=5)
    deadlocks = {"left": 3}

    def deadlock(server: FakeNeo4j) -> None:
        if deadlocks["left"] and server.graph.cursors and any(
            "[e:" in t for t, _ in server.log[-3:]
        ):
            deadlocks["left"] -= 1
            server.fail_next, server.fail_with = 1, TransientError

    fake.before_tx = deadlock
    report = sink.sync(journal)
    assert report.ok, report.error
    assert deadlocks["left"] == 0 and len(waits) >= 3 and all(w > 0 for w in waits)
    assert fake.graph.edge_keys() == expected_edges(journal)


def test_the_fast_path_never_runs_in_parallel(fake: FakeNeo4j, journal: Journal) -> None:
    mixed(journal, 1_000)
    sink = make_sink(batch_size=100, parallel=4)  # a new database: CREATE in one transaction
    sink.sync(journal)
    assert sink.fast_batches >= 1 and sink.merge_batches == 0
    assert fake.graph.edge_keys() == expected_edges(journal)


# -- quiet: no driver noise, no notifications ---------------------------------------------------


def test_cursor_and_count_reads_name_no_property_that_may_not_exist() -> None:
    """Reading `c.node` on a database without that property key makes Neo4j send 01N52."""
    reads = [neo.READ_MINE, neo.LOCK_MINE, neo.COUNT_OTHERS, neo.count_props_query("gene"),
             neo.count_nodes_query("gene"), neo.count_rels_query("gene_protein")]
    for text in reads:
        returned = text.split("RETURN", 1)[1]
        assert not re.search(r"\b[a-z]\.(node|edge|prop|shared|locked|name|\w+)\b", returned)
    assert "IS NOT NULL" not in neo.count_props_query("gene")


def _terminal_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a terminal: no handler on the root logger (pytest adds its own capture handler,
    which would hide Python's last-resort printing of the driver's warnings)."""
    monkeypatch.setattr(logging.getLogger(), "handlers", [])


def test_driver_retry_warnings_never_reach_the_terminal_and_we_say_once_each(
    fake: FakeNeo4j, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crawler.emulator import Emulator, World

    _terminal_logging(monkeypatch)
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))
    fake.log_retries = True
    failed = {"n": 0}

    def away_for_a_while(server: FakeNeo4j) -> None:
        if failed["n"] == 0 and any(c["node"] for c in server.graph.cursors.values()):
            server.down = True  # gone after the first level
        if server.down:
            failed["n"] += 1
            if failed["n"] == 4:  # the sink's last attempt fails; the next level finds it back
                server.down, server.fail_next = False, 1

    fake.before_tx = away_for_a_while
    store = tmp_path / "store"
    with Emulator(World.generate(seed=5, size=600), latency_ms=5) as emu:
        result = CliRunner().invoke(main, [
            "crawl", "gene:672", "--depth", "3", "--rps", "1000", "--store", str(store),
            "--eutils-url", emu.url, "--neo4j", "bolt://localhost:7687", "--no-embedded",
        ], env={"NCBI_EMAIL": "t@example.org"})
    assert failed["n"] == 4, "the outage never happened"
    assert result.exit_code == 0, result.output
    text = result.output
    assert "will be retried" not in text and "Connection refused" not in text
    lines = text.splitlines()
    assert len([line for line in lines if "unavailable" in line]) == 1, text
    assert len([line for line in lines if "is back" in line]) == 1, text
    with Journal(store / "journal.sqlite", create=False) as j:
        assert fake.graph.edge_keys() == expected_edges(j)


def test_driver_log_is_relayed_not_printed(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    _terminal_logging(monkeypatch)
    monkeypatch.setattr(logging.getLogger("neo4j"), "handlers", [])
    neo.quiet_driver_logging()
    before = neo.DRIVER_LOG.retries
    logging.getLogger("neo4j.session").warning(
        "Transaction failed and will be retried in %ss (%s)", 0.9, "DeadlockDetected: x")
    logging.getLogger("neo4j.notifications").warning("Received notification from DBMS server")
    assert capsys.readouterr().err == ""
    assert neo.DRIVER_LOG.retries == before + 1 and neo.DRIVER_LOG.deadlocks >= 1


def test_a_configured_neo4j_logger_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """`neo4j.debug.watch` (or a user's own handler) keeps seeing the driver's records."""
    mine = logging.NullHandler()
    monkeypatch.setattr(logging.getLogger("neo4j"), "handlers", [mine])
    neo.quiet_driver_logging()
    assert logging.getLogger("neo4j").handlers == [mine]


def test_sync_json_report_after_repair_still_parses(fake: FakeNeo4j, tmp_path: Path) -> None:
    store = tmp_path / "store"
    with Journal(store / "journal.sqlite") as j:
        fill(j, 2)
    runner = CliRunner()
    first = runner.invoke(main, ["sync", "--store", str(store), "--neo4j", "bolt://h:7687",
                                 "--format", "json"])
    assert first.exit_code == 0, first.output
    del fake.graph.nodes[("structure", "7000")]
    fake.graph.rels = [r for r in fake.graph.rels if r["b"] != ("structure", "7000")]
    again = runner.invoke(main, ["sync", "--store", str(store), "--neo4j", "bolt://h:7687",
                                 "--format", "json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)[0]["pending"] == 0
    assert "lacked rows" in again.stderr


# -- the benchmark's server path, against the stand-in -------------------------------------------


def test_the_benchmark_runs_every_path_and_checks_exactness(
    fake: FakeNeo4j, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Not a measurement (the stand-in is no server): the script's server path runs end to end,
    empties only with the opt-in, and its own exactness checks pass."""
    import importlib.util
    import sys

    import neo4j

    spec = importlib.util.spec_from_file_location(
        "neo4j_write", Path(__file__).parent.parent / "benchmarks" / "neo4j_write.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setattr(neo4j.GraphDatabase, "driver",
                        lambda uri, auth=None, **kw: fake.driver(None))
    monkeypatch.setattr(sys, "argv", ["neo4j_write.py", "--edges", "600", "--outage-edges",
                                      "900", "--batch-size", "100", "--parallel", "1,3"])
    monkeypatch.setenv("NEO4J_URI", "bolt://localhost:7687")
    assert bench.main() == 0  # without the opt-in: nothing emptied, nothing measured
    assert "Nothing measured" in capsys.readouterr().out and fake.transactions == 0
    monkeypatch.setenv("ENTREZ_GRAPH_TEST_NEO4J", "1")
    assert bench.main() == 0  # every path exact and idempotent
    out = capsys.readouterr().out
    assert "(EMPTIED)" in out and "yardstick" in out
    for path in ("merge ", "merge x3", "fast ", "outage "):
        assert f"\n{path}" in out, out
    assert "goal: the MERGE path" in out and "goal: sync after an outage" in out


@pytest.mark.parametrize(("batch", "window"), [(5_000, 40_000), (1_000, 8_000),
                                                (20_000, 40_000), (100_000, 100_000)])
def test_window_is_eight_statements_but_bounded(
    fake: FakeNeo4j, batch: int, window: int
) -> None:
    assert make_sink(batch_size=batch).window == window
