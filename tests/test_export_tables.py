"""Table exports (TSV, CSV, Parquet) and `to_pandas` read back equal to the journal.

The truth is read from the journal's SQLite file with plain SQL, not through the exporting
module, so a bug shared by the writers and their source would still show. The journal holds
several databases, parallel edges of two link names, scores, a UID with leading zeros and
text with tabs, newlines and quotes.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crawler.cli import main
from crawler.errors import BadInput
from crawler.exporting import (
    EDGE_COLUMNS,
    NODE_COLUMNS,
    JournalSource,
    export,
    node_table_path,
    to_networkx,
    to_pandas,
)
from crawler.journal import Journal
from crawler.sinks import NODE_PROPERTIES
from crawler.store import StorePaths

pd = pytest.importorskip("pandas")
pq = pytest.importorskip("pyarrow.parquet")

NODES = [
    ("gene", "672", 0), ("gene", "675", 1), ("protein", "1", 1), ("protein", "2", 1),
    ("nuccore", "0012", 1), ("pubmed", "10", 1), ("pubmed", "11", 2), ("structure", "5", 2),
]
EDGES = [
    ("gene", "672", "gene_protein", "protein", "1", None),
    ("gene", "672", "gene_protein_refseq", "protein", "1", None),  # parallel to the one above
    ("gene", "672", "gene_protein", "protein", "2", None),
    ("gene", "672", "gene_nuccore", "nuccore", "0012", None),
    ("gene", "672", "gene_pubmed", "pubmed", "10", None),
    ("gene", "675", "gene_pubmed", "pubmed", "10", None),
    ("pubmed", "10", "pubmed_pubmed", "pubmed", "11", 4321),
    ("pubmed", "11", "pubmed_pubmed", "pubmed", "10", 4321),
    ("protein", "1", "protein_structure", "structure", "5", None),
    ("protein", "2", "protein_protein", "protein", "1", 999),
]
HOSTILE = 'breast cancer 1, "quoted"\tand tabbed\nsecond line; é ∆'
PROPS = {
    ("gene", "672"): {"name": "BRCA1", "organism": "Homo sapiens", "description": HOSTILE,
                      "aliases": ["RNF53"]},
    ("gene", "675"): {"name": "BRCA2", "year": "n/a"},  # not an integer: dropped
    ("pubmed", "10"): {"name": "A paper", "journal": "Nature", "year": 2001},
    ("nuccore", "0012"): {"accession": ["NM_007294.4", "NM_007295"]},  # a list: joined
    ("protein", "1"): {"accession": "NP_009225.1", "status": "live"},
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


# -- the truth, straight from SQLite ----------------------------------------------------------


def _prop(name: str, value: Any) -> Any:
    if value is None:
        return None
    if NODE_PROPERTIES[name] == "INT64":
        return int(value) if str(value).isdigit() else None
    return "; ".join(value) if isinstance(value, list) else str(value)


def truth(store: Path, dbs: set[str] | None = None) -> tuple[set[tuple], list[tuple]]:
    """(node rows, sorted edge rows) in NODE_COLUMNS / EDGE_COLUMNS order, None where unknown."""
    con = sqlite3.connect(StorePaths.of(store).journal)
    try:
        props = {(db, uid): json.loads(data)
                 for db, uid, data in con.execute("SELECT db, uid, data FROM props")}
        nodes = {
            (db, uid, depth, fetched,
             *(_prop(n, props.get((db, uid), {}).get(n)) for n in NODE_PROPERTIES))
            for db, uid, depth, fetched in con.execute("SELECT db, uid, depth, fetched FROM nodes")
            if dbs is None or db in dbs
        }
        edges = sorted(
            row for row in con.execute(
                "SELECT dbfrom, uid_from, linkname, dbto, uid_to, score, fetched FROM edges")
            if dbs is None or (row[0] in dbs and row[3] in dbs)
        )
    finally:
        con.close()
    return nodes, edges


def typed(columns: tuple[str, ...], row: list[str]) -> tuple:
    """A delimited row back to Python values: empty is None, integer columns are int."""
    ints = {"depth", "score", "year"}
    return tuple(None if v == "" else int(v) if c in ints else v
                 for c, v in zip(columns, row, strict=True))


def read_delimited(path: Path, delimiter: str) -> tuple[tuple[str, ...], list[tuple]]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        header = tuple(next(reader))
        return header, [typed(header, r) for r in reader]


def frame_rows(df) -> list[tuple]:
    return [tuple(None if pd.isna(v) else v for v in row)
            for row in df.itertuples(index=False, name=None)]


# -- round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt, delimiter", [("tsv", "\t"), ("csv", ",")])
def test_delimited_round_trip_equals_journal(store: Path, tmp_path: Path, fmt, delimiter) -> None:
    out = tmp_path / f"graph.{fmt}"
    result = CliRunner().invoke(main, ["export", "--store", str(store), str(out)])  # from suffix
    assert result.exit_code == 0, result.output
    assert f"Wrote {len(NODES)} records and {len(EDGES)} links" in result.output
    assert str(tmp_path / f"graph.nodes.{fmt}") in result.output
    nodes, edges = truth(store)
    header, edge_rows = read_delimited(out, delimiter)
    assert header == EDGE_COLUMNS == ("source_db", "source_uid", "linkname", "target_db",
                                      "target_uid", "score", "fetched")
    assert sorted(edge_rows) == edges
    header, node_rows = read_delimited(tmp_path / f"graph.nodes.{fmt}", delimiter)
    assert header == NODE_COLUMNS
    assert set(node_rows) == nodes and len(node_rows) == len(nodes)
    assert any(HOSTILE in r for r in node_rows)  # tabs, quotes and newlines came back intact
    # pandas reads the same tables back (UIDs kept as text with dtype=str)
    df = pd.read_csv(tmp_path / f"graph.nodes.{fmt}", sep=delimiter, dtype=str,
                     keep_default_na=False)
    assert set(df["uid"]) == {uid for _, uid, _ in NODES}
    assert df.loc[df["uid"] == "672", "description"].item() == HOSTILE


def test_parquet_round_trip_equals_journal(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "graph.parquet"
    result = CliRunner().invoke(
        main, ["export", "--store", str(store), "--format", "parquet", str(out)])
    assert result.exit_code == 0, result.output
    nodes, edges = truth(store)
    edge_table = pq.read_table(out)
    assert tuple(edge_table.column_names) == EDGE_COLUMNS
    assert str(edge_table.schema.field("score").type) == "int64"
    assert sorted(tuple(r.values()) for r in edge_table.to_pylist()) == edges
    node_table = pq.read_table(tmp_path / "graph.nodes.parquet")
    assert tuple(node_table.column_names) == NODE_COLUMNS
    assert str(node_table.schema.field("uid").type) == "string"
    rows = [tuple(r.values()) for r in node_table.to_pylist()]
    assert set(rows) == nodes and len(rows) == len(nodes)


def test_to_pandas_equals_journal(store: Path) -> None:
    nodes_df, edges_df = to_pandas(store)
    nodes, edges = truth(store)
    assert tuple(nodes_df.columns) == NODE_COLUMNS
    assert tuple(edges_df.columns) == EDGE_COLUMNS
    assert set(frame_rows(nodes_df)) == nodes and len(nodes_df) == len(nodes)
    assert sorted(frame_rows(edges_df)) == edges
    assert str(nodes_df["uid"].dtype) == "string" and "0012" in set(nodes_df["uid"])
    assert str(nodes_df["depth"].dtype) == "Int64"
    assert str(edges_df["score"].dtype) == "Int64"
    # the same analysis as the networkx graph: degree of gene:672 over every link name
    graph = to_networkx(store)
    out_degree = (edges_df["source_db"] + ":" + edges_df["source_uid"]).value_counts()
    assert out_degree["gene:672"] == graph.out_degree("gene:672")


def test_subsets_agree_across_tables_pandas_and_networkx(store: Path, tmp_path: Path) -> None:
    dbs = {"gene", "pubmed"}
    nodes, edges = truth(store, dbs)
    nodes_df, edges_df = to_pandas(store, dbs=sorted(dbs))
    assert set(frame_rows(nodes_df)) == nodes and sorted(frame_rows(edges_df)) == edges
    report = export(store, tmp_path / "sub.edges.tsv", dbs=sorted(dbs))
    assert report.files == [tmp_path / "sub.edges.tsv", tmp_path / "sub.nodes.tsv"]
    assert sorted(read_delimited(report.files[0], "\t")[1]) == edges
    graph = to_networkx(store, dbs=sorted(dbs))
    assert (graph.number_of_nodes(), graph.number_of_edges()) == (len(nodes), len(edges))
    # --link: those links and the records they join
    nodes_df, edges_df = to_pandas(store, links=["pubmed_pubmed"])
    assert set(nodes_df["uid"]) == {"10", "11"} and len(edges_df) == 2


def test_parquet_is_written_in_row_groups(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Streaming: CHUNK rows per row group, never the whole table at once."""
    monkeypatch.setattr("crawler.exporting.CHUNK", 3)
    export(store, tmp_path / "g.parquet")
    meta = pq.ParquetFile(tmp_path / "g.parquet").metadata
    assert meta.num_row_groups == 4 and meta.num_rows == len(EDGES)  # 3 + 3 + 3 + 1


def test_a_failure_midway_leaves_neither_file(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_edges = JournalSource.edges

    def broken(self):
        it = real_edges(self)
        yield next(it)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(JournalSource, "edges", broken)
    for fmt in ("tsv", "parquet"):
        with pytest.raises(RuntimeError, match="disk on fire"):
            export(store, tmp_path / f"g.{fmt}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_names_of_the_node_table() -> None:
    assert node_table_path("x/g.tsv") == Path("x/g.nodes.tsv")
    assert node_table_path("g.edges.csv") == Path("g.nodes.csv")
    assert node_table_path("brca1_edges.parquet") == Path("brca1_nodes.parquet")


def test_nothing_to_export_is_bad_input(store: Path, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no records match"):
        export(store, tmp_path / "g.tsv", dbs=["taxonomy"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]
    result = CliRunner().invoke(main, ["export", "--store", str(store), "--db", "taxonomy",
                                       str(tmp_path / "g.csv")])
    assert result.exit_code == 2 and result.output.startswith("Error: nothing to export")


def test_crawl_then_tables_equal_the_journal(tmp_path: Path, emulator) -> None:
    """A real crawl through `entrez-graph crawl`, then TSV, Parquet and pandas against it."""
    store = tmp_path / "crawl"
    runner = CliRunner()
    env = {"ENTREZ_GRAPH_RATE_DIR": str(tmp_path / "rate"), "NCBI_EMAIL": "t@example.org",
           "NCBI_API_KEY": None}
    result = runner.invoke(main, ["crawl", "gene:672", "--depth", "2", "--rps", "1000",
                                  "--store", str(store), "--eutils-url", emulator.url], env=env)
    assert result.exit_code == 0, result.output
    nodes, edges = truth(store)
    assert len(edges) > 100 and len({n[0] for n in nodes}) >= 3
    for fmt in ("tsv", "parquet"):
        result = runner.invoke(main, ["export", "--store", str(store), str(tmp_path / f"c.{fmt}")])
        assert result.exit_code == 0, result.output
    assert sorted(read_delimited(tmp_path / "c.tsv", "\t")[1]) == edges
    assert set(read_delimited(tmp_path / "c.nodes.tsv", "\t")[1]) == nodes
    assert sorted(tuple(r.values()) for r in pq.read_table(tmp_path / "c.parquet").to_pylist()) \
        == edges
    nodes_df, edges_df = to_pandas(store)
    assert set(frame_rows(nodes_df)) == nodes and sorted(frame_rows(edges_df)) == edges


def test_a_full_disk_is_exit_4_and_leaves_neither_file(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC while writing the second table: one line naming the file, exit 4, nothing left."""
    import errno

    import crawler.exporting as exporting

    real = exporting._write_delimited
    calls: list[Path] = []

    def full(path: Path, *args: Any) -> int:
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, *args)

    monkeypatch.setattr(exporting, "_write_delimited", full)
    out = tmp_path / "g.tsv"
    result = CliRunner().invoke(main, ["export", "--store", str(store), str(out)])
    assert result.exit_code == 4, result.output
    assert len(result.output.strip().splitlines()) == 1 and str(out) in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_readme_pandas_example(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's to_pandas snippet, as printed there, on a store named like the demo's."""
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    start = readme.index("from crawler import to_pandas")
    snippet = readme[start:readme.index("```", start)]
    *body, last = [line.split("#")[0].rstrip() for line in snippet.strip().splitlines()]
    monkeypatch.chdir(store.parent)
    store.rename(store.parent / "demo-store")
    scope: dict[str, Any] = {}
    exec("\n".join(body), scope)
    assert eval(last, scope) == "BRCA1"
    assert eval("edges.groupby('linkname').size()", scope)["gene_protein"] == 2
