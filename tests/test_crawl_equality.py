"""A crawl equals, record for record and edge for edge, the subgraph computed from the world's dump.

The expected graph is computed here, independently of the engine, from the emulator's `--dump`
lines by the rule: seeds have depth 0; every record of depth < D is expanded (with the default
filters: not hub databases, and a subset link name is skipped where its parent is present);
every link of an expanded record whose link name passes the filter is an edge (self-links
excluded); the records are the seeds plus every edge's target, each at its smallest depth.
Both the journal and the embedded LadybugDB store are compared.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import ladybug
import pytest
from click.testing import CliRunner

from crawler.cli import main
from crawler.emulator import Emulator, World
from crawler.journal import Journal
from crawler.linknames import HUB_DBS, SUBSETS
from crawler.store import StorePaths

Links = dict[tuple[str, str], list[tuple[str, str, str, int | None]]]


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path):
    monkeypatch.delenv("NEO4J_URI", raising=False)
    monkeypatch.delenv("NCBI_API_KEY", raising=False)
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))


@pytest.fixture(scope="module")
def dumped(world: World, tmp_path_factory) -> tuple[Links, dict[tuple[str, str], dict]]:
    """The world as `--dump` writes it: link lines and record lines."""
    path = tmp_path_factory.mktemp("dump") / "world.jsonl"
    world.dump(path)
    links: Links = defaultdict(list)
    records: dict[tuple[str, str], dict] = {}
    for line in path.read_text().splitlines():
        obj = json.loads(line)
        if "linkname" in obj:
            links[(obj["dbfrom"], str(obj["uid"]))].append(
                (obj["linkname"], obj["dbto"], str(obj["target"]), obj.get("score"))
            )
        else:
            records[(obj["db"], str(obj["uid"]))] = obj
    return links, records


def expected_graph(
    links: Links,
    seeds: list[tuple[str, str]],
    depth: int,
    *,
    allowed: set[str] | None = None,
    default_filters: bool = False,
    scores: bool = False,
    cap: int | None = None,
    not_expanded: frozenset[tuple[str, str]] = frozenset(),
) -> tuple[set, set]:
    """(nodes {(db, uid, depth)}, edges {(dbfrom, uid, linkname, dbto, uid, score)})."""
    first: dict[tuple[str, str], int] = {s: 0 for s in seeds}
    edges: set = set()
    level = list(dict.fromkeys(seeds))
    for d in range(depth):
        nxt: list[tuple[str, str]] = []
        for rec in level:
            db, _ = rec
            if rec in not_expanded or (default_filters and db in HUB_DBS):
                continue
            mine = links.get(rec, [])
            names = {ln for ln, _, _, _ in mine}
            by_name: dict[str, list] = defaultdict(list)
            for ln, dbto, target, score in mine:
                if allowed is not None and ln not in allowed:
                    continue
                if default_filters and SUBSETS.get(ln) in names:
                    continue
                if (dbto, target) == rec:
                    continue
                by_name[ln].append((dbto, target, score if scores else None))
            for ln, targets in by_name.items():
                targets.sort(key=lambda t: (-(t[2] if t[2] is not None else -1), int(t[1])))
                for dbto, target, score in targets[:cap] if cap else targets:
                    edges.add((db, rec[1], ln, dbto, target, score))
                    if (dbto, target) not in first:
                        first[(dbto, target)] = d + 1
                        nxt.append((dbto, target))
        level = nxt
    return {(db, uid, d) for (db, uid), d in first.items()}, edges


def journal_graph(store: Path) -> tuple[set, set]:
    with Journal(StorePaths.of(store).journal, create=False) as j:
        nodes = {(n.db, n.uid, n.depth) for n in j.iter_nodes()}
        edges = [(e.dbfrom, e.uid_from, e.linkname, e.dbto, e.uid_to, e.score)
                 for e in j.iter_edges()]
    assert len(edges) == len(set(edges))
    return nodes, set(edges)


def ladybug_graph(store: Path) -> tuple[set, set]:
    """Node tables and rel tables of the embedded store; duplicate rows fail the test."""
    db = ladybug.Database(str(StorePaths.of(store).graph), read_only=True)
    conn = ladybug.Connection(db)
    try:
        tables = dict(conn.execute("CALL show_tables() RETURN name, type").get_all())
        nodes: list[tuple] = []
        edges: list[tuple] = []
        for name, kind in sorted(tables.items()):
            if kind == "NODE" and name != "eg_cursor":
                rows = conn.execute(f"MATCH (n:{name}) RETURN n.uid, n.depth").get_all()
                nodes += [(name, uid, depth) for uid, depth in rows]
            elif kind == "REL":
                rows = conn.execute(
                    f"MATCH (a)-[r:{name}]->(b) RETURN label(a), a.uid, label(b), b.uid, r.score"
                ).get_all()
                edges += [(la, ua, name, lb, ub, s) for la, ua, lb, ub, s in rows]
    finally:
        conn.close()
        db.close()
    assert not [k for k, v in Counter(nodes).items() if v > 1]
    assert not [k for k, v in Counter(edges).items() if v > 1], "duplicate edges in the store"
    return set(nodes), set(edges)


def crawl(url: str, store: Path, *args: str) -> dict:
    result = CliRunner().invoke(
        main, ["crawl", *args, "--store", str(store), "--eutils-url", url, "--rps", "1000",
               "--format", "json"],
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # warnings go to stderr


LINKS = ["gene_protein", "gene_protein_refseq", "protein_structure", "protein_protein",
         "nuccore_gene", "gene_pubmed", "pubmed_pubmed", "structure_protein", "nuccore_protein"]


def test_named_links_equal_the_rule(emulator, dumped, tmp_path):
    links, _ = dumped
    store = tmp_path / "store"
    args = ["gene:672", "nuccore:NM_007294", "pubmed:9298984", "--depth", "2"]
    for ln in LINKS:
        args += ["--link", ln]
    report = crawl(emulator.url, store, *args, "--batch-size", "37")
    seeds = [tuple(s.split(":")) for s in report["seeds"]]
    assert seeds[1] == ("nuccore", "237757283")  # NM_007294 resolved through ESearch
    nodes, edges = expected_graph(links, seeds, 2, allowed=set(LINKS))
    assert len(edges) > 300 and {e[2] for e in edges} >= {"gene_protein_refseq",
                                                          "protein_structure"}
    assert journal_graph(store) == (nodes, edges)
    assert ladybug_graph(store) == (nodes, edges)
    assert report["complete"] and report["nodes"] == len(nodes)
    cmds = Counter(e["params"].get("cmd") for e in emulator.log if "elink" in e["path"])
    assert "acheck" not in cmds  # --link: acheck adds nothing


def test_acheck_path_with_default_filters_equals_the_rule(emulator, dumped, tmp_path):
    links, _ = dumped
    store = tmp_path / "store"
    report = crawl(emulator.url, store, "gene:672", "protein:6552302", "pubmed:9298984",
                   "--depth", "2")
    seeds = [tuple(s.split(":")) for s in report["seeds"]]
    nodes, edges = expected_graph(links, seeds, 2, default_filters=True)
    names = {e[2] for e in edges}
    assert "pubmed_pubmed" in names and "pubmed_pubmed_five" not in names
    assert any(n[0] == "taxonomy" for n in nodes)  # hubs recorded ...
    assert not any(e[0] == "taxonomy" for e in edges)  # ... not expanded
    assert journal_graph(store) == (nodes, edges)
    assert ladybug_graph(store) == (nodes, edges)


def test_scores_and_per_record_cap_equal_the_rule(emulator, dumped, tmp_path):
    links, _ = dumped
    store = tmp_path / "store"
    report = crawl(emulator.url, store, "pubmed:9298984", "protein:6552302", "--depth", "2",
                   "--scores", "--max-links-per-record", "4", "--link", "pubmed_pubmed",
                   "--link", "protein_protein", "--link", "protein_pubmed",
                   "--link", "pubmed_protein")
    seeds = [tuple(s.split(":")) for s in report["seeds"]]
    nodes, edges = expected_graph(
        links, seeds, 2, allowed={"pubmed_pubmed", "protein_protein", "protein_pubmed",
                                  "pubmed_protein"}, scores=True, cap=4,
    )
    assert any(e[5] is not None for e in edges)
    assert journal_graph(store) == (nodes, edges)
    assert ladybug_graph(store) == (nodes, edges)
    cmds = Counter(e["params"].get("cmd") for e in emulator.log if "elink" in e["path"])
    assert cmds["neighbor_score"] >= 1


def test_to_and_exclude_with_include_subsets(emulator, dumped, tmp_path):
    links, _ = dumped
    store = tmp_path / "store"
    report = crawl(emulator.url, store, "pubmed:9298984", "gene:672", "--depth", "1",
                   "--to", "pubmed", "--to", "protein", "--exclude-link", "gene_protein",
                   "--include-subsets", "--no-embedded")
    seeds = [tuple(s.split(":")) for s in report["seeds"]]
    allowed = {ln for rec in seeds for ln, dbto, _, _ in links[rec]
               if dbto in ("pubmed", "protein") and ln != "gene_protein"}
    nodes, edges = expected_graph(links, seeds, 1, allowed=allowed)
    assert "pubmed_pubmed_five" in {e[2] for e in edges}
    assert journal_graph(store) == (nodes, edges)
    assert not StorePaths.of(store).graph.exists()  # --no-embedded


def test_max_nodes_same_graph_whatever_the_batching(world, dumped, tmp_path):
    """The capped graph does not depend on batch size, workers or latency."""
    graphs = []
    for i, (batch, workers, latency) in enumerate([(200, 8, 0), (7, 3, 5), (13, 1, 0)]):
        with Emulator(world, rate_limit=0, latency_ms=latency) as emu:
            store = tmp_path / f"s{i}"
            report = crawl(emu.url, store, "gene:672", "gene:7157", "--depth", "2",
                           "--max-nodes", "60", "--batch-size", str(batch), "--workers",
                           str(workers), "--no-embedded")
            assert report["nodes"] == 60
            graphs.append(journal_graph(store))
    assert graphs[0] == graphs[1] == graphs[2]
    nodes, edges = graphs[0]
    keys = {(n[0], n[1]) for n in nodes}
    assert all((e[0], e[1]) in keys and (e[3], e[4]) in keys for e in edges)


def test_resume_with_narrower_settings_is_refused(emulator, tmp_path):
    store = tmp_path / "store"
    crawl(emulator.url, store, "gene:672", "--depth", "2", "--no-embedded")
    result = CliRunner().invoke(main, ["crawl", "gene:672", "--depth", "1", "--store",
                                       str(store), "--eutils-url", emulator.url])
    assert result.exit_code == 2
    assert "--depth 2 -> 1" in result.output and "another --store" in result.output
    assert len(result.output.strip().splitlines()) == 1
    # the same command again: finished, nothing asked, same counts
    before = len(emulator.log)
    report = crawl(emulator.url, store, "gene:672", "--depth", "2", "--no-embedded")
    assert report["complete"] and len(emulator.log) == before
