"""Neo4j sink without a server: query text, grouping, cursors, retries, outages, `sync` CLI.

`FakeNeo4j` (tests/neo4j_fake.py) is a driver stand-in holding a small in-memory graph.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from neo4j.exceptions import (
    CypherSyntaxError,
    TransientError,
)
from neo4j_fake import (  # tests/ is on sys.path
    FakeNeo4j,
    Graph,
    expected_edges,
    fill,
    install,
    make_sink,
    open_journal,
)

import crawler.sinks.neo4j as neo
from crawler.cli import main
from crawler.errors import BadInput
from crawler.journal import Cursor, Journal
from crawler.store import StorePaths


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeNeo4j:
    return install(monkeypatch)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    yield from open_journal(tmp_path)


# -- configuration -----------------------------------------------------------------------------


def test_config_defaults_and_environment() -> None:
    c = neo.Neo4jConfig.from_options("bolt://db.example:7687", env={})
    assert (c.uri, c.user, c.password, c.database) == (
        "bolt://db.example:7687", "neo4j", neo.DEFAULT_PASSWORD, None
    )
    env = {"NEO4J_URI": "neo4j://h", "NEO4J_USER": "u", "NEO4J_PASSWORD": "pw",
           "NEO4J_DATABASE": "graphs"}
    c = neo.Neo4jConfig.from_options(env=env)
    assert (c.uri, c.user, c.password, c.database) == ("neo4j://h", "u", "pw", "graphs")
    c = neo.Neo4jConfig.from_options("bolt://x", "v", "secret", "other", env=env)
    assert (c.user, c.password, c.database) == ("v", "secret", "other")


def test_credentials_in_uri_are_taken_out_and_never_shown() -> None:
    c = neo.Neo4jConfig.from_options("bolt://alice:s3cr%40t@db.example:7687", env={})
    assert c.uri == "bolt://db.example:7687"
    assert (c.user, c.password) == ("alice", "s3cr@t")
    assert "s3cr" not in repr(c)
    assert neo.cursor_key(c.uri, "neo4j") == "neo4j:bolt://db.example:7687/neo4j"


@pytest.mark.parametrize(
    "uri", ["http://localhost:7474", "localhost:7687", "bolt://", "bolt://h:notaport"]
)
def test_bad_uri_is_bad_input(uri: str) -> None:
    with pytest.raises(BadInput):
        neo.Neo4jConfig.from_options(uri, env={})


def test_bad_uri_message_hides_password() -> None:
    with pytest.raises(BadInput) as info:
        neo.Neo4jConfig.from_options("http://bob:hunter2@h", env={})
    assert "hunter2" not in str(info.value)


def test_missing_uri_and_bad_database_name() -> None:
    with pytest.raises(BadInput, match="NEO4J_URI"):
        neo.Neo4jConfig.from_options(None, env={})
    with pytest.raises(BadInput, match="database name"):
        neo.Neo4jConfig.from_options("bolt://h", database="x`) MATCH (n", env={})


# -- query text and grouping -------------------------------------------------------------------


def test_query_text_uses_quoted_validated_identifiers() -> None:
    assert neo.constraint_query("gene") == (
        "CREATE CONSTRAINT `gene_uid` IF NOT EXISTS FOR (n:`gene`) REQUIRE n.uid IS UNIQUE"
    )
    text = neo.edge_query("gene", "gene_protein_refseq", "protein")
    assert "MATCH (a:`gene` {uid: r.f}) MATCH (b:`protein` {uid: r.t})" in text
    assert "MERGE (a)-[e:`gene_protein_refseq`]->(b)" in text
    assert "CREATE (a)-[e:" in neo.edge_query("gene", "gene_protein", "protein", create=True)
    assert "$rows" in neo.node_query("gene") and "$rows" in neo.prop_query("gene")


@pytest.mark.parametrize(
    "bad",
    ["gene_protein]->() DETACH DELETE n //", "Gene", "1gene", "gene protein", "gene`", "", "ß"],
)
def test_malicious_identifiers_rejected(bad: str) -> None:
    for build in (
        lambda: neo.constraint_query(bad),
        lambda: neo.node_query(bad),
        lambda: neo.prop_query(bad),
        lambda: neo.edge_query(bad, "gene_protein", "protein"),
        lambda: neo.edge_query("gene", bad, "protein"),
        lambda: neo.edge_query("gene", "gene_protein", bad),
    ):
        with pytest.raises(BadInput):
            build()


def test_grouping_by_label_and_link_name(journal: Journal) -> None:
    fill(journal, 2)
    nodes = neo.group_nodes(journal.iter_nodes())
    assert sorted(nodes) == ["gene", "protein", "structure"]
    gene = next(r for r in nodes["gene"] if r["uid"] == "1000")
    assert gene == {"uid": "1000", "depth": 0, "at": journal.nodes_between(0, 1)[0].fetched}
    edges = neo.group_edges(journal.iter_edges())
    assert sorted(edges) == [
        ("gene", "gene_protein_refseq", "protein"),
        ("protein", "protein_protein", "protein"),
        ("protein", "protein_structure", "structure"),
    ]
    assert len(edges[("gene", "gene_protein_refseq", "protein")]) == 6
    assert edges[("protein", "protein_protein", "protein")][0]["s"] == 900
    props = neo.group_props(journal.iter_props())
    assert props["gene"][0]["data"] == {
        "name": "G0", "organism": "Homo sapiens", "aliases": ["a", "b"], "extra": '{"x": 1}'
    }


def test_property_values_keep_what_neo4j_stores() -> None:
    out = neo.property_values({
        "uid": "hijack", "depth": 9, "name": "BRCA1", "year": 2001, "score": 1.5,
        "gone": None, "ids": [1, 2], "mixed": [1, "a"], "nested": {"a": [1]},
        "huge": 2**70, "nan": float("nan"), "flag": True,
    })
    assert out == {
        "name": "BRCA1", "year": 2001, "score": 1.5, "gone": None, "ids": [1, 2],
        "mixed": '[1, "a"]', "nested": '{"a": [1]}', "huge": json.dumps(2**70),
        "nan": "NaN", "flag": True,
    }


def test_shared_properties_typed_like_the_embedded_store() -> None:
    out = neo.property_values({
        "year": "2001/05/12", "name": ["BRCA1", "RNF53"], "organism": 9606,
        "accession": None, "status": True, "journal": "Nature",
    })
    assert out == {"year": 2001, "name": "BRCA1; RNF53", "organism": "9606", "accession": None,
                   "status": "True", "journal": "Nature"}
    assert neo.property_values({"year": "in press"}) == {"year": None}


def test_malicious_link_name_in_journal_rejected_before_any_query(
    fake: FakeNeo4j, journal: Journal
) -> None:
    journal.add_nodes([("gene", "1", 0), ("protein", "2", 1)])
    journal.add_edges([("gene", "1", "x]->(b) DETACH DELETE b //", "protein", "2", None)])
    sink = make_sink()
    with pytest.raises(BadInput, match="link name"):
        sink.sync(journal)
    assert not [t for t, _ in fake.log if "DETACH" in t]
    assert fake.graph.rels == []
    assert journal.get_cursor(sink.name).edge == 0


# -- sync --------------------------------------------------------------------------------------


def test_sync_pushes_journal_and_is_idempotent(fake: FakeNeo4j, journal: Journal) -> None:
    fill(journal, 5)
    sink = make_sink(batch_size=4)
    report = sink.sync(journal)
    assert report.ok, report
    assert (report.nodes, report.edges, report.props) == (25, 25, 5)
    g = fake.graph
    assert g.edge_keys() == expected_edges(journal)
    assert len(g.nodes) == 25
    assert g.nodes[("gene", "1000")] == {
        "uid": "1000", "depth": 0, "name": "G0", "organism": "Homo sapiens",
        "aliases": ["a", "b"], "extra": '{"x": 1}',
        "fetched": journal.nodes_between(0, 1)[0].fetched,
    }
    assert all(r["fetched"] for r in g.rels)  # every link carries the journal's time
    assert g.constraints == {"gene", "protein", "structure", neo.CURSOR_LABEL}
    # constraints are created in their own transactions, before the label's data
    first_constraint = next(i for i, (t, _) in enumerate(fake.log) if t.startswith("CREATE CONS"))
    first_data = next(i for i, (t, _) in enumerate(fake.log) if t.startswith("UNWIND"))
    assert first_constraint < first_data
    cursor = journal.get_cursor(sink.name)
    assert (cursor.node, cursor.edge) == (journal.max_ids().node, journal.max_ids().edge)
    assert sink.name == "neo4j:bolt://localhost:7687/neo4j"

    before = fake.transactions
    again = sink.sync(journal)
    assert again.ok and (again.nodes, again.edges, again.props) == (0, 0, 0)
    assert fake.transactions - before == 1  # only the cursor claim
    assert g.edge_keys() == expected_edges(journal)

    fill(journal, 2, start=5)
    more = sink.sync(journal)
    assert (more.nodes, more.edges, more.props) == (10, 10, 2)
    assert g.edge_keys() == expected_edges(journal)


def test_rewriting_rows_never_duplicates(fake: FakeNeo4j, journal: Journal) -> None:
    """A crash between the Neo4j commit and the journal's cursor: rows are written again."""
    fill(journal, 3)
    sink = make_sink(fast=False)
    sink.sync(journal)
    journal.set_cursor(sink.name, Cursor())
    fake.graph.cursors.clear()  # even the cursor node lost: everything is pushed again
    report = sink.sync(journal)
    assert report.edges == 15
    assert fake.graph.edge_keys() == expected_edges(journal)
    assert len(fake.graph.nodes) == 15


def test_fast_path_only_when_the_journal_owns_the_database(
    fake: FakeNeo4j, tmp_path: Path
) -> None:
    a = Journal(tmp_path / "a")
    b = Journal(tmp_path / "b")
    fill(a, 3)
    fill(b, 4)  # overlapping records and edges
    sink = make_sink(batch_size=5)
    sink.sync(a)
    assert sink.fast_batches > 0 and sink.merge_batches == 0
    assert fake.graph.edge_keys() == expected_edges(a)

    other = make_sink(batch_size=5)
    other.sync(b)  # a second journal: the database is shared from now on
    assert other.fast_batches == 0 and other.merge_batches > 0
    assert all(c["shared"] for c in fake.graph.cursors.values())
    assert fake.graph.edge_keys() == expected_edges(b)  # b's edges include all of a's

    fill(a, 5)  # a grows into records b wrote: CREATE would duplicate, MERGE must be used
    sink.fast_batches = sink.merge_batches = 0
    sink.sync(a)
    assert sink.fast_batches == 0 and sink.merge_batches > 0
    assert fake.graph.edge_keys() == sorted(set(expected_edges(a)) | set(expected_edges(b)))
    a.close()
    b.close()


def test_non_empty_database_is_never_fast(fake: FakeNeo4j, journal: Journal) -> None:
    """A database first filled by `neo4j-admin import` holds edges but no cursor node."""
    fill(journal, 2)
    fake.graph.nodes[("gene", "1000")] = {"uid": "1000"}
    fake.graph.nodes[("protein", "50000")] = {"uid": "50000"}
    fake.graph.rels.append({"a": ("gene", "1000"), "b": ("protein", "50000"),
                            "type": "gene_protein_refseq"})
    sink = make_sink()
    sink.sync(journal)
    assert sink.fast_batches == 0
    assert fake.graph.edge_keys() == expected_edges(journal)


def test_wiped_database_is_filled_again(fake: FakeNeo4j, journal: Journal) -> None:
    fill(journal, 2)
    sink = make_sink()
    sink.sync(journal)
    fake.graph = Graph()
    report = sink.sync(journal)
    assert report.ok and report.nodes == 10 and report.edges == 10
    assert fake.graph.edge_keys() == expected_edges(journal)


def test_missing_endpoints_are_written_again(fake: FakeNeo4j, journal: Journal) -> None:
    """Records deleted from Neo4j behind the cursor's back come back when edges need them."""
    fill(journal, 2)
    sink = make_sink()
    nodes_max = journal.max_ids().node
    sink.sync(journal)
    # as if only the nodes had been pushed, and one of them was deleted since
    fake.graph.rels.clear()
    del fake.graph.nodes[("protein", "50000")]
    c = fake.graph.cursors[next(iter(fake.graph.cursors))]
    c["edge"] = 0
    journal.set_cursor(sink.name, Cursor(nodes_max, 0, 0))
    report = sink.sync(journal)
    assert report.ok
    assert fake.graph.edge_keys() == expected_edges(journal)
    assert fake.graph.nodes[("protein", "50000")]["depth"] == 1


def test_neo4j_cursor_ahead_of_journal_cursor_is_trusted(fake: FakeNeo4j, journal: Journal) -> None:
    """Killed after the Neo4j commit, before the journal's cursor moved: nothing is redone."""
    fill(journal, 2)
    sink = make_sink()
    sink.sync(journal)
    journal.set_cursor(sink.name, Cursor())
    fake.log.clear()
    report = sink.sync(journal)
    assert report.ok and (report.nodes, report.edges) == (0, 0)
    assert not fake.statements("UNWIND")
    assert journal.get_cursor(sink.name).edge == journal.max_ids().edge


def test_cursor_moved_by_another_process_is_followed(fake: FakeNeo4j, journal: Journal) -> None:
    fill(journal, 3)
    sink = make_sink(batch_size=4)
    moved = {"done": False}

    def other_process(server: FakeNeo4j) -> None:
        # Before the first data transaction: another sync of this journal already did nodes.
        if not moved["done"] and server.graph.cursors:
            moved["done"] = True
            jid = next(iter(server.graph.cursors))
            make_sink(batch_size=100).sync(journal)
            assert server.graph.cursors[jid]["edge"] == journal.max_ids().edge

    fake.before_tx = other_process
    report = sink.sync(journal)
    fake.before_tx = None
    assert report.ok
    assert fake.graph.edge_keys() == expected_edges(journal)


# -- retries and outages -----------------------------------------------------------------------


def test_transient_failures_are_retried(fake: FakeNeo4j, journal: Journal) -> None:
    fill(journal, 2)
    waits: list[float] = []
    sink = make_sink(sleep=waits.append, attempts=5)
    fake.fail_next = 2
    report = sink.sync(journal)
    assert report.ok
    assert len(waits) == 2 and all(w > 0 for w in waits)
    assert fake.graph.edge_keys() == expected_edges(journal)
    fake.fail_next, fake.fail_with = 1, TransientError
    fill(journal, 1, start=2)
    assert sink.sync(journal).ok


def test_retries_are_bounded_and_outage_is_reported(fake: FakeNeo4j, journal: Journal) -> None:
    fill(journal, 2)
    waits: list[float] = []
    sink = make_sink(sleep=waits.append, attempts=3)
    before = journal.stats()
    fake.down = True
    report = sink.sync(journal)
    assert not report.ok
    assert "unavailable" in report.error and "ServiceUnavailable" in report.error
    assert report.pending == 10 + 10 + 2
    assert len(waits) == 2  # three attempts, two waits
    assert journal.stats() == before  # the journal is untouched
    # still down: one quick probe, no new retry cycle
    waits.clear()
    assert sink.sync(journal).error and waits == []
    fake.down = False
    report = sink.sync(journal)
    assert report.ok and report.edges == 10
    assert fake.graph.edge_keys() == expected_edges(journal)


def test_outage_mid_sync_keeps_what_was_committed(fake: FakeNeo4j, journal: Journal) -> None:
    fill(journal, 4)
    sink = make_sink(batch_size=3, attempts=2)
    calls = {"n": 0}

    def die_after_some(server: FakeNeo4j) -> None:
        calls["n"] += 1
        if calls["n"] == 8:
            server.down = True

    fake.before_tx = die_after_some
    report = sink.sync(journal)
    assert report.error and 0 < report.pending < 20 + 20 + 4
    cursor = journal.get_cursor(sink.name)
    assert fake.graph.cursors[next(iter(fake.graph.cursors))]["node"] == cursor.node
    fake.before_tx = None
    fake.down = False
    report = sink.sync(journal)
    assert report.ok
    assert fake.graph.edge_keys() == expected_edges(journal)


def test_connect_errors_are_bad_input(fake: FakeNeo4j) -> None:
    fake.bad_auth = True
    with pytest.raises(BadInput, match="credentials"):
        neo.Neo4jSink.connect("bolt://localhost:7687", "neo4j", "wrong")
    fake.bad_auth, fake.down = False, True
    with pytest.raises(BadInput, match="cannot reach"):
        neo.Neo4jSink.connect("bolt://localhost:7687")
    assert fake.closed == 2


# -- run_cypher --------------------------------------------------------------------------------


def test_run_cypher_reads_in_read_mode(fake: FakeNeo4j) -> None:
    config = neo.Neo4jConfig.from_options("bolt://h", env={})
    fake.canned["MATCH (n) RETURN n.uid AS uid, 1 AS one"] = (["uid", "one"], [["1", 1], ["2", 1]])
    columns, rows = neo.run_cypher(config, "MATCH (n) RETURN n.uid AS uid, 1 AS one", {"x": 1})
    assert columns == ["uid", "one"] and rows == [["1", 1], ["2", 1]]
    assert fake.log[-1][1] == {"x": 1}
    fake.canned["CREATE (n:gene {uid: '1'})"] = ([], [])
    with pytest.raises(BadInput, match="--write"):
        neo.run_cypher(config, "CREATE (n:gene {uid: '1'})", {})
    assert neo.run_cypher(config, "CREATE (n:gene {uid: '1'})", {}, write=True) == ([], [])


def test_run_cypher_errors_are_one_line(fake: FakeNeo4j) -> None:
    config = neo.Neo4jConfig.from_options("bolt://h", env={})
    fake.canned["MATCH (n RETURN n"] = CypherSyntaxError(
        "Invalid input 'RETURN': expected ')'\n\"MATCH (n RETURN n\"\n         ^"
    )
    with pytest.raises(BadInput, match="refused the query: Invalid input") as info:
        neo.run_cypher(config, "MATCH (n RETURN n", {})
    assert "\n" not in str(info.value)
    fake.down = True
    with pytest.raises(BadInput, match="cannot reach"):
        neo.run_cypher(config, "RETURN 1", {})


# -- the CLI -----------------------------------------------------------------------------------


def test_sync_cli_pushes_exactly_the_missing_rows(
    fake: FakeNeo4j, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    with Journal(StorePaths.of(store).journal) as j:
        fill(j, 3)
        sink = make_sink(attempts=1)
        fake.down = True
        assert sink.sync(j).pending == 15 + 15 + 3  # the crawl's outage
        fake.down = False
        sink.sync(j)  # Neo4j back for a while
        fill(j, 2, start=3)
        fake.down = True
        assert sink.sync(j).pending == 10 + 10 + 2
        expected = expected_edges(j)
    fake.down = False
    fake.log.clear()
    runner = CliRunner()
    result = runner.invoke(
        main, ["sync", "--store", str(store), "--neo4j", "bolt://localhost:7687", "--format",
               "json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report == [{"sink": "neo4j:bolt://localhost:7687/neo4j", "nodes": 10, "edges": 10,
                       "props": 2, "changes": 0, "pending": 0, "repaired": 0, "error": None}]
    pushed = sum(len(p["rows"]) for _, p in fake.statements("UNWIND"))
    assert pushed == 10 + 10 + 2
    assert fake.graph.edge_keys() == expected
    again = runner.invoke(main, ["sync", "--store", str(store), "--neo4j", "bolt://localhost"])
    assert again.exit_code == 0 and "in step" in again.output


def test_sync_cli_outage_exits_3_with_one_line(fake: FakeNeo4j, tmp_path: Path) -> None:
    store = tmp_path / "store"
    with Journal(StorePaths.of(store).journal) as j:
        fill(j, 1)

    def fail_after_connect(server: FakeNeo4j) -> None:
        # connecting works (and its first read), every later transaction fails
        if server.transactions >= 1:
            server.fail_next = 1

    fake.before_tx = fail_after_connect
    runner = CliRunner()
    result = runner.invoke(
        main, ["sync", "--store", str(store), "--neo4j", "bolt://localhost:7687"],
        env={"NEO4J_PASSWORD": "pw-not-shown"},
    )
    assert result.exit_code == 3
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "rows missing" in errors[0]
    assert "pw-not-shown" not in result.output


@pytest.mark.parametrize(
    ("setup", "needle"),
    [("bad_auth", "credentials"), ("down", "cannot reach")],
)
def test_sync_cli_connect_errors_exit_2(
    fake: FakeNeo4j, tmp_path: Path, setup: str, needle: str
) -> None:
    store = tmp_path / "store"
    Journal(StorePaths.of(store).journal).close()
    setattr(fake, setup, True)
    result = CliRunner().invoke(
        main, ["sync", "--store", str(store), "--neo4j", "bolt://localhost:7687"],
        env={"NEO4J_PASSWORD": "pw-not-shown"},
    )
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and needle in lines[0]
    assert "Traceback" not in result.output and "pw-not-shown" not in result.output


def test_sync_cli_bad_input(fake: FakeNeo4j, tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(main, ["sync", "--store", str(tmp_path / "nope"), "--embedded"])
    assert missing.exit_code == 2 and "no entrez-graph store" in missing.output
    store = tmp_path / "store"
    Journal(StorePaths.of(store).journal).close()
    nothing = runner.invoke(main, ["sync", "--store", str(store)], env={"NEO4J_URI": None})
    assert nothing.exit_code == 2 and "nothing to sync" in nothing.output
    bad = runner.invoke(main, ["sync", "--store", str(store), "--neo4j", "http://x"])
    assert bad.exit_code == 2 and "invalid Neo4j URI" in bad.output


def test_journal_id_is_stable(journal: Journal) -> None:
    first = neo.journal_id(journal)
    assert neo.journal_id(journal) == first and len(first) == 32



# -- a real crawl (emulator) into the stand-in: outage, then `sync` --------------------------


def _journal_graph(store: Path) -> tuple[set[tuple[str, str]], list[tuple]]:
    with Journal(StorePaths.of(store).journal, create=False) as j:
        nodes = {(n.db, n.uid) for n in j.iter_nodes()}
        return nodes, expected_edges(j)


def test_crawl_outage_then_sync_pushes_exactly_the_missing_rows(
    fake: FakeNeo4j, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crawler.emulator import Emulator, World

    if "crawl" not in main.commands:
        pytest.skip("the crawl command is not in this tree yet")
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))
    monkeypatch.delenv("NCBI_API_KEY", raising=False)
    store = tmp_path / "store"

    def outage_after_first_level(server: FakeNeo4j) -> None:
        if any(c["node"] for c in server.graph.cursors.values()):
            server.down = True  # Neo4j goes away once the first level is in

    fake.before_tx = outage_after_first_level
    runner = CliRunner()
    with Emulator(World.generate(seed=5, size=600)) as emu:
        result = runner.invoke(main, [
            "crawl", "gene:672", "--depth", "2", "--rps", "1000", "--store", str(store),
            "--eutils-url", emu.url, "--neo4j", "bolt://localhost:7687", "--no-embedded",
        ], env={"NCBI_EMAIL": "t@example.org", "NEO4J_PASSWORD": "pw-not-shown"})
    assert result.exit_code == 3, result.output
    assert "pw-not-shown" not in result.output
    nodes, edges = _journal_graph(store)
    assert len(nodes) > 20 and len(edges) > 20
    held = set(fake.graph.nodes)
    assert held and held < nodes  # the first level only
    status = json.loads(runner.invoke(
        main, ["status", "--store", str(store), "--format", "json"]).output)
    behind = status["sinks"]["neo4j:bolt://localhost:7687/neo4j"]
    assert behind["total"] > 0

    fake.before_tx = None
    fake.down = False
    fake.log.clear()
    result = runner.invoke(main, ["sync", "--store", str(store), "--neo4j",
                                  "bolt://localhost:7687", "--format", "json"])
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.output)
    assert (report["nodes"], report["edges"], report["props"]) == (
        behind["nodes"], behind["edges"], behind["props"])
    pushed = sum(len(p["rows"]) for _, p in fake.statements("UNWIND"))
    assert pushed == behind["total"]
    assert set(fake.graph.nodes) == nodes
    assert fake.graph.edge_keys() == edges


def test_real_driver_unreachable_server_is_exit_2(tmp_path: Path) -> None:
    """No stand-in: the installed driver against a closed local port."""
    import socket

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    store = tmp_path / "store"
    Journal(StorePaths.of(store).journal).close()
    for uri in (f"bolt://127.0.0.1:{port}", f"neo4j://127.0.0.1:{port}"):
        result = CliRunner().invoke(main, ["sync", "--store", str(store), "--neo4j", uri])
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Error: cannot reach Neo4j at {uri}")


def test_sync_cli_embedded_and_neo4j_together(fake: FakeNeo4j, tmp_path: Path) -> None:
    pytest.importorskip("ladybug")
    store = tmp_path / "store"
    with Journal(StorePaths.of(store).journal) as j:
        fill(j, 2)
        expected = expected_edges(j)
    result = CliRunner().invoke(main, ["sync", "--store", str(store), "--embedded", "--neo4j",
                                       "bolt://localhost:7687", "--format", "json"])
    assert result.exit_code == 0, result.output
    reports = json.loads(result.output)
    assert [r["sink"] for r in reports] == ["embedded", "neo4j:bolt://localhost:7687/neo4j"]
    assert all((r["nodes"], r["edges"], r["pending"]) == (10, 10, 0) for r in reports)
    assert fake.graph.edge_keys() == expected
    status = json.loads(CliRunner().invoke(
        main, ["status", "--store", str(store), "--format", "json"]).output)
    assert {name: info.get("total") for name, info in status["sinks"].items()} == {
        "embedded": 0, "neo4j:bolt://localhost:7687/neo4j": 0}


@pytest.mark.parametrize(
    ("setup", "needle"), [("bad_auth", "refused the credentials"), ("down", "cannot reach")]
)
def test_crawl_cli_connect_errors_exit_2_before_crawling(
    fake: FakeNeo4j, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setup: str, needle: str
) -> None:
    from crawler.emulator import Emulator, World

    if "crawl" not in main.commands:
        pytest.skip("the crawl command is not in this tree yet")
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))
    setattr(fake, setup, True)
    with Emulator(World.generate(seed=5, size=200)) as emu:
        result = CliRunner().invoke(main, [
            "crawl", "gene:672", "--store", str(tmp_path / "store"), "--eutils-url", emu.url,
            "--neo4j", "bolt://localhost:7687",
        ], env={"NCBI_EMAIL": "t@example.org", "NEO4J_PASSWORD": "pw-not-shown"})
        sent = len(emu.log)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and needle in lines[0]
    assert "pw-not-shown" not in result.output
    assert sent == 0  # nothing asked of NCBI before Neo4j was checked
