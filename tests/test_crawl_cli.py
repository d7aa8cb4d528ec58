"""`entrez-graph crawl` through the real CLI: bad input, dry run, settings, lock, summary, sinks."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawler.cli import main
from crawler.engine import StoreLock
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
    plan = json.loads(result.output)
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
