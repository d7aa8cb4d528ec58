"""`entrez-graph demo` through the real CLI: crawls gene:672 offline and prints the bundled queries.

Expected answers come from the emulator's own world (`World.links_from`), not from the store.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawler.cli import main
from crawler.emulator import World

demo_module = importlib.import_module("crawler.showcase")


@pytest.fixture(scope="module")
def expected() -> dict[str, set]:
    """gene 672's RefSeq proteins and (protein, structure) pairs, read from the demo's world."""
    world = World.generate(seed=demo_module.WORLD_SEED, size=demo_module.WORLD_SIZE)
    proteins = {
        str(link.target) for link in world.links_from("gene", "672")
        if link.linkname == "gene_protein_refseq"
    }
    pairs = {
        (p, str(link.target))
        for p in proteins
        for link in world.links_from("protein", p)
        if link.linkname == "protein_structure"
    }
    return {"proteins": proteins, "pairs": pairs}


@pytest.fixture(scope="module")
def kept_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    store = tmp_path_factory.mktemp("demo") / "store"
    result = CliRunner().invoke(main, ["demo", "--store", str(store)])
    assert result.exit_code == 0, result.output
    return store, result.output


def _table(output: str, heading_start: str) -> tuple[list[dict[str, str]], int]:
    """The table printed under a query heading, parsed by the column spans of its dashes line,
    and how many rows the query returned in all (the demo prints the first few)."""
    section = output[output.index(heading_start):].split("\n\n", 1)[0].splitlines()
    header, dashes, *lines = section[1:]
    spans = [(m.start(), m.end()) for m in re.finditer(r"-+", dashes)]
    names = [header[a:b].strip() for a, b in spans]
    rows, total = [], None
    for line in lines:
        more = re.match(r"… (\d+) more rows \((\d+) in all\)", line)
        if more:
            total = int(more.group(2))
            continue
        cells = [line[a:b if i < len(spans) - 1 else None].strip()
                 for i, (a, b) in enumerate(spans)]
        rows.append(dict(zip(names, cells, strict=True)))
    return rows, (len(rows) if total is None else total)


def test_demo_prints_the_chain_gene_proteins_structures(
    kept_run: tuple[Path, str], expected: dict[str, set]
) -> None:
    _, out = kept_run
    assert "672" in out and "structure" in out
    assert expected["proteins"] and expected["pairs"], "the demo world lost BRCA1's chain"
    rows, total = _table(out, "== gene 672 → RefSeq proteins (")
    assert rows and all(r["gene"] == "672" for r in rows)
    assert {r["protein"] for r in rows} <= expected["proteins"]
    assert total == len(expected["proteins"])
    rows, total = _table(out, "== gene 672 → RefSeq proteins → 3D structures")
    assert rows
    assert {(r["protein"], r["structure"]) for r in rows} <= expected["pairs"]
    assert total == len(expected["pairs"])
    # The bundled query's ORDER BY protein, structure: the demo shows the first rows of it.
    assert rows == sorted(rows, key=lambda r: (r["protein"], r["structure"]))


def test_demo_prints_names_when_summaries_exist(kept_run: tuple[Path, str]) -> None:
    if not demo_module.summaries_available():
        pytest.skip("crawler.summaries not present: the demo prints UIDs only")
    _, out = kept_run
    rows, _ = _table(out, "== gene 672 → RefSeq proteins (")
    assert {r["gene_name"] for r in rows} == {"BRCA1"}
    assert all(r["protein_name"] for r in rows)


def test_demo_records_per_db_match_the_journal(kept_run: tuple[Path, str]) -> None:
    store, out = kept_run
    status = CliRunner().invoke(main, ["status", "--store", str(store), "--format", "json"])
    assert status.exit_code == 0, status.output
    report = json.loads(status.output)
    assert report["complete"] is True
    assert report["sinks"]["embedded"]["total"] == 0  # the store holds every journal row
    rows, total = _table(out, "== records per database")
    printed = {r["db"]: int(r["records"]) for r in rows}
    assert total == len(rows), "records_per_db must be printed whole"
    assert printed == report["by_db"]
    assert {"gene", "protein", "structure"} <= set(printed)


def test_demo_again_on_the_same_store_resumes_and_answers_the_same(
    kept_run: tuple[Path, str],
) -> None:
    store, first = kept_run
    result = CliRunner().invoke(main, ["demo", "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert ", 0 requests in " in result.output  # nothing asked twice: the crawl was complete
    strip = re.compile(r"\d+ requests in [0-9.]+ s|from http://\S+")
    again, before = (strip.sub("", text.split("== ", 1)[1]) for text in (result.output, first))
    assert again == before


def test_demo_without_store_leaves_nothing_behind(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(demo_module.tempfile, "tempdir", str(tmp_path))
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    assert "672" in result.output and "structure" in result.output
    assert "temporary" in result.output
    assert list(tmp_path.iterdir()) == []
