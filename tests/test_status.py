"""`entrez-graph status` through the real CLI: table and JSON, sinks behind, missing store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawler.cli import main
from crawler.journal import Cursor, Journal
from crawler.store import StorePaths


def _fill(store: Path) -> None:
    """A small journal: a finished gene, two proteins (one pending), a failed record, requests."""
    with Journal(StorePaths.of(store).journal) as j:
        j.add_nodes([("gene", "672", 0)], state="done")
        j.add_nodes([("protein", "4557287", 1), ("protein", "1000", 1)])
        j.add_nodes([("structure", "1JM7", 2)], state="terminal")
        j.add_edges(
            [
                ("gene", "672", "gene_protein_refseq", "protein", "4557287", None),
                ("gene", "672", "gene_protein", "protein", "4557287", None),
                ("gene", "672", "gene_protein", "protein", "1000", None),
                ("protein", "4557287", "protein_structure", "structure", "1JM7", None),
            ]
        )
        j.set_node_state("protein", ["4557287"], "done")
        j.record_failure("protein", "1000", "neighbor", "HTTP 400: bad id")
        j.set_node_state("protein", ["1000"], "failed")
        j.add_nodes([("pubmed", "1", 1)])
        j.count_request("acheck", 2)
        j.count_request("neighbor", 5)
        j.set_props("gene", "672", {"name": "BRCA1"})
        j.set_cursor("neo4j:bolt://localhost:7687/neo4j", Cursor(node=2, edge=4, prop=0))


def test_status_json_counts(tmp_path: Path) -> None:
    _fill(tmp_path)
    result = CliRunner().invoke(main, ["status", "--store", str(tmp_path), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["nodes"] == 5
    assert report["edges"] == 4
    assert report["by_db"] == {"gene": 1, "protein": 2, "pubmed": 1, "structure": 1}
    assert report["by_link"] == {
        "gene_protein": 2,
        "gene_protein_refseq": 1,
        "protein_structure": 1,
    }
    assert report["pending"] == 1  # pubmed:1 is new; the failed protein is not pending
    assert report["failed"] == 1
    assert report["named"] == 1
    assert report["requests"] == {"acheck": 2, "neighbor": 5}
    assert report["requests_sent"] == 7
    assert report["complete"] is False
    neo = report["sinks"]["neo4j:bolt://localhost:7687/neo4j"]
    # 5 nodes, cursor at 2 -> 3 behind; edges all held; the one props row not yet.
    assert neo == {"nodes": 3, "edges": 0, "props": 1, "changes": 0, "total": 4}
    assert "embedded" not in report["sinks"]  # no graph file in this store


def test_status_table(tmp_path: Path) -> None:
    _fill(tmp_path)
    result = CliRunner().invoke(main, ["status", "--store", str(tmp_path)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Records:   5  (pending 1, failed 1, no answer 0, named 1)" in out
    assert "Edges:     4" in out
    assert "unfinished (1 records to expand)" in out
    lines = [line.split() for line in out.splitlines()]
    assert ["protein", "2"] in lines
    assert ["gene_protein", "2"] in lines
    assert ["protein_structure", "1"] in lines
    assert any(line[:2] == ["neo4j:bolt://localhost:7687/neo4j", "4"] for line in lines)


def test_status_empty_journal(tmp_path: Path) -> None:
    Journal(StorePaths.of(tmp_path).journal).close()
    result = CliRunner().invoke(main, ["status", "--store", str(tmp_path), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["nodes"], report["edges"], report["complete"]) == (0, 0, False)
    table = CliRunner().invoke(main, ["status", "--store", str(tmp_path)])
    assert "Crawl:     empty" in table.output
    assert "(no rows)" in table.output


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_status_missing_store_is_one_line_exit_2_and_creates_nothing(
    tmp_path: Path, fmt: str
) -> None:
    store = tmp_path / "nowhere"
    result = CliRunner().invoke(main, ["status", "--store", str(store), "--format", fmt])
    assert result.exit_code == 2
    assert result.output.startswith("Error: no entrez-graph store at")
    assert len(result.output.strip().splitlines()) == 1
    assert not store.exists()


def test_status_directory_without_journal(tmp_path: Path) -> None:
    (tmp_path / "somefile").write_text("x")
    result = CliRunner().invoke(main, ["status", "--store", str(tmp_path)])
    assert result.exit_code == 2
    assert not (tmp_path / "journal.sqlite").exists()


def test_status_not_a_journal(tmp_path: Path) -> None:
    (tmp_path / "journal.sqlite").write_bytes(b"this is not sqlite at all" * 100)
    result = CliRunner().invoke(main, ["status", "--store", str(tmp_path)])
    assert result.exit_code != 0
    assert result.output.startswith("Error:")
    assert "Traceback" not in result.output


def test_status_after_a_real_crawl_and_an_embedded_store_behind(
    tmp_path: Path, emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the CLI: crawl the emulator, status agrees with the journal; rows the embedded
    store lacks (added to the journal behind its back) show as the sink being behind."""
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))
    store = tmp_path / "store"
    runner = CliRunner()
    crawl = runner.invoke(
        main,
        ["crawl", "gene:672", "--depth", "1", "--store", str(store), "--eutils-url", emulator.url,
         "--rps", "1000", "--format", "json"],
    )
    assert crawl.exit_code == 0, crawl.output
    crawled = json.loads(crawl.output)
    result = runner.invoke(main, ["status", "--store", str(store), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    for key in ("nodes", "edges", "by_db", "by_link", "pending", "failed"):
        assert report[key] == crawled[key], key
    assert report["complete"] is True
    assert report["requests_sent"] == crawled["requests_total"]
    assert report["sinks"]["embedded"]["total"] == 0

    with Journal(StorePaths.of(store).journal) as j:
        j.add_nodes([("gene", "999999999", 2)], state="terminal")
        j.add_edges([("gene", "672", "gene_gene_test", "gene", "999999999", None)])
    report = json.loads(
        runner.invoke(main, ["status", "--store", str(store), "--format", "json"]).output
    )
    embedded = report["sinks"]["embedded"]
    assert {k: embedded[k] for k in ("nodes", "edges", "props", "total")} == {
        "nodes": 1, "edges": 1, "props": 0, "total": 2}
    assert embedded["state"] == "behind" and embedded["differences"] == []
    # the real counts, read from the store itself, beside the journal's
    assert embedded["held"]["nodes"] == crawled["by_db"]
    assert embedded["held"]["edges"] == crawled["by_link"]
    table = runner.invoke(main, ["status", "--store", str(store)]).output
    assert "1 records, 1 edges, 0 property rows to load" in table
