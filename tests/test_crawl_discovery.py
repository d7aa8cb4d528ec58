"""`crawl --discovery all`: one `cmd=neighbor&db=all` request per batch, the acheck route's graph.

The emulator answers db=all as NCBI does (the real answer in tests/data is the reference for its
shape); the same crawl through both routes gives the same records (with depths) and edges (with
scores), on several worlds, with filters, subsets, hubs, caps, scores, and under faults.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from test_crawl_equality import dumped, expected_graph, journal_graph, ladybug_graph  # noqa: F401

from crawler.cli import main
from crawler.crawling.committer import Committer
from crawler.crawling.settings import build_settings
from crawler.crawling.tasks import CheckTask
from crawler.emulator import Emulator, World
from crawler.emulator.world import CATALOG
from crawler.eutils.models import BatchOutcome
from crawler.eutils.parse import parse_elink
from crawler.journal import Journal
from crawler.store import StorePaths

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "bioperl-eutils__elink_dball.xml"
FAULTS = "429=0.2,5xx=0.1,drop=0.05,truncate=0.05,error=0.05,partial=0.05"
SEEDS = ["gene:672", "protein:6552302", "pubmed:9298984"]


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
    return json.loads(result.stdout)


def elink_requests(log: list[dict]) -> list[dict]:
    return [e for e in log if e["path"].endswith("elink.fcgi")]


def _ids(params: dict) -> list[str]:
    value = params.get("id")
    values = value if isinstance(value, list) else [value]
    return [i for v in values if v for i in str(v).split(",")]


# -- the answer ------------------------------------------------------------------------------------


def _shape(root: ET.Element) -> set[str]:
    """Every element path of an eLinkResult, e.g. LinkSet/LinkSetDb/Info."""
    out: set[str] = set()

    def walk(el: ET.Element, path: str) -> None:
        for child in el:
            p = f"{path}/{child.tag}" if path else child.tag
            out.add(p)
            walk(child, p)

    walk(root, "")
    return out


def test_real_db_all_answer_and_what_the_crawl_takes_from_it(tmp_path):
    result = parse_elink(SAMPLE.read_bytes(), "neighbor")
    (linkset,) = result.linksets
    assert linkset.dbfrom == "protein" and linkset.ids == ("15622530",)
    by_name = {d.linkname: d for d in linkset.linksetdbs}
    assert len(by_name) == 10
    assert {n for n, d in by_name.items() if not d.links} == {
        "protein_genomeprj_insdc", "protein_nucest_mgc", "protein_nucgss_mgc"}  # Empty result
    assert by_name["protein_protein"].links[1].score == 381

    def discovered(**kw) -> set[tuple]:
        store = tmp_path / f"s{len(list(tmp_path.iterdir()))}"
        store.mkdir()
        settings = build_settings(["protein:15622530"], depth=1, **kw)
        with Journal(StorePaths.of(store).journal) as journal:
            committer = Committer(journal, settings)
            committer.add_seeds([("protein", "15622530")])
            outcome = BatchOutcome(answered={"15622530": linkset}, requests=1)
            committer.discover(CheckTask("protein", ["15622530"], "all"), outcome, 0)
            state = journal.execute("SELECT state FROM nodes WHERE uid='15622530'").fetchone()
            assert state == ("done",)
            return {(e.linkname, e.dbto, e.uid_to, e.score) for e in journal.iter_edges()}

    edges = discovered()
    names = {e[0] for e in edges}
    # link names with links, through the default filters; the self-link is dropped; no scores
    # without --scores (the acheck route fetches them with plain neighbor)
    assert "protein_gene" in names and "protein_taxonomy" in names
    assert not names & {"protein_genomeprj_insdc", "protein_nucest_mgc", "protein_nucgss_mgc"}
    assert ("protein_protein", "protein", "15622530", None) not in edges
    assert all(e[3] is None for e in edges)
    scored = discovered(scores=True, links=["protein_protein", "protein_gene"])
    assert {e[0] for e in scored} == {"protein_protein", "protein_gene"}
    assert ("protein_protein", "protein", "15921743", 381) in scored
    assert ("protein_gene", "gene", "1459485", None) in scored


def test_emulator_answers_db_all_as_ncbi_does(emulator, world):
    scored = next(uid for uid in world.uids("protein")
                  if any(lk.score is not None for lk in world.links_from("protein", uid)))
    every = {spec.linkname for spec in CATALOG["protein"]}
    sparse = next(uid for uid in world.uids("protein")
                  if {lk.linkname for lk in world.links_from("protein", uid)} < every)
    ids = [scored, sparse]
    params = [("dbfrom", "protein"), ("db", "all"), ("cmd", "neighbor")] + [("id", i) for i in ids]
    body = httpx.post(emulator.url + "elink.fcgi", data={"dbfrom": "protein", "db": "all",
                                                         "cmd": "neighbor", "id": ids}).content
    assert body == httpx.get(emulator.url + "elink.fcgi", params=params).content
    mine, real = ET.fromstring(body), ET.fromstring(SAMPLE.read_bytes())
    assert _shape(mine) == _shape(real)  # LinkSetDb/Info for empty ones, Link/Score on scored
    result = parse_elink(body, "neighbor")
    assert [ls.ids for ls in result.linksets] == [(i,) for i in ids]
    for ls in result.linksets:
        names = [(d.dbto, d.linkname) for d in ls.linksetdbs]
        assert names == sorted(names)  # NCBI's order for db=all: target database, link name
        mine_links = world.links_from("protein", ls.ids[0])
        with_links = {d.linkname for d in ls.linksetdbs if d.links}
        assert with_links == {lk.linkname for lk in mine_links}
        assert {n for _, n in names} == every  # the others: Empty result
        for d in ls.linksetdbs:  # scores exactly where the world has them
            want = {lk.target: lk.score for lk in mine_links if lk.linkname == d.linkname}
            assert {lk.uid: lk.score for lk in d.links} == want


# -- the same graph -------------------------------------------------------------------------------


CASES = {
    "defaults": ["--depth", "2"],
    "scores-cap": ["--depth", "2", "--scores", "--max-links-per-record", "3"],
    "filters": ["--depth", "2", "--to", "protein", "--to", "pubmed", "--to", "gene",
                "--exclude-link", "gene_protein", "--include-subsets", "--expand-hubs"],
    "max-nodes": ["--depth", "3", "--max-nodes", "90", "--batch-size", "17"],
    "named": ["--depth", "2", "--link", "gene_protein_refseq", "--link", "protein_pubmed",
              "--link", "pubmed_pubmed", "--link", "protein_gene", "--scores"],
}


def _both_routes(url_of, tmp_path: Path, name: str, args: list[str]) -> tuple[dict, dict]:
    reports = {}
    for route in ("acheck", "all"):
        url, log = url_of()
        before = len(log)
        reports[route] = crawl(url, tmp_path / f"{name}-{route}", *SEEDS, *args, "--discovery",
                               route, "--no-embedded")
        reports[route]["_log"] = log[before:]
    return reports["acheck"], reports["all"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_graph_on_the_shared_world(emulator, tmp_path, case):
    acheck, every = _both_routes(lambda: (emulator.url, emulator.log), tmp_path, case,
                                 CASES[case])
    a, b = journal_graph(tmp_path / f"{case}-acheck"), journal_graph(tmp_path / f"{case}-all")
    assert a == b and len(a[1]) > 20
    cmds = Counter(e["params"].get("cmd") for e in elink_requests(every["_log"]))
    assert set(cmds) == {"neighbor"} and every["requests"] < acheck["requests"]
    assert all(e["params"].get("db") == "all" for e in elink_requests(every["_log"]))


@pytest.mark.parametrize("seed,size", [(4, 1500), (7, 900)])
def test_same_graph_on_other_worlds_and_one_request_per_batch(tmp_path, seed, size):
    world = World.generate(seed=seed, size=size)
    with Emulator(world, rate_limit=0) as emu:
        _, every = _both_routes(lambda: (emu.url, emu.log), tmp_path, "w",
                                     ["--depth", "2", "--batch-size", "25"])
    graph = journal_graph(tmp_path / "w-acheck")
    assert graph == journal_graph(tmp_path / "w-all")
    # at most one request per (database, batch) per level
    depth = {(db, uid): d for db, uid, d in graph[0]}
    per_level: Counter = Counter()
    for e in elink_requests(every["_log"]):
        db = e["params"]["dbfrom"]
        per_level[(db, depth[(db, _ids(e["params"])[0])])] += 1
    with Journal(StorePaths.of(tmp_path / "w-all").journal, create=False) as j:
        expanded = Counter(j.execute(
            "SELECT db, depth FROM nodes WHERE state IN ('done', 'failed', 'no_answer')"))
    assert per_level and all(n <= math.ceil(expanded[key] / 25) for key, n in per_level.items())
    assert sum(per_level.values()) == every["requests"] - Counter(
        e["path"].rsplit("/", 1)[-1] for e in every["_log"])["esearch.fcgi"]


def test_same_graph_under_faults_and_in_the_embedded_store(world, dumped, tmp_path):  # noqa: F811
    links, _ = dumped
    args = ["gene:672", "pubmed:9298984", "--depth", "2", "--scores", "--batch-size", "8"]
    with Emulator(world, rate_limit=0, faults=FAULTS, fault_seed=5) as faulty:
        report = crawl(faulty.url, tmp_path / "faulty", *args, "--discovery", "all")
        faults = Counter(e.get("fault") for e in faulty.log if e.get("fault"))
    assert {"429", "5xx", "drop", "truncate", "error", "partial"} <= set(faults), faults
    seeds = [tuple(s.split(":")) for s in report["seeds"]]
    expected = expected_graph(links, seeds, 2, default_filters=True, scores=True)
    assert journal_graph(tmp_path / "faulty") == expected
    assert ladybug_graph(tmp_path / "faulty") == expected
    assert report["complete"] and report["failed"] == 0 and report["no_answer"] == 0


def test_interrupted_all_route_resumes_on_either_route(emulator, tmp_path, monkeypatch):
    args = [*SEEDS, "--depth", "2", "--batch-size", "9", "--no-embedded"]
    crawl(emulator.url, tmp_path / "ref", *args)
    original = Committer.discover
    calls = defaultdict(int)

    def stop_after_three(self, *a):
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt
        return original(self, *a)

    monkeypatch.setattr(Committer, "discover", stop_after_three)
    result = CliRunner().invoke(main, ["crawl", *args, "--discovery", "all", "--store",
                                       str(tmp_path / "s"), "--eutils-url", emulator.url,
                                       "--rps", "1000"])
    assert result.exit_code == 130
    monkeypatch.setattr(Committer, "discover", original)
    with Journal(StorePaths.of(tmp_path / "s").journal, create=False) as j:
        assert j.stats()["pending"] > 0
    crawl(emulator.url, tmp_path / "s", *args)  # resumed on the acheck route: same graph
    assert journal_graph(tmp_path / "s") == journal_graph(tmp_path / "ref")
