"""Bad input anywhere in the CLI: one `Error:` line, exit 2, no traceback, nothing sent or stored.

Cases found by a black-box audit of every command; each once printed a traceback, exited 0 or 1,
or printed click's three-line usage block.
"""

from __future__ import annotations

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
