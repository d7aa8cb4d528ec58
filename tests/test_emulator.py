"""The local E-utilities emulator: NCBI's shapes (validated by Bio.Entrez), every ELink cmd,
GET and POST, repeated vs comma IDs, faults, poison IDs, the rate limit, the log, and the
world's determinism, dump/load round trip and link-name coverage."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import pytest
from Bio import Entrez
from Bio.Entrez.Parser import DataHandler
from click.testing import CliRunner

from crawler.cli import main
from crawler.emulator import Emulator, World, parse_faults, write_esummary_dtds
from crawler.emulator.pairing import bounds
from crawler.emulator.world import CATALOG, REVERSE_LINKS, SUBSET_LINKS
from crawler.errors import BadInput

DATA = Path(__file__).parent / "data"

# design.md's link tables: every crawl must handle these.
DESIGN_LINKNAMES = {
    "gene_protein", "gene_protein_refseq", "gene_nuccore", "gene_nuccore_refseqrna",
    "gene_pubmed", "gene_homologene", "gene_snp", "gene_clinvar",
    "nuccore_protein", "nuccore_gene", "nuccore_pubmed", "nuccore_taxonomy", "nuccore_biosample",
    "nuccore_sra",
    "protein_nuccore", "protein_gene", "protein_pubmed", "protein_structure", "protein_cdd",
    "protein_protein",
    "pubmed_pubmed", "pubmed_pubmed_five", "pubmed_pubmed_reviews", "pubmed_gene",
    "pubmed_protein", "pubmed_nuccore",
    "structure_protein", "taxonomy_nuccore",
}
BRCA1, NP_009225, NM_007294, PDB_1JM7 = "672", "6552302", "237757283", "17850"


def read(body: bytes, **kw):
    """Bio.Entrez's validating parser, as a client would use it."""
    return Entrez.read(io.BytesIO(body), **kw)


@pytest.fixture
def http(emulator: Emulator):
    with httpx.Client(base_url=emulator.url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def esummary_dtds(tmp_path_factory):
    """Biopython's DTD cache pointed at a temp dir holding the ESummary DTDs it lacks."""
    old = DataHandler.directory
    DataHandler.directory = str(tmp_path_factory.mktemp("biopython"))
    write_esummary_dtds(DataHandler.local_dtd_dir)
    yield
    DataHandler.directory = old


# --- the world ---------------------------------------------------------------------------------

def test_small_world_holds_every_design_link_name():
    names = {lk.linkname for lk in World.generate(seed=3, size=300).iter_links()}
    assert names >= DESIGN_LINKNAMES


def test_generation_is_deterministic_for_a_seed(world):
    again = World.generate(seed=1, size=600)
    other = World.generate(seed=2, size=600)
    sample = [(db, uid) for db in ("gene", "protein", "pubmed", "taxonomy")
              for uid in list(world.uids(db))[:15]]
    assert all(world.links_from(db, u) == again.links_from(db, u) for db, u in sample)
    assert any(world.links_from(db, u) != other.links_from(db, u) for db, u in sample)
    assert world.links_from("gene", BRCA1) == world.links_from("nucleotide" and "gene", BRCA1)


def test_links_are_the_same_in_another_process(world):
    code = ("import json; from crawler.emulator import World; w = World.generate(seed=1, "
            "size=600); print(json.dumps([list(lk) for db in ('gene', 'pubmed') "
            "for u in list(w.uids(db))[:20] for lk in w.links_from(db, u)]))")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True).stdout
    here = [list(lk) for db in ("gene", "pubmed") for u in list(world.uids(db))[:20]
            for lk in world.links_from(db, u)]
    assert json.loads(out) == here


def test_brca1_chain_and_accessions(world):
    by_name = Counter()
    for lk in world.links_from("gene", BRCA1):
        by_name[lk.linkname] += 1
    refseq = {lk.target for lk in world.links_from("gene", BRCA1)
              if lk.linkname == "gene_protein_refseq"}
    assert NP_009225 in refseq
    assert PDB_1JM7 in {lk.target for lk in world.links_from("protein", NP_009225)
                        if lk.linkname == "protein_structure"}
    assert BRCA1 in {lk.target for lk in world.links_from("nuccore", NM_007294)
                     if lk.linkname == "nuccore_gene"}
    assert world.record("protein", NP_009225)["accession"] == "NP_009225"
    assert world.record("nuccore", NM_007294)["accessionversion"].startswith("NM_007294.")
    assert world.record("structure", PDB_1JM7)["accession"] == "1JM7"
    assert world.record("gene", BRCA1)["name"] == "BRCA1"
    assert world.record("gene", "1") is None


def test_fan_out_is_heavy_tailed_and_taxonomy_9606_is_a_hub():
    w = World.generate(seed=4, size=4000)
    sizes = sorted(sum(1 for lk in w.links_from("gene", u) if lk.linkname == "gene_protein")
                   for u in w.uids("gene"))
    median = sizes[len(sizes) // 2]
    assert median <= 5 and sizes[-1] >= 100 and sizes[-1] >= 20 * max(median, 1)
    human = w.links_from("taxonomy", "9606")
    assert len(human) >= 500
    assert len(human) > 5 * max(len(w.links_from("taxonomy", u))
                                for u in list(w.uids("taxonomy"))[5:])


def test_scores_only_on_same_database_links_and_self_first(world):
    for db in ("gene", "protein", "pubmed", "nuccore"):
        for uid in list(world.uids(db))[:30]:
            for lk in world.links_from(db, uid):
                assert (lk.score is not None) == (lk.dbfrom == lk.dbto), lk
    first = next(u for u in list(world.uids("pubmed"))[3:]
                 if any(lk.linkname == "pubmed_pubmed" for lk in world.links_from("pubmed", u)))
    pp = [lk for lk in world.links_from("pubmed", first) if lk.linkname == "pubmed_pubmed"]
    assert pp[0].target == first and pp[0].score == max(lk.score for lk in pp)
    assert [lk.score for lk in pp] == sorted((lk.score for lk in pp), reverse=True)
    five = [lk for lk in world.links_from("pubmed", first) if lk.linkname == "pubmed_pubmed_five"]
    assert 0 < len(five) <= 5 and {lk.target for lk in five} <= {lk.target for lk in pp}


def test_dump_load_round_trip(tmp_path, world):
    path = tmp_path / "world.jsonl"
    n = world.dump(path)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    links = [x for x in lines if "linkname" in x]
    assert n == len(links) > 1000
    assert set(links[0]) == {"dbfrom", "uid", "linkname", "dbto", "target", "score"}
    loaded = World.load(path)
    for db in world.databases():
        for uid in list(world.uids(db))[:25]:
            assert loaded.links_from(db, uid) == world.links_from(db, uid), (db, uid)
            assert loaded.record(db, uid) == world.record(db, uid)
            assert loaded.linkouts(db, uid) == world.linkouts(db, uid)
    assert loaded.lookup("protein", "accn", "NP_009225") == [NP_009225]
    assert sorted(loaded.databases()) == sorted(world.databases())


def test_load_refuses_a_bad_graph_file(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"dbfrom": "gene", "uid": "abc", "linkname": "gene_protein", '
                   '"dbto": "protein", "target": "1"}\n')
    with pytest.raises(BadInput, match=r"bad\.jsonl:1"):
        World.load(bad)
    with pytest.raises(BadInput):
        World.load(tmp_path / "missing.jsonl")


def test_fault_spec_parsing():
    assert parse_faults("429=0.2, 5xx=0.1,drop=0.05") == {"429": 0.2, "5xx": 0.1, "drop": 0.05}
    for bad in ("boom=0.1", "429", "429=x", "429=1.5", "429=0.6,5xx=0.6"):
        with pytest.raises(BadInput):
            parse_faults(bad)


# --- ELink ------------------------------------------------------------------------------------

def test_every_elink_cmd_parses_with_bio_entrez(http):
    ids = f"{BRCA1},7157"
    for cmd in ("neighbor", "neighbor_score", "neighbor_history", "acheck", "ncheck",
                "lcheck", "llinks", "llinkslib", "prlinks"):
        r = http.get("elink.fcgi", params={"dbfrom": "gene", "id": ids, "cmd": cmd,
                                           "db": "protein"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/xml")
        assert r.content.startswith(b'<?xml version="1.0" encoding="UTF-8" ?>\n<!DOCTYPE '
                                    b'eLinkResult PUBLIC "-//NLM//DTD elink 20101123//EN" '
                                    b'"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20101123/')
        record = read(r.content)
        assert record[0]["DbFrom"] == "gene", cmd


def test_per_id_and_merged_neighbor(http, world):
    other = "7157"
    per_id = read(http.get("elink.fcgi", params=[("dbfrom", "gene"), ("db", "protein"),
                                                 ("id", BRCA1), ("id", other)]).content)
    assert [ls["IdList"] for ls in per_id] == [[BRCA1], [other]]
    names = [d["LinkName"] for d in per_id[0]["LinkSetDb"]]
    assert names == ["gene_protein", "gene_protein_refseq"]
    got = {d["LinkName"]: [lk["Id"] for lk in d["Link"]] for d in per_id[0]["LinkSetDb"]}
    expect = {}
    for lk in world.links_from("gene", BRCA1):
        if lk.dbto == "protein":
            expect.setdefault(lk.linkname, []).append(lk.target)
    assert got == expect
    merged = read(http.get("elink.fcgi", params={"dbfrom": "gene", "db": "protein",
                                                 "id": f"{BRCA1},{other}"}).content)
    assert len(merged) == 1 and merged[0]["IdList"] == [BRCA1, other]
    union = {lk.target for u in (BRCA1, other) for lk in world.links_from("gene", u)
             if lk.linkname == "gene_protein"}
    merged_ids = [lk["Id"] for d in merged[0]["LinkSetDb"] if d["LinkName"] == "gene_protein"
                  for lk in d["Link"]]
    assert sorted(merged_ids) == sorted(union)


def test_linkname_needs_its_db_which_defaults_to_pubmed(http):
    no_db = read(http.get("elink.fcgi", params={"dbfrom": "gene", "id": BRCA1,
                                                "linkname": "gene_protein_refseq"}).content)
    assert no_db[0]["LinkSetDb"] == []
    with_db = read(http.get("elink.fcgi", params={"dbfrom": "gene", "id": BRCA1, "db": "protein",
                                                  "linkname": "gene_protein_refseq"}).content)
    assert [d["LinkName"] for d in with_db[0]["LinkSetDb"]] == ["gene_protein_refseq"]
    assert NP_009225 in [lk["Id"] for lk in with_db[0]["LinkSetDb"][0]["Link"]]
    pubmed = read(http.get("elink.fcgi", params={"dbfrom": "gene", "id": BRCA1}).content)
    assert {d["DbTo"] for d in pubmed[0]["LinkSetDb"]} == {"pubmed"}


def test_post_form_body_gives_the_same_answer(http):
    form = [("dbfrom", "gene"), ("db", "protein"), ("cmd", "neighbor"), ("id", BRCA1),
            ("id", "7157"), ("id", "675")]
    got = http.post("elink.fcgi", data={k: [v for kk, v in form if kk == k] for k, _ in form})
    assert got.status_code == 200
    assert got.content == http.get("elink.fcgi", params=form).content
    assert len(read(got.content)) == 3


def test_db_all_and_nucleotide_alias(http):
    rec = read(http.get("elink.fcgi", params={"dbfrom": "nucleotide", "id": NM_007294,
                                              "db": "all"}).content)
    assert rec[0]["DbFrom"] == "nuccore"
    dbs = {d["DbTo"] for d in rec[0]["LinkSetDb"]}
    assert {"gene", "protein", "taxonomy"} <= dbs


def test_neighbor_score_puts_the_article_itself_first(http, world):
    uid = list(world.uids("pubmed"))[5]
    rec = read(http.get("elink.fcgi", params={"dbfrom": "pubmed", "db": "pubmed", "id": uid,
                                              "cmd": "neighbor_score"}).content)
    pp = next(d for d in rec[0]["LinkSetDb"] if d["LinkName"] == "pubmed_pubmed")
    assert pp["Link"][0]["Id"] == uid
    scores = [int(lk["Score"]) for lk in pp["Link"]]
    assert scores == sorted(scores, reverse=True)
    plain = read(http.get("elink.fcgi", params={"dbfrom": "pubmed", "db": "pubmed",
                                                "id": uid}).content)
    assert all("Score" not in lk for d in plain[0]["LinkSetDb"] for lk in d["Link"])


def test_acheck_comma_vs_repeated_and_linkout(http, world):
    ids = list(world.uids("pubmed"))[:6]
    comma = read(http.get("elink.fcgi", params={"dbfrom": "pubmed", "cmd": "acheck",
                                                "id": ",".join(ids)}).content)
    assert len(comma) == 1
    sets = comma[0]["IdCheckList"]["IdLinkSet"]
    assert [s["Id"] for s in sets] == ids
    repeated = read(http.get("elink.fcgi", params=[("dbfrom", "pubmed"), ("cmd", "acheck")]
                             + [("id", u) for u in ids]).content)
    assert len(repeated) == len(ids)
    infos = [i for s in sets for i in s["LinkInfo"]]
    assert any(i["LinkName"] == "ExternalLink" and i["DbTo"] == "LinkOut" for i in infos)
    first = {i["LinkName"] for i in sets[0]["LinkInfo"]} - {"ExternalLink"}
    assert first == {lk.linkname for lk in world.links_from("pubmed", ids[0])}


def test_ncheck_lcheck_llinks_prlinks(http, world):
    ids = list(world.uids("pubmed"))[:12]
    with_lo = [u for u in ids if any(not lo.library for lo in world.linkouts("pubmed", u))]
    without = [u for u in ids if not world.linkouts("pubmed", u)]
    assert with_lo and without
    lcheck = read(http.get("elink.fcgi", params={"dbfrom": "pubmed", "cmd": "lcheck",
                                                 "id": ",".join(ids)}).content)
    flags = {str(i): i.attributes["HasLinkOut"] for i in lcheck[0]["IdCheckList"]["Id"]}
    assert all(flags[u] == "Y" for u in with_lo) and all(flags[u] == "N" for u in without)
    ncheck = read(http.get("elink.fcgi", params={"dbfrom": "pubmed", "cmd": "ncheck",
                                                 "id": ids[0]}).content)
    assert ncheck[0]["IdCheckList"]["Id"][0].attributes["HasNeighbor"] == "Y"
    llinks = read(http.get("elink.fcgi", params={"dbfrom": "pubmed", "cmd": "llinks",
                                                 "id": ",".join(ids)}).content)
    urlsets = {s["Id"]: s for s in llinks[0]["IdUrlList"]["IdUrlSet"]}
    assert urlsets[with_lo[0]]["ObjUrl"][0]["Provider"]["Name"]
    assert urlsets[without[0]]["Info"] == "No links available"
    prlinks = read(http.get("elink.fcgi", params={"dbfrom": "pubmed", "cmd": "prlinks",
                                                  "id": with_lo[0]}).content)
    assert len(prlinks[0]["IdUrlList"]["IdUrlSet"][0]["ObjUrl"]) == 1


def test_neighbor_history_feeds_esummary(http, esummary_dtds):
    rec = read(http.get("elink.fcgi", params={"dbfrom": "gene", "db": "protein", "id": BRCA1,
                                              "cmd": "neighbor_history"}).content)
    hist = {h["LinkName"]: h["QueryKey"] for h in rec[0]["LinkSetDbHistory"]}
    webenv = rec[0]["WebEnv"]
    summ = read(http.get("esummary.fcgi", params={
        "db": "protein", "WebEnv": webenv, "query_key": hist["gene_protein_refseq"],
        "version": "2.0"}).content)
    uids = [d.attributes["uid"] for d in summ["DocumentSummarySet"]["DocumentSummary"]]
    assert NP_009225 in uids


def test_unknown_ids_are_echoed_without_links(http):
    rec = read(http.get("elink.fcgi", params=[("dbfrom", "gene"), ("db", "protein"),
                                              ("id", "999999991"), ("id", "abc")]).content)
    assert [ls["IdList"] for ls in rec] == [["999999991"], ["0"]]
    assert all(ls["LinkSetDb"] == [] for ls in rec)


def test_errors_inside_http_200(http):
    r = http.get("elink.fcgi", params={"dbfrom": "nothing", "id": "1"})
    assert r.status_code == 200
    assert b"<ERROR>Invalid db name specified: nothing</ERROR>" in r.content
    with pytest.raises(RuntimeError, match="Invalid db name specified: nothing"):
        read(r.content)
    r = http.get("elink.fcgi", params={"dbfrom": "gene", "db": "nothing", "id": BRCA1})
    assert b"Invalid db name specified: nothing" in r.content
    r = http.get("elink.fcgi", params={"dbfrom": "gene", "id": BRCA1, "cmd": "frobnicate"})
    assert b"<ERROR>frobnicate command not supported</ERROR>" in r.content
    r = http.get("elink.fcgi", params={"dbfrom": "gene"})
    assert b"Empty id list" in r.content
    for ep in ("esearch.fcgi", "einfo.fcgi", "esummary.fcgi"):
        r = http.get(ep, params={"db": "nothing", "term": "x", "id": "1"})
        assert r.status_code == 200 and b"Invalid db name specified: nothing" in r.content, ep
    assert http.get("efetch.fcgi").status_code == 404


# --- ESearch, EInfo, ESummary -------------------------------------------------------------------

@pytest.mark.parametrize(("db", "term", "uid"), [
    ("nuccore", "NM_007294[accn]", NM_007294),
    ("nucleotide", "NM_007294.4[accn]", NM_007294),
    ("protein", "NP_009225[accn]", NP_009225),
    ("pmc", "PMC1234567", "1234567"),
    ("snp", "rs80357906", "80357906"),
    ("structure", "1JM7", PDB_1JM7),
    ("gene", "BRCA1[gene] AND human[orgn]", BRCA1),
    ("gene", "672[uid]", BRCA1),
])
def test_esearch_resolves_identifiers(http, db, term, uid):
    rec = read(http.get("esearch.fcgi", params={"db": db, "term": term}).content)
    assert rec["Count"] == "1" and rec["IdList"] == [uid]


def test_esearch_no_match_and_organism_lists(http, world):
    rec = read(http.get("esearch.fcgi", params={"db": "protein", "term": "abcXYZ"}).content)
    assert rec["Count"] == "0" and rec["IdList"] == []
    assert rec["ErrorList"]["PhraseNotFound"] == ["abcXYZ"]
    assert rec["WarningList"]["OutputMessage"] == ["No items found."]
    human = read(http.get("esearch.fcgi", params={"db": "gene", "term": "human[orgn]",
                                                  "retmax": 5}).content)
    assert int(human["Count"]) > 5 and len(human["IdList"]) == 5
    assert int(human["Count"]) < world.count("gene")


def test_einfo_db_list_and_link_list(http, world):
    rec = read(http.get("einfo.fcgi").content)
    assert set(rec["DbList"]) == set(world.databases())
    gene = read(http.get("einfo.fcgi", params={"db": "gene"}).content)["DbInfo"][0]
    links = {lk["Name"]: lk["DbTo"] for lk in gene["LinkList"]}
    assert links["gene_protein_refseq"] == "protein" and links["gene_snp"] == "snp"
    assert int(gene["Count"]) == world.count("gene")


def test_esummary_every_database(http, world, esummary_dtds):
    expect = {"gene": ("Name", "BRCA1"), "protein": ("AccessionVersion", "NP_009225.1"),
              "nuccore": ("Caption", "NM_007294"), "structure": ("PdbAcc", "1JM7"),
              "taxonomy": ("ScientificName", "Homo sapiens")}
    for db in world.databases():
        first = next(world.uids(db))
        r = http.post("esummary.fcgi", data={"db": db, "id": f"{first},999999999",
                                             "version": "2.0"})
        assert b"DTD esummary " + db.encode() in r.content
        rec = read(r.content, ignore_errors=True)
        docs = rec["DocumentSummarySet"]["DocumentSummary"]
        assert [d.attributes["uid"] for d in docs] == [first, "999999999"]
        assert docs[1]["error"] == "cannot get document summary"
        if db in expect:
            field, value = expect[db]
            assert docs[0][field] == value, db
    pub = read(http.get("esummary.fcgi", params={"db": "pubmed", "id": "9298984",
                                                 "version": "2.0"}).content)
    doc = pub["DocumentSummarySet"]["DocumentSummary"][0]
    assert doc["Title"] and doc["FullJournalName"] and doc["PubDate"]
    gene = read(http.get("esummary.fcgi", params={"db": "gene", "id": BRCA1,
                                                  "version": "2.0"}).content)
    organism = gene["DocumentSummarySet"]["DocumentSummary"][0]["Organism"]
    assert organism["ScientificName"] == "Homo sapiens" and organism["TaxID"] == "9606"


# --- faults, poison, rate limit, log -----------------------------------------------------------

def _fault_run(world, seed: int, n: int = 160):
    spec = "429=0.12,5xx=0.12,drop=0.12,truncate=0.12,error=0.12,partial=0.12"
    outcomes = []
    with Emulator(world, faults=spec, fault_seed=seed) as emu, \
            httpx.Client(base_url=emu.url, timeout=10) as http:
        for _ in range(n):
            form = [("dbfrom", "gene"), ("db", "protein"), ("id", BRCA1), ("id", "7157"),
                    ("id", "675")]
            try:
                r = http.post("elink.fcgi", data={"dbfrom": "gene", "db": "protein",
                                                  "id": [v for k, v in form if k == "id"]})
            except httpx.TransportError:
                outcomes.append(("drop", None))
                continue
            outcomes.append((emu.log[-1].get("fault"), r))
        log = list(emu.log)
    return outcomes, log


def test_every_fault_appears_and_looks_like_ncbi(world):
    outcomes, log = _fault_run(world, seed=11)
    kinds = Counter(k for k, _ in outcomes)
    assert {"429", "5xx", "drop", "truncate", "error", "partial", None} <= set(kinds)
    for kind, r in outcomes:
        if kind == "429":
            assert r.status_code == 429 and r.headers["content-type"] == "application/json"
            assert set(r.json()) == {"error", "api-key", "count", "limit"}
        elif kind == "5xx":
            assert r.status_code in (500, 502, 503)
        elif kind == "truncate":
            assert r.status_code == 200 and len(r.content) == int(r.headers["content-length"])
            with pytest.raises(Exception):  # noqa: B017 - any parse failure will do
                read(r.content)
        elif kind == "error":
            assert r.status_code == 200
            text = r.text
            assert "Search Backend failed" in text or "Couldn't resolve #exLinkSrv2" in text
        elif kind == "partial":
            assert len(read(r.content)) == 2
        elif kind is None:
            assert len(read(r.content)) == 3
    assert [e.get("fault") for e in log] == [k for k, _ in outcomes]
    assert all(e["status"] == 0 for e in log if e.get("fault") == "drop")


def test_faults_are_reproducible_for_a_seed(world):
    first = [k for k, _ in _fault_run(world, seed=5, n=60)[0]]
    again = [k for k, _ in _fault_run(world, seed=5, n=60)[0]]
    other = [k for k, _ in _fault_run(world, seed=6, n=60)[0]]
    assert first == again and first != other


def test_poisoned_ids_get_http_400(world):
    with Emulator(world, poison=("7157",)) as emu, httpx.Client(base_url=emu.url) as http:
        bad = http.get("elink.fcgi", params={"dbfrom": "gene", "id": f"{BRCA1},7157"})
        assert bad.status_code == 400
        assert b"<ERROR>Invalid uid 7157 at position=1</ERROR>" in bad.content
        bad = http.post("esummary.fcgi", data={"db": "gene", "id": ["7157"]})
        assert bad.status_code == 400
        good = http.get("elink.fcgi", params={"dbfrom": "gene", "id": BRCA1})
        assert good.status_code == 200


def test_rate_limit_answers_ncbi_429_json(world):
    sample = json.loads((DATA / "issue-rentrez-132__http429_rate_limit.json").read_text())
    with Emulator(world, rate_limit=2) as emu, httpx.Client(base_url=emu.url) as http:
        statuses = [http.get("einfo.fcgi").status_code for _ in range(30)]
        assert statuses[:2] == [200, 200] and 429 in statuses
        limited = http.get("einfo.fcgi", params={"api_key": "SECRETKEY123"})
        assert limited.status_code == 200  # another key: its own window
        r = next(r for r in (http.get("einfo.fcgi") for _ in range(10)) if r.status_code == 429)
        body = r.json()
        assert list(body) == list(sample) and body["error"] == sample["error"]
        assert body["limit"] == "2" and int(body["count"]) > 2
        assert body["api-key"] == "127.0.0.1"
        assert r.headers["content-type"] == "application/json"
        assert r.headers["x-ratelimit-limit"] == "2"


def test_log_lines_redact_the_api_key(tmp_path, world):
    log_path = tmp_path / "requests.jsonl"
    with Emulator(world, log_path=log_path) as emu, httpx.Client(base_url=emu.url) as http:
        http.get("elink.fcgi", params=[("dbfrom", "gene"), ("id", BRCA1), ("id", "7157"),
                                       ("api_key", "SECRETKEY123")])
        http.post("esearch.fcgi", data={"db": "gene", "term": "BRCA1[gene]"})
        logged = list(emu.log)
    lines = [json.loads(x) for x in log_path.read_text().splitlines()]
    assert lines == logged and len(lines) == 2
    first, second = lines
    assert set(first) >= {"time", "path", "method", "params", "status", "bytes"}
    assert first["params"] == {"dbfrom": "gene", "id": [BRCA1, "7157"],
                               "api_key": "<redacted>"}
    assert first["method"] == "GET" and first["status"] == 200 and first["bytes"] > 100
    assert second["method"] == "POST" and second["params"]["term"] == "BRCA1[gene]"
    assert "SECRETKEY123" not in log_path.read_text()


def test_keep_alive_http_11(emulator):
    with httpx.Client(base_url=emulator.url) as http:
        for _ in range(3):
            r = http.get("einfo.fcgi")
            assert r.http_version == "HTTP/1.1"
            assert r.headers.get("connection", "").lower() != "close"
            assert int(r.headers["content-length"]) == len(r.content)


def test_latency_is_applied(world):
    with Emulator(world, latency_ms=50) as emu, httpx.Client(base_url=emu.url) as http:
        assert http.get("einfo.fcgi").status_code == 200
    assert emu.latency_ms == 50


# --- the command line --------------------------------------------------------------------------

def test_emulate_dump_and_graph_round_trip(tmp_path):
    path = tmp_path / "w.jsonl"
    result = CliRunner().invoke(main, ["emulate", "--world", "9", "--size", "300",
                                       "--dump", str(path)])
    assert result.exit_code == 0, result.output
    assert World.load(path).links_from("gene", BRCA1) == \
        World.generate(seed=9, size=300).links_from("gene", BRCA1)
    again = tmp_path / "again.jsonl"
    result = CliRunner().invoke(main, ["emulate", "--graph", str(path), "--dump", str(again)])
    assert result.exit_code == 0, result.output
    assert sorted(path.read_text().splitlines()) == sorted(again.read_text().splitlines())


@pytest.mark.parametrize("args", [
    ["--faults", "nonsense=1"], ["--world", "1", "--graph", "x.jsonl"],
    ["--graph", "/nonexistent/graph.jsonl"], ["--size", "0"],
])
def test_emulate_bad_input_exits_2(args):
    result = CliRunner().invoke(main, ["emulate", *args])
    assert result.exit_code == 2
    assert result.output.count("Error:") == 1 or "Usage:" in result.output
    assert "Traceback" not in result.output


def test_emulate_serves_until_interrupted(tmp_path):
    log = tmp_path / "log.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "crawler", "emulate", "--world", "3", "--size", "300",
         "--port", "0", "--log", str(log)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line
        url = line.split("listening on ", 1)[1].split()[0]
        assert url.endswith("/entrez/eutils/")
        assert proc.stdout.readline().strip() == f"Use: --eutils-url {url}"
        r = httpx.get(url + "esearch.fcgi", params={"db": "structure", "term": "1JM7"})
        assert read(r.content)["IdList"] == [PDB_1JM7]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    assert proc.returncode == 0
    assert json.loads(log.read_text().splitlines()[0])["path"].endswith("esearch.fcgi")


def test_emulate_stops_cleanly_on_sigterm(tmp_path):
    log = tmp_path / "log.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "crawler", "emulate", "--world", "3", "--size", "300",
         "--port", "0", "--log", str(log)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().split("listening on ", 1)[1].split()[0]
        httpx.get(url + "einfo.fcgi")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    assert proc.returncode == 0
    assert json.loads(log.read_text().splitlines()[0])["path"].endswith("einfo.fcgi")


@pytest.mark.slow
def test_large_world_is_lazy_and_consistent():
    w = World.generate(seed=7, size=400_000)
    assert w.count("pubmed") > 100_000
    last = list(w.uids("protein"))[-1]
    assert w.links_from("protein", last) == World.generate(seed=7, size=400_000).links_from(
        "protein", last)
    assert w.record("protein", last)["accession"]
    assert len(w._cache) < 10  # nothing was materialised beyond what was asked


def test_taxon_links_are_the_inverse_of_organism_links():
    w = World.generate(seed=2, size=3000)
    mouse = {lk.target for lk in w.links_from("taxonomy", "10090")
             if lk.linkname == "taxonomy_gene"}
    owners = {u for u in w.uids("gene")
              if any(lk.linkname == "gene_taxonomy" and lk.target == "10090"
                     for lk in w.links_from("gene", u))}
    assert mouse and mouse == owners
    assert all(w.record("gene", u)["organism"] == "Mus musculus" for u in mouse)


def test_esummary_version_1_without_version_parameter(http):
    rec = read(http.get("esummary.fcgi", params={"db": "gene", "id": f"{BRCA1},7157"}).content)
    assert [d["Id"] for d in rec] == [BRCA1, "7157"]
    assert rec[0]["Name"] == "BRCA1" and rec[0]["Orgname"] == "Homo sapiens"
    missing = http.get("esummary.fcgi", params={"db": "protein", "id": f"{NP_009225},999999999"})
    assert b"<ERROR>UID=999999999: cannot get document summary</ERROR>" in missing.content
    docs = read(missing.content, ignore_errors=True)
    assert docs[0]["AccessionVersion"] == "NP_009225.1"


def test_stop_closes_keep_alive_connections_and_restart_keeps_the_url(world):
    emu = Emulator(world).start()
    url = emu.url
    with httpx.Client(base_url=url) as http:
        assert http.get("einfo.fcgi").status_code == 200
        emu.stop()
        with pytest.raises(httpx.TransportError):
            http.get("einfo.fcgi")
        emu.start()
        try:
            assert emu.url == url
            assert http.get("einfo.fcgi").status_code == 200
        finally:
            emu.stop()


# --- coherence: names, organisms and links agree along the chain -------------------------------

@pytest.fixture(scope="module")
def coherent() -> World:
    return World.generate(seed=2, size=3000)


def _sample(w: World, db: str, k: int = 25) -> list[str]:
    """The first records (hubs, BRCA1's chain) and a spread of others."""
    uids = list(w.uids(db))
    step = max(1, len(uids) // k)
    return list(dict.fromkeys(uids[:6] + uids[::step]))


def _targets(w: World, db: str, uid: str, linkname: str) -> list[str]:
    return [lk.target for lk in w.links_from(db, uid) if lk.linkname == linkname]


def test_brca1_real_records_sit_in_the_chain_and_are_searchable(world):
    gene = world.record("gene", BRCA1)
    assert (gene["name"], gene["description"], gene["organism"]) == (
        "BRCA1", "BRCA1 DNA repair associated", "Homo sapiens")
    assert world.record("protein", NP_009225)["title"] == (
        "breast cancer type 1 susceptibility protein isoform 1 [Homo sapiens]")
    assert world.record("nuccore", NM_007294)["title"] == (
        "Homo sapiens BRCA1 DNA repair associated (BRCA1), transcript variant 1, mRNA")
    assert world.record("structure", PDB_1JM7)["title"] == (
        "Solution structure of the BRCA1/BARD1 RING-domain heterodimer")
    assert world.lookup("protein", "accn", "NP_009225") == [NP_009225]
    assert world.lookup("nuccore", "accn", "NM_007294") == [NM_007294]
    assert world.lookup("structure", "all fields", "1JM7") == [PDB_1JM7]
    assert NM_007294 in _targets(world, "gene", BRCA1, "gene_nuccore_refseqrna")
    assert _targets(world, "nuccore", NM_007294, "nuccore_protein") == [NP_009225]
    assert _targets(world, "protein", NP_009225, "protein_nuccore") == [NM_007294]
    assert _targets(world, "protein", NP_009225, "protein_gene") == [BRCA1]
    assert NP_009225 in _targets(world, "structure", PDB_1JM7, "structure_protein")
    assert {world.record("gene", g)["organism"] for g in ("672", "7157", "675", "1956", "7124")
            } == {"Homo sapiens"}
    for db, uid in (("gene", BRCA1), ("protein", NP_009225), ("nuccore", NM_007294),
                    ("structure", PDB_1JM7)):
        assert _targets(world, db, uid, f"{db}_taxonomy") == ["9606"], db


def test_rnas_proteins_and_structures_carry_their_gene_s_name_and_organism(coherent):
    w = coherent
    checked = 0
    for g in _sample(w, "gene", 60):
        gene = w.record("gene", g)
        sym, full, org = gene["name"], gene["description"], gene["organism"]
        taxid = str(gene["taxid"])
        assert _targets(w, "gene", g, "gene_taxonomy") == [taxid]
        for p in _targets(w, "gene", g, "gene_protein_refseq"):
            rec = w.record("protein", p)
            assert rec["accession"][:3] in ("NP_", "XP_"), rec
            assert rec["title"].endswith(f"[{org}]") and " isoform " in rec["title"], rec
            if g not in ("672", "7157", "675", "1956", "7124"):
                assert rec["title"].startswith(f"{full} isoform "), rec
            assert _targets(w, "protein", p, "protein_taxonomy") == [taxid]
            assert _targets(w, "protein", p, "protein_gene") == [g]
            for s in _targets(w, "protein", p, "protein_structure")[:3]:
                st = w.record("structure", s)
                genes = {gg for pp in _targets(w, "structure", s, "structure_protein")
                         for gg in _targets(w, "protein", pp, "protein_gene")}
                assert genes == {g}  # a structure holds chains of one gene
                assert (st["organism"], str(st["taxid"])) == (org, taxid)
                assert _targets(w, "structure", s, "structure_taxonomy") == [taxid]
                # named after its gene's protein: "<method> of <org> <protein name>", ...
                pname = rec["title"].split(" isoform ")[0]
                assert pname in st["title"] or sym in st["title"], (st, pname)
                checked += 1
        for n in _targets(w, "gene", g, "gene_nuccore_refseqrna"):
            rec = w.record("nuccore", n)
            assert rec["accession"][:3] in ("NM_", "XM_"), rec
            assert f"{org} {full} ({sym}), transcript variant " in rec["title"], rec
            assert rec["title"].endswith(", mRNA")
            assert _targets(w, "nuccore", n, "nuccore_taxonomy") == [taxid]
            prot = _targets(w, "nuccore", n, "nuccore_protein")
            assert len(prot) == 1 and prot[0] in _targets(w, "gene", g, "gene_protein_refseq")
            variant = rec["title"].split("transcript variant ")[1].split(",")[0]
            assert w.record("protein", prot[0])["title"].endswith(f"isoform {variant} [{org}]")
    assert checked > 0


def test_articles_are_about_the_genes_that_cite_them(coherent):
    w = coherent
    about = 0
    for g in _sample(w, "gene", 40):
        for a in _targets(w, "gene", g, "gene_pubmed")[:5]:
            title = w.record("pubmed", a)["title"]
            genes = [w.record("gene", x) for x in _targets(w, "pubmed", a, "pubmed_gene")]
            assert any(x["name"] in title or x["description"] in title for x in genes), title
            about += 1
    assert about > 20
    cited = 0
    for s in _sample(w, "structure", 30):  # a structure cites articles about its gene
        genes = {g for p in _targets(w, "structure", s, "structure_protein")
                 for g in _targets(w, "protein", p, "protein_gene")}
        theirs = {a for g in genes for a in _targets(w, "gene", g, "gene_pubmed")}
        mine = set(_targets(w, "structure", s, "structure_pubmed"))
        if theirs:
            assert mine <= theirs, s
            cited += bool(mine)
    assert cited
    for j in _sample(w, "pmc", 10):
        pmid = _targets(w, "pmc", j, "pmc_pubmed")
        assert len(pmid) == 1 and _targets(w, "pubmed", pmid[0], "pubmed_pmc") == [j]
        assert w.record("pmc", j)["title"] == w.record("pubmed", pmid[0])["title"]


def _reverse_ok(w: World, link, reverse: str) -> bool:
    back = {(lk.target, lk.score) for lk in w.links_from(link.dbto, link.target)
            if lk.linkname == reverse}
    return (link.uid, link.score) in back


def test_reverse_link_names_give_the_same_edge_from_both_ends(coherent):
    w = coherent
    seen: Counter[str] = Counter()
    for db in w.databases():
        for uid in _sample(w, db, 30):
            by_name: dict[str, list] = {}
            for lk in w.links_from(db, uid):
                by_name.setdefault(lk.linkname, []).append(lk)
            for name, links in by_name.items():
                reverse = REVERSE_LINKS.get(name)
                if reverse is None:
                    continue
                for lk in links[:40]:
                    if lk.target == lk.uid:  # pubmed_pubmed lists the article itself
                        continue
                    back = [x for x in w.links_from(lk.dbto, lk.target) if x.linkname == reverse]
                    back_cap = next(s.cap for s in CATALOG[lk.dbto] if s.linkname == reverse)
                    if 1 < back_cap <= len(back):
                        continue  # a capped list (taxonomy 9606's) may drop the pair
                    assert _reverse_ok(w, lk, reverse), (lk, reverse)
                    seen[name] += 1
    # every design pair with an NCBI reverse name was exercised in both directions
    for fwd, rev in (("gene_protein", "protein_gene"), ("gene_nuccore", "nuccore_gene"),
                     ("nuccore_protein", "protein_nuccore"),
                     ("protein_structure", "structure_protein"),
                     ("gene_pubmed", "pubmed_gene"), ("nuccore_pubmed", "pubmed_nuccore"),
                     ("protein_pubmed", "pubmed_protein"), ("gene_snp", "snp_gene"),
                     ("gene_clinvar", "clinvar_gene"), ("pubmed_pubmed", "pubmed_pubmed"),
                     ("protein_protein", "protein_protein"), ("gene_taxonomy", "taxonomy_gene"),
                     ("protein_cdd", "cdd_protein"), ("pubmed_pmc", "pmc_pubmed")):
        assert seen[fwd] and seen[rev], (fwd, rev, seen)


def test_subsets_hold_only_their_parent_s_targets(coherent):
    w = coherent
    nonempty: Counter[str] = Counter()
    for db in ("gene", "pubmed"):
        for uid in _sample(w, db, 80):
            links = w.links_from(db, uid)
            for sub, parent in SUBSET_LINKS.items():
                got = {lk.target for lk in links if lk.linkname == sub}
                assert got <= {lk.target for lk in links if lk.linkname == parent}, (uid, sub)
                nonempty[sub] += bool(got)
    assert all(nonempty[sub] for sub in SUBSET_LINKS), nonempty


def test_human_only_databases_link_human_genes(coherent):
    w = coherent
    for db, name in (("snp", "snp_gene"), ("clinvar", "clinvar_gene")):
        for uid in _sample(w, db, 20):
            genes = _targets(w, db, uid, name)
            assert genes and all(w.record("gene", g)["organism"] == "Homo sapiens"
                                 for g in genes)
    snp = w.record("snp", _sample(w, "snp", 5)[3])
    assert _targets(w, "snp", snp["uid"], "snp_gene") == [str(snp["gene_id"])]


def test_large_world_links_invert_without_enumerating():
    w = World.generate(seed=11, size=500_000)
    for db, name, reverse in (("protein", "protein_gene", "gene_protein"),
                              ("pubmed", "pubmed_gene", "gene_pubmed"),
                              ("structure", "structure_protein", "protein_structure")):
        uids = list(w.uids(db))
        for uid in uids[:: len(uids) // 7]:
            for lk in w.links_from(db, uid):
                if lk.linkname == name:
                    assert _reverse_ok(w, lk, reverse), lk
    assert len(w._cache) < 200


@pytest.mark.parametrize(("seed", "size"), [(1, 1), (2, 50), (1, 300), (4, 300), (6, 1000)])
def test_every_link_of_a_small_world_has_its_reverse(seed, size):
    w = World.generate(seed=seed, size=size)
    caps = {s.linkname: s.cap for specs in CATALOG.values() for s in specs}
    links = list(w.iter_links())
    edges = {(lk.dbfrom, lk.uid, lk.linkname, lk.target, lk.score) for lk in links}
    checked = 0
    for lk in links:
        reverse = REVERSE_LINKS.get(lk.linkname)
        if reverse is None or (lk.dbfrom, lk.uid) == (lk.dbto, lk.target):
            continue
        if (lk.dbto, lk.target, reverse, lk.uid, lk.score) not in edges:
            back = [x for x in w.links_from(lk.dbto, lk.target) if x.linkname == reverse]
            assert 1 < caps[reverse] <= len(back), (lk, reverse)  # only a full list may drop it
        checked += 1
    assert checked > len(links) // 3


@pytest.mark.parametrize("deg", [[0, 0, 0, 0, 0], [5, 0, 0, 0, 0], [9, 9, 9, 1, 2, 0, 7],
                                 [1, 0, 0, 3, 0, 100], [1]])
@pytest.mark.parametrize("total", [0, 1, 7, 40, 1000])
def test_stub_bounds_cut_the_whole_space_in_order(deg, total):
    cuts = bounds(np.array(deg, dtype=np.int64), total)
    assert len(cuts) == len(deg) + 1 and cuts[0] == 0
    assert (np.diff(cuts) >= 0).all() and cuts[-1] == total
    if total and deg[0]:
        assert cuts[1] >= 1  # record 0 (BRCA1's chain) always keeps a stub
