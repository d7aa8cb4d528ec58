"""Against a real Neo4j; run only with an explicit opt-in, since they EMPTY its database.

    docker compose up -d --wait
    ENTREZ_GRAPH_TEST_NEO4J=1 NEO4J_URI=bolt://localhost:7687 python -m pytest \
        tests/test_neo4j_integration.py

NEO4J_URI alone is not enough (it is often set for other tools): ENTREZ_GRAPH_TEST_NEO4J=1
must be beside it. NEO4J_USER (or NEO4J_USERNAME), NEO4J_PASSWORD and NEO4J_DATABASE are read
as the commands read them. The tests EMPTY the database they are pointed at, named at the start
of the run (they refuse to when it holds records that entrez-graph did not write). Optional:
NEO4J_RESTART_CMD (e.g. `docker compose restart neo4j`) is run mid-crawl for the outage test;
without it the outage is made by a TCP relay in front of the server that stops relaying
mid-crawl, then starts again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crawler.cli import main
from crawler.emulator import Emulator, World
from crawler.journal import Journal
from crawler.store import StorePaths

pytestmark = pytest.mark.neo4j

_OURS = re.compile(r"^[a-z][a-z0-9_]*$|^EntrezGraphCursor$")
OPT_IN = "ENTREZ_GRAPH_TEST_NEO4J"


def _skip_reason() -> str | None:
    if not os.environ.get("NEO4J_URI"):
        return (f"no Neo4j server to test against: set NEO4J_URI and {OPT_IN}=1 "
                "(docker compose up -d --wait); these tests EMPTY that database")
    if os.environ.get(OPT_IN) != "1":
        return (f"NEO4J_URI is set but {OPT_IN}=1 is not: these tests EMPTY the database at "
                f"{os.environ['NEO4J_URI']} ({os.environ.get('NEO4J_DATABASE') or 'default'}); "
                f"set {OPT_IN}=1 to allow it")
    return None


@pytest.fixture(scope="module")
def config() -> Any:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    from crawler.sinks.neo4j import Neo4jConfig

    cfg = Neo4jConfig.from_options()
    print(f"\nNeo4j integration tests: EMPTYING database {cfg.database or '(default)'} at "
          f"{cfg.uri}")
    return cfg


def cli_neo4j(config: Any) -> list[str]:
    """The options that point a command at the test server, as a user would type them."""
    extra = ["--neo4j", config.uri]
    if config.database:
        extra += ["--neo4j-database", config.database]
    return extra


@pytest.fixture(scope="module")
def driver(config: Any):
    from neo4j import GraphDatabase

    drv = GraphDatabase.driver(config.uri, auth=(config.user, config.password))
    try:
        drv.verify_connectivity()
    except Exception as exc:  # a misconfigured server is a failure, not a skip
        pytest.fail(f"NEO4J_URI={config.uri} set but not usable: {exc}")
    yield drv
    drv.close()


def cypher(driver: Any, config: Any, text: str, **params: Any) -> list[dict[str, Any]]:
    records, _, _ = driver.execute_query(text, params, database_=config.database)
    return [dict(r) for r in records]


@pytest.fixture
def empty(driver: Any, config: Any) -> None:
    """An empty database without our constraints (only if all it holds is entrez-graph data)."""
    labels = [r["label"] for r in cypher(driver, config, "CALL db.labels() YIELD label")]
    foreign = [lb for lb in labels if not _OURS.match(lb)]
    if foreign:
        pytest.skip(f"the database at NEO4J_URI holds other data (labels {foreign[:5]}); "
                    "point the tests at a throwaway server")
    cypher(driver, config, "MATCH (n) DETACH DELETE n")
    for row in cypher(driver, config, "SHOW CONSTRAINTS YIELD name RETURN name"):
        name = row["name"]
        if name.endswith("_uid") or name == "entrez_graph_cursor_journal":
            cypher(driver, config, f"DROP CONSTRAINT `{name}` IF EXISTS")


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))
    monkeypatch.setenv("NCBI_EMAIL", "tests@example.org")
    monkeypatch.delenv("NCBI_API_KEY", raising=False)


def crawl(store: Path, uri: str, emu: Emulator, *extra: str) -> Any:
    """The real CLI; --summaries so that props rows (names) travel to Neo4j too."""
    return CliRunner().invoke(main, [
        "crawl", "gene:672", "--depth", "2", "--rps", "1000", "--store", str(store),
        "--eutils-url", emu.url, "--neo4j", uri, "--summaries", *extra,
    ])


def journal_view(store: Path) -> tuple[Counter, Counter, dict[tuple[str, str], str]]:
    with Journal(StorePaths.of(store).journal, create=False) as j:
        nodes = Counter((n.db, n.uid, n.depth) for n in j.iter_nodes())
        edges = Counter(
            (e.dbfrom, e.uid_from, e.linkname, e.dbto, e.uid_to, e.score) for e in j.iter_edges()
        )
        names = {(p.db, p.uid): p.data["name"] for p in j.iter_props() if p.data.get("name")}
    return nodes, edges, names


def neo4j_view(driver: Any, config: Any) -> tuple[Counter, Counter, dict[tuple[str, str], str]]:
    nodes = Counter(
        (r["label"], r["uid"], r["depth"]) for r in cypher(
            driver, config,
            "MATCH (n) WHERE NOT n:EntrezGraphCursor "
            "RETURN labels(n)[0] AS label, n.uid AS uid, n.depth AS depth",
        )
    )
    edges = Counter(
        (r["a"], r["f"], r["type"], r["b"], r["t"], r["score"]) for r in cypher(
            driver, config,
            "MATCH (x)-[e]->(y) RETURN labels(x)[0] AS a, x.uid AS f, type(e) AS type, "
            "labels(y)[0] AS b, y.uid AS t, e.score AS score",
        )
    )
    names = {
        (r["label"], r["uid"]): r["name"] for r in cypher(
            driver, config,
            "MATCH (n) WHERE n.name IS NOT NULL RETURN labels(n)[0] AS label, n.uid AS uid, "
            "n.name AS name",
        )
    }
    return nodes, edges, names


def counts(driver: Any, config: Any) -> tuple[int, int]:
    [row] = cypher(driver, config, "MATCH (n) RETURN count(n) AS n")
    [rels] = cypher(driver, config, "MATCH ()-[r]->() RETURN count(r) AS n")
    return row["n"], rels["n"]


@pytest.fixture(scope="module")
def world() -> World:
    return World.generate(seed=5, size=600)


# -- crawl, re-sync, constraints ---------------------------------------------------------------


def test_crawl_into_neo4j_equals_the_journal(
    empty: None, driver: Any, config: Any, world: World, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    with Emulator(world) as emu:
        result = crawl(store, config.uri, emu)
    assert result.exit_code == 0, result.output
    nodes, edges, names = journal_view(store)
    assert len(nodes) > 20 and len(edges) > 20
    assert neo4j_view(driver, config) == (nodes, edges, names)

    # constraints: one per label, uniqueness of uid
    constraints = cypher(
        driver, config,
        "SHOW CONSTRAINTS YIELD type, entityType, labelsOrTypes, properties "
        "WHERE type CONTAINS 'UNIQUENESS' AND entityType = 'NODE' "
        "RETURN labelsOrTypes[0] AS label, properties AS props",
    )
    constrained = {c["label"] for c in constraints if c["props"] == ["uid"]}
    assert {db for db, _, _ in nodes} <= constrained

    # re-running sync creates nothing, even with the journal's cursor lost
    before = counts(driver, config)
    runner = CliRunner()
    again = runner.invoke(main, ["sync", "--store", str(store), "--neo4j", config.uri,
                                 "--format", "json"])
    assert again.exit_code == 0, again.output
    [report] = json.loads(again.output)
    assert (report["nodes"], report["edges"], report["props"]) == (0, 0, 0)
    assert counts(driver, config) == before
    with Journal(StorePaths.of(store).journal, create=False) as j:
        j.execute("DELETE FROM cursors")
        j.set_meta("journal_id", "another-journal")  # looks like a second journal: full MERGE
    again = runner.invoke(main, ["sync", "--store", str(store), "--neo4j", config.uri,
                                 "--format", "json"])
    assert again.exit_code == 0, again.output
    [report] = json.loads(again.output)
    assert report["edges"] == sum(edges.values())  # every row written again ...
    assert counts(driver, config) == (before[0] + 1, before[1])  # ... nothing new but a cursor
    assert neo4j_view(driver, config) == (nodes, edges, names)


def _pick(store: Path, name: str, default: Any) -> Any:
    """A parameter value that gives a bundled query something to find in this crawl."""
    if default not in ("", None):
        return default
    queries = {
        "nuccore": "SELECT uid_from FROM edges WHERE linkname='nuccore_gene' ORDER BY id",
        "pmid": "SELECT uid_from FROM edges WHERE linkname='pubmed_pubmed' ORDER BY id",
        "db": "SELECT 'protein'",
        "uid": "SELECT uid_from FROM edges WHERE linkname='protein_pubmed' ORDER BY id",
        "to_uid": "SELECT uid_to FROM edges WHERE linkname='protein_structure' ORDER BY id",
    }
    if name not in queries:
        return default
    with Journal(StorePaths.of(store).journal, create=False) as j:
        row = j.execute(queries[name]).fetchone()
    return row[0] if row else default


def _canonical(rows: list[list[Any]]) -> list[str]:
    from crawler.querying import plain

    return sorted(json.dumps(plain(r), sort_keys=True, default=str) for r in rows)


def test_bundled_queries_answer_alike_on_both_stores(
    empty: None, driver: Any, config: Any, world: World, tmp_path: Path
) -> None:
    from crawler.querying import list_queries, run_query

    store = tmp_path / "store"
    with Emulator(world) as emu:
        result = crawl(store, config.uri, emu)
    assert result.exit_code == 0, result.output
    answered = 0
    for query in list_queries():
        params = {k: _pick(store, k, v) for k, v in query.params.items()}
        embedded = run_query(store, query.name, params)
        on_neo4j = run_query(None, query.name, params, neo4j=config)
        assert on_neo4j.columns == embedded.columns, query.name
        assert _canonical(on_neo4j.rows) == _canonical(embedded.rows), query.name
        answered += bool(embedded.rows)
    assert answered >= len(list_queries()) // 2  # most queries found something to compare


# -- an outage mid-crawl ----------------------------------------------------------------------


class Relay:
    """A TCP relay in front of Neo4j that can stop (dropping every connection) and restart."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        with self._lock:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=10)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    server.close()
                    return
                self._conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


def test_server_gone_mid_crawl_ends_complete_after_sync(
    empty: None, driver: Any, config: Any, world: World, tmp_path: Path
) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(config.uri)
    restart_cmd = os.environ.get("NEO4J_RESTART_CMD")
    relay = None
    uri = config.uri
    if not restart_cmd:
        relay = Relay(parts.hostname or "localhost", parts.port or 7687)
        relay.start()
        uri = f"bolt://127.0.0.1:{relay.port}"  # bolt://: no routing table through the relay

    gone = threading.Event()
    stop_watching = threading.Event()

    def watch() -> None:
        """Take Neo4j away as soon as the crawl's first level is in it."""
        while not stop_watching.is_set():
            rows = cypher(driver, config, "MATCH (c:EntrezGraphCursor) RETURN c.node AS node")
            if any(r["node"] for r in rows):
                if restart_cmd:
                    subprocess.run(restart_cmd, shell=True, check=True)
                else:
                    relay.stop()
                gone.set()
                return
            stop_watching.wait(0.05)

    store = tmp_path / "store"
    watcher = threading.Thread(target=watch, daemon=True)
    # latency spreads the crawl's levels over time so the outage falls between two of them
    with Emulator(world, latency_ms=40) as emu:
        watcher.start()
        result = crawl(store, uri, emu, "--workers", "2")
    stop_watching.set()
    watcher.join(timeout=120)
    assert gone.is_set(), "the crawl ended before its first level reached Neo4j"
    if relay is not None:
        assert result.exit_code == 3, result.output
        assert "entrez-graph sync" in result.output
        relay.start()
    else:
        assert result.exit_code in (0, 3), result.output
        _wait_for(driver)
    nodes, edges, names = journal_view(store)
    sync = CliRunner().invoke(main, ["sync", "--store", str(store), "--neo4j", uri])
    assert sync.exit_code == 0, sync.output
    assert neo4j_view(driver, config) == (nodes, edges, names)
    if relay is not None:
        relay.stop()


def _wait_for(driver: Any) -> None:
    """After NEO4J_RESTART_CMD: until the server answers again (bounded)."""
    for _ in range(120):
        try:
            driver.verify_connectivity()
            return
        except Exception:
            time.sleep(1)
    pytest.fail("Neo4j did not come back after NEO4J_RESTART_CMD")


# -- quiet, real counts, repair, parallel sessions (issue 12, issue 10) --------------------------


def test_our_queries_raise_no_notifications(
    empty: None, driver: Any, config: Any, world: World, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A first sync into a database that never held our cursor node used to draw 01N52."""
    caplog.set_level(logging.DEBUG, logger="neo4j.notifications")
    store = tmp_path / "store"
    with Emulator(world) as emu:
        result = crawl(store, config.uri, emu)
    assert result.exit_code == 0, result.output
    runner = CliRunner()
    for args in (["sync"], ["status"], ["query", "MATCH (g:gene) RETURN count(g) AS n"]):
        done = runner.invoke(main, [*args, "--store", str(store), *cli_neo4j(config)])
        assert done.exit_code == 0, done.output
    noticed = [r.getMessage() for r in caplog.records if r.name == "neo4j.notifications"]
    assert noticed == []
    assert "01N5" not in result.output and "will be retried" not in result.output


def test_rows_deleted_behind_our_back_show_in_status_and_sync_repairs(
    empty: None, driver: Any, config: Any, world: World, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    with Emulator(world) as emu:
        assert crawl(store, config.uri, emu).exit_code == 0
    runner = CliRunner()
    status = json.loads(runner.invoke(main, ["status", "--store", str(store), "--format", "json",
                                             *cli_neo4j(config)]).output)
    [info] = [v for k, v in status["sinks"].items() if k.startswith("neo4j:") and "real" in v]
    assert info["in_step"] and info["real"] == info["expected"]
    gone = runner.invoke(main, ["query", "--store", str(store), *cli_neo4j(config), "--write",
                                "MATCH (n:protein) DETACH DELETE n"])
    assert gone.exit_code == 0, gone.output
    status = json.loads(runner.invoke(main, ["status", "--store", str(store), "--format", "json",
                                             *cli_neo4j(config)]).output)
    [info] = [v for k, v in status["sinks"].items() if k.startswith("neo4j:") and "real" in v]
    assert not info["in_step"] and any("protein records" in d for d in info["differences"])
    repaired = runner.invoke(main, ["sync", "--store", str(store), *cli_neo4j(config)])
    assert repaired.exit_code == 0, repaired.output
    assert "lacked rows" in repaired.stderr
    assert neo4j_view(driver, config) == journal_view(store)


def test_parallel_merge_sessions_write_exactly_the_journal(
    empty: None, driver: Any, config: Any, world: World, tmp_path: Path
) -> None:
    from crawler.sinks.neo4j import Neo4jSink

    store = tmp_path / "store"
    with Emulator(world) as emu:
        result = CliRunner().invoke(main, [
            "crawl", "gene:672", "--depth", "2", "--rps", "1000", "--store", str(store),
            "--eutils-url", emu.url, "--summaries", "--no-embedded"])
    assert result.exit_code == 0, result.output
    with Journal(StorePaths.of(store).journal, create=False) as j, Neo4jSink.from_config(
        config, parallel=4, fast=False, batch_size=50, verify=True
    ) as sink:
        report = sink.sync(j)
        assert report.ok, report.error
        assert sink.verify(j) == []
    assert neo4j_view(driver, config) == journal_view(store)
