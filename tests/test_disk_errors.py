"""A full, failing or read-only local disk: one line, exit 4, nothing committed lost.

The disk-full tests run the real CLI (`python -m crawler crawl …` as a subprocess) with the store
on a small tmpfs, which needs root (CI runs as root); elsewhere they are skipped with the reason,
and the injected tests below hit the same call sites in-process: SQLite's own SQLITE_FULL (a page
cap on the journal, `PRAGMA max_page_count`) and LadybugDB's "post-commit checkpoint failed …
No space left on device" at COMMIT. After space is freed, the same command resumes to the exact
graph: the journal's edges equal the emulator's world (computed here from `World.links_from`),
and the embedded store, read with LadybugDB, holds exactly the journal's records and edges.

The read-only tests remount a tmpfs read-only (root; skipped with the reason otherwise) and run
`status`, `query` and `export` through the CLI.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socketserver
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawler.cli import main
from crawler.emulator import Emulator, World
from crawler.errors import LocalIOError, local_io_error
from crawler.journal import Journal
from crawler.linknames import HUB_DBS, SUBSETS
from crawler.store import StorePaths

ladybug = pytest.importorskip("ladybug")

DEPTH = 1
SEED = ("gene", "672")
LADYBUG_FULL = (
    "Transaction committed successfully, but the post-commit checkpoint failed. The committed "
    "data is durable and will be recovered on restart: Checkpoint failed after its commit record "
    "may have reached storage; the database refuses further writes until restart. Original error: "
    "IO exception: Cannot write to file. path: {path} fileDescriptor: 3 offsetToWrite: 991232 "
    "numBytesToWrite: 4096 numBytesWritten: -1. Error: No space left on device"
)

# LadybugDB, after a checkpoint that failed on a full disk, can come back without rows it had
# committed while its cursor says it holds them; the next load then misses their nodes. Detecting
# and repairing that from the journal is the embedded store's verification (issue 10, the lead's
# part): until it is on main, that last step of the disk-full test is an expected failure.

@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path):
    # A crawl stopped by a full disk drops its open connections to the in-process emulator,
    # whose server would print each reset as a traceback into the stderr CliRunner captures.
    monkeypatch.setattr(socketserver.BaseServer, "handle_error", lambda *a: None)
    monkeypatch.delenv("NEO4J_URI", raising=False)
    monkeypatch.delenv("NCBI_API_KEY", raising=False)
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))


@pytest.fixture(scope="module")
def crawled(world: World, tmp_path_factory) -> Path:
    """A finished crawl's store (made once; tests copy it or only read it)."""
    store = tmp_path_factory.mktemp("crawled") / "store"
    with Emulator(world, rate_limit=0) as emu:
        result = CliRunner().invoke(main, crawl_args(store, emu.url), env={
            "ENTREZ_GRAPH_RATE_DIR": str(store.parent / "rate")})
    assert result.exit_code == 0, result.output
    return store


# -- helpers --------------------------------------------------------------------------------------


@contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at `where` (skips with the reason where that is impossible)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root); without it the injected "
                    "tests cover the disk-full call sites")
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], check=False).returncode:
            subprocess.run(["umount", "-l", str(where)], check=False)


def remount(where: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(where)], check=True)


def fill(disk: Path, leave: int) -> Path:
    """A filler file leaving about `leave` bytes free on `disk`."""
    filler = disk / "filler"
    st = os.statvfs(disk)
    todo = st.f_bavail * st.f_frsize - leave
    with open(filler, "wb") as f:
        while todo > 0:
            n = min(todo, 1 << 20)
            f.write(bytes(n))
            todo -= n
    return filler


def crawl_args(store: Path, url: str) -> list[str]:
    return ["crawl", f"{SEED[0]}:{SEED[1]}", "--depth", str(DEPTH), "--store", str(store),
            "--eutils-url", url, "--rps", "1000"]


def crawl_cmd(store: Path, url: str) -> list[str]:
    return [sys.executable, "-m", "crawler", *crawl_args(store, url)]


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ENTREZ_GRAPH_TEST_PAUSE_IN_COPY"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, check=False)


def assert_one_line_exit_4(code: int, stderr: str, where: Path) -> str:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert code == 4, stderr
    assert len(lines) == 1, stderr
    line = lines[0]
    assert line.startswith("Error: cannot "), line
    assert str(where) in line and "run the same command again" in line, line
    return line


def world_graph(world: World) -> tuple[set, set]:
    """The crawl's expected graph, from the world: BFS to DEPTH with the default filters (hub
    databases recorded, not expanded; a subset link name skipped beside its parent; no
    self-links). Nodes (db, uid, depth), edges (dbfrom, uid, linkname, dbto, uid, None)."""
    first = {SEED: 0}
    edges: set = set()
    level = [SEED]
    for d in range(DEPTH):
        nxt = []
        for db, uid in level:
            if db in HUB_DBS:
                continue
            links = world.links_from(db, uid)
            names = {link.linkname for link in links}
            for link in links:
                if SUBSETS.get(link.linkname) in names or (link.dbto, link.target) == (db, uid):
                    continue
                edges.add((db, uid, link.linkname, link.dbto, link.target, None))
                if (link.dbto, link.target) not in first:
                    first[(link.dbto, link.target)] = d + 1
                    nxt.append((link.dbto, link.target))
        level = nxt
    return {(db, uid, d) for (db, uid), d in first.items()}, edges


def journal_graph(store: Path) -> tuple[set, set]:
    with Journal(StorePaths.of(store).journal, create=False) as j:
        assert j.stats()["pending"] == 0, "the crawl did not finish"
        nodes = {(n.db, n.uid, n.depth) for n in j.iter_nodes()}
        edges = [(e.dbfrom, e.uid_from, e.linkname, e.dbto, e.uid_to, e.score)
                 for e in j.iter_edges()]
    assert len(edges) == len(set(edges))
    return nodes, set(edges)


def store_graph(store: Path) -> tuple[Counter, Counter]:
    """Every record and relationship LadybugDB really holds, as multisets."""
    database = ladybug.Database(str(StorePaths.of(store).graph), read_only=True)
    conn = ladybug.Connection(database)
    try:
        nodes: Counter = Counter()
        edges: Counter = Counter()
        for name, kind in conn.execute("CALL show_tables() RETURN name, type").get_all():
            if kind == "NODE" and name != "eg_cursor":
                for uid, depth in conn.execute(f"MATCH (n:{name}) RETURN n.uid, n.depth").get_all():
                    nodes[(name, uid, depth)] += 1
            elif kind == "REL":
                for row in conn.execute(
                    f"MATCH (a)-[r:{name}]->(b) RETURN label(a), a.uid, label(b), b.uid, r.score"
                ).get_all():
                    edges[(row[0], row[1], name, row[2], row[3], row[4])] += 1
    finally:
        conn.close()
        database.close()
    return nodes, edges


def assert_exact(store: Path, world: World) -> None:
    """The journal equals the world, and the embedded store equals the journal."""
    nodes, edges = journal_graph(store)
    want_nodes, want_edges = world_graph(world)
    assert edges == want_edges
    assert nodes == want_nodes
    store_nodes, store_edges = store_graph(store)
    assert store_nodes == Counter(nodes), "the embedded store's records differ from the journal"
    assert store_edges == Counter(edges), "the embedded store's edges differ from the journal"


# -- the classifier -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), errno.ENOSPC),
        (OSError(errno.EROFS, os.strerror(errno.EROFS)), errno.EROFS),
        (OSError(errno.EIO, os.strerror(errno.EIO)), errno.EIO),
        (OSError(errno.EACCES, os.strerror(errno.EACCES)), errno.EACCES),
        (OSError(errno.EDQUOT, os.strerror(errno.EDQUOT)), errno.EDQUOT),
        (sqlite3.OperationalError("database or disk is full"), errno.ENOSPC),
        (sqlite3.OperationalError("disk I/O error"), errno.EIO),
        # on a writable mount SQLite's "readonly" is the file's permissions
        (sqlite3.OperationalError("attempt to write a readonly database"), errno.EACCES),
        (RuntimeError(LADYBUG_FULL.format(path="/d/graph.lbdb")), errno.ENOSPC),
        (RuntimeError("IO exception: Cannot open file x: Read-only file system"), errno.EROFS),
        (RuntimeError("Transaction committed successfully, but the post-commit checkpoint "
                      "failed."), errno.EIO),
    ],
)
def test_classifier_names_the_path_and_the_cause_on_one_line(exc, code) -> None:
    error = local_io_error("/d/journal.sqlite", exc)
    assert isinstance(error, LocalIOError) and error.exit_code == 4 and error.errno == code
    text = str(error)
    assert "\n" not in text and text.startswith("cannot write /d/")
    assert os.strerror(code).lower().split()[0] in text.lower()


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.ENOENT, "No such file or directory"),
        ConnectionResetError(errno.ECONNRESET, "reset"),
        sqlite3.OperationalError("no such table: nodes"),
        sqlite3.IntegrityError("UNIQUE constraint failed"),
        RuntimeError("Binder exception: Table gene does not exist."),
        ValueError("No space left on device"),
    ],
)
def test_classifier_leaves_other_errors_alone(exc) -> None:
    assert local_io_error("/d/x", exc) is None


def test_the_os_error_names_its_own_file() -> None:
    error = local_io_error("/d", OSError(errno.ENOSPC, "No space", "/d/crawl.lock"))
    assert error is not None and "/d/crawl.lock" in str(error)
    text = LADYBUG_FULL.format(path="/d/graph.lbdb.wal")
    error = local_io_error("/d/graph.lbdb", RuntimeError(text))
    assert error is not None and str(error).startswith("cannot write /d/graph.lbdb.wal: no space")


# -- the journal ----------------------------------------------------------------------------------


def _cap_pages(journal: Journal, spare: int) -> None:
    """SQLite's own SQLITE_FULL ("database or disk is full") after `spare` more pages."""
    pages = journal.execute("PRAGMA page_count").fetchone()[0]
    journal.execute(f"PRAGMA max_page_count={pages + spare}")


def test_a_full_journal_commits_all_or_nothing_and_goes_on_after(tmp_path: Path) -> None:
    with Journal(tmp_path / "s") as journal:
        journal.add_nodes([("gene", "1", 0)])
        _cap_pages(journal, 2)
        big = [("gene", f"{i:06d}" + "x" * 200, 1) for i in range(5000)]
        with pytest.raises(LocalIOError) as info:
            journal.add_nodes(big)
        assert "journal.sqlite" in str(info.value) and "no space left" in str(info.value)
        assert info.value.errno == errno.ENOSPC
        assert journal.stats()["nodes"] == 1  # the failed transaction left nothing
        journal.execute("PRAGMA max_page_count=1073741823")  # space freed
        assert journal.add_nodes(big) == len(big)
        journal.add_edges([("gene", "1", "gene_gene", "gene", "000001" + "x" * 200, None)])
        assert journal.stats()["nodes"] == 5001 and journal.stats()["edges"] == 1


def test_a_failed_commit_is_rolled_back_so_the_next_write_works(tmp_path: Path) -> None:
    with Journal(tmp_path / "s") as journal:
        with pytest.raises(LocalIOError), journal.transaction() as db:
            db.execute("INSERT INTO nodes(db, uid, depth) VALUES ('gene', '1', 0)")
            raise local_io_error(journal.path, sqlite3.OperationalError("disk I/O error"))
        assert not journal._db.in_transaction
        assert journal.add_nodes([("gene", "1", 0)]) == 1


# -- the real CLI on a small disk (root) ----------------------------------------------------------


@pytest.mark.parametrize("leave_kib", [200, 800], ids=["journal-first", "store-first"])
def test_disk_full_crawl_exits_4_twice_then_resumes_to_the_exact_graph(
    tmp_path: Path, emulator: Emulator, world: World, leave_kib: int
) -> None:
    with tmpfs(tmp_path / "disk", "16m") as disk:
        store = disk / "store"
        filler = fill(disk, leave_kib * 1024)
        cmd = crawl_cmd(store, emulator.url)
        first = run(cmd)
        line = assert_one_line_exit_4(first.returncode, first.stderr, disk)
        assert "no space left on device" in line
        again = run(cmd)  # the disk is still full: the same one line, no traceback
        assert_one_line_exit_4(again.returncode, again.stderr, disk)
        filler.unlink()
        done = run(cmd)
        assert "Traceback" not in done.stderr
        assert done.returncode == 0, done.stderr[-3000:]
        assert_exact(store, world)


def test_a_full_disk_under_an_export_leaves_no_partial_file(tmp_path: Path, crawled: Path) -> None:
    with tmpfs(tmp_path / "disk", "4m") as disk:
        fill(disk, 16 * 1024)
        out = disk / "graph.graphml"
        args = ["export", "--store", str(crawled), str(out)]
        result = CliRunner().invoke(main, args)
        assert_one_line_exit_4(result.exit_code, result.stderr, out)
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]
        (disk / "filler").unlink()
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        assert out.stat().st_size > 0


def test_a_full_disk_under_the_rate_limit_file(tmp_path: Path, emulator: Emulator) -> None:
    """The limiter's shared page cannot be made: one line naming it, exit 4 (never a SIGBUS
    from a mapped hole), and the store is untouched."""
    with tmpfs(tmp_path / "rate", "1m") as rate:
        fill(rate, 0)
        store = tmp_path / "store"
        cmd = crawl_cmd(store, emulator.url)
        env = {**os.environ, "ENTREZ_GRAPH_RATE_DIR": str(rate)}
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env,
                                check=False)
        line = assert_one_line_exit_4(result.returncode, result.stderr, rate)
        assert "rate-" in line and "no space left on device" in line
    assert run(cmd).returncode == 0  # the rate-limit directory of _env, with space


def test_stdout_to_a_full_disk_is_named(tmp_path: Path, crawled: Path) -> None:
    with tmpfs(tmp_path / "disk", "1m") as disk:
        fill(disk, 0)
        out = disk / "status.json"
        with open(out, "w") as fh:
            result = subprocess.run(
                [sys.executable, "-m", "crawler", "status", "--store", str(crawled), "--format",
                 "json"], stdout=fh, stderr=subprocess.PIPE, text=True, timeout=300, check=False)
        line = assert_one_line_exit_4(result.returncode, result.stderr, out)
        assert line.startswith(f"Error: cannot write standard output ({out})")


# -- injected at the same call sites (any user) ---------------------------------------------------


def test_injected_full_journal_through_the_cli_then_resume(
    tmp_path: Path, emulator: Emulator, world: World, monkeypatch
) -> None:
    """SQLite's real SQLITE_FULL from the journal's own writes (its pages capped per open)."""
    store = tmp_path / "store"
    opened = Journal.__init__

    def capped(self: Journal, *args, **kwargs) -> None:
        opened(self, *args, **kwargs)
        if not self.read_only:
            _cap_pages(self, 2)

    monkeypatch.setattr(Journal, "__init__", capped)
    args = crawl_args(store, emulator.url)
    for _ in range(2):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 4, result.output
        assert_one_line_exit_4(result.exit_code, result.stderr, store / "journal.sqlite")
    monkeypatch.setattr(Journal, "__init__", opened)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert_exact(store, world)


def test_injected_store_checkpoint_failure_through_the_cli_then_resume(
    tmp_path: Path, emulator: Emulator, world: World, monkeypatch
) -> None:
    """LadybugDB's own text at COMMIT (the commit went through, the checkpoint did not)."""
    store = tmp_path / "store"
    graph = StorePaths.of(store).graph
    real = ladybug.Connection.execute
    commits = {"n": 0}

    def execute(self, query, parameters=None):
        result = real(self, query, parameters)
        if query == "COMMIT":
            commits["n"] += 1
            if commits["n"] >= 1:
                raise RuntimeError(LADYBUG_FULL.format(path=graph))
        return result

    monkeypatch.setattr(ladybug.Connection, "execute", execute)
    args = crawl_args(store, emulator.url)
    for _ in range(2):
        result = CliRunner().invoke(main, args)
        line = assert_one_line_exit_4(result.exit_code, result.stderr, graph)
        assert "no space left on device" in line
    monkeypatch.setattr(ladybug.Connection, "execute", real)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert_exact(store, world)


# -- readers on a read-only file system -----------------------------------------------------------


@contextmanager
def read_only(store: Path) -> Iterator[None]:
    """The tmpfs holding the store remounted read-only for the block."""
    remount(store.parent, "ro")
    try:
        yield
    finally:
        remount(store.parent, "rw")


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


def test_read_commands_work_on_a_read_only_file_system(
    tmp_path: Path, crawled: Path, emulator: Emulator
) -> None:
    before = tmp_path / "before.json"
    assert cli("export", "--store", str(crawled), str(before)).exit_code == 0
    with tmpfs(tmp_path / "disk", "64m") as disk:
        store = disk / "store"
        shutil.copytree(crawled, store)
        files = sorted(p.name for p in store.iterdir())
        with read_only(store):
            status = cli("status", "--store", str(store), "--format", "json")
            assert status.exit_code == 0, status.output
            stats = json.loads(status.stdout)
            assert stats["edges"] == len(json.loads(before.read_text())["edges"])
            after = tmp_path / "after.json"
            export = cli("export", "--store", str(store), str(after))
            assert export.exit_code == 0, export.output
            assert json.loads(after.read_text()) == json.loads(before.read_text())
            query = cli("query", "--store", str(store), "records_per_db", "--format", "json")
            assert query.exit_code == 0, query.output
            assert {r["db"] for r in json.loads(query.stdout)} == {
                db for db, _uid, _depth in journal_graph(crawled)[0]}
            # writes are refused as a read-only disk (exit 4), in one line
            crawl = cli(*crawl_args(store, emulator.url))
            assert_one_line_exit_4(crawl.exit_code, crawl.stderr, store)
            resume = cli("crawl", "--store", str(store))  # its settings read from the journal
            assert_one_line_exit_4(resume.exit_code, resume.stderr, store)
            sync = cli("sync", "--store", str(store), "--embedded")
            assert_one_line_exit_4(sync.exit_code, sync.stderr, store)
            out = cli("export", "--store", str(store), str(disk / "x.json"))
            assert_one_line_exit_4(out.exit_code, out.stderr, disk / "x.json")
        assert sorted(p.name for p in store.iterdir()) == files  # nothing was written


def test_read_only_journal_left_by_a_killed_writer(tmp_path: Path) -> None:
    """A -wal with rows and its -shm: read them; a -wal without its -shm: refuse, say why."""
    with tmpfs(tmp_path / "disk", "8m") as disk:
        store = disk / "store"
        code = (
            "import os, sys\n"
            "from crawler.journal import Journal\n"
            f"j = Journal({str(store)!r})\n"
            "j.add_nodes([('gene', str(i), 0) for i in range(100)])\n"
            "os._exit(0)\n"  # no close, no checkpoint: the rows are only in the -wal
        )
        subprocess.run([sys.executable, "-c", code], check=True)
        wal = store / "journal.sqlite-wal"
        assert wal.stat().st_size > 0
        with read_only(store), Journal(store, create=False) as journal:
            assert journal.read_only and journal.stats()["nodes"] == 100
            with pytest.raises(LocalIOError, match="read-only file system"):
                journal.set_meta("x", "y")
        (store / "journal.sqlite-shm").unlink()
        with read_only(store), pytest.raises(LocalIOError, match=r"journal\.sqlite-wal"):
            Journal(store, create=False)
        with Journal(store, create=False) as journal:  # writable again: all rows are there
            assert journal.stats()["nodes"] == 100


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write any directory")
def test_a_journal_in_a_directory_not_ours_is_read_or_refused_with_the_reason(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    with Journal(store) as journal:
        journal.add_nodes([("gene", "1", 0)])
    store.chmod(0o555)
    try:
        with pytest.raises(LocalIOError, match="run as the store's owner"):
            Journal(store, create=False)
    finally:
        store.chmod(0o755)
