"""Neo4j real counts against the journal (issue 10): verify, repair by `sync`, `status --neo4j`,
against the stand-in in tests/neo4j_fake.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from neo4j_fake import FakeNeo4j, expected_edges, fill, install, make_sink, open_journal

import crawler.sinks.neo4j as neo
from crawler.cli import main
from crawler.journal import Journal
from crawler.sinks.verify import Counts, expected_counts
from crawler.store import StorePaths

URI = "bolt://localhost:7687"
SINK = "neo4j:bolt://localhost:7687/neo4j"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeNeo4j:
    return install(monkeypatch)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    yield from open_journal(tmp_path)


def synced_store(tmp_path: Path, n_genes: int = 4) -> Path:
    store = tmp_path / "store"
    with Journal(StorePaths.of(store).journal) as j:
        fill(j, n_genes)
        assert make_sink().sync(j).ok
    return store


def sync(store: Path, *extra: str):
    return CliRunner().invoke(main, ["sync", "--store", str(store), "--neo4j", URI,
                                     "--format", "json", *extra])


def graph_view(fake: FakeNeo4j) -> tuple:
    return sorted(fake.graph.nodes.items()), fake.graph.edge_keys()


# -- real counts --------------------------------------------------------------------------------


def test_real_counts_equal_the_journal_after_a_sync(fake: FakeNeo4j, journal: Journal) -> None:
    fill(journal, 3)
    sink = make_sink()
    sink.sync(journal)
    real = sink.real_counts()
    assert real == Counts(
        {"gene": 3, "protein": 9, "structure": 3},
        {"gene_protein_refseq": 9, "protein_protein": 3, "protein_structure": 3},
        {"gene": 6},  # name and organism of each gene: property values, not records
    )
    assert real == expected_counts(journal, journal.get_cursor(sink.name))
    fake.log.clear()
    before = fake.transactions
    assert sink.verify(journal) == []
    assert fake.transactions - before == 2  # the cursor read, then every count in one
    # one count per label and per type (and per label for properties), in one read transaction
    counts = [t for t, _ in fake.log if t.startswith("MATCH (")
              and ("count(" in t or "sum(" in t) and "EntrezGraphCursor" not in t]
    assert len(counts) == 3 + 3 + 3


def test_labels_that_are_not_ours_are_not_counted(fake: FakeNeo4j, journal: Journal) -> None:
    fill(journal, 1)
    sink = make_sink()
    sink.sync(journal)
    fake.graph.nodes[("Person", "1")] = {"uid": "1"}
    assert "Person" not in sink.real_counts().nodes
    assert sink.verify(journal) == []


# -- sync repairs what is missing ---------------------------------------------------------------


def test_sync_rewrites_rows_deleted_behind_its_back(fake: FakeNeo4j, tmp_path: Path) -> None:
    store = synced_store(tmp_path)
    exact = graph_view(fake)
    g = fake.graph
    # `query --write "MATCH (n:structure) DETACH DELETE n"`, one link removed, one name removed
    for key in [k for k in g.nodes if k[0] == "structure"]:
        del g.nodes[key]
    g.rels = [r for r in g.rels if r["b"][0] != "structure"]
    g.rels.remove(next(r for r in g.rels if r["type"] == "protein_protein"))
    g.nodes[("gene", "1001")].pop("name")
    g.nodes[("gene", "1001")].pop("organism")
    fake.log.clear()
    result = sync(store)
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.stdout)
    assert (report["nodes"], report["edges"], report["pending"]) == (0, 0, 0)
    assert "lacked rows its cursor covers" in result.stderr
    assert "structure records: 0 held, 4 in the journal" in result.stderr
    assert graph_view(fake) == exact
    # only the labels and link names that differed were written again
    rewritten = {t.split("`")[1] if "SET n" in t else t.split("[e:`")[1].split("`")[0]
                 for t, _ in fake.statements("UNWIND")}
    assert rewritten == {"structure", "protein_structure", "protein_protein", "gene"}
    again = sync(store)
    assert again.exit_code == 0 and "lacked" not in again.stderr


def test_sync_reports_a_surplus_and_leaves_it(fake: FakeNeo4j, tmp_path: Path) -> None:
    store = synced_store(tmp_path)
    g = fake.graph
    g.nodes[("gene", "999999")] = {"uid": "999999"}  # a user's `query --write "CREATE …"`
    g.rels.append({"a": ("gene", "1000"), "b": ("gene", "999999"), "type": "gene_gene"})
    result = sync(store)
    assert result.exit_code == 0, result.output
    assert "holds rows the journal does not (not written by this journal" in result.stderr
    assert "gene records: 5 held, 4 in the journal" in result.stderr
    assert ("gene", "999999") in g.nodes and any(r["type"] == "gene_gene" for r in g.rels)


def test_a_shared_database_is_named_as_the_reason_for_a_surplus(
    fake: FakeNeo4j, tmp_path: Path
) -> None:
    store = synced_store(tmp_path, 2)
    with Journal(tmp_path / "other.sqlite") as other:
        fill(other, 3, start=10)
        assert make_sink().sync(other).ok
    result = sync(store)
    assert result.exit_code == 0, result.output
    assert "shared with another journal" in result.stderr


def test_a_difference_that_stays_is_exit_3(fake: FakeNeo4j, tmp_path: Path) -> None:
    store = synced_store(tmp_path)
    fake.canned[neo.count_nodes_query("gene")] = (["n"], [[1]])  # the server keeps losing them
    result = sync(store)
    assert result.exit_code == 3, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "still differs from the journal" in errors[0]


def test_repair_against_a_journal_cursor_never_pushes_beyond_it(
    fake: FakeNeo4j, journal: Journal
) -> None:
    fill(journal, 2)
    sink = make_sink()
    sink.sync(journal)
    cursor = journal.get_cursor(sink.name)
    fill(journal, 2, start=2)  # not synced yet
    fake.graph.rels.clear()
    fake.log.clear()
    assert sink.verify_and_repair(journal) == []
    assert len(fake.graph.rels) == cursor.edge  # exactly what the cursor covers, no more
    assert fake.graph.edge_keys() == sorted(
        k for k in expected_edges(journal) if k[1] in {"1000", "1001", "50000", "50010"}
    )


# -- status --------------------------------------------------------------------------------------


def status(store: Path, *extra: str, env: dict | None = None) -> dict:
    result = CliRunner().invoke(main, ["status", "--store", str(store), "--format", "json",
                                       *extra], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_status_with_neo4j_shows_real_counts(fake: FakeNeo4j, tmp_path: Path) -> None:
    store = synced_store(tmp_path)
    info = status(store, "--neo4j", URI)["sinks"][SINK]
    assert info["in_step"] and info["differences"] == [] and info["total"] == 0
    assert info["real"] == info["expected"]
    assert info["real"]["nodes"] == {"gene": 4, "protein": 12, "structure": 4}
    del fake.graph.nodes[("gene", "1002")]
    info = status(store, "--neo4j", URI)["sinks"][SINK]
    assert not info["in_step"] and info["total"] == 0  # the cursor alone says "in step"
    assert info["differences"] == ["gene records: 3 held, 4 in the journal",
                                   "gene property values: 6 held, 8 in the journal"]
    table = CliRunner().invoke(main, ["status", "--store", str(store), "--neo4j", URI])
    assert "diverged: gene records: 3 held, 4 in the journal" in table.output


def test_status_without_neo4j_never_connects(fake: FakeNeo4j, tmp_path: Path) -> None:
    store = synced_store(tmp_path)
    before = len(fake.configs)
    info = status(store, env={"NEO4J_URI": URI})["sinks"][SINK]
    assert len(fake.configs) == before
    assert info["total"] == 0 and "real" not in info  # the journal's copy of the cursor only


def test_status_with_an_unreachable_neo4j_is_one_line_exit_2(
    fake: FakeNeo4j, tmp_path: Path
) -> None:
    store = synced_store(tmp_path)
    fake.down = True
    result = CliRunner().invoke(main, ["status", "--store", str(store), "--neo4j", URI])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: cannot reach Neo4j")


def test_status_table_without_neo4j_says_the_cursor_is_all_it_knows(
    fake: FakeNeo4j, tmp_path: Path
) -> None:
    store = synced_store(tmp_path)
    table = CliRunner().invoke(main, ["status", "--store", str(store)])
    assert table.exit_code == 0, table.output
    assert "in step by its cursor (with --neo4j URI, status counts what it holds)" in table.output
    table = CliRunner().invoke(main, ["status", "--store", str(store), "--neo4j", URI])
    line = next(ln for ln in table.output.splitlines() if SINK in ln)
    assert line.rstrip().endswith("in step")


def test_status_of_a_database_no_sync_wrote_names_no_missing_label(
    fake: FakeNeo4j, tmp_path: Path
) -> None:
    """No cursor label yet: asking for it would draw a 01N50 notification."""
    store = tmp_path / "store"
    with Journal(StorePaths.of(store).journal) as j:
        fill(j, 1)
    info = status(store, "--neo4j", URI)["sinks"][SINK]
    assert not info["cursor"]["held"] and info["total"] == 5 + 5 + 1
    assert not [t for t, _ in fake.log if neo.CURSOR_LABEL in t]


def test_every_session_of_a_sink_shares_one_bookmark_manager(
    fake: FakeNeo4j, journal: Journal
) -> None:
    fill(journal, 2)
    sink = make_sink(verify=True)
    sink.sync(journal)
    managers = {id(s["bookmark_manager"]) for s in fake.sessions if "bookmark_manager" in s}
    assert len(managers) == 1 and len(fake.sessions) > 3
