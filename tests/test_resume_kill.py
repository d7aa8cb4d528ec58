"""A crawl SIGKILLed at five moments, resumed each time, ends with the uninterrupted graph.

The crawl runs as a subprocess (`python -m crawler crawl …`, the same command every time) against
an in-process emulator with some latency, so kills land mid-crawl. Five kills, their moments
drawn from `random.Random(SEED)`: three at times after the run's first request, two while the
embedded store (LadybugDB) is loading. For those two, the sink's test hook
`ENTREZ_GRAPH_TEST_PAUSE_IN_COPY=<seconds>` makes it sleep between COPY and COMMIT, and the test
kills once the crawl's main thread has been seen sleeping there (Linux `/proc/<pid>/wchan` reads
`hrtimer_nanosleep`: the main thread otherwise waits on futures or I/O, never in `time.sleep`).

Afterwards the journal (records with depth and state, edges with scores) and the LadybugDB store
(every node table and rel table, read as multisets so a duplicate shows) must equal those of an
uninterrupted crawl of the same seeds, and the store must equal its own journal. After each kill
in a COPY the store must lack journal rows (the transaction was cut before its COMMIT).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from crawler.emulator import Emulator, World
from crawler.journal import Journal
from crawler.sinks.ladybug import LadybugSink
from crawler.store import StorePaths

ladybug = pytest.importorskip("ladybug")

SEED = 20261125
# What each kill waits for. The store loads at level ends, after the level's requests; so a kill
# in the COPY of a fresh run hits level 0's load, the time kills land inside level 1's requests,
# and the last COPY kill hits level 1's load. Delays and which COPY come from random.Random(SEED).
KINDS = ("copy", "time", "time", "time", "copy")
PAUSE_S = 0.8
WORLD_SEED, WORLD_SIZE = 11, 1500
LATENCY_MS = 60
# Small batches and some latency: enough requests (~240) that every kill lands mid-crawl.
CRAWL_ARGS = ["gene:672", "--depth", "2", "--rps", "1000", "--batch-size", "10"]


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NCBI_API_KEY"}
    env.update(
        ENTREZ_GRAPH_RATE_DIR=str(tmp / "rate"),
        NCBI_EMAIL="test@example.org",
        PYTHONUNBUFFERED="1",
    )
    env.pop("ENTREZ_GRAPH_TEST_PAUSE_IN_COPY", None)
    env.update(extra)
    return env


def _cmd(store: Path, url: str) -> list[str]:
    return [sys.executable, "-m", "crawler", "crawl", *CRAWL_ARGS, "--store", str(store),
            "--eutils-url", url]


def _main_thread_sleeping(pid: int) -> bool:
    """True while the process's main thread sleeps in time.sleep (the sink's COPY pause)."""
    try:
        return Path(f"/proc/{pid}/task/{pid}/wchan").read_text().strip() == "hrtimer_nanosleep"
    except OSError:
        return False


def _wait_for(cond: Callable[[], bool], proc: subprocess.Popen, timeout: float = 120.0) -> bool:
    """Poll `cond` until true; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if cond():
            return True
        time.sleep(0.01)
    raise AssertionError("crawl neither progressed nor ended in time")


def _journal_graph(store: Path) -> tuple[Counter, Counter]:
    con = sqlite3.connect(StorePaths.of(store).journal)
    try:
        nodes = Counter(con.execute("SELECT db, uid, depth, state FROM nodes").fetchall())
        edges = Counter(
            con.execute("SELECT dbfrom, uid_from, linkname, dbto, uid_to, score FROM edges")
        )
        pending = con.execute(
            "SELECT count(*) FROM nodes WHERE state IN ('new', 'checked')"
        ).fetchone()[0]
    finally:
        con.close()
    assert pending == 0, "the crawl did not finish"
    return nodes, edges


def _store_graph(store: Path, dbs: set[str]) -> tuple[Counter, Counter]:
    """Every record and every relationship in LadybugDB, as multisets (duplicates count twice)."""
    database = ladybug.Database(str(StorePaths.of(store).graph), read_only=True)
    conn = ladybug.Connection(database)
    try:
        tables = conn.execute("CALL show_tables() RETURN name, type").get_as_df()
        nodes: Counter = Counter()
        edges: Counter = Counter()
        for name, kind in zip(tables["name"], tables["type"], strict=True):
            if kind == "NODE" and name in dbs:
                res = conn.execute(f"MATCH (n:{name}) RETURN n.uid, n.depth")
                while res.has_next():
                    uid, depth = res.get_next()
                    nodes[(name, uid, depth)] += 1
            elif kind == "REL":
                res = conn.execute(
                    f"MATCH (a)-[r:{name}]->(b) RETURN label(a), a.uid, label(b), b.uid, r.score"
                )
                while res.has_next():
                    a_db, a_uid, b_db, b_uid, score = res.get_next()
                    edges[(a_db, a_uid, name, b_db, b_uid, score)] += 1
    finally:
        conn.close()
        database.close()
    return nodes, edges


def _store_behind(store: Path) -> int:
    """Journal rows the embedded store lacks, read as `status` reads them (store not open)."""
    with Journal(StorePaths.of(store).journal, create=False) as journal:
        return LadybugSink.pending_in(StorePaths.of(store).graph, journal)["total"]


def _run_to_end(cmd: list[str], env: dict[str, str]) -> float:
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return time.monotonic() - started


@pytest.mark.skipif(
    not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/wchan").exists(),
    reason="needs Linux /proc/<pid>/wchan to see the sink sleeping in its COPY pause",
)
def test_sigkill_at_five_moments_then_resume_gives_the_same_graph(tmp_path: Path) -> None:
    world = World.generate(seed=WORLD_SEED, size=WORLD_SIZE)
    rng = random.Random(SEED)
    with Emulator(world, rate_limit=0, latency_ms=LATENCY_MS) as emu:
        # The uninterrupted crawl, also timing its working part (first request to exit).
        ref = tmp_path / "reference"
        ref_cmd = _cmd(ref, emu.url)
        first = len(emu.log)
        proc = subprocess.Popen(ref_cmd, env=_env(tmp_path), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        _wait_for(lambda: len(emu.log) > first, proc)
        work_started = time.monotonic()
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        work_s = time.monotonic() - work_started
        assert work_s > 0.5, f"reference crawl too quick ({work_s:.2f} s) for kills to land"

        store = tmp_path / "killed"
        cmd = _cmd(store, emu.url)
        landed: list[str] = []
        for i, kind in enumerate(KINDS):
            in_copy = kind == "copy"
            extra = {"ENTREZ_GRAPH_TEST_PAUSE_IN_COPY": str(PAUSE_S)} if in_copy else {}
            before = len(emu.log)
            proc = subprocess.Popen(cmd, env=_env(tmp_path, **extra), stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            if in_copy:
                # Kill during the n-th pause between COPY and COMMIT (n drawn from the seed).
                nth = rng.randint(1, 2)
                for episode in range(1, nth + 1):
                    if not _wait_for(lambda p=proc: _main_thread_sleeping(p.pid), proc):
                        break
                    if episode < nth:
                        _wait_for(lambda p=proc: not _main_thread_sleeping(p.pid), proc)
                        continue
                    time.sleep(PAUSE_S / 4)  # well inside the pause, not at its edge
                    if _main_thread_sleeping(proc.pid):
                        proc.send_signal(signal.SIGKILL)
                        landed.append("copy")
                        proc.wait(timeout=60)
                        assert _store_behind(store) > 0, "the kill did not cut a store load"
            else:
                delay = rng.uniform(0.03, 0.15) * work_s
                _wait_for(lambda b=before: len(emu.log) > b, proc)
                time.sleep(delay)
                proc.send_signal(signal.SIGKILL)
                landed.append(f"t+{delay:.2f}s")
            proc.wait(timeout=60)
            print(f"kill {i}: {landed[-1] if landed else '-'} rc={proc.returncode} "
                  f"requests={len(emu.log) - before} work_s={work_s:.2f}")
            assert proc.returncode == -signal.SIGKILL, (
                f"kill {i} ({'copy' if in_copy else 'time'}) did not land: the crawl had ended"
            )
        _run_to_end(cmd, _env(tmp_path))
        # A resume of a finished crawl changes nothing.
        _run_to_end(cmd, _env(tmp_path))

    assert landed.count("copy") == KINDS.count("copy")
    ref_nodes, ref_edges = _journal_graph(ref)
    nodes, edges = _journal_graph(store)
    assert nodes == ref_nodes
    assert edges == ref_edges
    assert len(ref_edges) > 100 and len({n[0] for n in ref_nodes}) >= 3

    dbs = {db for db, _, _, _ in ref_nodes}
    ref_store_nodes, ref_store_edges = _store_graph(ref, dbs)
    store_nodes, store_edges = _store_graph(store, dbs)
    assert max(store_edges.values()) == 1, "duplicate edge in the store"
    assert max(store_nodes.values()) == 1, "duplicate record in the store"
    assert store_nodes == ref_store_nodes
    assert store_edges == ref_store_edges
    # And the store is exactly its journal.
    assert Counter({(db, uid, depth): 1 for db, uid, depth, _ in nodes}) == store_nodes
    assert store_edges == edges
