"""Provenance through the real CLI against the emulator: every record and link carries `fetched`
(journal, LadybugDB, every export, the HTML view), an old (schema 1) store is migrated, and the
crawl's history (`runs`) is kept and shown by `status`, also for interrupted and killed runs."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import ladybug
import networkx as nx
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from crawler import exporting
from crawler.cli import main
from crawler.emulator import Emulator, World
from crawler.journal import SCHEMA_VERSION, Journal
from crawler.sinks.ladybug import CURSOR_TABLE
from crawler.store import StorePaths

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture(autouse=True)
def _no_env(monkeypatch, tmp_path):
    for var in ("NEO4J_URI", "NCBI_API_KEY", "ENTREZ_GRAPH_STORE", "ENTREZ_GRAPH_EUTILS_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))


def cli(*args: str):
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result


def crawl(store: Path, url: str, *extra: str):
    return cli("crawl", "gene:672", "--depth", "1", "--store", str(store), "--eutils-url", url,
               "--rps", "1000", *extra)


def journal_stamps(store: Path) -> tuple[dict, dict]:
    """(db, uid) -> fetched and (dbfrom, uid_from, linkname, dbto, uid_to) -> fetched."""
    con = sqlite3.connect(StorePaths.of(store).journal)
    try:
        nodes = {(d, u): f for d, u, f in con.execute("SELECT db, uid, fetched FROM nodes")}
        edges = {tuple(r[:5]): r[5] for r in con.execute(
            "SELECT dbfrom, uid_from, linkname, dbto, uid_to, fetched FROM edges")}
    finally:
        con.close()
    return nodes, edges


def store_stamps(store: Path) -> tuple[dict, dict]:
    """The same, queried from LadybugDB."""
    database = ladybug.Database(str(StorePaths.of(store).graph), read_only=True)
    conn = ladybug.Connection(database)
    try:
        nodes = {(label, uid): f for label, uid, f in conn.execute(
            f"MATCH (n) WHERE label(n) <> '{CURSOR_TABLE}' RETURN label(n), n.uid, n.fetched"
        ).get_all()}
        edges = {(la, ua, r, lb, ub): f for r, la, ua, lb, ub, f in conn.execute(
            "MATCH (a)-[r]->(b) RETURN label(r), label(a), a.uid, label(b), b.uid, r.fetched"
        ).get_all()}
    finally:
        conn.close()
        database.close()
    return nodes, edges


def test_every_record_and_link_has_fetched_everywhere(emulator: Emulator, tmp_path: Path):
    store = tmp_path / "s"
    before = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    crawl(store, emulator.url, "--summaries")
    after = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    nodes, edges = journal_stamps(store)
    assert len(nodes) > 10 and len(edges) > 10
    for stamp in [*nodes.values(), *edges.values()]:
        assert STAMP.match(stamp) and before <= stamp <= after, stamp
    with Journal(StorePaths.of(store).journal, create=False) as journal:
        props = journal.props_between(0, 10**9)
    assert props and all(before <= p.fetched <= after for p in props)

    assert store_stamps(store) == (nodes, edges)

    key = lambda db, uid: f"{db}:{uid}"  # noqa: E731
    want_nodes = {key(*k): v for k, v in nodes.items()}
    want_edges = {(key(k[0], k[1]), key(k[3], k[4]), k[2]): v for k, v in edges.items()}

    def check_graph(graph: nx.MultiDiGraph) -> None:
        assert {n: d["fetched"] for n, d in graph.nodes(data=True)} == want_nodes
        assert {(a, b, d["linkname"]): d["fetched"] for a, b, d in graph.edges(data=True)} \
            == want_edges

    out = tmp_path / "out"
    out.mkdir()
    for fmt in ("graphml", "gexf", "json"):
        cli("export", "--store", str(store), str(out / f"g.{fmt}"))
    check_graph(nx.read_graphml(out / "g.graphml", force_multigraph=True))
    check_graph(nx.node_link_graph(json.loads((out / "g.json").read_text()), edges="edges"))
    check_graph(exporting.to_networkx(store))
    gexf = ET.parse(out / "g.gexf").getroot()
    ns = {"g": "http://www.gexf.net/1.2draft"}
    ids = {kind: next(a.get("id") for a in gexf.iterfind(
        f".//g:attributes[@class='{kind}']/g:attribute[@title='fetched']", ns))
        for kind in ("node", "edge")}

    def gexf_fetched(element: ET.Element, kind: str) -> str | None:
        return next((v.get("value") for v in element.iterfind(".//g:attvalue", ns)
                     if v.get("for") == ids[kind]), None)

    assert {n.get("id"): gexf_fetched(n, "node") for n in gexf.iterfind(".//g:node", ns)} \
        == want_nodes
    assert sorted(gexf_fetched(e, "edge") for e in gexf.iterfind(".//g:edge", ns)) \
        == sorted(want_edges.values())

    cli("export", "--store", str(store), "--format", "neo4j-csv", str(out / "neo"))
    seen_nodes, seen_edges = {}, []
    for path in (out / "neo" / "nodes").glob("*.csv"):
        for row in csv.DictReader(path.open(encoding="utf-8")):
            seen_nodes[key(path.stem, row[f"uid:ID({path.stem})"])] = row["fetched"]
    for path in (out / "neo" / "relationships").glob("*.csv"):
        seen_edges += [row["fetched"] for row in csv.DictReader(path.open(encoding="utf-8"))]
    assert seen_nodes == want_nodes and sorted(seen_edges) == sorted(want_edges.values())

    for fmt in ("tsv", "csv", "parquet"):
        edge_file = out / f"e.{fmt}"
        cli("export", "--store", str(store), str(edge_file))
        node_file = exporting.node_table_path(edge_file)
        if fmt == "parquet":
            node_rows = pq.read_table(node_file).to_pylist()
            edge_rows = pq.read_table(edge_file).to_pylist()
        else:
            delimiter = "\t" if fmt == "tsv" else ","
            node_rows = list(csv.DictReader(node_file.open(), delimiter=delimiter))
            edge_rows = list(csv.DictReader(edge_file.open(), delimiter=delimiter))
        assert {key(r["db"], r["uid"]): r["fetched"] for r in node_rows} == want_nodes
        assert {(key(r["source_db"], r["source_uid"]), key(r["target_db"], r["target_uid"]),
                 r["linkname"]): r["fetched"] for r in edge_rows} == want_edges
    node_df, edge_df = exporting.to_pandas(store)
    assert dict(zip(node_df["db"] + ":" + node_df["uid"], node_df["fetched"], strict=True)) \
        == want_nodes
    assert sorted(edge_df["fetched"]) == sorted(want_edges.values())

    cli("view", "--store", str(store), str(out / "v.html"))
    html = (out / "v.html").read_text(encoding="utf-8")
    data = json.loads(re.search(r'<script type="application/json" id="graph-data">(.*?)</script>',
                                html, re.S).group(1))
    assert {n["id"]: n["props"]["fetched"] for n in data["nodes"]} == want_nodes
    assert sorted(e["fetched"] for e in data["edges"]) == sorted(want_edges.values())

    # The store proof counts `fetched` too: cleared values show, and sync puts them back.
    cli("query", "--store", str(store), "--write", "MATCH (n:gene) SET n.fetched = NULL RETURN 1")
    link = next(k[2] for k in edges if k[2] != "gene_protein")
    cli("query", "--store", str(store), "--write",
        f"MATCH ()-[r:{link}]->() SET r.fetched = NULL RETURN 1")
    report = json.loads(cli("status", "--store", str(store), "--format", "json").output)
    genes = sum(1 for db, _ in nodes if db == "gene")
    links = sum(1 for k in edges if k[2] == link)
    assert report["sinks"]["embedded"]["state"] == "diverged"
    assert sorted(report["sinks"]["embedded"]["differences"]) == sorted([
        f"gene fetched times: 0 held, {genes} in the journal",
        f"{link} fetched times: 0 held, {links} in the journal"])
    cli("sync", "--store", str(store), "--embedded")
    assert store_stamps(store) == (nodes, edges)

    report = json.loads(cli("status", "--store", str(store), "--format", "json").output)
    assert report["sinks"]["embedded"]["state"] == "in step"
    (run,) = report["history"]
    assert run["kind"] == "crawl" and run["outcome"] == "done" and run["changed"] == {}
    assert before <= run["started"] <= run["ended"] <= after
    assert run["requests"] == report["requests_sent"] > 0
    assert run["settings"]["depth"] == 1 and run["settings"]["seed_specs"] == ["gene:672"]


def _downgrade(store: Path) -> None:
    """Make the store what an entrez-graph from before provenance left: journal schema 1 (no
    `fetched`, no `runs`), LadybugDB tables without the `fetched` property."""
    con = sqlite3.connect(StorePaths.of(store).journal)
    for table in ("nodes", "edges", "props"):
        con.execute(f"ALTER TABLE {table} DROP COLUMN fetched")
    con.execute("DROP TABLE runs")
    con.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    con.commit()
    con.close()
    database = ladybug.Database(str(StorePaths.of(store).graph))
    conn = ladybug.Connection(database)
    try:
        for name, _ in conn.execute("CALL show_tables() RETURN name, type").get_all():
            if name != CURSOR_TABLE:
                conn.execute(f"ALTER TABLE `{name}` DROP fetched")
    finally:
        conn.close()
        database.close()


def test_schema1_store_is_migrated_and_its_store_gets_fetched(emulator: Emulator, tmp_path):
    store = tmp_path / "old"
    crawl(store, emulator.url)
    old_nodes, old_edges = journal_stamps(store)
    _downgrade(store)

    # Readers read it as it is and change nothing.
    report = json.loads(cli("status", "--store", str(store), "--format", "json").output)
    assert report["history"] == [] and report["nodes"] == len(old_nodes)
    cli("export", "--store", str(store), str(tmp_path / "old.tsv"))
    rows = list(csv.DictReader((tmp_path / "old.tsv").open(), delimiter="\t"))
    assert len(rows) == len(old_edges) and {r["fetched"] for r in rows} == {""}
    con = sqlite3.connect(StorePaths.of(store).journal)
    assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("1",)
    con.close()

    before = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    crawl(store, emulator.url)  # the crawl is complete: resuming only migrates and syncs
    after = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    con = sqlite3.connect(StorePaths.of(store).journal)
    version = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    con.close()
    assert int(version) == SCHEMA_VERSION
    nodes, edges = journal_stamps(store)
    assert nodes.keys() == old_nodes.keys() and edges.keys() == old_edges.keys()
    stamps = set(nodes.values()) | set(edges.values())
    assert len(stamps) == 1 and before <= stamps.pop() <= after  # the migration's time
    assert store_stamps(store) == (nodes, edges)
    report = json.loads(cli("status", "--store", str(store), "--format", "json").output)
    assert [(r["kind"], r["outcome"]) for r in report["history"]] == [("resume", "done")]
    assert report["sinks"]["embedded"]["state"] == "in step"

    # New rows get their own time (the column default survived the migration).
    with Journal(StorePaths.of(store).journal) as journal:
        journal.add_nodes([("gene", "999999", 3)])
        (row,) = [r for r in journal.nodes_between(0, 10**9) if r.uid == "999999"]
    assert STAMP.match(row.fetched)


def _wait_for_requests(proc: subprocess.Popen, emu: Emulator, n: int) -> None:
    deadline = time.monotonic() + 120
    while len(emu.log) < n:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)


def test_history_of_crawl_interrupted_killed_and_resumed(world: World, tmp_path: Path):
    store = tmp_path / "h"
    env = {**os.environ, "ENTREZ_GRAPH_RATE_DIR": str(tmp_path / "rate"), "PYTHONUNBUFFERED": "1"}
    with Emulator(world, rate_limit=0, latency_ms=150) as slow, \
            Emulator(world, rate_limit=0) as fast:
        cmd = [sys.executable, "-m", "crawler", "crawl", "gene:672", "--depth", "2", "--store",
               str(store), "--rps", "1000"]
        proc = subprocess.Popen([*cmd, "--eutils-url", slow.url], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_for_requests(proc, slow, 3)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 143, err

        proc = subprocess.Popen([*cmd, "--eutils-url", slow.url], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_for_requests(proc, slow, len(slow.log) + 3)
        # running: the last run has no end yet, and status says so while the crawl holds it
        report = json.loads(cli("status", "--store", str(store), "--format", "json").output)
        assert report["history"][-1]["outcome"] == "running"
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)

        # the last run switches to another endpoint: the settings it changed are shown
        result = CliRunner().invoke(main, [*cmd[3:], "--eutils-url", fast.url,
                                           "--switch-endpoint"])
        assert result.exit_code == 0, result.output

    report = json.loads(cli("status", "--store", str(store), "--format", "json").output)
    runs = report["history"]
    assert [(r["kind"], r["outcome"]) for r in runs] == [
        ("crawl", "interrupted"), ("resume", "killed"), ("resume", "done")]
    assert runs[1]["ended"] is None and runs[0]["ended"] and runs[2]["ended"]
    assert all(r["requests"] > 0 for r in (runs[0], runs[2]))
    assert [r["changed"] for r in runs[:2]] == [{}, {}]
    assert runs[2]["changed"] == {"endpoint": {"from": slow.url, "to": fast.url}}
    assert runs[0]["started"] <= runs[1]["started"] <= runs[2]["started"] <= runs[2]["ended"]

    table = cli("status", "--store", str(store)).output
    lines = [ln for ln in table.splitlines() if re.match(r"^\s*[123]\s+(crawl|resume)\s", ln)]
    assert len(lines) == 3, table
    assert "interrupted" in lines[0] and "first run" in lines[0]
    assert "killed" in lines[1] and "same" in lines[1]
    assert "done" in lines[2] and f"endpoint {slow.url} -> {fast.url}" in lines[2]
