"""Exports read back with networkx (or parsed as CSV) equal the journal they came from.

The journal here is filled with the Journal API: several databases, parallel edges of different
link names between the same pair (gene_protein and gene_protein_refseq from gene 672 to protein
1), scores, a cycle, and properties with XML-hostile text. One test crawls an emulated world
through the real CLI and round-trips every format against that crawl's journal.
"""

from __future__ import annotations

import csv
import json
import os
import re
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import networkx as nx
import pytest
from click.testing import CliRunner

from crawler.cli import main
from crawler.errors import BadInput
from crawler.exporting import JournalSource, export, to_networkx
from crawler.journal import Journal
from crawler.sinks import NODE_PROPERTIES
from crawler.store import StorePaths

export_mod = sys.modules["crawler.exporting"]

ATTRS = {"db", "uid", "depth", "fetched", *NODE_PROPERTIES}
FORMATS = ("graphml", "gexf", "json", "neo4j-csv")
XML_FORMATS = {"graphml", "gexf"}

NODES = [
    ("gene", "672", 0), ("gene", "675", 1), ("protein", "1", 1), ("protein", "2", 1),
    ("protein", "3", 2), ("protein", "4", 2), ("nuccore", "100", 1), ("pubmed", "10", 1),
    ("pubmed", "11", 2), ("pubmed", "12", 2), ("structure", "5", 2), ("taxonomy", "9606", 2),
]
EDGES = [
    ("gene", "672", "gene_protein", "protein", "1", None),
    ("gene", "672", "gene_protein_refseq", "protein", "1", None),  # parallel to the one above
    ("gene", "672", "gene_protein", "protein", "2", None),
    ("gene", "672", "gene_nuccore", "nuccore", "100", None),
    ("gene", "672", "gene_pubmed", "pubmed", "10", None),
    ("gene", "675", "gene_pubmed", "pubmed", "10", None),
    ("pubmed", "10", "pubmed_pubmed", "pubmed", "11", 4321),
    ("pubmed", "11", "pubmed_pubmed", "pubmed", "10", 4321),
    ("pubmed", "10", "pubmed_pubmed", "pubmed", "12", 17),
    ("protein", "1", "protein_structure", "structure", "5", None),
    ("protein", "2", "protein_protein", "protein", "3", 999),
    ("nuccore", "100", "nuccore_protein", "protein", "4", None),
    ("nuccore", "100", "nuccore_taxonomy", "taxonomy", "9606", None),
    ("protein", "4", "protein_gene", "gene", "672", None),
]
HOSTILE = 'breast cancer 1 <DNA repair> & "quoted" \'single\'\nsecond line\ttab ]]> \x01ctl é'
PROPS = {
    ("gene", "672"): {"name": "BRCA1", "organism": "Homo sapiens", "description": HOSTILE,
                      "aliases": ["RNF53", "FANCS"], "has_neighbor": True},
    ("gene", "675"): {"name": "BRCA2", "year": "n/a"},      # year not an integer: dropped
    ("pubmed", "10"): {"name": "A paper", "journal": "Nature", "year": "2001"},
    ("protein", "1"): {"accession": "NP_009225.1", "status": "live", "name": None},
    ("nuccore", "100"): {"accession": ["NM_007294.4", "NM_007295"]},  # list: joined
}


def make_store(root: Path) -> Path:
    with Journal(StorePaths.of(root).journal) as journal:
        journal.add_nodes(NODES)
        journal.add_edges(EDGES)
        with journal.transaction():
            for (db, uid), data in PROPS.items():
                journal.set_props(db, uid, data)
    return root


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return make_store(tmp_path / "store")


# -- the truth, read from the journal with its own API ----------------------------------------


def _expected_props(data: dict[str, Any], xml: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, kind in NODE_PROPERTIES.items():
        value = data.get(name)
        if value is None:
            continue
        if kind == "INT64":
            if not str(value).strip().lstrip("-").isdigit():
                continue
            value = int(value)
        elif isinstance(value, list):
            value = "; ".join(value)
        if xml and isinstance(value, str):
            value = re.sub("[\x00-\x08\x0b\x0c\x0e-\x1f]", "\ufffd", value)
        out[name] = value
    return out


def truth(
    store: Path, *, dbs: list[str] | None = None, links: list[str] | None = None,
    xml: bool = False,
) -> tuple[dict[str, dict[str, Any]], Counter]:
    """(node key -> attributes, Counter of (source, target, linkname, score)) from the journal."""
    with Journal(StorePaths.of(store).journal, create=False) as journal:
        edges = Counter(
            (f"{e.dbfrom}:{e.uid_from}", f"{e.dbto}:{e.uid_to}", e.linkname, e.score)
            for e in journal.iter_edges(dbs, links)
        )
        ends = {k for s, t, _, _ in edges for k in (s, t)}
        nodes = {}
        for n in journal.iter_nodes(dbs):
            key = f"{n.db}:{n.uid}"
            if links and key not in ends:
                continue
            nodes[key] = {"db": n.db, "uid": n.uid, "depth": n.depth, "fetched": n.fetched,
                          **_expected_props(journal.props_of(n.db, n.uid), xml)}
    return nodes, edges


def graph_view(g: nx.MultiDiGraph) -> tuple[dict[str, dict[str, Any]], Counter]:
    nodes = {n: {k: v for k, v in d.items() if k in ATTRS} for n, d in g.nodes(data=True)}
    edges = Counter((u, v, d["linkname"], d.get("score")) for u, v, d in g.edges(data=True))
    return nodes, edges


# -- reading every format back ----------------------------------------------------------------


def read_back(fmt: str, out: Path) -> tuple[dict[str, dict[str, Any]], Counter]:
    if fmt == "graphml":
        g = nx.read_graphml(out, force_multigraph=True)
        ids = [e.get("id") for e in ET.parse(out).getroot().iterfind(".//{*}edge")]
        assert len(ids) == len(set(ids)) == g.number_of_edges()
        return graph_view(g)
    if fmt == "gexf":
        g = nx.read_gexf(out)
        ids = [e.get("id") for e in ET.parse(out).getroot().iterfind(".//{*}edge")]
        assert len(ids) == len(set(ids))
        return graph_view(g)
    if fmt == "json":
        data = json.loads(out.read_text(encoding="utf-8"))
        assert "edges" in data and "links" not in data
        g = nx.node_link_graph(data, directed=True, multigraph=True, edges="edges")
        assert all(k == d["linkname"] for _, _, k, d in g.edges(keys=True, data=True))
        return graph_view(g)
    return read_neo4j_csv(out)


def read_neo4j_csv(out: Path) -> tuple[dict[str, dict[str, Any]], Counter]:
    """Parse the CSV files as neo4j-admin would, checking headers, ID spaces and the script."""
    nodes: dict[str, dict[str, Any]] = {}
    edges: Counter = Counter()
    script = (out / "import.sh").read_text()
    listed_nodes = dict(re.findall(r"--nodes=([a-z0-9_]+)=(\S+)", script))
    listed_rels = re.findall(r"--relationships=([a-z0-9_]+)=(\S+)", script)
    assert "database import full" in script and "--overwrite-destination" in script
    node_files = sorted((out / "nodes").glob("*.csv"))
    assert {label: out / path for label, path in listed_nodes.items()} == {
        p.stem: p for p in node_files
    }
    for path in node_files:
        label = path.stem
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        header = rows[0]
        assert header[:3] == [f"uid:ID({label})", "depth:int", "fetched"]
        assert header[-1] == ":LABEL"
        names = [h.split(":")[0] for h in header[3:-1]]
        assert names == list(NODE_PROPERTIES)
        uids = [r[0] for r in rows[1:]]
        assert len(uids) == len(set(uids)), "IDs must be unique within an ID space"
        for row in rows[1:]:
            assert row[-1] == label
            attrs: dict[str, Any] = {"db": label, "uid": row[0], "depth": int(row[1]),
                                     "fetched": row[2]}
            for name, raw in zip(names, row[3:-1], strict=True):
                if raw != "":
                    attrs[name] = int(raw) if NODE_PROPERTIES[name] == "INT64" else raw
            nodes[f"{label}:{row[0]}"] = attrs
    assert sorted(p.name for p in (out / "relationships").glob("*.csv")) == sorted(
        Path(p).name for _, p in listed_rels
    )
    for rel_type, rel_path in listed_rels:
        with (out / rel_path).open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        start, end = (re.fullmatch(r":(?:START|END)_ID\(([a-z0-9_]+)\)", h).group(1)
                      for h in rows[0][:2])
        assert rows[0][2:] == ["score:int", "fetched", ":TYPE"]
        for uid_from, uid_to, score, fetched, linkname in rows[1:]:
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", fetched), fetched
            assert linkname == rel_type
            edges[(f"{start}:{uid_from}", f"{end}:{uid_to}", linkname,
                   int(score) if score else None)] += 1
    constraints = (out / "constraints.cypher").read_text()
    for label in listed_nodes:
        assert (f"CREATE CONSTRAINT {label}_uid IF NOT EXISTS FOR (n:{label}) "
                "REQUIRE n.uid IS UNIQUE;") in constraints
    return nodes, edges


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


# -- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_equals_journal(fmt: str, store: Path, tmp_path: Path) -> None:
    out = tmp_path / f"graph.{fmt}"
    result = CliRunner().invoke(main, ["export", "--store", str(store), "--format", fmt, str(out)])
    assert result.exit_code == 0, result.output
    assert f"Wrote {len(NODES)} records and {len(EDGES)} links" in result.output
    expected = truth(store, xml=fmt in XML_FORMATS)
    assert read_back(fmt, out) == expected
    # The parallel pair survives as two edges with their own link names.
    assert expected[1][("gene:672", "protein:1", "gene_protein", None)] == 1
    assert expected[1][("gene:672", "protein:1", "gene_protein_refseq", None)] == 1
    assert leftovers(tmp_path) == []


def test_hostile_text_survives_exactly_where_the_format_allows(store: Path, tmp_path: Path) -> None:
    for fmt in FORMATS:
        export(store, tmp_path / fmt, fmt)
    want_xml = HOSTILE.replace("\x01", "\ufffd")  # XML 1.0 cannot carry U+0001 at all
    assert nx.read_graphml(tmp_path / "graphml").nodes["gene:672"]["description"] == want_xml
    assert nx.read_gexf(tmp_path / "gexf").nodes["gene:672"]["description"] == want_xml
    data = json.loads((tmp_path / "json").read_text(encoding="utf-8"))
    assert next(n for n in data["nodes"] if n["id"] == "gene:672")["description"] == HOSTILE
    assert read_neo4j_csv(tmp_path / "neo4j-csv")[0]["gene:672"]["description"] == HOSTILE
    # A value spanning lines needs neo4j-admin's multiline mode.
    assert "--multiline-fields=true" in (tmp_path / "neo4j-csv" / "import.sh").read_text()


def test_scalar_attributes_only_and_declared(store: Path, tmp_path: Path) -> None:
    export(store, tmp_path / "g.graphml", "graphml")
    export(store, tmp_path / "g.gexf", "gexf")
    g = nx.read_graphml(tmp_path / "g.graphml", force_multigraph=True)
    for _, data in g.nodes(data=True):
        assert all(isinstance(v, (str, int)) for v in data.values())
    assert g.nodes["nuccore:100"]["accession"] == "NM_007294.4; NM_007295"
    assert "year" not in g.nodes["gene:675"] and g.nodes["pubmed:10"]["year"] == 2001
    assert "name" not in g.nodes["protein:1"]
    gexf = ET.parse(tmp_path / "g.gexf").getroot()
    assert gexf.tag == "{http://www.gexf.net/1.2draft}gexf" and gexf.get("version") == "1.2"
    declared = {(a.get("class"), b.get("title"))
                for a in gexf.iterfind(".//{*}attributes") for b in a.iterfind("{*}attribute")}
    wanted = {("node", "depth"), ("node", "name"), ("edge", "linkname"), ("edge", "score")}
    assert wanted <= declared
    # No edge id repeats a link name (Gephi and Cytoscape may reject duplicate ids).
    graphml = ET.parse(tmp_path / "g.graphml").getroot()
    assert not {e.get("id") for e in graphml.iterfind(".//{*}edge")} & {e[2] for e in EDGES}


def test_to_networkx_whole_graph(store: Path) -> None:
    g = to_networkx(store)
    assert isinstance(g, nx.MultiDiGraph)
    assert graph_view(g) == truth(store)
    assert set(g["gene:672"]["protein:1"]) == {"gene_protein", "gene_protein_refseq"}
    assert g.nodes["gene:672"]["name"] == "BRCA1"
    assert g.edges["pubmed:10", "pubmed:11", "pubmed_pubmed"]["score"] == 4321
    assert "score" not in g.edges["gene:672", "protein:1", "gene_protein"]


@pytest.mark.parametrize(
    ("dbs", "links", "nodes", "edges"),
    [
        (["gene", "protein"], None, 6, 5),
        (None, ["gene_protein_refseq"], 2, 1),
        (["pubmed"], ["pubmed_pubmed"], 3, 3),
        (["nucleotide"], None, 1, 0),  # the alias of nuccore
        (["gene", "protein"], ["gene_protein", "protein_gene"], 4, 3),
    ],
)
def test_subgraphs(store: Path, tmp_path: Path, dbs, links, nodes: int, edges: int) -> None:
    g = to_networkx(store, dbs=dbs, links=links)
    norm = ["nuccore" if d == "nucleotide" else d for d in dbs] if dbs else None
    assert graph_view(g) == truth(store, dbs=norm, links=links)
    assert (g.number_of_nodes(), g.number_of_edges()) == (nodes, edges)
    args = [f"--db={d}" for d in dbs or ()] + [f"--link={x}" for x in links or ()]
    out = tmp_path / "sub.json"
    result = CliRunner().invoke(main, ["export", "--store", str(store), *args, str(out)])
    assert result.exit_code == 0, result.output
    assert read_back("json", out) == graph_view(g)


def test_streams_in_chunks(store: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tiny chunks exercise keyset paging; the result must not change."""
    whole = graph_view(to_networkx(store))
    filtered = graph_view(to_networkx(store, links=["gene_protein", "pubmed_pubmed"]))
    monkeypatch.setattr(export_mod, "CHUNK", 2)
    assert graph_view(to_networkx(store)) == whole
    assert graph_view(to_networkx(store, links=["gene_protein", "pubmed_pubmed"])) == filtered
    export(store, tmp_path / "n", "neo4j-csv")
    assert read_neo4j_csv(tmp_path / "n") == truth(store)


def test_snapshot_ignores_rows_written_during_export(store: Path) -> None:
    """Bounds are read once, so a crawl writing meanwhile never adds a half-known edge."""
    with Journal(StorePaths.of(store).journal, create=False) as journal:
        source = JournalSource(journal)
        with Journal(StorePaths.of(store).journal, create=False) as writer:
            writer.add_nodes([("gene", "999", 2)])
            writer.add_edges([("gene", "999", "gene_protein", "protein", "1", None),
                              ("gene", "672", "gene_protein", "protein", "3", None)])
        keys = {n.key for n in source.nodes()}
        links = {(e.source, e.target, e.linkname) for e in source.edges()}
    assert "gene:999" not in keys and len(links) == len(EDGES)


def test_dangling_edges_are_not_exported(tmp_path: Path) -> None:
    """An edge whose record is unknown would break GraphML readers and neo4j-admin."""
    store = make_store(tmp_path / "s")
    with Journal(StorePaths.of(store).journal, create=False) as journal:
        journal.add_edges([("gene", "672", "gene_snp", "snp", "123", None)])
    export(store, tmp_path / "n", "neo4j-csv")
    nodes, edges = read_neo4j_csv(tmp_path / "n")
    assert "snp:123" not in nodes and all(e[2] != "gene_snp" for e in edges)
    assert all(s in nodes and t in nodes for s, t, _, _ in edges)


# -- neo4j-admin import files -----------------------------------------------------------------


def test_neo4j_csv_command_script_and_constraints(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "bulk"
    result = CliRunner().invoke(
        main, ["export", "--store", str(store), "--format", "neo4j-csv", str(out)]
    )
    assert result.exit_code == 0, result.output
    labels = sorted({db for db, _, _ in NODES})
    links = sorted({e[2] for e in EDGES})
    printed = next(line for line in result.output.splitlines() if "neo4j-admin" in line).split()
    assert printed[:6] == ["neo4j-admin", "database", "import", "full", "neo4j",
                           "--overwrite-destination"]
    for label in labels:
        assert f"--nodes={label}={out.resolve()}/nodes/{label}.csv" in printed
        assert (f"CREATE CONSTRAINT {label}_uid IF NOT EXISTS FOR (n:{label}) "
                "REQUIRE n.uid IS UNIQUE;") in result.output
    for link in links:
        assert f"--relationships={link}={out.resolve()}/relationships/{link}.csv" in printed
    assert "STOPPED" in result.output
    # import.sh runs from anywhere and passes the same files (relative to itself).
    script = out / "import.sh"
    assert script.stat().st_mode & stat.S_IXUSR
    fake = tmp_path / "fake-neo4j-admin"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done > "$ARGS_OUT"\n')
    fake.chmod(0o755)
    env = {**os.environ, "NEO4J_ADMIN": str(fake), "ARGS_OUT": str(tmp_path / "args")}
    subprocess.run(["sh", str(script), "graphdb"], check=True, env=env, cwd=tmp_path)
    argv = (tmp_path / "args").read_text().split("\n")[:-1]
    assert argv[:5] == ["database", "import", "full", "graphdb", "--overwrite-destination"]
    assert sorted(a for a in argv if a.startswith("--nodes=")) == sorted(
        f"--nodes={label}=nodes/{label}.csv" for label in labels
    )
    assert sorted(a for a in argv if a.startswith("--relationships=")) == sorted(
        f"--relationships={link}=relationships/{link}.csv" for link in links
    )


def test_neo4j_csv_splits_a_link_name_seen_between_several_label_pairs(tmp_path: Path) -> None:
    store = tmp_path / "s"
    with Journal(StorePaths.of(store).journal) as journal:
        journal.add_nodes([("gene", "1", 0), ("protein", "2", 1), ("nuccore", "3", 1)])
        journal.add_edges([("gene", "1", "odd_link", "protein", "2", None),
                           ("gene", "1", "odd_link", "nuccore", "3", 5)])
    report = export(store, tmp_path / "n", "neo4j-csv")
    names = sorted(p.name for p in (tmp_path / "n" / "relationships").iterdir())
    assert names == ["odd_link.gene-nuccore.csv", "odd_link.gene-protein.csv"]
    assert report.command.count("--relationships=odd_link=") == 2
    assert read_neo4j_csv(tmp_path / "n") == truth(store)


def test_neo4j_csv_replaces_only_an_earlier_export(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "bulk"
    export(store, out, "neo4j-csv", dbs=["gene"])
    assert sorted(p.name for p in (out / "nodes").iterdir()) == ["gene.csv"]
    with pytest.raises(BadInput, match="exists; pass --force"):  # one rule for every export
        export(store, out, "neo4j-csv")
    export(store, out, "neo4j-csv", force=True)
    assert read_neo4j_csv(out) == truth(store)
    assert leftovers(tmp_path) == []
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("precious")
    for force in (False, True):
        with pytest.raises(BadInput, match="not an earlier neo4j-csv export"):
            export(store, mine, "neo4j-csv", force=force)
    assert [p.name for p in mine.iterdir()] == ["keep.txt"]


# -- Cypher query results ---------------------------------------------------------------------


@dataclass(frozen=True)
class FakeNode:
    db: str
    uid: str
    props: dict = field(default_factory=dict)


@dataclass(frozen=True)
class FakeRel:
    linkname: str
    start: tuple[str, str]
    end: tuple[str, str]
    score: int | None = None


@dataclass(frozen=True)
class FakePath:
    nodes: tuple
    rels: tuple


def fake_querying(monkeypatch: pytest.MonkeyPatch, rows: list[dict[str, Any]]) -> list:
    """Stand in for crawler.querying.run_query (its contract: rows of GraphNode/Rel/Path)."""
    calls: list = []
    module = ModuleType("crawler.querying")

    def run_query(store, name_or_cypher, params):
        calls.append((str(store), name_or_cypher, params))
        return rows

    module.run_query = run_query  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "crawler.querying", module)
    return calls


def test_query_exports_the_returned_records_and_links(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    g672, p1 = FakeNode("gene", "672", {"depth": 0}), FakeNode("protein", "1")
    path = FakePath(
        (g672, p1, FakeNode("structure", "5")),
        (FakeRel("gene_protein_refseq", ("gene", "672"), ("protein", "1")),
         FakeRel("protein_structure", ("protein", "1"), ("structure", "5"))),
    )
    rows = [
        {"p": path, "n": 3},
        {"p": path, "n": 4},  # the same path twice: exported once
        {"r": FakeRel("gene_protein", ("gene", "672"), ("protein", "1")), "x": [p1]},
        {"r": FakeRel("pubmed_pubmed", ("pubmed", "10"), ("pubmed", "11"), 4321), "x": None},
        {"n": FakeNode("nuccore", "777", {"depth": 3, "name": "not in journal", "x": [1]})},
    ]
    calls = fake_querying(monkeypatch, rows)
    out = tmp_path / "q.graphml"
    result = CliRunner().invoke(main, [
        "export", "--store", str(store), "--query", "gene_structures", "--param", "gene=672",
        "--param", "note=a=b", str(out),
    ])
    assert result.exit_code == 0, result.output
    assert calls == [(str(store), "gene_structures", ["gene=672", "note=a=b"])]
    nodes, edges = read_back("graphml", out)
    whole_nodes, _ = truth(store, xml=True)
    assert set(nodes) == {"gene:672", "protein:1", "structure:5", "pubmed:10", "pubmed:11",
                          "nuccore:777"}
    for key in nodes.keys() - {"nuccore:777"}:
        assert nodes[key] == whole_nodes[key]  # the journal's attributes, not the query's
    assert nodes["nuccore:777"] == {"db": "nuccore", "uid": "777", "depth": 3,
                                    "name": "not in journal"}
    assert edges == Counter({
        ("gene:672", "protein:1", "gene_protein_refseq", None): 1,
        ("gene:672", "protein:1", "gene_protein", None): 1,
        ("protein:1", "structure:5", "protein_structure", None): 1,
        ("pubmed:10", "pubmed:11", "pubmed_pubmed", 4321): 1,
    })
    g = to_networkx(store, query="anything", links=["gene_protein", "gene_protein_refseq"])
    assert sorted(g.edges(keys=True)) == [("gene:672", "protein:1", "gene_protein"),
                                          ("gene:672", "protein:1", "gene_protein_refseq")]


# -- bad input: one line, exit 2, nothing left behind -----------------------------------------


def _fails(args: list[str]) -> str:
    result = CliRunner().invoke(main, ["export", *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize(
    ("extra", "target", "message"),
    [
        (["--format", "xml"], "out.xml", "unknown format 'xml'"),
        ([], "out.txt", "give --format"),
        (["--format", "graphml"], "missing/out.graphml", "does not exist"),
        (["--format", "graphml"], "afile/out.graphml", "is not a directory"),
        (["--format", "graphml"], "adir", "is a directory"),
        (["--format", "neo4j-csv"], "afile", "is a file"),
        (["--format", "json", "--db", "Gene;DROP"], "out.json", "invalid database name"),
        (["--format", "json", "--link", "no-such"], "out.json", "invalid link name"),
        (["--format", "json", "--db", "snp"], "out.json", "nothing to export"),
        (["--format", "neo4j-csv", "--link", "gene_snp"], "outdir", "nothing to export"),
        (["--format", "json", "--param", "a=1"], "out.json", "--param needs --query"),
        (["--format", "json", "--query", "q", "--param", "novalue"], "out.json", "NAME=VALUE"),
        (["--format", "json", "--query", "q", "--param", "n:int=x"], "out.json", "not a int"),
    ],
)
def test_bad_input(
    store: Path, tmp_path: Path, extra: list[str], target: str, message: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "afile").write_text("x")
    (work / "adir").mkdir()
    before = sorted(p.relative_to(work) for p in work.rglob("*"))
    line = _fails(["--store", str(store), *extra, str(work / target)])
    assert message in line
    assert sorted(p.relative_to(work) for p in work.rglob("*")) == before


def test_neo4j_csv_never_replaces_the_current_directory(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    assert "current directory" in _fails(["--store", str(store), "--format", "neo4j-csv", "."])
    assert here.is_dir() and list(here.iterdir()) == []


def test_missing_store_is_bad_input(tmp_path: Path) -> None:
    line = _fails(["--store", str(tmp_path / "nope"), "--format", "json", str(tmp_path / "o")])
    assert "no entrez-graph store" in line
    assert not (tmp_path / "nope").exists() and not (tmp_path / "o").exists()


@pytest.fixture
def synced_store(store: Path) -> Path:
    """The journal fixture loaded into the embedded store, so real Cypher runs on it."""
    pytest.importorskip("ladybug")
    result = CliRunner().invoke(main, ["sync", "--store", str(store), "--embedded"])
    assert result.exit_code == 0, result.output
    return store


def test_real_query_on_the_embedded_store(synced_store: Path, tmp_path: Path) -> None:
    store = synced_store
    out = tmp_path / "refseq.gexf"
    cypher = "MATCH p = (:gene)-[:gene_protein_refseq]->(:protein) RETURN p"
    result = CliRunner().invoke(
        main, ["export", "--store", str(store), "--query", cypher, str(out)]
    )
    assert result.exit_code == 0, result.output
    nodes, edges = read_back("gexf", out)
    whole_nodes, whole_edges = truth(store, xml=True)
    assert edges == Counter({("gene:672", "protein:1", "gene_protein_refseq", None): 1})
    assert nodes == {k: whole_nodes[k] for k in ("gene:672", "protein:1")}
    # A bundled query with a typed parameter; paths come back undirected, edges keep dbfrom→dbto.
    g = to_networkx(store, query="paths_between", params=["to_uid=5", "hops:int=2"])
    assert {("gene:672", "protein:1", "gene_protein"), ("gene:672", "protein:1",
            "gene_protein_refseq"), ("protein:1", "structure:5", "protein_structure")} == set(
        g.edges(keys=True))
    assert all(whole_edges[(u, v, d["linkname"], d.get("score"))] == 1
               for u, v, d in g.edges(data=True))
    scored = to_networkx(store, query="MATCH (a:pubmed)-[r:pubmed_pubmed]->(b:pubmed) RETURN r")
    assert graph_view(scored) == truth(store, dbs=["pubmed"], links=["pubmed_pubmed"])


def test_real_query_returning_no_graph_elements(synced_store: Path, tmp_path: Path) -> None:
    line = _fails(["--store", str(synced_store), "--format", "json", "--query",
                   "MATCH (g:gene) RETURN count(g) AS n", str(tmp_path / "o.json")])
    assert "no records or links" in line
    assert not (tmp_path / "o.json").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("fmt", ["graphml", "neo4j-csv"])
def test_query_without_graph_elements(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    fake_querying(monkeypatch, [{"count": 12, "names": ["a", "b"]}])
    line = _fails(["--store", str(store), "--format", fmt, "--query",
                   "MATCH (g:gene) RETURN count(g)", str(tmp_path / "out")])
    assert "no records or links" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_failure_mid_export_leaves_nothing(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """An error after rows were written removes the temp file; an older export is kept."""
    out = tmp_path / "out"
    export(store, out, fmt)
    before = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} if (
        out.is_dir()) else {out: out.read_bytes()}
    real_edges = JournalSource.edges

    def broken(self):
        it = real_edges(self)
        yield next(it)
        yield next(it)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(JournalSource, "edges", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        export(store, out, fmt, force=True)
    after = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} if (
        out.is_dir()) else {out: out.read_bytes()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "store"]


# -- a real crawl through the CLI -------------------------------------------------------------


def test_crawl_then_export_every_format(tmp_path: Path) -> None:
    """Emulated crawl via `entrez-graph crawl`; each format must equal that crawl's journal."""
    emulator = pytest.importorskip("crawler.emulator")
    if "crawl" not in main.commands or not hasattr(emulator, "Emulator"):
        pytest.skip("the crawl command or the emulator is not in this tree yet")
    Emulator, World = emulator.Emulator, emulator.World

    store = tmp_path / "crawl"
    runner = CliRunner()
    env = {"ENTREZ_GRAPH_RATE_DIR": str(tmp_path / "rate"), "NCBI_EMAIL": "t@example.org",
           "NCBI_API_KEY": None}
    with Emulator(World.generate(seed=5, size=600)) as emu:
        result = runner.invoke(main, [
            "crawl", "gene:672", "--depth", "2", "--rps", "1000", "--store", str(store),
            "--eutils-url", emu.url,
        ], env=env)
    assert result.exit_code == 0, result.output
    nodes, edges = truth(store)
    assert len({n["db"] for n in nodes.values()}) >= 3
    pairs: dict[tuple[str, str], set[str]] = {}
    for s, t, link, _ in edges:
        pairs.setdefault((s, t), set()).add(link)
    assert any(len(v) > 1 for v in pairs.values()), "expected parallel edges of two link names"
    assert graph_view(to_networkx(store)) == (nodes, edges)
    for fmt in FORMATS:
        out = tmp_path / f"crawl.{fmt}"
        result = runner.invoke(main, ["export", "--store", str(store), "--format", fmt, str(out)])
        assert result.exit_code == 0, result.output
        assert read_back(fmt, out) == truth(store, xml=fmt in XML_FORMATS), fmt


# -- the README's analysis example ------------------------------------------------------------

README_EXAMPLE = '''
import networkx as nx
from crawler.exporting import to_networkx

g = to_networkx("demo-store")  # the whole crawl; dbs=, links= or query= narrow it
print(g.number_of_nodes(), "records,", g.number_of_edges(), "links")

# Degree of each gene: its links in and out, over every link name
genes = [n for n, d in g.nodes(data=True) if d["db"] == "gene"]
for n in sorted(genes, key=g.degree, reverse=True)[:5]:
    print(n, g.nodes[n].get("name", ""), g.degree(n))

# Connected components, ignoring link direction
components = sorted(nx.weakly_connected_components(g), key=len, reverse=True)
print(len(components), "component(s); the largest has", len(components[0]), "records")

# Shortest gene -> structure path along link directions, with the link names on the way
paths = nx.single_source_shortest_path(g, "gene:672")
nearest = min((n for n in paths if g.nodes[n]["db"] == "structure"), key=lambda n: len(paths[n]))
path = paths[nearest]
print(" -> ".join(f"{a} [{'|'.join(g[a][b])}]" for a, b in zip(path, path[1:])), "->", nearest)
'''


def test_readme_analysis_example(store: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(store.parent)
    store.rename(store.parent / "demo-store")
    exec(compile(README_EXAMPLE, "README", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{len(NODES)} records, {len(EDGES)} links"
    assert out[1] == "gene:672 BRCA1 6"
    assert out[-2] == "1 component(s); the largest has 12 records"
    assert out[-1] == ("gene:672 [gene_protein|gene_protein_refseq] -> "
                       "protein:1 [protein_structure] -> structure:5")
