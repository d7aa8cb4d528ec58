"""`sync --bulk`: neo4j-admin database import for a local, stopped Neo4j, or a plain refusal.

No Neo4j here: neo4j-admin is a stand-in script that records its arguments and checks the files
it is given; "stopped" is a closed local port (the real driver finds nothing there).
"""

from __future__ import annotations

import csv
import json
import socket
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from neo4j_fake import fill, install

from crawler.cli import main
from crawler.journal import Journal
from crawler.store import StorePaths

ADMIN = '''#!{python}
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
files = {{}}
for a in args:
    if a.startswith(("--nodes=", "--relationships=")):
        kind, spec = a[2:].split("=", 1)
        label, path = spec.split("=", 1)
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        files.setdefault(kind, {{}})[label] = [lines[0], len(lines) - 1]
        if label == "EntrezGraphCursor":
            files["cursor"] = lines[1]
Path(os.environ["ADMIN_LOG"]).write_text(json.dumps({{"args": args, "files": files}}))
code = int(os.environ.get("ADMIN_EXIT", "0"))
if code:
    print("Import error: Database 'neo4j' is in use", file=sys.stderr)
sys.exit(code)
'''


def closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    with Journal(StorePaths.of(path).journal) as j:
        fill(j, 3)
    return path


@pytest.fixture
def admin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "neo4j-admin"
    script.write_text(ADMIN.format(python=sys.executable), encoding="utf-8")
    script.chmod(0o755)
    log = tmp_path / "admin.json"
    monkeypatch.setenv("NEO4J_ADMIN", str(script))
    monkeypatch.setenv("ADMIN_LOG", str(log))
    return log


def bulk(store: Path, uri: str, *extra: str):
    return CliRunner().invoke(main, ["sync", "--store", str(store), "--neo4j", uri, "--bulk",
                                     "--format", "json", *extra])


def test_bulk_imports_the_journal_with_our_cursor(store: Path, admin: Path) -> None:
    uri = f"bolt://127.0.0.1:{closed_port()}"
    result = bulk(store, uri, "--neo4j-database", "graphs")
    assert result.exit_code == 3, result.output  # the properties follow with the next sync
    [report] = json.loads(result.stdout)
    assert (report["nodes"], report["edges"], report["pending"]) == (15, 15, 3)
    assert "Start Neo4j, then run `entrez-graph sync" in result.stderr
    ran = json.loads(admin.read_text())
    args = ran["args"]
    assert args[:5] == ["database", "import", "full", "graphs", "--overwrite-destination"]
    nodes, rels = ran["files"]["nodes"], ran["files"]["relationships"]
    assert {k: v[1] for k, v in nodes.items()} == {
        "gene": 3, "protein": 9, "structure": 3, "EntrezGraphCursor": 1}
    assert {k: v[1] for k, v in rels.items()} == {
        "gene_protein_refseq": 9, "protein_protein": 3, "protein_structure": 3}
    with Journal(StorePaths.of(store).journal, create=False) as j:
        jid, ids = j.get_meta("journal_id"), j.max_ids()
        held = j.get_cursor(f"neo4j:{uri}/graphs")
    [row] = csv.reader([ran["files"]["cursor"]])
    assert row == [jid, str(ids.node), str(ids.edge), "0", str(ids.change), "false"]
    assert (held.node, held.edge, held.prop) == (ids.node, ids.edge, 0)
    assert not list(store.glob(".neo4j-bulk-*"))  # the CSV is removed afterwards


def test_bulk_refuses_a_server_elsewhere(store: Path, admin: Path) -> None:
    result = bulk(store, "bolt://neo4j.example.org:7687")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "Error: sync --bulk cannot apply: Neo4j at bolt://neo4j.example.org:7687 is not on this "
        "machine, and neo4j-admin must run where the database files are (copy an `export "
        "--format neo4j-csv` there and run its import.sh); nothing was changed (plain `sync` "
        "writes through the running server)"]
    assert not admin.exists()


def test_bulk_refuses_a_running_server(
    store: Path, admin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(monkeypatch)  # a server that answers
    monkeypatch.setenv("NEO4J_ADMIN", str(admin.parent / "neo4j-admin"))
    monkeypatch.setenv("ADMIN_LOG", str(admin))
    result = bulk(store, "bolt://localhost:7687")
    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    assert "is running; stop it first" in line and line.startswith("Error: sync --bulk cannot")
    assert not admin.exists()


def test_bulk_without_neo4j_admin_says_so(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("NEO4J_ADMIN", "NEO4J_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    result = bulk(store, f"bolt://127.0.0.1:{closed_port()}")
    assert result.exit_code == 2
    assert "neo4j-admin not found" in result.output and "Traceback" not in result.output


def test_a_failing_import_is_one_line(
    store: Path, admin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADMIN_EXIT", "1")
    result = bulk(store, f"bolt://127.0.0.1:{closed_port()}")
    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    assert line == ("Error: neo4j-admin import into database 'neo4j' failed (exit 1): "
                    "Import error: Database 'neo4j' is in use")
    with Journal(StorePaths.of(store).journal, create=False) as j:
        assert j.execute("SELECT count(*) FROM cursors").fetchone()[0] == 0


def test_bulk_needs_neo4j_and_nothing_else(store: Path) -> None:
    result = CliRunner().invoke(main, ["sync", "--store", str(store), "--bulk", "--embedded"])
    assert result.exit_code == 2 and "--bulk loads one Neo4j database" in result.output
