"""Growing a stored crawl ends exactly where a fresh crawl with the final settings does, and asks
NCBI (the emulator) nothing it already answered.

Each case crawls step by step into one store, then crawls the final settings afresh into another,
and compares what the journal holds, what LadybugDB holds (queried) and an export. The emulator's
request log gives every (record, link name) pair and every acheck'd record asked for: none may be
asked twice across the steps.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from growcheck import crawl_cli as run
from growcheck import export_rows, graph
from storecheck import assert_store_is_journal

from crawler.cli import main

SEEDS = ["gene:672", "protein:6552302"]


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path):
    monkeypatch.delenv("NEO4J_URI", raising=False)
    monkeypatch.delenv("NCBI_API_KEY", raising=False)
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))




def asked(log: list[dict]) -> Counter:
    """What the requests asked for: (cmd, dbfrom, linkname or db, id) for each id sent."""
    out: Counter = Counter()
    for entry in log:
        if not entry["path"].endswith("elink.fcgi"):
            continue
        p = entry["params"]
        ids = p.get("id")
        ids = ids if isinstance(ids, list) else [ids]
        what = p.get("linkname") or p.get("db")
        for value in ids:
            for uid in str(value).split(","):
                out[(p.get("cmd"), p.get("dbfrom"), what, uid)] += 1
    return out






def grow_and_compare(emulator, tmp_path: Path, steps: list[list[str]], final: list[str]) -> None:
    store = tmp_path / "grown"
    before = len(emulator.log)
    sizes = []
    for args in steps:
        run(emulator.url, store, *args)
        assert_store_is_journal(store)
        sizes.append(sum(graph(store)[1].values()))
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0], f"the steps did not grow: {sizes}"
    requests = asked(emulator.log[before:])
    twice = {k: n for k, n in requests.items() if n > 1}
    assert not twice, f"asked again: {sorted(twice)[:5]}"
    fresh = tmp_path / "fresh"
    run(emulator.url, fresh, *final)
    assert graph(store) == graph(fresh)
    assert_store_is_journal(store)
    assert export_rows(store, tmp_path) == export_rows(fresh, tmp_path)
    assert not (store / "journal.next.sqlite").exists()


def test_deeper_one_level_at_a_time(emulator, tmp_path):
    grow_and_compare(
        emulator, tmp_path,
        [[*SEEDS, "--depth", "1"], ["--depth", "2"], ["--depth", "3"]],
        [*SEEDS, "--depth", "3"],
    )


def test_more_seeds(emulator, tmp_path):
    grow_and_compare(
        emulator, tmp_path,
        [[SEEDS[0], "--depth", "2"], [SEEDS[1]], ["pubmed:9298984"]],
        [*SEEDS, "pubmed:9298984", "--depth", "2"],
    )


def test_more_link_names(emulator, tmp_path):
    grow_and_compare(
        emulator, tmp_path,
        [[*SEEDS, "--depth", "2", "--link", "gene_protein_refseq"],
         ["--link", "protein_pubmed"], ["--link", "pubmed_pubmed", "--link", "protein_gene"]],
        [*SEEDS, "--depth", "2", "--link", "gene_protein_refseq", "--link", "protein_pubmed",
         "--link", "pubmed_pubmed", "--link", "protein_gene"],
    )


def test_named_links_to_every_link_name_and_a_larger_cap(emulator, tmp_path):
    grow_and_compare(
        emulator, tmp_path,
        [[*SEEDS, "--depth", "2", "--link", "gene_protein", "--max-links-per-record", "2"],
         ["--max-links-per-record", "5"]],
        [*SEEDS, "--depth", "2", "--link", "gene_protein", "--max-links-per-record", "5"],
    )


def test_max_nodes_grows_in_the_same_order(emulator, tmp_path):
    grow_and_compare(
        emulator, tmp_path,
        [[*SEEDS, "--depth", "2", "--max-nodes", "40", "--batch-size", "17"],
         ["--max-nodes", "90"], ["--depth", "3"]],
        [*SEEDS, "--depth", "3", "--max-nodes", "90", "--batch-size", "17"],
    )


def test_discovery_all_grows_too(emulator, tmp_path):
    grow_and_compare(
        emulator, tmp_path,
        [[*SEEDS, "--depth", "1", "--discovery", "all"], ["--depth", "2", "--discovery", "all"]],
        [*SEEDS, "--depth", "2"],
    )


@pytest.mark.parametrize("args, says", [
    (["--depth", "1"], "--depth 2 -> 1"),
    (["--link", "gene_protein"], "instead of every one"),
    (["--exclude-link", "gene_pubmed"], "--exclude-link gene_pubmed"),
    (["--scores"], "--scores off -> on"),
])
def test_narrowing_is_refused_and_nothing_changes(emulator, tmp_path, args, says):
    store = tmp_path / "s"
    run(emulator.url, store, *SEEDS, "--depth", "2")
    before = graph(store)
    _, err = run(emulator.url, store, *args, code=2)
    assert says in err and "export --link/--db" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert graph(store) == before


def test_dry_run_shows_the_growth_and_writes_nothing(emulator, tmp_path):
    store = tmp_path / "s"
    run(emulator.url, store, *SEEDS, "--depth", "1")
    journal = (store / "journal.sqlite").read_bytes()
    result = CliRunner().invoke(main, ["crawl", "--store", str(store), "--depth", "2",
                                       "--eutils-url", emulator.url, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "growing the stored crawl" in result.stdout
    assert "grows:       --depth 1 -> 2" in result.stdout
    assert "answers the store holds" in result.stdout
    plan = json.loads(CliRunner().invoke(
        main, ["crawl", "--store", str(store), "--depth", "2", "--eutils-url", emulator.url,
               "--dry-run", "--format", "json"]).stdout)
    assert plan["grows"] == "--depth 1 -> 2" and plan["known_answers"] > 0
    assert plan["estimated_requests"] > 0
    assert (store / "journal.sqlite").read_bytes() == journal
    assert not (store / "journal.next.sqlite").exists()
    # the growth itself says what grows and what it costs, then what changed
    _, err = run(emulator.url, store, "--depth", "2")
    assert "growing" in err and "--depth 1 -> 2" in err and "requests" in err
    assert "grown:" in err


def test_more_databases_and_fewer_exclusions(emulator, tmp_path):
    grow_and_compare(
        emulator, tmp_path,
        [[*SEEDS, "--depth", "2", "--db", "protein", "--exclude-link", "gene_protein",
          "--exclude-link", "protein_protein"],
         ["--db", "pubmed"],                             # named databases add to the stored
         ["--exclude-link", "protein_protein"],          # one exclusion fewer
         ["--include-subsets", "--expand-hubs"]],
        [*SEEDS, "--depth", "2", "--db", "protein", "--db", "pubmed", "--exclude-link",
         "protein_protein", "--include-subsets", "--expand-hubs"],
    )
