"""One set of CLI conventions (README, "Conventions"), checked on every command through the CLI.

--format vocabulary, output paths (--force, `-` for stdout), filter option names, readable help
with examples, a quiet exit on a closed pipe, and what Ctrl-C says per command.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawler.cli import main
from crawler.cli.options import REPORT_FORMATS, ROW_FORMATS
from crawler.emulator import Emulator

COMMANDS = sorted(main.commands)
ROWS = {"link", "links", "query", "summarize", "sync"}   # print one list of rows
REPORTS = {"crawl", "status"}                            # print a report of several parts


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, world) -> Path:
    path = tmp_path_factory.mktemp("conventions") / "store"
    with Emulator(world, rate_limit=0) as emu:
        result = CliRunner().invoke(main, ["crawl", "gene:672", "--depth", "1", "--link",
                                           "gene_protein_refseq", "--store", str(path),
                                           "--eutils-url", emu.url, "--rps", "1000"])
    assert result.exit_code == 0, result.output
    return path


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_examples_and_readable_metavars(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Examples:" in result.output and f"entrez-graph {command}" in result.output
    for raw in ("RANGE", "INTEGER", "FLOAT", "TEXT", "FILENAME", "DIRECTORY", "BOOLEAN"):
        assert raw not in result.output, (command, raw)


def test_every_command_that_prints_rows_offers_the_same_formats() -> None:
    for name in COMMANDS:
        params = {p.name: p for p in main.commands[name].params}
        fmt = params.get("fmt")
        if name in ROWS:
            assert tuple(fmt.type.choices) == ROW_FORMATS, name
        elif name in REPORTS:
            assert tuple(fmt.type.choices) == REPORT_FORMATS, name
        else:
            assert name in {"demo", "emulate", "export", "view"}, f"{name}: rows or a report?"


def test_formats_render(store: Path) -> None:
    for fmt, check in [
        ("table", lambda out: out.splitlines()[1].startswith("-")),
        ("tsv", lambda out: out.splitlines()[0].split("\t")[:2] == ["gene", "gene_name"]),
        ("csv", lambda out: out.splitlines()[0].split(",")[:2] == ["gene", "gene_name"]),
        ("json", lambda out: json.loads(out)[0]["gene"] == "672"),
    ]:
        result = CliRunner().invoke(main, ["query", "--store", str(store), "--format", fmt,
                                           "gene_refseq_proteins"])
        assert result.exit_code == 0 and check(result.output), (fmt, result.output)
    for fmt in ("tsv", "csv"):
        out = CliRunner().invoke(main, ["sync", "--store", str(store), "--embedded",
                                        "--format", fmt]).output
        assert out.splitlines()[0] == ("\t" if fmt == "tsv" else ",").join(
            ["sink", "nodes", "edges", "props", "changes", "repaired", "pending", "status"]), out
    # the old `crawl --format text` still works and means table
    old = CliRunner().invoke(main, ["crawl", "--store", str(store), "--format", "text"])
    new = CliRunner().invoke(main, ["crawl", "--store", str(store), "--format", "table"])
    assert old.exit_code == new.exit_code == 0
    assert re.sub(r"in [0-9.]+ s", "", old.stdout) == re.sub(r"in [0-9.]+ s", "", new.stdout)


def test_filters_read_the_same_and_the_old_spelling_works(store: Path, world) -> None:
    for name in ("crawl", "export", "summarize"):
        opts = {o for p in main.commands[name].params for o in p.opts}
        assert {"--db"} <= opts and ("--link" in opts or name == "summarize"), name
    assert "ELink's db, not a filter" in CliRunner().invoke(main, ["link", "--help"]).output
    crawl_help = CliRunner().invoke(main, ["crawl", "--help"]).output
    assert "--to " not in crawl_help  # hidden alias
    plans = []
    for option in ("--db", "--to"):
        result = CliRunner().invoke(main, ["crawl", "gene:672", option, "protein", "--dry-run",
                                           "--format", "json", "--store",
                                           str(store.parent / "new")])
        assert result.exit_code == 0, result.output
        plans.append(json.loads(result.stdout)["to"])
    assert plans == [["protein"], ["protein"]]


def test_outputs_are_never_replaced_without_force(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "g.graphml"
    out.write_text("precious")
    refused = CliRunner().invoke(main, ["export", "--store", str(store), str(out)])
    assert refused.exit_code == 2 and "pass --force" in refused.output
    assert out.read_text() == "precious"
    forced = CliRunner().invoke(main, ["export", "--store", str(store), "--force", str(out)])
    assert forced.exit_code == 0 and out.read_text().startswith("<?xml")
    folder = tmp_path / "csv"
    first = CliRunner().invoke(main, ["export", "--store", str(store), "--format", "neo4j-csv",
                                      str(folder)])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(main, ["export", "--store", str(store), "--format", "neo4j-csv",
                                      str(folder)])
    assert again.exit_code == 2 and "pass --force" in again.output
    forced = CliRunner().invoke(main, ["export", "--store", str(store), "--format", "neo4j-csv",
                                       "--force", str(folder)])
    assert forced.exit_code == 0, forced.output


def test_dash_is_stdout_where_the_format_streams(store: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["export", "--store", str(store), "--format", "json", "-"])
    assert result.exit_code == 0, result.output
    graph = json.loads(result.stdout)
    assert {n["id"] for n in graph["nodes"]} >= {"gene:672"}
    assert "to stdout" in result.stderr
    for args, says in [(["-"], "give --format"),
                       (["--format", "neo4j-csv", "-"], "not a stream")]:
        refused = CliRunner().invoke(main, ["export", "--store", str(store), *args])
        assert refused.exit_code == 2 and says in refused.output, refused.output
    assert list(tmp_path.iterdir()) == []  # no file named "-"


def test_a_closed_pipe_is_a_quiet_exit() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "crawler", "demo"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # as `| head -1` does
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 0, stderr
    assert "Traceback" not in stderr and "Error" not in stderr and "Exception" not in stderr


@pytest.mark.parametrize(("command", "says"), [
    ("export", "nothing was written"),
    ("summarize", "run the same command again to resume"),
    ("query", "Interrupted."),
])
def test_ctrl_c_says_what_it_leaves(command: str, says: str, store: Path, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import crawler.exporting
    import crawler.querying
    import crawler.syncing

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(crawler.exporting, "export", interrupted)
    monkeypatch.setattr("crawler.cli.export.export", interrupted)
    monkeypatch.setattr(crawler.syncing, "summarize", interrupted)
    monkeypatch.setattr(crawler.querying, "query", interrupted)
    args = {"export": [str(tmp_path / "x.graphml")], "query": ["top_hubs"]}.get(command, [])
    result = CliRunner().invoke(main, [command, "--store", str(store), *args])
    assert result.exit_code == 130
    assert says in result.output and len(result.output.strip().splitlines()) == 1, result.output
