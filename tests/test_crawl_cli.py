"""`entrez-graph crawl` through the real CLI: bad input, dry run, settings, lock, summary, sinks."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawler.cli import main
from crawler.crawling.lock import StoreLock
from crawler.errors import BadInput
from crawler.journal import Journal


@pytest.fixture(autouse=True)
def _no_env(monkeypatch, tmp_path):
    for var in ("NEO4J_URI", "NCBI_API_KEY", "ENTREZ_GRAPH_STORE", "ENTREZ_GRAPH_EUTILS_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))


def invoke(*args: str, input: str | None = None):
    return CliRunner().invoke(main, ["crawl", *args], input=input)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` with its bytes: "nothing in the store changed"."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


# -- bad input: one line, exit 2, nothing created -----------------------------------------------

OFFLINE = ["--eutils-url", "http://127.0.0.1:9/entrez/eutils/"]  # never contacted


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["gene"], "invalid seed"),
        (["gnee:672"], "unknown database"),
        (["gene:67 2"], "invalid ID"),
        (["gene:672", "--depth", "-1"], "--depth"),
        (["gene:672", "--depth", "two"], "--depth"),
        (["gene:672", "--link", "gene protein"], "invalid link name"),
        (["gene:672", "--link", "Gene_Protein"], "invalid link name"),
        (["gene:672", "--exclude-link", "x;DROP"], "invalid link name"),
        (["gene:672", "--to", "nowhere"], "unknown database"),
        (["gene:672", "--batch-size", "0"], "--batch-size"),
        (["gene:672", "--batch-size", "501"], "--batch-size"),
        (["gene:672", "--max-nodes", "0"], "--max-nodes"),
        (["--query", "BRCA1[gene]"], "--query needs --query-db"),
        (["--query", "BRCA1[gene]", "--query-db", "genes"], "unknown database"),
        ([], "no seeds"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, args, message):
    store = tmp_path / "store"
    result = invoke(*args, "--store", str(store), *OFFLINE)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0]
    assert "Traceback" not in result.output
    assert not store.exists()


def test_unwritable_store_path(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = invoke("gene:672", "--store", str(blocker / "store"), *OFFLINE)
    assert result.exit_code == 2
    assert "cannot write store" in result.output and len(result.output.splitlines()) == 1
    result = invoke("gene:672", "--store", str(blocker), *OFFLINE)
    assert result.exit_code == 2 and "not a directory" in result.output


def test_incompatible_store_is_left_alone(tmp_path):
    store = tmp_path / "store"
    with Journal(store):
        pass
    con = sqlite3.connect(store / "journal.sqlite")
    con.execute("UPDATE meta SET value='0' WHERE key='schema_version'")
    con.commit()
    con.close()
    before = snapshot(store)
    result = invoke("gene:672", "--store", str(store), *OFFLINE)
    assert result.exit_code == 2 and "incompatible" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert snapshot(store) == before


def test_seeds_file_errors(tmp_path):
    result = invoke("--seeds-file", str(tmp_path / "nope.txt"), "--store",
                    str(tmp_path / "s"), *OFFLINE)
    assert result.exit_code == 2 and "cannot read seeds file" in result.output
    result = invoke("--seeds-file", "-", "--store", str(tmp_path / "s"), *OFFLINE,
                    input="gene:672\nnot-a-seed\n")
    assert result.exit_code == 2 and "invalid seed 'not-a-seed'" in result.output


def test_dry_run_with_uids_sends_and_writes_nothing(tmp_path):
    store = tmp_path / "store"
    result = invoke("gene:672", "gene:675", "--depth", "2", "--link", "gene_protein",
                    "--link", "protein_structure", "--store", str(store), "--rps", "2", "--dry-run",
                    *OFFLINE)
    assert result.exit_code == 0, result.output
    assert "gene:672, gene:675" in result.output
    assert "gene: gene_protein" in result.output and "protein: protein_structure" in result.output
    assert "requests" in result.output and "at 2 requests/s" in result.output
    assert not store.exists()
    result = invoke("gene:672", "--store", str(store), "--dry-run", "--format", "json",
                    *OFFLINE)
    plan = json.loads(result.stdout)  # EInfo (for the estimate) could not be reached: stderr
    assert plan["seeds"] == ["gene:672"] and plan["depth"] == 1
    assert plan["estimated_requests"] >= 2 and plan["resumes"] is False
    assert not store.exists()


def test_store_lock_via_cli(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    lock = StoreLock(store)
    lock.acquire()
    try:
        result = invoke("gene:672", "--store", str(store), *OFFLINE)
    finally:
        lock.release()
    assert result.exit_code == 2
    assert f"pid {os.getpid()}" in result.output and "another entrez-graph crawl" in result.output
    assert not (store / "journal.sqlite").exists()


# -- against the emulator -------------------------------------------------------------------------


def crawl_ok(url: str, store: Path, *args: str) -> dict:
    result = invoke(*args, "--store", str(store), "--eutils-url", url, "--rps", "1000",
                    "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_json_summary_is_stable(emulator, tmp_path):
    report = crawl_ok(emulator.url, tmp_path / "s", "gene:672", "--link", "gene_protein_refseq")
    assert set(report) == {
        "store", "complete", "seeds", "depth", "levels", "nodes", "edges", "by_db", "by_link",
        "pending", "failed", "no_answer", "requests", "requests_total", "elapsed_s", "sinks",
        "summaries",
    }
    assert report["complete"] and report["seeds"] == ["gene:672"] and report["levels"] == 1
    assert report["by_link"]["gene_protein_refseq"] == report["edges"] > 0
    assert report["sinks"] == [
        {"name": "embedded", "ok": True, "pending": 0, "error": None, "repaired": 0}
    ]
    assert report["requests"] == report["requests_total"] == 1
    text = invoke("gene:672", "--link", "gene_protein_refseq", "--store", str(tmp_path / "s"),
                  "--eutils-url", emulator.url)
    assert text.exit_code == 0 and text.output.startswith("Crawl complete: ")
    assert "embedded: up to date" in text.output


def test_identifiers_and_query_resolve_through_esearch(emulator, tmp_path):
    result = invoke("nuccore:NM_007294", "pmc:PMC1234567", "snp:rs80357906", "structure:1JM7",
                    "protein:NP_009225", "--query", "BRCA1[gene]", "--query-db", "gene",
                    "--dry-run", "--format", "json", "--store", str(tmp_path / "s"),
                    "--eutils-url", emulator.url)
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["seeds"] == ["nuccore:237757283", "pmc:1234567", "snp:80357906",
                             "structure:17850", "protein:6552302", "gene:672"]
    # lookups only: ESearch for the identifiers, EInfo's link lists for the estimate
    assert {e["path"].rsplit("/", 1)[-1] for e in emulator.log} <= {"esearch.fcgi",
                                                                     "einfo.fcgi"}
    assert not (tmp_path / "s").exists()


def test_unknown_identifier_is_named_before_any_link_request(emulator, tmp_path):
    result = invoke("gene:672", "nuccore:XM_999999999", "--store", str(tmp_path / "s"),
                    "--eutils-url", emulator.url)
    assert result.exit_code == 2
    assert "nuccore:XM_999999999 matches no record" in result.output
    assert not [e for e in emulator.log if "elink" in e["path"]]
    assert not (tmp_path / "s").exists()


class _DownNeo4j:
    """A Neo4j sink whose server went away after the start: every sync reports rows pending."""

    name = "neo4j:bolt://127.0.0.1:7687/neo4j"

    def __init__(self):
        self.syncs = 0
        self.closed = False

    def sync(self, journal):
        from crawler.sinks import SyncReport

        self.syncs += 1
        behind = journal.max_ids()
        return SyncReport(self.name, pending=behind.node + behind.edge,
                          error="ServiceUnavailable: connection refused")

    def close(self):
        self.closed = True


def test_neo4j_outage_is_reported_once_and_exits_3(emulator, tmp_path, monkeypatch):
    sink = _DownNeo4j()
    monkeypatch.setattr("crawler.crawling.api.connect_neo4j", lambda target: sink)
    result = invoke("gene:672", "--depth", "2", "--link", "gene_protein_refseq",
                    "--link", "protein_structure", "--store", str(tmp_path / "s"),
                    "--eutils-url", emulator.url, "--neo4j", "bolt://127.0.0.1:7687")
    assert result.exit_code == 3, result.output
    assert sink.syncs >= 2 and sink.closed
    assert result.output.count("Neo4j unavailable: ServiceUnavailable") == 1
    assert "run `entrez-graph sync` later" in result.output
    assert "rows missing" in result.output
    with Journal(tmp_path / "s", create=False) as j:  # the journal kept everything
        assert j.stats()["edges"] > 0 and j.stats()["pending"] == 0


def test_neo4j_unreachable_at_start_is_bad_input(emulator, tmp_path, monkeypatch):
    def refuse(target):
        raise BadInput(f"cannot reach Neo4j at {target.uri}: connection refused")

    monkeypatch.setattr("crawler.crawling.api.connect_neo4j", refuse)
    result = invoke("gene:672", "--store", str(tmp_path / "s"), "--eutils-url", emulator.url,
                    "--neo4j", "bolt://127.0.0.1:1")
    assert result.exit_code == 2 and "cannot reach Neo4j" in result.output
    assert not (tmp_path / "s").exists()
    assert not [e for e in emulator.log if "elink" in e["path"]]


def test_summaries_name_the_records(emulator, tmp_path):
    report = crawl_ok(emulator.url, tmp_path / "s", "gene:672", "--link",
                      "gene_protein_refseq", "--summaries")
    assert report["summaries"]["summarized"] == report["nodes"]
    with Journal(tmp_path / "s", create=False) as j:
        assert j.props_of("gene", "672").get("name") == "BRCA1"
        named = [j.props_of(n.db, n.uid).get("name") for n in j.iter_nodes()]
    assert all(named)


def test_crawl_with_only_the_store_resumes_with_stored_settings(emulator, tmp_path, monkeypatch):
    from crawler.crawling.committer import Committer

    args = ["gene:672", "nuccore:NM_007294", "--depth", "2", "--link", "gene_protein",
            "--link", "protein_pubmed", "--link", "nuccore_gene", "--batch-size", "20",
            "--no-embedded"]
    reference = crawl_ok(emulator.url, tmp_path / "ref", *args)

    original = Committer.fetch
    calls = {"n": 0}

    def interrupt_after_three(self, *a):
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt
        return original(self, *a)

    monkeypatch.setattr(Committer, "fetch", interrupt_after_three)
    result = invoke(*args, "--store", str(tmp_path / "s"), "--eutils-url", emulator.url)
    assert result.exit_code == 130 and "run the same command again" in result.output
    monkeypatch.setattr(Committer, "fetch", original)
    with Journal(tmp_path / "s", create=False) as j:
        assert j.stats()["pending"] > 0

    # an explicit option that would narrow the stored crawl is refused ...
    result = invoke("--store", str(tmp_path / "s"), "--depth", "1", "--eutils-url",
                    emulator.url)
    assert result.exit_code == 2 and "--depth 2 -> 1" in result.output
    # ... and the store alone resumes it to the same graph as the uninterrupted crawl
    resumed = crawl_ok(emulator.url, tmp_path / "s", "--no-embedded")
    assert resumed["complete"] and resumed["seeds"] == reference["seeds"]
    assert (resumed["nodes"], resumed["edges"], resumed["by_link"]) == (
        reference["nodes"], reference["edges"], reference["by_link"])
    with Journal(tmp_path / "s", create=False) as a, Journal(tmp_path / "ref",
                                                             create=False) as b:
        def graph(j):
            return ({(n.db, n.uid, n.depth) for n in j.iter_nodes()},
                    {(e.dbfrom, e.uid_from, e.linkname, e.dbto, e.uid_to)
                     for e in j.iter_edges()})
        assert graph(a) == graph(b)
    result = invoke("--store", str(tmp_path / "empty"), "--eutils-url", emulator.url)
    assert result.exit_code == 2 and "no seeds" in result.output


# -- E-utilities out of reach: fail fast with one line; retries visible --------------------------


def closed_port_url() -> str:
    """A loopback URL nothing listens on (the port was free a moment ago): connection refused."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/entrez/eutils/"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("NCBI_API_KEY", "NEO4J_URI")}
    # the timeout only guards against a hang; nothing is asserted about time
    return subprocess.run([sys.executable, "-m", "crawler", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_unreachable_eutils_fails_fast_with_one_line(tmp_path, monkeypatch):
    url = closed_port_url()
    store = tmp_path / "s"
    done = run_cli("crawl", "gene:672", "--store", str(store), "--eutils-url", url,
                   "--no-embedded")
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert errors == [
        f"Error: cannot reach E-utilities at {url}: [Errno 111] Connection refused; check the "
        "network or --eutils-url"
    ]
    assert "Traceback" not in done.stderr and done.stdout == ""
    # fast: three attempts (one visible retry line at most), not ten
    retries = [line for line in done.stderr.splitlines() if line.startswith("E-utilities: ")]
    assert len(retries) <= 1 and all("retry 3/3 in " in line for line in retries)
    with Journal(store, create=False) as j:  # the seeds are kept, nothing else happened
        stats = j.stats()
    assert (stats["nodes"], stats["edges"], stats["pending"]) == (1, 0, 1)
    assert stats["requests"] == {}


def test_unreachable_eutils_for_seed_lookups_is_not_bad_input(tmp_path):
    url = closed_port_url()
    result = invoke("gene:BRCA1", "gene:NM_007294", "--store", str(tmp_path / "s"),
                    "--eutils-url", url)
    assert result.exit_code == 1
    assert result.stderr.count("Error: cannot reach E-utilities at ") == 1
    assert "lookup failed" not in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "s").exists()  # resolved before the store is made


def test_resumed_crawl_keeps_its_journal_when_eutils_is_gone(emulator, tmp_path, monkeypatch):
    from crawler.crawling.committer import Committer

    original = Committer.fetch
    calls = {"n": 0}

    def interrupt_after_two(self, *a):
        calls["n"] += 1
        if calls["n"] > 2:
            raise KeyboardInterrupt
        return original(self, *a)

    monkeypatch.setattr(Committer, "fetch", interrupt_after_two)
    store = tmp_path / "s"
    args = ("gene:672", "--depth", "2", "--no-embedded", "--store", str(store))
    assert invoke(*args, "--eutils-url", emulator.url).exit_code == 130
    monkeypatch.setattr(Committer, "fetch", original)
    before = snapshot(store)
    # another endpoint than the store's must be asked for explicitly
    result = invoke(*args, "--eutils-url", closed_port_url(), "--switch-endpoint")
    assert result.exit_code == 1 and "Error: cannot reach E-utilities" in result.stderr
    after = snapshot(store)
    assert after.keys() == before.keys()
    with Journal(store, create=False) as j:
        assert j.stats()["pending"] > 0
    # and the crawl resumes to completion once E-utilities is back
    resumed = crawl_ok(emulator.url, store, *args[:4], "--switch-endpoint")
    assert resumed["complete"]


def test_retries_are_visible_as_short_warnings(world, tmp_path):
    from crawler.emulator import Emulator

    with Emulator(world, rate_limit=0, faults="503=0.5", fault_seed=3) as emu:
        result = invoke("gene:672", "--depth", "2", "--no-embedded", "--store",
                        str(tmp_path / "s"), "--eutils-url", emu.url, "--rps", "1000",
                        "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["complete"]
    lines = [line for line in result.stderr.splitlines() if line.startswith("E-utilities: ")]
    assert lines, result.stderr
    for line in lines:
        assert line.startswith("E-utilities: HTTP 503 (") and " retry " in line
        assert "/10 in " in line and line.endswith(" s") and len(line) < 200
    assert "Traceback" not in result.stderr


def test_status_counts_every_request_of_the_crawl(emulator, tmp_path):
    store = tmp_path / "s"
    report = crawl_ok(emulator.url, store, "gene:BRCA1", "--depth", "1", "--summaries",
                      "--no-embedded")
    with Journal(store, create=False) as j:
        requests = j.stats()["requests"]
    assert requests["esummary"] == report["summaries"]["requests"] > 0
    assert requests["esearch"] >= 1  # the seed lookup
    assert sum(requests.values()) == report["requests"] == report["requests_total"]
    status = CliRunner().invoke(main, ["status", "--store", str(store)])
    assert status.exit_code == 0 and f"Requests:  {report['requests']} " in status.output
