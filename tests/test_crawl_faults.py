"""Under every fault NCBI produces, at high rates, the crawl still makes exactly the right graph.

Faults (emulator): 429 with NCBI's JSON body, 5xx, dropped connections, truncated XML, a
transient `<ERROR>` inside a 200, and a LinkSet silently left out of a per-ID answer. A poisoned
ID (HTTP 400 for any request holding it, as a malformed ID gets) ends up in `failed` with its
error, and the records batched with it are crawled.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_crawl_equality import dumped, expected_graph, journal_graph, ladybug_graph

from crawler.cli import main
from crawler.emulator import Emulator, World
from crawler.journal import Journal
from crawler.store import StorePaths

__all__ = ["dumped"]  # the fixture, shared with the equality tests

FAULTS = "429=0.2,5xx=0.1,drop=0.05,truncate=0.05,error=0.05,partial=0.05"
ARGS = ["gene:672", "pubmed:9298984", "--depth", "2", "--scores", "--batch-size", "40"]


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path):
    monkeypatch.delenv("NEO4J_URI", raising=False)
    monkeypatch.delenv("NCBI_API_KEY", raising=False)
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))


def crawl(url: str, store: Path, *args: str) -> dict:
    result = CliRunner().invoke(
        main, ["crawl", *args, "--store", str(store), "--eutils-url", url, "--rps", "1000",
               "--format", "json"],
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # stderr may hold retry warnings


def test_every_fault_type_gives_the_fault_free_graph(world: World, dumped, tmp_path):
    links, _ = dumped
    with Emulator(world, rate_limit=0) as clean:
        report = crawl(clean.url, tmp_path / "clean", *ARGS)
    with Emulator(world, rate_limit=0, faults=FAULTS, fault_seed=11) as faulty:
        faulty_report = crawl(faulty.url, tmp_path / "faulty", *ARGS)
        statuses = Counter(e["status"] for e in faulty.log)
        faults = Counter(e.get("fault") for e in faulty.log if e.get("fault"))
    # every kind of fault really happened
    assert set(faults) == {"429", "5xx", "drop", "truncate", "error", "partial"}, faults
    assert statuses[429] and any(500 <= s < 600 for s in statuses)
    seeds = [tuple(s.split(":")) for s in report["seeds"]]
    expected = expected_graph(links, seeds, 2, default_filters=True, scores=True)
    assert journal_graph(tmp_path / "clean") == expected
    assert journal_graph(tmp_path / "faulty") == expected
    assert ladybug_graph(tmp_path / "faulty") == expected
    assert faulty_report["failed"] == 0 and faulty_report["no_answer"] == 0
    assert faulty_report["complete"]


def test_poisoned_id_fails_alone_and_its_batch_mates_are_crawled(world: World, dumped, tmp_path):
    links, _ = dumped
    seeds = [("gene", "672")]
    level1 = sorted({(dbto, t) for ln, dbto, t, _ in links[("gene", "672")]
                     if ln == "gene_protein"}, key=lambda r: int(r[1]))
    assert len(level1) > 5
    poisoned = level1[len(level1) // 2]
    with Emulator(world, rate_limit=0, poison=[poisoned[1]], faults="5xx=0.1,partial=0.05",
                  fault_seed=3) as emu:
        report = crawl(emu.url, tmp_path / "s", "gene:672", "--depth", "2",
                       "--link", "gene_protein", "--link", "protein_pubmed",
                       "--link", "protein_structure", "--batch-size", "50")
        refused = [e for e in emu.log if e["status"] == 400]
    assert refused, "the poisoned ID was never asked"
    nodes, edges = expected_graph(
        links, seeds, 2, allowed={"gene_protein", "protein_pubmed", "protein_structure"},
        not_expanded=frozenset({poisoned}),
    )
    assert journal_graph(tmp_path / "s") == (nodes, edges)
    assert (*poisoned, 1) in nodes  # recorded as a node, not expanded
    followed = ("protein_pubmed", "protein_structure")
    mates = [r for r in level1 if r != poisoned
             and any(ln in followed for ln, _, _, _ in links.get(r, []))]
    assert mates and all(any(e[:2] == mate for e in edges) for mate in mates)
    with Journal(StorePaths.of(tmp_path / "s").journal, create=False) as j:
        failed = j.execute("SELECT db, uid, step, error FROM failed").fetchall()
    assert {(db, uid) for db, uid, _, _ in failed} == {poisoned}
    assert all(step.startswith("neighbor:") and error for _, _, step, error in failed)
    assert report["failed"] == 1 and report["complete"]

    # --retry-failed asks again; the ID is still refused, nothing else changes
    with Emulator(world, rate_limit=0, poison=[poisoned[1]]) as emu:
        again = crawl(emu.url, tmp_path / "s", "gene:672", "--depth", "2",
                      "--link", "gene_protein", "--link", "protein_pubmed",
                      "--link", "protein_structure", "--batch-size", "50", "--retry-failed",
                      "--switch-endpoint")  # a new emulator of the same world
        asked = [e for e in emu.log if "elink" in e["path"]]
    assert asked and again["failed"] == 1
    assert journal_graph(tmp_path / "s") == (nodes, edges)
