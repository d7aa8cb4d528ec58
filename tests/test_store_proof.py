"""The embedded store holds exactly what the journal holds, and proves it (issue 10).

Through the real CLI, as subprocesses: a crawl SIGKILLed at 20+ seeded moments (during requests,
between COPY and COMMIT, while LadybugDB checkpoints right after a COMMIT, during summaries), a
store whose LadybugDB companions (WAL, shadow pages) are thrown away after a kill, rows deleted
behind the sink's back, a damaged database file; readers (query, status, export) looping every
100 ms during a crawl and right after a kill. Every end state is checked by reading every record
and link of LadybugDB (tests/storecheck.py), never by a cursor or a counter.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from storecheck import assert_store_is_journal, journal_graph, store_graph

from crawler.cli import main
from crawler.emulator import Emulator, World
from crawler.store import StorePaths

ladybug = pytest.importorskip("ladybug")

SEED = 20261201
WORLD_SEED, WORLD_SIZE = 11, 1500
LATENCY_MS = 40
CRAWL_ARGS = ["gene:672", "--depth", "2", "--rps", "1000", "--batch-size", "10", "--summaries"]
# One cycle per store, in the order a crawl meets them: a kill during level 0's requests, one in
# the level-end COPY, one later among the requests, one during summaries, one in the COPY of their
# properties, one while LadybugDB checkpoints what is left; then a fresh store, and again.
KINDS = ("time", "copy", "time", "summaries", "copy", "checkpoint")
KILLS = 22
PAUSE_S = 0.6
CHECKPOINT_MARKS = (".wal.checkpoint", ".shadow", ".checkpoint.intent.lock")


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NCBI_API_KEY", "ENTREZ_GRAPH_TEST_PAUSE_IN_COPY")}
    env.update(ENTREZ_GRAPH_RATE_DIR=str(tmp / "rate"), NCBI_EMAIL="test@example.org",
               PYTHONUNBUFFERED="1", **extra)
    return env


def _crawl(store: Path, url: str) -> list[str]:
    return [sys.executable, "-m", "crawler", "crawl", *CRAWL_ARGS, "--store", str(store),
            "--eutils-url", url]


def _sink_thread_sleeping(pid: int) -> bool:
    """True while the crawl's sink thread (native name entrez-sync: the sinks sync from their own
    thread) sleeps in time.sleep (the sink's COPY pause)."""
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            if (task / "comm").read_text().strip() == "entrez-sync":
                return (task / "wchan").read_text().strip() == "hrtimer_nanosleep"
    except OSError:
        return False
    return False


def _checkpointing(store: Path) -> bool:
    graph = StorePaths.of(store).graph
    return any(graph.with_name(graph.name + mark).exists() for mark in CHECKPOINT_MARKS)


def _until(cond: Callable[[], bool], proc: subprocess.Popen, timeout: float = 120.0,
           poll: float = 0.005) -> bool:
    """Poll `cond` until true; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(poll)
    raise AssertionError("the crawl neither progressed nor ended in time")


def _esummary_seen(emu: Emulator, since: int) -> bool:
    return any("esummary" in entry["path"] for entry in emu.log[since:])


needs_proc = pytest.mark.skipif(
    not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/wchan").exists(),
    reason="needs Linux /proc/<pid>/wchan to see the sink sleeping in its COPY pause",
)


@needs_proc
def test_kill_storm_then_resume_gives_exactly_the_journal_and_the_truth(tmp_path: Path) -> None:
    world = World.generate(seed=WORLD_SEED, size=WORLD_SIZE)
    rng = random.Random(SEED)
    with Emulator(world, rate_limit=0, latency_ms=LATENCY_MS) as emu:
        ref = tmp_path / "reference"
        first = len(emu.log)
        started = time.monotonic()
        done = subprocess.run(_crawl(ref, emu.url), env=_env(tmp_path), capture_output=True,
                              text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        work_s = time.monotonic() - started
        assert len(emu.log) - first > 100

        store = tmp_path / "killed"
        landed: list[str] = []
        attempts = 0
        while len(landed) < KILLS and attempts < 3 * KILLS:
            kind = KINDS[attempts % len(KINDS)]
            attempts += 1
            extra = {"ENTREZ_GRAPH_TEST_PAUSE_IN_COPY": str(PAUSE_S)} if kind == "copy" else {}
            before = len(emu.log)
            proc = subprocess.Popen(_crawl(store, emu.url), env=_env(tmp_path, **extra),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if kind == "time":
                hit = _until(lambda b=before: len(emu.log) > b, proc)
                time.sleep(rng.uniform(0.02, 0.4) * work_s)
            elif kind == "copy":
                hit = _until(lambda p=proc: _sink_thread_sleeping(p.pid), proc)
                time.sleep(PAUSE_S / 3)
                hit = hit and _sink_thread_sleeping(proc.pid)
            elif kind == "checkpoint":
                hit = _until(lambda s=store: _checkpointing(s), proc, poll=0.0002)
            else:
                hit = _until(lambda b=before: _esummary_seen(emu, b), proc, poll=0.001)
                time.sleep(rng.uniform(0.0, 0.05))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            _, err = proc.communicate(timeout=120)
            killed = proc.returncode == -signal.SIGKILL and hit
            print(f"attempt {attempts}: {kind} hit={hit} rc={proc.returncode} "
                  f"requests={len(emu.log) - before}")
            if killed:
                landed.append(kind)
            else:
                assert proc.returncode in (0, -signal.SIGKILL), err[-3000:]
                assert "Traceback" not in err, err[-3000:]
                if proc.returncode == 0:
                    # finished before this kill: start the crawl over in a new store, so that
                    # every kill cuts real work (the journal so far is already checked below)
                    _check_against_reference(store, ref)
                    store = tmp_path / f"killed{attempts}"
            if killed and kind == "checkpoint" and rng.random() < 0.5:
                # LadybugDB discards a WAL it cannot replay: make it so, the worst case
                graph = StorePaths.of(store).graph
                for mark in (".wal", ".wal.checkpoint", ".shadow"):
                    graph.with_name(graph.name + mark).unlink(missing_ok=True)
        final = subprocess.run(_crawl(store, emu.url), env=_env(tmp_path), capture_output=True,
                               text=True, timeout=600, check=False)
        assert final.returncode == 0, final.stderr[-3000:]
        assert "Traceback" not in final.stderr

    print("kills landed:", {k: landed.count(k) for k in set(KINDS)}, "of", attempts, "attempts")
    _check_against_reference(store, ref)
    assert len(landed) >= 20
    assert all(landed.count(k) >= 2 for k in set(KINDS)), landed


def _check_against_reference(store: Path, ref: Path) -> None:
    """The killed crawl's journal equals the uninterrupted one's, and its embedded store equals
    its journal: every record, link and name, no duplicate."""
    ref_nodes, ref_edges = journal_graph(ref)
    nodes, edges = journal_graph(store)
    assert nodes == ref_nodes
    assert edges == ref_edges
    assert_store_is_journal(store)
    assert store_graph(store) == store_graph(ref)


def _run(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.output


@pytest.fixture
def crawled(tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))
    store = tmp_path / "store"
    code, out = _run(["crawl", "gene:672", "--depth", "2", "--store", str(store), "--eutils-url",
                      emulator.url, "--rps", "1000", "--summaries"])
    assert code == 0, out
    assert_store_is_journal(store)
    return store


def _status(store: Path) -> dict:
    code, out = _run(["status", "--store", str(store), "--format", "json"])
    assert code == 0, out
    return json.loads(out)["sinks"]["embedded"]


@pytest.mark.parametrize(
    "damage",
    [
        "MATCH (n:gene) DETACH DELETE n",
        "MATCH ()-[r:protein_gene]->() DELETE r",
        "MATCH (n:pubmed) SET n.name = NULL",
        "MATCH (n:pubmed) WITH n LIMIT 3 DETACH DELETE n",
        "CREATE (n:gene {uid: '123456789', depth: 9})",
    ],
)
def test_rows_changed_behind_the_sinks_back_show_as_diverged_and_sync_repairs(
    crawled: Path, damage: str
) -> None:
    assert _status(crawled)["state"] == "in step"
    code, out = _run(["query", "--store", str(crawled), "--write", damage])
    assert code == 0, out
    seen = _status(crawled)
    assert seen["state"] == "diverged" and seen["differences"], seen
    code, out = _run(["status", "--store", str(crawled)])
    assert "diverged" in out
    code, out = _run(["sync", "--store", str(crawled), "--embedded", "--format", "json"])
    assert code == 0, out
    report = json.loads(out[out.index("["):])[0]
    assert report["repaired"] > 0 and report["pending"] == 0
    assert _status(crawled)["state"] == "in step"
    assert_store_is_journal(crawled)


def test_rebuild_makes_the_store_anew(crawled: Path) -> None:
    _run(["query", "--store", str(crawled), "--write", "MATCH (n:protein) DETACH DELETE n"])
    code, out = _run(["sync", "--store", str(crawled), "--rebuild", "--format", "json"])
    assert code == 0, out
    assert json.loads(out[out.index("["):])[0]["repaired"] > 0
    assert_store_is_journal(crawled)


def test_a_damaged_database_file_is_set_aside_and_rebuilt(crawled: Path) -> None:
    graph = StorePaths.of(crawled).graph
    with open(graph, "r+b") as f:
        f.truncate(graph.stat().st_size // 3)
    code, out = _run(["sync", "--store", str(crawled), "--embedded"])
    assert code == 0, out
    assert any(p.name.startswith("graph.lbdb.broken-") for p in crawled.iterdir())
    assert_store_is_journal(crawled)


def test_the_next_crawl_repairs_a_store_that_lost_rows(
    crawled: Path, emulator: Emulator
) -> None:
    """A store found short at open (as after a lost WAL) is repaired by the resumed crawl."""
    _run(["query", "--store", str(crawled), "--write", "MATCH ()-[r:pubmed_pubmed]->() DELETE r"])
    result = CliRunner().invoke(
        main, ["crawl", "gene:672", "--depth", "2", "--store", str(crawled), "--eutils-url",
               emulator.url, "--rps", "1000", "--summaries"],
    )
    assert result.exit_code == 0, result.output
    assert "repaired it from the journal" in result.output
    assert_store_is_journal(crawled)


@needs_proc
def test_readers_never_fail_during_a_crawl_and_after_a_kill(tmp_path: Path) -> None:
    world = World.generate(seed=WORLD_SEED, size=WORLD_SIZE)
    store = tmp_path / "store"
    failures: list[str] = []
    runs: list[int] = []

    def readers(stop: threading.Event) -> None:
        while not stop.is_set():
            if StorePaths.of(store).graph.exists():
                for args in (
                    ["query", "--store", str(store), "records_per_db", "--format", "json"],
                    ["status", "--store", str(store), "--format", "json"],
                    ["export", "--store", str(store), str(tmp_path / f"g{len(runs)}.graphml")],
                ):
                    code, out = _run(args)
                    runs.append(code)
                    if code != 0:
                        failures.append(f"{args[0]}: {out.strip()[-300:]}")
                    if args[0] == "status" and code == 0:
                        info = json.loads(out)["sinks"].get("embedded", {})
                        if "error" in info:
                            failures.append(f"status: {info['error']}")
            time.sleep(0.1)

    with Emulator(world, rate_limit=0, latency_ms=LATENCY_MS) as emu:
        for phase in ("during", "after-kill"):
            proc = subprocess.Popen(_crawl(store, emu.url), env=_env(tmp_path),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            stop = threading.Event()
            thread = threading.Thread(target=readers, args=(stop,))
            if phase == "during":
                thread.start()
                _, err = proc.communicate(timeout=600)
                assert proc.returncode == 0, err[-3000:]
            else:
                # kill while LadybugDB checkpoints, then read before any writer reopens it
                _until(lambda s=store: _checkpointing(s), proc, poll=0.0002)
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=60)
                thread.start()
                time.sleep(3)
            stop.set()
            thread.join(timeout=120)
            if phase == "during":
                store = tmp_path / "store2"
    assert len(runs) >= 6, runs
    assert not failures, failures[:5]


KILL_WITH_WAL = r"""
import os, signal, sys
from crawler.journal import Journal
from crawler.sinks.ladybug import LadybugSink
journal = Journal(sys.argv[1], create=False)
sink = LadybugSink(sys.argv[2])
sink.sync(journal)
sink._reapply_props(journal, "gene", sink.cursor())  # property updates stay in LadybugDB's WAL
os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_with_a_wal(store: Path) -> None:
    """Leave the store as a writer SIGKILLed with committed rows in LadybugDB's WAL."""
    paths = StorePaths.of(store)
    done = subprocess.run([sys.executable, "-c", KILL_WITH_WAL, str(paths.journal),
                           str(paths.graph)], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert paths.graph.with_name(paths.graph.name + ".wal").exists()


def test_a_reader_after_a_kill_recovers_the_store_and_proves_it(crawled: Path) -> None:
    _killed_with_a_wal(crawled)
    code, out = _run(["query", "--store", str(crawled), "records_per_db", "--format", "json"])
    assert code == 0, out
    rows = {r["db"]: r for r in json.loads(out[out.index("["):])}
    assert rows["gene"]["records"] == rows["gene"]["named"] > 0
    assert_store_is_journal(crawled)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a read-only tmpfs needs root (CI is root)")
def test_a_reader_on_read_only_media_reads_a_recovered_copy(crawled: Path, tmp_path: Path) -> None:
    import shutil

    _killed_with_a_wal(crawled)
    mount = tmp_path / "ro"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        shutil.copytree(crawled, mount / "store")
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        before = sorted(p.name for p in (mount / "store").iterdir())
        code, out = _run(["query", "--store", str(mount / "store"), "records_per_db",
                          "--format", "json"])
        assert code == 0, out
        rows = {r["db"]: r for r in json.loads(out[out.index("["):])}
        assert rows["gene"]["records"] == rows["gene"]["named"] > 0
        code, out = _run(["status", "--store", str(mount / "store"), "--format", "json"])
        assert code == 0, out
        assert json.loads(out)["sinks"]["embedded"]["state"] == "in step"
        assert sorted(p.name for p in (mount / "store").iterdir()) == before
    finally:
        subprocess.run(["umount", str(mount)], check=False)
