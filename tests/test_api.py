"""The public Python API gives the same data as the commands it sits under.

Two stores are built from the same emulated world, one only through Python (`crawl`, `sync`,
`summarize`) and one only through the CLI (`crawl --no-embedded`, `sync --embedded`,
`summarize`); every step's report, then `status`, `query`, `export`, `to_networkx`, `link` and
`links`, must agree between the two doors.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from click.testing import CliRunner

import crawler
from crawler import (
    Emulator,
    EutilsClient,
    Journal,
    World,
    crawl,
    emulate,
    export,
    link,
    links,
    query,
    status,
    summarize,
    sync,
    to_networkx,
)
from crawler.cli import main
from crawler.errors import BadInput
from crawler.syncing import SyncIncomplete, check_synced, report_dict

SEED = "gene:672"
TIMING = {"elapsed_s"}


def cli(*args: str) -> Any:
    """Run the real CLI; return its stdout parsed as JSON (the command must succeed)."""
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, (args, result.output, result.stderr)
    return json.loads(result.stdout)


def without(d: dict[str, Any], keys: set[str]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in keys}


@pytest.fixture(scope="module")
def emu(world: World) -> Iterator[Emulator]:
    with Emulator(world, rate_limit=0) as e:
        yield e


@pytest.fixture(scope="module")
def stores(
    emu: Emulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The same crawl, sync and summarize, once from Python and once through the CLI."""
    root = tmp_path_factory.mktemp("api")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENTREZ_GRAPH_RATE_DIR", str(root / "rates"))
        mp.delenv("NCBI_API_KEY", raising=False)
        mp.delenv("NEO4J_URI", raising=False)
        api, via_cli = root / "api", root / "cli"
        report = crawl(api, [SEED], depth=1, embedded=False, eutils_url=emu.url, rps=1000)
        synced = sync(api, embedded=True)
        summarized = summarize(api, eutils_url=emu.url, rps=1000)
        cli_crawl = cli("crawl", SEED, "--depth", "1", "--no-embedded", "--store", str(via_cli),
                        "--eutils-url", emu.url, "--rps", "1000", "--format", "json")
        cli_sync = cli("sync", "--store", str(via_cli), "--embedded", "--format", "json")
        cli_summarize = cli("summarize", "--store", str(via_cli), "--eutils-url", emu.url,
                            "--rps", "1000", "--format", "json")
        yield {
            "api": api, "cli": via_cli, "crawl": (report, cli_crawl),
            "sync": (synced, cli_sync), "summarize": (summarized, cli_summarize),
        }


# -- the package ---------------------------------------------------------------------------------


def test_public_names_are_the_library_objects() -> None:
    sources = {
        "crawl": "crawler.engine", "link": "crawler.linking", "links": "crawler.linking",
        "query": "crawler.querying", "status": "crawler.reporting", "sync": "crawler.syncing",
        "export": "crawler.exporting", "to_networkx": "crawler.exporting",
        "to_pandas": "crawler.exporting", "view": "crawler.viewing",
        "summarize": "crawler.syncing", "emulate": "crawler.emulator.serve",
        "demo": "crawler.showcase", "EutilsClient": "crawler.eutils.client",
        "Journal": "crawler.journal", "World": "crawler.emulator", "Emulator": "crawler.emulator",
    }
    assert sorted(crawler.__all__) == sorted(sources)
    for name, module in sources.items():
        assert getattr(crawler, name) is getattr(importlib.import_module(module), name), name
    # no public function shares its name with a submodule, so importing modules changes nothing
    for module in ("exporting", "reporting", "showcase"):
        importlib.import_module(f"crawler.{module}")
    for name in ("export", "status", "demo"):
        assert callable(getattr(crawler, name)) and getattr(crawler, name).__name__ == name
    assert (export, status, EutilsClient, Journal) == (
        crawler.export, crawler.status, crawler.EutilsClient, crawler.Journal)
    with pytest.raises(AttributeError):
        crawler.no_such_name  # noqa: B018


def test_import_crawler_loads_nothing_else() -> None:
    code = ("import sys, crawler; "
            "print(sorted(m for m in sys.modules if m.startswith(('crawler', 'neo4j', "
            "'ladybug', 'networkx', 'httpx', 'Bio'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['crawler']"


# -- crawl, sync, summarize, status ------------------------------------------------------------


def test_crawl_report_equals_cli_json(stores: dict[str, Any]) -> None:
    report, from_cli = stores["crawl"]
    mine = json.loads(json.dumps(report.to_dict()))
    assert mine["nodes"] > 10 and mine["edges"] > 10 and mine["complete"]
    assert without(mine, TIMING | {"store"}) == without(from_cli, TIMING | {"store"})


def test_sync_reports_equal_cli_json(stores: dict[str, Any]) -> None:
    reports, from_cli = stores["sync"]
    assert [report_dict(r) for r in reports] == from_cli
    assert reports[0].sink == "embedded" and reports[0].nodes > 10 and reports[0].ok
    check_synced(reports)  # in step: no exception


def test_summarize_result_equals_cli_json(stores: dict[str, Any]) -> None:
    result, from_cli = stores["summarize"]
    assert result.as_dict() == from_cli
    assert result.report.summarized > 0 and result.stores_ok
    assert [s["sink"] for s in result.stores] == ["embedded"]


def test_status_equals_cli_json(stores: dict[str, Any]) -> None:
    for store in (stores["api"], stores["cli"]):
        assert status(store) == cli("status", "--store", str(store), "--format", "json")
    mine, theirs = status(stores["api"]), status(stores["cli"])
    assert mine["sinks"]["embedded"]["total"] == 0 and mine["named"] > 0
    same = {"nodes", "edges", "by_db", "by_link", "pending", "failed", "named", "complete"}
    assert {k: mine[k] for k in same} == {k: theirs[k] for k in same}


def test_status_of_a_missing_store_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no entrez-graph store"):
        status(tmp_path / "nope")
    with pytest.raises(BadInput, match="no entrez-graph store"):
        sync(tmp_path / "nope", embedded=True)
    empty = tmp_path / "empty"
    Journal(empty / "journal.sqlite").close()
    with pytest.raises(BadInput, match="nothing to sync"):
        sync(empty)


def test_check_synced_names_the_store_behind() -> None:
    from crawler.sinks import SyncReport

    with pytest.raises(SyncIncomplete, match="neo4j:x: 7 rows missing") as info:
        check_synced([SyncReport("embedded"), SyncReport("neo4j:x", pending=7, error="down")])
    assert info.value.exit_code == 3


# -- query -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name_or_cypher", "params"),
    [
        ("records_per_db", {}),
        ("gene_refseq_proteins", {"gene": "672"}),
        ("MATCH (g:gene)-[r]->(p:protein) RETURN g, r, p.uid AS uid "
         "ORDER BY uid, label(r) LIMIT 5", {}),
        ("MATCH (g:gene {uid: $uid}) RETURN g.uid AS uid, g.name AS name", {"uid": "672"}),
    ],
)
def test_query_equals_cli_json(
    stores: dict[str, Any], name_or_cypher: str, params: dict[str, str]
) -> None:
    store = stores["api"]
    result = query(store, name_or_cypher, params)
    args = [f"--param={k}={v}" for k, v in params.items()]
    from_cli = cli("query", "--store", str(store), "--format", "json", *args, name_or_cypher)
    assert json.loads(json.dumps(result.plain_records(), default=str)) == from_cli
    assert result.rows, "every case answers something on this crawl"
    # the other door's store answers the same (but for when it was fetched: another crawl)
    assert _unstamped(query(stores["cli"], name_or_cypher, params).plain_records()) \
        == _unstamped(result.plain_records())


def _unstamped(value: Any) -> Any:
    """`value` without `fetched` properties (two crawls of one world differ only in those)."""
    if isinstance(value, dict):
        return {k: _unstamped(v) for k, v in value.items() if k != "fetched"}
    if isinstance(value, list):
        return [_unstamped(v) for v in value]
    return value


def test_query_takes_param_strings_and_a_neo4j_uri(stores: dict[str, Any]) -> None:
    by_dict = query(stores["api"], "gene_refseq_proteins", {"gene": "672"})
    assert query(stores["api"], "gene_refseq_proteins", ["gene=672"]) == by_dict
    with pytest.raises(BadInput, match="invalid Neo4j URI"):
        query(None, "records_per_db", neo4j="http://not-bolt")
    with pytest.raises(BadInput, match="--write"):
        query(stores["api"], "CREATE (g:gene {uid: 'x'})")


# -- export and networkx ---------------------------------------------------------------------


def test_export_and_to_networkx_equal_cli_export(stores: dict[str, Any], tmp_path: Path) -> None:
    store = stores["api"]
    mine = export(store, tmp_path / "api.graphml")
    result = CliRunner().invoke(
        main, ["export", "--store", str(store), str(tmp_path / "cli.graphml")]
    )
    assert result.exit_code == 0, result.output
    assert f"Wrote {mine.nodes} records and {mine.edges} links" in result.output
    assert (tmp_path / "api.graphml").read_bytes() == (tmp_path / "cli.graphml").read_bytes()
    graph = to_networkx(store)
    from_file = nx.read_graphml(tmp_path / "cli.graphml", force_multigraph=True)
    assert (graph.number_of_nodes(), graph.number_of_edges()) == (mine.nodes, mine.edges)
    assert set(graph.nodes) == set(from_file.nodes)
    assert sorted((u, v, d["linkname"]) for u, v, d in graph.edges(data=True)) == sorted(
        (u, v, d["linkname"]) for u, v, d in from_file.edges(data=True)
    )
    st = status(store)
    assert (mine.nodes, mine.edges) == (st["nodes"], st["edges"])


# -- link and links ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        {"dbfrom": "gene", "ids": ["672", "675"], "db": "protein",
         "linkname": "gene_protein_refseq"},
        {"dbfrom": "gene", "ids": ["672", "675"], "db": "protein", "merge": True},
        {"dbfrom": "gene", "ids": ["672"], "cmd": "acheck"},
        {"dbfrom": "gene", "ids": ["672", "675"], "cmd": "ncheck"},
        {"dbfrom": "gene", "ids": ["672"], "cmd": "llinks"},
    ],
)
def test_link_rows_equal_cli_json(
    world: World, emu: Emulator, args: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rates"))
    rows = link(**args, eutils_url=emu.url, rps=1000)
    argv = ["link", "--dbfrom", args["dbfrom"], "--cmd", args.get("cmd", "neighbor"),
            *[f"--id={i}" for i in args["ids"]], "--format", "json",
            "--eutils-url", emu.url, "--rps", "1000"]
    for opt in ("db", "linkname"):
        if opt in args:
            argv += [f"--{opt}", args[opt]]
    if args.get("merge"):
        argv.append("--merge")
    assert rows == cli(*argv)
    assert rows
    if args.get("linkname"):
        expected = {x.target for x in world.links_from("gene", "672")
                    if x.linkname == args["linkname"]}
        assert {r["target"] for r in rows if r["source"] == "672"} == expected


def test_links_rows_equal_cli_json_and_share_a_client(
    world: World, emu: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rates"))
    with EutilsClient(base_url=emu.url, rps=1000) as client:
        found = links("gene", ["672", "675"], client=client)
        again = link("gene", "672", cmd="acheck", client=client)
        assert client.requests_sent == 2
    from_cli = cli("links", "gene", "672", "675", "--format", "json",
                   "--eutils-url", emu.url, "--rps", "1000")
    assert found.rows == from_cli and found.failed == {}
    assert {r["linkname"] for r in found.entrez if r["source"] == "672"} == {
        x.linkname for x in world.links_from("gene", "672")}
    assert {r["linkname"] for r in again if r["kind"] == "entrez"} == {
        r["linkname"] for r in found.entrez if r["source"] == "672"}


def test_link_bad_input_sends_nothing(emu: Emulator) -> None:
    before = len(emu.log)
    with pytest.raises(BadInput, match="unknown --cmd"):
        link("gene", ["672"], cmd="explode", eutils_url=emu.url)
    with pytest.raises(BadInput, match="at least one"):
        links("gene", [], eutils_url=emu.url)
    assert len(emu.log) == before


# -- emulate -----------------------------------------------------------------------------------


def test_emulate_serves_and_dumps_like_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rates"))
    from crawler.emulator.serve import dump_world

    with emulate(world_seed=4, size=300) as emu:
        assert emu.url.startswith("http://127.0.0.1:")
        gene = next(uid for uid in emu.world.uids("gene") if emu.world.links_from("gene", uid))
        rows = link("gene", [gene], cmd="acheck", eutils_url=emu.url, rps=1000)
        assert {r["linkname"] for r in rows if r["kind"] == "entrez"} == {
            x.linkname for x in emu.world.links_from("gene", gene)}
    report = dump_world(tmp_path / "api.jsonl", world_seed=4, size=300)
    result = CliRunner().invoke(main, ["emulate", "--world", "4", "--size", "300",
                                       "--dump", str(tmp_path / "cli.jsonl")])
    assert result.exit_code == 0, result.output
    assert f"Wrote {report.links} links" in result.output
    assert (tmp_path / "api.jsonl").read_bytes() == (tmp_path / "cli.jsonl").read_bytes()
    with emulate(graph=tmp_path / "api.jsonl") as emu:
        assert emu.world.links_from("gene", gene) == World.load(
            tmp_path / "cli.jsonl").links_from("gene", gene)
    with pytest.raises(BadInput, match="not both"):
        emulate(world_seed=1, graph=tmp_path / "api.jsonl")
    with pytest.raises(BadInput):
        emulate(faults="nonsense=2")
