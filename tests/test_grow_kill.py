"""A crawl SIGKILLed while it grows (while it asks, and inside the apply's transaction) resumes and
ends exactly as a fresh crawl with the final settings: journal and LadybugDB alike."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner
from storecheck import assert_store_is_journal, journal_graph

from crawler.cli import main
from crawler.emulator import Emulator, World
from crawler.store import StorePaths

SEEDS = ["gene:672", "protein:6552302", "pubmed:9298984"]


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NCBI_API_KEY", "NEO4J_URI", "ENTREZ_GRAPH_TEST_PAUSE_IN_GROW")}
    env.update(ENTREZ_GRAPH_RATE_DIR=str(tmp / "rate"), NCBI_EMAIL="test@example.org", **extra)
    return env


def _crawl(store: Path, url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "crawler", "crawl", *args, "--store", str(store),
            "--eutils-url", url, "--rps", "1000", "--batch-size", "7"]


def _until(cond: Callable[[], bool], proc: subprocess.Popen, timeout: float = 120.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    return False


def _graph(store: Path):
    nodes, edges = journal_graph(store)
    return {(db, uid, depth) for db, uid, depth, _ in nodes}, edges


def _status(store: Path) -> dict:
    result = CliRunner().invoke(main, ["status", "--store", str(store), "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _kill_when(cmd: list[str], env: dict, cond: Callable[[], bool]) -> None:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    hit = _until(cond, proc)
    if hit:
        proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert hit and proc.returncode == -signal.SIGKILL, err.decode()[-3000:]


def test_killed_while_growing_then_resumed_is_exact(tmp_path: Path) -> None:
    world = World.generate(seed=1, size=600)
    store, fresh = tmp_path / "grown", tmp_path / "fresh"
    with Emulator(world, rate_limit=0, latency_ms=15) as emu:
        first = subprocess.run(_crawl(store, emu.url, *SEEDS, "--depth", "1"),
                               env=_env(tmp_path), capture_output=True, text=True)
        assert first.returncode == 0, first.stderr
        grow = _crawl(store, emu.url, "--depth", "2")
        # 1. while it asks: the journal beside holds some answers
        at = len(emu.log)
        _kill_when(grow, _env(tmp_path), lambda: len(emu.log) > at + 15)
        assert (store / "journal.next.sqlite").exists()
        growing = _status(store)["growing"]
        assert growing["kind"] == "extend" and "--depth 1 -> 2" in growing["what"]
        # 2. inside the apply's transaction, before its COMMIT
        pause = store / "test-pause-in-grow"
        _kill_when(grow, _env(tmp_path, ENTREZ_GRAPH_TEST_PAUSE_IN_GROW="30"), pause.exists)
        # 3. the resume finishes it
        done = subprocess.run(grow, env=_env(tmp_path), capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        ref = subprocess.run(_crawl(fresh, emu.url, *SEEDS, "--depth", "2"),
                             env=_env(tmp_path), capture_output=True, text=True)
        assert ref.returncode == 0, ref.stderr
    assert _graph(store) == _graph(fresh)
    assert_store_is_journal(store)
    report = _status(store)
    assert report["growing"] is None
    assert [(r["kind"], r["outcome"]) for r in report["history"]] == [
        ("crawl", "done"), ("extend", "killed"), ("extend", "killed"), ("extend", "done")]
    assert report["history"][1]["changed"]["depth"] == {"from": 1, "to": 2}
    assert not (store / "journal.next.sqlite").exists()
    assert StorePaths.of(store).graph.exists()
