"""Helpers shared by the tests of growing and refreshing a crawl: the real CLI, and the graph a
store holds (journal rows and an export), as multisets to compare with a fresh crawl's."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from click.testing import CliRunner
from storecheck import journal_graph

from crawler.cli import main


def crawl_cli(url: str, store: Path, *args: str, code: int = 0) -> tuple[dict | None, str]:
    """`crawl` through the CLI; (its JSON report, its stderr), the exit code checked."""
    result = CliRunner().invoke(
        main, ["crawl", *args, "--store", str(store), "--eutils-url", url, "--rps", "1000",
               "--format", "json"],
    )
    assert result.exit_code == code, result.output
    return (json.loads(result.stdout) if code == 0 else None), result.stderr


def graph(store: Path) -> tuple[Counter, Counter]:
    """(db, uid, depth) of every record and every edge row of a finished crawl's journal."""
    nodes, edges = journal_graph(store)
    return Counter({(db, uid, depth): n for (db, uid, depth, _), n in nodes.items()}), edges


def export_rows(store: Path, tmp: Path) -> set:
    """Records (id, depth) and links (source, target, link name) of a node-link JSON export."""
    out = tmp / f"{store.name}.json"
    result = CliRunner().invoke(main, ["export", "--store", str(store), str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    return ({(n["id"], n.get("depth")) for n in data["nodes"]}
            | {(e["source"], e["target"], e["linkname"]) for e in data["edges"]})
