"""`crawl --dry-run`: the estimate is within 1.5x of what the crawl then sends (README's kinds of
crawl, against the emulator), 0 for a complete store, and finite for any --depth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawler.cli import main
from crawler.emulator import Emulator, World

CASES = [
    ("gene:672", "--depth", "2"),
    ("gene:672",),
    ("gene:672", "--depth", "2", "--scores"),
    ("gene:672", "nuccore:2000000005", "--depth", "2", "--link", "gene_protein_refseq",
     "--link", "protein_structure"),
    ("pubmed:30000001", "--link", "pubmed_pubmed", "--scores", "--max-links-per-record", "20"),
    ("gene:672", "--db", "protein", "--db", "structure", "--depth", "3"),
    ("gene:672", "protein:6552302", "--depth", "2", "--discovery", "all"),
]


@pytest.mark.parametrize("world_size", [600, 20000])
def test_estimate_within_one_and_a_half_of_what_is_sent(
    world_size: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))
    world = World.generate(seed=1, size=world_size)
    for i, case in enumerate(CASES):
        store = tmp_path / f"store{i}"
        with Emulator(world, rate_limit=0) as emu:
            base = ["crawl", *case, "--store", str(store), "--eutils-url", emu.url,
                    "--rps", "1000"]
            planned = CliRunner().invoke(main, [*base, "--dry-run", "--format", "json"])
            assert planned.exit_code == 0, planned.output
            estimate = json.loads(planned.stdout)["estimated_requests"]
            assert not store.exists()  # a dry run writes nothing
            before = len(emu.log)
            crawled = CliRunner().invoke(main, base)
            assert crawled.exit_code == 0, crawled.output
            sent = len(emu.log) - before
            again = CliRunner().invoke(main, [*base, "--dry-run", "--format", "json"])
            complete = json.loads(again.stdout)
        assert sent / 1.5 <= estimate <= sent * 1.5, (case, estimate, sent)
        assert complete["estimated_requests"] == 0 and complete["resumes"], case


def test_a_depth_beyond_any_crawl_is_one_line_and_exit_2(emulator: Emulator, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))
    for depth in ("1000", str(2**62)):
        result = CliRunner().invoke(main, ["crawl", "gene:672", "--depth", depth, "--dry-run",
                                           "--store", str(tmp_path / "s"), "--eutils-url",
                                           emulator.url, "--rps", "1000"])
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert result.output.count("\n") == 1 and "at most 100" in result.output
    result = CliRunner().invoke(main, ["crawl", "gene:672", "--depth", "100", "--dry-run",
                                       "--store", str(tmp_path / "s"), "--eutils-url",
                                       emulator.url, "--rps", "1000"])
    assert result.exit_code == 0 and "estimate:" in result.output, result.output
    assert not (tmp_path / "s").exists()
