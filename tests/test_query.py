"""`entrez-graph query` and `crawler.querying`: parameters, errors, graph values of both stores."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from neo4j.graph import Graph, Node
from neo4j.graph import Path as NeoPath
from test_ladybug_sink import fill_journal

from crawler.cli import main
from crawler.emulator import World
from crawler.errors import BadInput, StoreLocked
from crawler.journal import Journal
from crawler.querying import (
    GraphNode,
    GraphPath,
    GraphRel,
    QueryResult,
    get_query,
    parse_param,
    parse_params,
    run_query,
)
from crawler.sinks import NODE_PROPERTIES
from crawler.sinks.ladybug import LadybugSink
from crawler.sinks.neo4j import Neo4jConfig
from crawler.store import StorePaths

PROPS = {"depth", "fetched", *NODE_PROPERTIES}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """gene 672 two levels deep over a few link names, with names, in the embedded store."""
    root = tmp_path_factory.mktemp("query") / "store"
    paths = StorePaths.of(root)
    world = World.generate(seed=3, size=300)
    with Journal(paths.journal) as journal:
        fill_journal(journal, world, [("gene", "672")], depth=2,
                     links=("gene_protein_refseq", "protein_structure", "pubmed_pubmed",
                            "gene_pubmed"))
        with LadybugSink(paths.graph) as sink:
            sink.sync(journal)
    return root


def cli(*args: str):
    return CliRunner().invoke(main, ["query", *args])


def one_line_error(result, code: int = 2) -> str:
    assert result.exit_code == code, (result.output, result.exception)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


# -- parameters ----------------------------------------------------------------------------------


def test_parse_param_types() -> None:
    assert parse_param("gene=672") == ("gene", "672")
    assert parse_param("n:int=5") == ("n", 5)
    assert parse_param("x:float=0.5") == ("x", 0.5)
    assert parse_param("ok:bool=yes") == ("ok", True)
    assert parse_param("s:str=12") == ("s", "12")
    assert parse_param("q=a=b") == ("q", "a=b")
    assert parse_params(["a=1", "b:int=2"]) == {"a": "1", "b": 2}
    for bad in ("novalue", "=1", "n:int=five", "b:bool=maybe", "x:date=1"):
        with pytest.raises(BadInput):
            parse_param(bad)
    with pytest.raises(BadInput, match="twice"):
        parse_params(["a=1", "a=2"])


def test_bundled_params_typed_by_header() -> None:
    q = get_query("related_articles")
    assert q.typed({"pmid": 123, "limit": "3"}) == {"pmid": "123", "limit": 3}
    assert q.typed({}) == {"pmid": "", "limit": 10}
    with pytest.raises(BadInput, match="integer"):
        q.typed({"limit": "many"})
    with pytest.raises(BadInput, match="no parameter 'gene'"):
        q.typed({"gene": "672"})
    with pytest.raises(BadInput, match=r"no bundled query 'nope'.*gene_refseq_proteins"):
        get_query("nope")


# -- running on the embedded store ---------------------------------------------------------------


def test_graph_values_are_normalised(store: Path) -> None:
    result = run_query(
        store,
        "MATCH (g:gene {uid: $gene})-[r:gene_protein_refseq]->(p:protein) "
        "RETURN g AS gene, r AS link, p AS protein ORDER BY p.uid LIMIT 2",
        {"gene": "672"},
    )
    assert isinstance(result, QueryResult) and result.columns == ["gene", "link", "protein"]
    gene, link, protein = result.rows[0]
    assert gene == GraphNode("gene", "672") and gene.props["name"] == "BRCA1"
    assert gene.props["depth"] == 0 and set(gene.props) <= PROPS
    assert isinstance(protein, GraphNode) and protein.db == "protein"
    assert set(protein.props) <= PROPS  # no NULLs, no columns of other tables
    assert link == GraphRel("gene_protein_refseq", ("gene", "672"), ("protein", protein.uid))
    assert result.records()[0]["protein"] == protein


def test_relationship_alone_resolves_its_endpoints(store: Path) -> None:
    rows = run_query(
        store, "MATCH (:protein)-[r:protein_structure]->(:structure) RETURN r ORDER BY r.score"
    ).rows
    assert rows
    for (rel,) in rows:
        assert rel.linkname == "protein_structure"
        assert rel.start[0] == "protein" and rel.start[1].isdigit()
        assert rel.end[0] == "structure" and rel.end[1].isdigit()


def test_paths_and_lists(store: Path) -> None:
    rows = run_query(
        store,
        "MATCH p = (g:gene {uid: '672'})-[:gene_protein_refseq]->(:protein)"
        "-[:protein_structure]->(s:structure) "
        "RETURN p AS path ORDER BY s.uid LIMIT 1",
    ).rows
    assert rows
    (path,) = rows[0]
    ((structures,),) = run_query(store, "MATCH (s:structure) RETURN collect(s) AS structures").rows
    assert isinstance(path, GraphPath)
    assert [n.db for n in path.nodes] == ["gene", "protein", "structure"]
    assert [r.linkname for r in path.rels] == ["gene_protein_refseq", "protein_structure"]
    assert path.rels[0].start == ("gene", "672") and path.rels[1].end == (
        "structure", path.nodes[2].uid)
    assert isinstance(structures, list) and all(isinstance(s, GraphNode) for s in structures)


def test_output_formats(store: Path) -> None:
    text = "MATCH (g:gene {uid: '672'}) RETURN g AS gene, g.uid AS uid"
    table = cli("--store", str(store), text)
    assert table.exit_code == 0, table.output
    assert "(gene:672 BRCA1)" in table.output
    as_json = json.loads(cli("--store", str(store), "--format", "json", text).output)
    assert as_json[0]["uid"] == "672"
    assert as_json[0]["gene"]["db"] == "gene" and as_json[0]["gene"]["name"] == "BRCA1"
    rows = list(csv.reader(io.StringIO(cli("--store", str(store), "--format", "csv", text).output)))
    assert rows[0] == ["gene", "uid"] and rows[1][1] == "672"


def test_bundled_query_by_name_with_params(store: Path) -> None:
    result = cli("--store", str(store), "--format", "json", "gene_refseq_proteins",
                 "--param", "gene=672")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows and {r["gene"] for r in rows} == {"672"}
    assert [r["protein"] for r in rows] == sorted(r["protein"] for r in rows)


def test_ad_hoc_params(store: Path) -> None:
    result = cli("--store", str(store), "--format", "json", "--param", "gene=672",
                 "--param", "n:int=1",
                 "MATCH (g:gene {uid: $gene})-->(p) RETURN p.uid AS uid ORDER BY uid LIMIT $n")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)) == 1


def test_errors_are_one_line(store: Path, tmp_path: Path) -> None:
    assert "no embedded store" in one_line_error(cli("--store", str(tmp_path / "none"),
                                                     "records_per_db"))
    assert "Parser exception" in one_line_error(cli("--store", str(store), "MATCH (n RETURN n"))
    assert "nosuch" in one_line_error(cli("--store", str(store), "MATCH (n:nosuch) RETURN n"))
    assert "nosuch" in one_line_error(cli("--store", str(store), "nosuch_query"))
    assert "--write" in one_line_error(cli("--store", str(store), "CREATE (:gene {uid: 'x1'})"))
    assert "parameter" in one_line_error(cli("--store", str(store), "top_hubs",
                                             "--param", "gene=1"))
    assert "integer" in one_line_error(cli("--store", str(store), "top_hubs",
                                           "--param", "limit=ten"))
    assert "NAME or CYPHER" in one_line_error(cli("--store", str(store)))


def test_statements_that_change_a_store_or_its_files_need_write(
    store: Path, tmp_path: Path
) -> None:
    """A read-only LadybugDB still runs some of these: they must never reach it without --write."""
    before = run_query(store, "records_per_db").rows
    out = tmp_path / "out"
    for text in (
        "CHECKPOINT",
        f"COPY (MATCH (n:gene) RETURN n.uid) TO '{out}.csv'",
        f"EXPORT DATABASE '{out}'",
        "INSTALL httpfs",
        "LOAD EXTENSION httpfs",
        "MATCH (g:gene) DETACH DELETE g",
        "CREATE(g:gene {uid: 'x2'})",
    ):
        assert "--write" in one_line_error(cli("--store", str(store), text)), text
    assert not list(tmp_path.iterdir())
    assert run_query(store, "records_per_db").rows == before
    # words inside strings, comments, property names and labels are not clauses
    text = "MATCH (g:gene) WHERE g.uid <> 'SET' // CREATE\nRETURN g.uid AS copy LIMIT 1"
    assert cli("--store", str(store), text).exit_code == 0


def test_write_needs_the_flag_and_the_lock(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with Journal(StorePaths.of(root).journal) as journal:
        journal.add_nodes([("gene", "1", 0)])
        with LadybugSink(StorePaths.of(root).graph) as sink:
            sink.sync(journal)
            # A crawl holds the store: reading works, writing is refused with StoreLocked.
            assert run_query(root, "MATCH (g:gene) RETURN count(*) AS n").rows == [[1]]
            with pytest.raises(StoreLocked, match="Could not set lock"):
                run_query(root, "MATCH (g:gene) SET g.name = 'x'", write=True)
    result = cli("--store", str(root), "--write", "MATCH (g:gene {uid: '1'}) SET g.name = 'one'")
    assert result.exit_code == 0, result.output
    assert run_query(root, "MATCH (g:gene) RETURN g.name AS name").rows == [["one"]]


# -- Neo4j: the driver's graph objects normalised the same way -----------------------------------


def _neo4j_values() -> tuple[Node, Any, Node, NeoPath, Any]:
    graph = Graph()
    gene = Node(graph, "4:x:1", 1, ["gene"], {"uid": "672", "depth": 0, "name": "BRCA1"})
    protein = Node(graph, "4:x:2", 2, ["protein"], {"uid": "55", "depth": 1})
    rel_type = graph.relationship_type("gene_protein_refseq")
    rel = rel_type(graph, "5:x:9", 9, {})
    rel._start_node, rel._end_node = gene, protein
    # A relationship returned without its nodes: the driver knows only the endpoints' ids.
    bare_start = Node(graph, "4:x:7", 7)
    bare_end = Node(graph, "4:x:8", 8)
    scored = graph.relationship_type("pubmed_pubmed")(graph, "5:x:10", 10, {"score": 42})
    scored._start_node, scored._end_node = bare_start, bare_end
    return gene, rel, protein, NeoPath(gene, rel), scored


def test_neo4j_rows_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    gene, rel, protein, path, scored = _neo4j_values()
    calls: list[tuple[str, dict]] = []

    def fake_run_cypher(config, text, params, *, write=False):
        calls.append((text, params))
        if "elementId" in text:
            assert sorted(params["ids"]) == ["4:x:7", "4:x:8"]
            return ["id", "db", "uid"], [["4:x:7", "pubmed", "11"], ["4:x:8", "pubmed", "12"]]
        return ["g", "r", "p", "path", "s"], [[gene, rel, protein, path, scored]]

    import crawler.sinks.neo4j as neo4j_sink

    monkeypatch.setattr(neo4j_sink, "run_cypher", fake_run_cypher)
    config = Neo4jConfig(uri="bolt://127.0.0.1:1")
    result = run_query(None, "MATCH ... RETURN g, r, p, path, s", neo4j=config)
    g, r, p, pth, s = result.rows[0]
    assert g == GraphNode("gene", "672") and g.props == {"depth": 0, "name": "BRCA1"}
    assert r == GraphRel("gene_protein_refseq", ("gene", "672"), ("protein", "55"), None)
    assert p == GraphNode("protein", "55")
    assert pth == GraphPath((g, p), (r,))
    assert s == GraphRel("pubmed_pubmed", ("pubmed", "11"), ("pubmed", "12"), 42)
    assert len(calls) == 2


def test_neo4j_gets_its_dialect_and_typed_params(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_run_cypher(config, text, params, *, write=False):
        seen.update(text=text, params=params, write=write)
        return ["db", "uid", "name", "links"], []

    import crawler.sinks.neo4j as neo4j_sink

    monkeypatch.setattr(neo4j_sink, "run_cypher", fake_run_cypher)
    result = run_query(None, "top_hubs", ["limit=3"], neo4j=Neo4jConfig(uri="bolt://h:1"))
    assert result == QueryResult(["db", "uid", "name", "links"], [])
    assert "labels(n)[0]" in seen["text"] and seen["params"] == {"limit": 3}
    assert seen["write"] is False


def test_cli_neo4j_option(monkeypatch: pytest.MonkeyPatch) -> None:
    gene, *_ = _neo4j_values()
    seen: dict[str, Any] = {}

    def fake_run_cypher(config, text, params, *, write=False):
        seen.update(config=config, params=params, write=write)
        return ["g"], [[gene]]

    import crawler.sinks.neo4j as neo4j_sink

    monkeypatch.setattr(neo4j_sink, "run_cypher", fake_run_cypher)
    monkeypatch.setenv("NEO4J_PASSWORD", "s3cret-pw")
    result = cli("--neo4j", "bolt://127.0.0.1:7687", "--format", "json",
                 "gene_refseq_proteins", "--param", "gene=7")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"g": {"db": "gene", "uid": "672", "depth": 0,
                                                "name": "BRCA1"}}]
    assert seen["config"].uri == "bolt://127.0.0.1:7687"
    assert seen["params"] == {"gene": "7"} and seen["write"] is False
    assert "s3cret-pw" not in result.output
