"""Bad input anywhere in the CLI: one `Error:` line, exit 2, no traceback, nothing sent or stored.

Cases found by a black-box audit of every command; each once printed a traceback, exited 0 or 1,
or printed click's three-line usage block.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawler.cli import main
from crawler.emulator import Emulator

CASES = [
    ("crawl", "gene:672", "--rps", "inf"),
    ("crawl", "gene:672", "--rps", "0"),
    ("crawl", "gene:672", "--max-nodes", "99999999999999999999"),
    ("crawl", "gene:672", "--depth", "99999999999999999999"),
    ("crawl", "gene:0"),
    ("crawl", "foo:1"),
    ("crawl", "gene:672", "--link", "gene_protein]->() DETACH DELETE n //"),
    ("link", "--dbfrom", "foo", "--db", "protein", "--id", "1"),
    ("link", "--dbfrom", "gene", "--db", "protein", "--id", "672", "--rps", "inf"),
    ("link", "--dbfrom", "gene", "--db", "protein", "--id", "67 2"),
    ("link", "--dbfrom", "gene", "--db", "protein", "--id", "672", "--cmd", "bogus"),
    ("links", "foo", "1"),
    ("links",),
    ("status", "--format", "xml"),
    ("nosuchcommand",),
]


@pytest.mark.parametrize("args", CASES, ids=lambda a: " ".join(a)[:60])
def test_one_line_exit_2_nothing_sent(
    args: tuple[str, ...], emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENTREZ_GRAPH_EUTILS_URL", emulator.url)
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))
    store = tmp_path / "store"
    extra = ("--store", str(store)) if args[0] in ("crawl", "status") else ()
    result = CliRunner().invoke(main, [*args, *extra])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert emulator.log == []
    assert not store.exists()


@pytest.mark.parametrize(
    "args",
    [
        ("crawl", "gene:672", "--store", "/proc/entrez-graph-test"),
        ("emulate", "--dump", "/proc/entrez-graph-test/world.jsonl"),
    ],
)
def test_unwritable_paths_are_one_line(args: tuple[str, ...], emulator: Emulator,
                                       monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if not Path("/proc").is_dir():
        pytest.skip("needs /proc (Linux) for a directory nobody can write into")
    monkeypatch.setenv("ENTREZ_GRAPH_EUTILS_URL", emulator.url)
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 2, result.output
    assert result.output.strip().startswith("Error: ") and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


@pytest.mark.parametrize("command", ["status", "export", "summarize", "sync", "crawl"])
def test_a_file_that_is_not_a_journal_is_bad_input_and_kept(
    command: str, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENTREZ_GRAPH_EUTILS_URL", emulator.url)
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))
    store = tmp_path / "store"
    store.mkdir()
    garbage = bytes(range(256)) * 20
    (store / "journal.sqlite").write_bytes(garbage)
    extra = {"export": [str(tmp_path / "out.json")], "sync": ["--embedded"],
             "crawl": ["gene:672"]}.get(command, [])
    result = CliRunner().invoke(main, [command, "--store", str(store), *extra])
    assert result.exit_code == 2, result.output
    assert result.output.strip().startswith("Error: ") and "Traceback" not in result.output
    assert (store / "journal.sqlite").read_bytes() == garbage
    assert emulator.log == []


# -- issue 15: the rest of the audit ---------------------------------------------------------------

LONG = "gene:" + "9" * 5000


def _one_line(result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


@pytest.mark.parametrize(
    ("seed", "says"),
    [
        (LONG, "more than 18 digits"),
        ("gene:-1", "expected a positive whole number"),
        ("gene:+7", "expected a positive whole number"),
        ("gene:" + "x" * 3000 + " y", "contains whitespace"),
        ("gene:2.5", "expected a positive whole number"),
    ],
    ids=["5000 nines", "minus one", "plus", "long token", "decimal"],
)
def test_seeds_are_one_short_line(seed: str, says: str, emulator: Emulator, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))
    store = tmp_path / "store"
    line = _one_line(CliRunner().invoke(main, ["crawl", seed, "--store", str(store),
                                               "--eutils-url", emulator.url]))
    assert says in line and len(line) < 200, line  # long values are cut short in messages
    assert emulator.log == [] and not store.exists()


def test_a_seeds_file_with_a_utf8_bom_is_read(emulator: Emulator, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))
    seeds = tmp_path / "seeds.txt"
    seeds.write_bytes("\ufeffgene:672 # BRCA1\r\n".encode())
    store = tmp_path / "store"
    result = CliRunner().invoke(main, ["crawl", "--seeds-file", str(seeds), "--depth", "0",
                                       "--store", str(store), "--eutils-url", emulator.url,
                                       "--rps", "1000"])
    assert result.exit_code == 0, result.output
    from crawler.journal import Journal
    from crawler.store import StorePaths

    with Journal(StorePaths.of(store).journal, create=False) as journal:
        assert [(n.db, n.uid) for n in journal.iter_nodes()] == [("gene", "672")]
    not_text = tmp_path / "seeds.bin"
    not_text.write_bytes(b"gene:672\n\xff\xfe\x00")
    line = _one_line(CliRunner().invoke(main, ["crawl", "--seeds-file", str(not_text),
                                               "--store", str(tmp_path / "other")]))
    assert "not UTF-8 text" in line


def test_export_names_an_unknown_database(emulator: Emulator, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))
    store = tmp_path / "store"
    crawled = CliRunner().invoke(main, ["crawl", "gene:672", "--depth", "0", "--store",
                                        str(store), "--eutils-url", emulator.url])
    assert crawled.exit_code == 0, crawled.output
    before = sorted((p.name, p.stat().st_size) for p in store.iterdir())
    line = _one_line(CliRunner().invoke(main, ["export", "--store", str(store), "--db",
                                               "notadb", str(tmp_path / "out.graphml")]))
    assert "unknown database in --db 'notadb'" in line
    assert not (tmp_path / "out.graphml").exists()
    assert sorted((p.name, p.stat().st_size) for p in store.iterdir()) == before


def _emulate(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """`emulate` in a subprocess: one that wrongly started serving is stopped by the timeout."""
    return subprocess.run([sys.executable, "-m", "crawler", "emulate", *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--poison", "abc"), "invalid --poison ID 'abc': expected a positive whole number"),
        (("--poison", "672,x y"), "invalid --poison ID 'x y'"),
        (("--size", str(10**15)), "needs about 64,000 TB of memory"),
        (("--graph", "random.bin"), "random.bin:1: not"),
        (("--graph", "latin1.jsonl"), "latin1.jsonl:2: not UTF-8 text"),
        (("--graph", "empty.jsonl"), "holds no links or records"),
        (("--log", "/proc/entrez-graph-test/log.jsonl"), "cannot write the request log"),
    ],
    ids=["poison abc", "poison space", "size", "random graph", "latin1 graph", "empty graph",
         "unwritable log"],
)
def test_emulator_inputs_are_one_line(args: tuple[str, ...], says: str, tmp_path: Path) -> None:
    (tmp_path / "random.bin").write_bytes(bytes(range(256)) * 20)
    (tmp_path / "latin1.jsonl").write_bytes(
        b'{"db": "gene", "uid": "1"}\n{"db": "gene", "uid": "2", "name": "caf\xe9"}\n')
    (tmp_path / "empty.jsonl").write_text("\n\n")
    done = _emulate(tmp_path, *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and says in lines[0], done.stderr


def test_graph_lines_with_bad_link_names_are_warned_with_a_count(tmp_path: Path) -> None:
    graph = tmp_path / "graph.jsonl"
    rows = [
        {"dbfrom": "gene", "uid": "1", "linkname": "gene_protein", "dbto": "protein",
         "target": "2"},
        {"dbfrom": "gene", "uid": "1", "linkname": "protein_gene", "dbto": "protein",
         "target": "3"},
        {"dbfrom": "gene", "uid": "1", "linkname": "Gene Protein", "dbto": "protein",
         "target": "4"},
        {"dbfrom": "gene", "uid": "1", "linkname": "x]->() DELETE n", "dbto": "protein",
         "target": "5"},
        {"dbfrom": "gene", "uid": "5", "linkname": "gene_pubmed", "dbto": "pubmed",
         "target": "6"},
    ]
    graph.write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = _emulate(tmp_path, "--graph", str(graph), "--dump", str(tmp_path / "out.jsonl"))
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        f"Warning: {graph}: 1 link line served, but the link name does not name its databases "
        "(as gene_protein_…) (line 2)",
        f"Warning: {graph}: 2 link lines skipped: a link name or database that is not an "
        "identifier (lines 3, 4)",
    ]
    assert "Wrote 3 links" in done.stdout


def test_the_emulator_escapes_every_character(tmp_path: Path) -> None:
    """Names holding NUL, other control characters, markup and quotes: every answer stays
    well-formed XML, and what XML can hold comes back as it was given."""
    import xml.etree.ElementTree as ET

    import httpx

    from crawler.emulator import World

    weird = "a\x00b\x01c\x1f<d>&e\"f'g\ud800h\ufffe\U0001f600 ]]> &amp;"
    graph = tmp_path / "graph.jsonl"
    rec = {"db": "gene", "uid": "1", "name": weird, "title": weird, "description": weird,
           "accession": weird, "organism": weird}
    link = {"dbfrom": "gene", "uid": "1", "linkname": "gene_protein", "dbto": "protein",
            "target": "2"}
    graph.write_text(json.dumps(rec) + "\n" + json.dumps(link) + "\n"
                     + json.dumps({**rec, "db": "protein", "uid": "2"}) + "\n")
    with Emulator(World.load(graph)) as emu:
        for path, params in [
            ("esummary.fcgi", {"db": "gene", "id": "1", "version": "2.0"}),
            ("esummary.fcgi", {"db": "protein", "id": "2", "version": "2.0"}),
            ("esummary.fcgi", {"db": "gene", "id": "1"}),
            ("elink.fcgi", {"dbfrom": "gene", "id": "1", "cmd": "acheck"}),
            ("elink.fcgi", {"dbfrom": "gene", "id": "1", "db": "protein"}),
            ("esearch.fcgi", {"db": "gene", "term": weird.replace("\ud800", "")}),
        ]:
            body = httpx.get(emu.url + path, params=params).content
            root = ET.fromstring(body)  # raises on malformed XML
            if path == "esummary.fcgi" and params.get("version"):
                texts = {e.text for e in root.iter() if e.text}
                assert "a\ufffdb\ufffdc\ufffd<d>&e\"f'g\ufffdh\ufffd\U0001f600 ]]> &amp;" in texts


# -- crawl-side items ---------------------------------------------------------------------------


def test_empty_store_path_is_refused(emulator: Emulator, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path.parent / "rate-empty-store"))
    line = _one_line(CliRunner().invoke(main, ["crawl", "gene:672", "--store", "",
                                               "--eutils-url", emulator.url]))
    assert "--store is empty" in line
    assert list(tmp_path.iterdir()) == [] and emulator.log == []


def test_resume_keeps_its_endpoint_and_another_one_must_be_asked_for(
    world, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))
    monkeypatch.delenv("ENTREZ_GRAPH_EUTILS_URL", raising=False)
    store = tmp_path / "store"
    with Emulator(world, rate_limit=0) as first, Emulator(world, rate_limit=0) as other:
        args = ["crawl", "gene:672", "--depth", "2", "--max-nodes", "30", "--store", str(store),
                "--rps", "1000"]
        # interrupted after the first level: the store holds an unfinished crawl
        from crawler.crawling.committer import Committer

        original, calls = Committer.fetch, {"n": 0}

        def interrupt(self, *a):
            calls["n"] += 1
            if calls["n"] > 3:
                raise KeyboardInterrupt
            return original(self, *a)

        monkeypatch.setattr(Committer, "fetch", interrupt)
        assert CliRunner().invoke(main, [*args, "--eutils-url", first.url]).exit_code == 130
        monkeypatch.setattr(Committer, "fetch", original)
        before = len(first.log)
        from crawler.journal import Journal
        from crawler.store import StorePaths

        with Journal(StorePaths.of(store).journal, create=False) as journal:
            stored = journal.settings()
        assert stored["endpoint"] == first.url and "api_key" not in json.dumps(stored)
        # another endpoint: refused, nothing sent or changed
        refused = CliRunner().invoke(main, ["crawl", "--store", str(store), "--eutils-url",
                                            other.url])
        line = _one_line(refused)
        assert f"was crawled from E-utilities at {first.url}" in line
        assert "--switch-endpoint" in line and other.log == []
        # `crawl --store DIR` resumes against the stored endpoint (the README's way)
        resumed = CliRunner().invoke(main, ["crawl", "--store", str(store), "--rps", "1000"])
        assert resumed.exit_code == 0, resumed.output
        assert len(first.log) > before and other.log == []


def test_settings_mismatch_names_options(emulator: Emulator, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))
    store = tmp_path / "store"
    base = ["crawl", "gene:672", "--store", str(store), "--eutils-url", emulator.url,
            "--rps", "1000", "--depth", "1"]
    assert CliRunner().invoke(main, base).exit_code == 0
    line = _one_line(CliRunner().invoke(main, [*base, "--max-nodes", "10", "--scores",
                                               "--db", "protein"]))
    for said in ("--max-nodes none -> 10", "--scores off -> on",
                 "--db protein instead of every one"):
        assert said in line, line
    assert "max_nodes" not in line and "seed_specs" not in line and "to_dbs" not in line


def test_a_link_no_seed_can_start_is_warned_with_a_count(emulator: Emulator, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))
    result = CliRunner().invoke(main, [
        "crawl", "gene:672", "--link", "gene_protein_refseq", "--link", "protein_structure",
        "--link", "pubmed_gene", "--link", "structure_pubmed", "--depth", "2", "--dry-run",
        "--store", str(tmp_path / "s"), "--eutils-url", emulator.url])
    assert result.exit_code == 0, result.output
    warned = [ln for ln in result.stderr.splitlines() if ln.startswith("Warning:")]
    assert warned == [
        "Warning: 2 of 4 --link names can never be followed: pubmed_gene starts from pubmed; "
        "structure_pubmed starts from structure, a database no seed is in and the other --link "
        "names do not reach within --depth 2"], result.stderr


@pytest.mark.parametrize(("signum", "code"), [(15, 143), (2, 130)], ids=["SIGTERM", "SIGINT"])
def test_crawl_stops_cleanly_on_signals_even_with_sigint_ignored(
    signum: int, code: int, world, tmp_path: Path
) -> None:
    """A background job started by a script inherits SIGINT ignored: both signals still stop
    the crawl with a message and their exit code, leaving no lock or load file, resumable."""
    import os
    import signal
    import time

    env = {**os.environ, "ENTREZ_GRAPH_RATE_DIR": str(tmp_path / "rate"),
           "PYTHONUNBUFFERED": "1"}
    store = tmp_path / "store"
    with Emulator(world, rate_limit=0, latency_ms=150) as emu:
        cmd = [sys.executable, "-m", "crawler", "crawl", "gene:672", "--depth", "2", "--store",
               str(store), "--eutils-url", emu.url, "--rps", "1000"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        deadline = time.monotonic() + 120
        while len(emu.log) < 4:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == code, (out, err)
        assert "Traceback" not in err and "run the same command again to resume" in err, err
        if signum == 15:
            assert "Stopped by SIGTERM" in err
        import fcntl

        with open(store / "crawl.lock", "rb+") as lock:  # not held, no PID claiming it
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            assert lock.read() == b""
        assert not list(store.glob("*.load")) and not list(store.glob("graph.lbdb.load*"))
        resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        assert "Crawl complete" in resumed.stdout
