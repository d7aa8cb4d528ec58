"""A Neo4j driver stand-in for tests without a server (imported by tests/test_neo4j_*.py).

`FakeNeo4j` holds a small in-memory graph. It understands exactly the statements
`crawler.sinks.neo4j` builds (anything else fails the test), keeps transactions atomic (a
failing transaction function leaves no trace), and can be told to be down, to fail the next N
transactions, to refuse credentials, or to log the driver's retry warnings as the real driver
does (`log_retries`).
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from neo4j.exceptions import AuthError, ClientError, ServiceUnavailable

import crawler.sinks.neo4j as neo
from crawler.journal import Journal
from crawler.store import StorePaths

_NODE = re.compile(r"^UNWIND \$rows AS r MERGE \(n:`(\w+)` \{uid: r\.uid\}\) SET n\.depth = ")
_PROP = re.compile(r"^UNWIND \$rows AS r MERGE \(n:`(\w+)` \{uid: r\.uid\}\) SET n \+= r\.data ")
_EDGE = re.compile(
    r"^UNWIND \$rows AS r MATCH \(a:`(\w+)` \{uid: r\.f\}\) MATCH \(b:`(\w+)` \{uid: r\.t\}\) "
    r"(MERGE|CREATE) \(a\)-\[e:`(\w+)`\]->\(b\) SET e\.score = coalesce\(r\.s, e\.score\), "
    r"e\.fetched = coalesce\(r\.at, e\.fetched\) RETURN count\(e\) AS n$"
)
_REMOVE_EDGES = re.compile(
    r"^UNWIND \$rows AS r MATCH \(a:`(\w+)` \{uid: r\.f\}\)-\[e:`(\w+)`\]->\(b:`(\w+)` "
    r"\{uid: r\.t\}\) DELETE e RETURN count\(\*\) AS n$"
)
_REMOVE_NODES = re.compile(
    r"^UNWIND \$rows AS r MATCH \(n:`(\w+)` \{uid: r\.uid\}\) DETACH DELETE n "
    r"RETURN count\(\*\) AS n$"
)
_UPDATE_NODES = re.compile(
    r"^UNWIND \$rows AS r MATCH \(n:`(\w+)` \{uid: r\.uid\}\) SET n\.depth = r\.depth, "
    r"n\.fetched = coalesce\(r\.fetched, n\.fetched\) RETURN count\(n\) AS n$"
)
_UPDATE_EDGES = re.compile(
    r"^UNWIND \$rows AS r MATCH \(a:`(\w+)` \{uid: r\.f\}\)-\[e:`(\w+)`\]->\(b:`(\w+)` "
    r"\{uid: r\.t\}\) SET e\.score = r\.s, e\.fetched = coalesce\(r\.fetched, e\.fetched\) "
    r"RETURN count\(e\) AS n$"
)
_COUNT_NODES = re.compile(r"^MATCH \(n:`(\w+)`\) RETURN count\(n\) AS n$")
_COUNT_RELS = re.compile(r"^MATCH \(\)-\[r:`(\w+)`\]->\(\) RETURN count\(r\) AS n$")
_COUNT_PROPS = re.compile(
    r"^MATCH \(n:`(\w+)`\) RETURN sum\(size\(\[k IN keys\(n\) WHERE k IN \$keys\]\)\) AS n$"
)
_CONSTRAINT = re.compile(
    r"^CREATE CONSTRAINT `(\w+)_uid` IF NOT EXISTS FOR \(n:`(\w+)`\) REQUIRE n\.uid IS UNIQUE$"
)


WIPE = "MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"


class _EagerResult:
    def __init__(self, records: list[Any]) -> None:
        self.records = records


class Record(dict):
    """Enough of neo4j.Record: access by key or position, values()."""

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, int):
            return list(self.values())[key]
        return super().__getitem__(key)


class Result:
    def __init__(self, keys: list[str], rows: list[list[Any]]) -> None:
        self._keys = keys
        self._records = [Record(zip(keys, row, strict=True)) for row in rows]

    def keys(self) -> list[str]:
        return list(self._keys)

    def single(self) -> Record | None:
        assert len(self._records) <= 1
        return self._records[0] if self._records else None

    def consume(self) -> None:
        return None

    def __iter__(self):
        return iter(self._records)


class Graph:
    """The stand-in's state: what a Neo4j database would hold."""

    def __init__(self) -> None:
        self.nodes: dict[tuple[str, str], dict[str, Any]] = {}
        self.rels: list[dict[str, Any]] = []
        self.cursors: dict[str, dict[str, Any]] = {}
        self.constraints: set[str] = set()

    def snapshot(self) -> tuple:
        return copy.deepcopy((self.nodes, self.rels, self.cursors, self.constraints))

    def restore(self, snap: tuple) -> None:
        self.nodes, self.rels, self.cursors, self.constraints = snap

    def edge_keys(self) -> list[tuple]:
        return sorted(
            (r["a"][0], r["a"][1], r["type"], r["b"][0], r["b"][1], r.get("score"))
            for r in self.rels
        )


class FakeNeo4j:
    """Driver factory + server: `monkeypatch.setattr(neo, "_driver_factory", fake.driver)`."""

    def __init__(self) -> None:
        self.graph = Graph()
        self.down = False              # every call fails with ServiceUnavailable
        self.fail_next = 0             # the next N transactions fail with ServiceUnavailable
        self.fail_with: type[Exception] = ServiceUnavailable
        self.bad_auth = False
        self.log: list[tuple[str, dict]] = []   # statements of committed and failed transactions
        self.transactions = 0
        self.closed = 0
        self.configs: list[Any] = []
        self.canned: dict[str, Any] = {}  # text -> (keys, rows) or an exception to raise
        self.before_tx: Callable[[FakeNeo4j], None] | None = None
        self.log_retries = False  # log the driver's retry warnings, as the real driver does
        self.sessions: list[dict[str, Any]] = []  # the keyword arguments of every session

    # driver factory
    def driver(self, config: Any, **settings: Any) -> FakeDriver:
        self.configs.append(config)
        return FakeDriver(self)

    def statements(self, prefix: str) -> list[tuple[str, dict]]:
        return [(t, p) for t, p in self.log if t.startswith(prefix)]


class FakeDriver:
    def __init__(self, server: FakeNeo4j) -> None:
        self.server = server

    def verify_connectivity(self) -> None:
        if self.server.bad_auth:
            raise AuthError("The client is unauthorized due to authentication failure.")
        if self.server.down:
            raise ServiceUnavailable("Couldn't connect to localhost:7687")

    def session(self, database: str | None = None, default_access_mode: str = "WRITE", **kw: Any):
        self.server.sessions.append({"database": database, **kw})
        return FakeSession(self.server, default_access_mode, database)

    def close(self) -> None:
        self.server.closed += 1

    def execute_query(self, text: str, parameters: dict | None = None, *, database_=None,
                      **kw: Any) -> Any:
        """Enough of the driver's execute_query for benchmarks/neo4j_write.py."""
        result = FakeSession(self.server, "WRITE", database_)._run(
            "WRITE", lambda tx: tx.run(text, parameters, **kw))
        return _EagerResult(list(result))


class FakeSession:
    def __init__(self, server: FakeNeo4j, mode: str, database: str | None = None) -> None:
        self.server = server
        self.mode = mode
        self.database = database

    def __enter__(self) -> FakeSession:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def _run(self, mode: str, fn: Callable[..., Any], *args: Any) -> Any:
        server = self.server
        if server.before_tx is not None:
            server.before_tx(server)
        if (server.down or server.fail_next) and server.log_retries:
            # what the driver logs before each of its own retries of a managed transaction
            _DRIVER_SESSION_LOG.warning(
                "Transaction failed and will be retried in %ss (%s)", 1.1,
                "Couldn't connect to localhost:7687 (resolved to ('127.0.0.1:7687',)):\n"
                "Failed to establish connection to ResolvedIPv4Address(('127.0.0.1', 7687)) "
                "(reason [Errno 111] Connection refused)",
            )
        if server.down:
            raise ServiceUnavailable("Couldn't connect to localhost:7687")
        if server.fail_next:
            server.fail_next -= 1
            raise server.fail_with("Connection reset by peer")
        server.transactions += 1
        snap = server.graph.snapshot()
        try:
            return fn(FakeTx(server, mode, self.database), *args)
        except BaseException:
            server.graph.restore(snap)
            raise

    def execute_write(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self._run("WRITE", fn, *args)

    def run(self, text: str, parameters: dict | None = None, **kw: Any) -> Result:
        """An auto-commit transaction (the benchmark's wipe)."""
        return self._run("WRITE", lambda tx: tx.run(text, parameters, **kw))

    def execute_read(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self._run("READ", fn, *args)


class FakeTx:
    def __init__(self, server: FakeNeo4j, mode: str, database: str | None = None) -> None:
        self.server = server
        self.mode = mode
        self.database = database
        self.g = server.graph

    def _writes(self) -> None:
        if self.mode != "WRITE":
            raise ClientError("Writing in read access mode not allowed.")

    def run(self, text: str, parameters: dict | None = None, **kw: Any) -> Result:
        params = {**(parameters or {}), **kw}
        self.server.log.append((text, params))
        g = self.g
        jid = params.get("journal")
        if text == neo.DATABASE_NAME:
            return Result(["name"], [[self.database or "neo4j"]])
        if text in self.server.canned:
            canned = self.server.canned[text]
            if isinstance(canned, Exception):
                raise canned
            keys, rows = canned
            if text.lstrip().upper().startswith(("CREATE", "MERGE", "DELETE")):
                self._writes()
            return Result(keys, rows)
        if m := _CONSTRAINT.match(text):
            self._writes()
            g.constraints.add(m.group(2))
            return Result([], [])
        if m := _NODE.match(text):
            self._writes()
            for r in params["rows"]:
                node = g.nodes.setdefault((m.group(1), r["uid"]), {"uid": r["uid"]})
                if node.get("depth") is None or r["depth"] < node["depth"]:
                    node["depth"] = r["depth"]
                if r.get("at") is not None:
                    node["fetched"] = r["at"]
            return Result(["n"], [[len(params["rows"])]])
        if m := _PROP.match(text):
            self._writes()
            for r in params["rows"]:
                node = g.nodes.setdefault((m.group(1), r["uid"]), {"uid": r["uid"]})
                for k, v in r["data"].items():
                    if v is None:
                        node.pop(k, None)
                    else:
                        node[k] = v
            return Result(["n"], [[len(params["rows"])]])
        if m := _EDGE.match(text):
            self._writes()
            la, lb, verb, typ = m.group(1), m.group(2), m.group(3), m.group(4)
            found = 0
            for r in params["rows"]:
                a, b = (la, r["f"]), (lb, r["t"])
                if a not in g.nodes or b not in g.nodes:
                    continue
                found += 1
                rel = None
                if verb == "MERGE":
                    rel = next(
                        (x for x in g.rels if x["a"] == a and x["b"] == b and x["type"] == typ),
                        None,
                    )
                if rel is None:
                    rel = {"a": a, "b": b, "type": typ}
                    g.rels.append(rel)
                if r["s"] is not None:
                    rel["score"] = r["s"]
                if r.get("at") is not None:
                    rel["fetched"] = r["at"]
            return Result(["n"], [[found]])
        if m := _REMOVE_EDGES.match(text):
            self._writes()
            la, typ, lb = m.groups()
            gone = {((la, r["f"]), (lb, r["t"])) for r in params["rows"]}
            kept = [x for x in g.rels if not (x["type"] == typ and (x["a"], x["b"]) in gone)]
            n, g.rels[:] = len(g.rels) - len(kept), kept
            return Result(["n"], [[n]])
        if m := _REMOVE_NODES.match(text):
            self._writes()
            keys = {(m.group(1), r["uid"]) for r in params["rows"]}
            n = sum(1 for k in keys if g.nodes.pop(k, None) is not None)
            g.rels[:] = [x for x in g.rels if x["a"] not in keys and x["b"] not in keys]
            return Result(["n"], [[n]])
        if m := _UPDATE_NODES.match(text):
            self._writes()
            n = 0
            for r in params["rows"]:
                node = g.nodes.get((m.group(1), r["uid"]))
                if node is not None:
                    n += 1
                    node["depth"] = r["depth"]
                    if r["fetched"] is not None:
                        node["fetched"] = r["fetched"]
            return Result(["n"], [[n]])
        if m := _UPDATE_EDGES.match(text):
            self._writes()
            la, typ, lb = m.groups()
            n = 0
            for r in params["rows"]:
                for x in g.rels:
                    if x["type"] == typ and x["a"] == (la, r["f"]) and x["b"] == (lb, r["t"]):
                        n += 1
                        if r["s"] is None:
                            x.pop("score", None)
                        else:
                            x["score"] = r["s"]
                        if r["fetched"] is not None:
                            x["fetched"] = r["fetched"]
            return Result(["n"], [[n]])
        if text == neo.CURSOR_CONSTRAINT:
            self._writes()
            g.constraints.add(neo.CURSOR_LABEL)
            return Result([], [])
        if text == neo.CLAIM_OTHERS:
            others = [c for j, c in g.cursors.items() if j != jid]
            for c in others:
                c["shared"] = True
            return Result(["n"], [[len(others)]])
        if text in (neo.READ_MINE, neo.LOCK_MINE):
            c = g.cursors.get(jid)
            if c is None:
                return Result(["c"], [])
            if text == neo.LOCK_MINE:
                self._writes()
                c["locked"] = True
            return Result(["c"], [[{"journal": jid, **c}]])
        if text == "CALL db.labels() YIELD label":  # the benchmark's
            return Result(["label"], [[lb] for lb in sorted({lb for lb, _ in g.nodes})])
        if text == WIPE:
            self._writes()
            g.nodes.clear()
            g.rels.clear()
            g.cursors.clear()
            return Result([], [])
        if text == "MATCH (n) WHERE NOT n:EntrezGraphCursor RETURN count(n) AS n":
            return Result(["n"], [[len(g.nodes)]])
        if text == neo.COUNT_OTHERS:
            return Result(["n"], [[len([j for j in g.cursors if j != jid])]])
        if text == neo.LABELS_IN_USE:
            labels = {lb for lb, _ in g.nodes} | ({neo.CURSOR_LABEL} if g.cursors else set())
            return Result(["label"], [[lb] for lb in sorted(labels)])
        if text == neo.TYPES_IN_USE:
            return Result(["relationshipType"], [[t] for t in sorted({r["type"] for r in g.rels})])
        if m := _COUNT_NODES.match(text):
            return Result(["n"], [[sum(1 for lb, _ in g.nodes if lb == m.group(1))]])
        if m := _COUNT_RELS.match(text):
            return Result(["n"], [[sum(1 for r in g.rels if r["type"] == m.group(1))]])
        if m := _COUNT_PROPS.match(text):
            keys = set(params["keys"])
            held = sum(
                len(keys & {k for k, v in n.items() if v is not None})
                for (lb, _), n in g.nodes.items() if lb == m.group(1)
            )
            return Result(["n"], [[held]])
        if text == neo.COUNT_RELS:
            return Result(["n"], [[len(g.rels)]])
        if text == neo.CREATE_MINE:
            g.cursors.setdefault(
                jid, {"node": 0, "edge": 0, "prop": 0, "change": 0, "shared": params["shared"]}
            )
            return Result([], [])
        if text == neo.MARK_MINE_SHARED:
            g.cursors[jid]["shared"] = True
            return Result([], [])
        if text == neo.MOVE_MINE:
            g.cursors[jid].update(node=params["node"], edge=params["edge"], prop=params["prop"],
                                  change=params["change"])
            return Result([], [])
        raise AssertionError(f"the stand-in does not know this statement: {text}")



_DRIVER_SESSION_LOG = logging.getLogger("neo4j.session")  # the real driver's logger name


# -- helpers for the test modules' fixtures --------------------------------------


def install(monkeypatch: pytest.MonkeyPatch) -> FakeNeo4j:
    """The stand-in in place of the driver, backoff without waiting, no NEO4J_* variables."""
    server = FakeNeo4j()
    monkeypatch.setattr(neo, "_driver_factory", server.driver)
    monkeypatch.setattr(neo, "_sleep", lambda seconds: None)
    for var in ("NEO4J_URI", "NEO4J_USER", "NEO4J_USERNAME", "NEO4J_PASSWORD", "NEO4J_DATABASE"):
        monkeypatch.delenv(var, raising=False)
    return server


def fill(journal: Journal, n_genes: int = 5, start: int = 0) -> None:
    """A small crawl's worth of journal rows: genes → proteins → structures, scores, props."""
    for i in range(start, start + n_genes):
        gene = str(1000 + i)
        prots = [str(50_000 + 10 * i + k) for k in range(3)]
        journal.add_nodes([("gene", gene, 0)])
        journal.add_nodes([("protein", p, 1) for p in prots])
        journal.add_edges(
            [("gene", gene, "gene_protein_refseq", "protein", p, None) for p in prots]
        )
        journal.add_nodes([("structure", str(7000 + i), 2)])
        journal.add_edges([("protein", prots[0], "protein_structure", "structure", str(7000 + i),
                            None)])
        journal.add_edges([("protein", prots[0], "protein_protein", "protein", prots[1], 900 - i)])
        journal.set_props("gene", gene, {"name": f"G{i}", "organism": "Homo sapiens",
                                         "aliases": ["a", "b"], "extra": {"x": 1}})


def expected_edges(journal: Journal) -> list[tuple]:
    return sorted(
        (e.dbfrom, e.uid_from, e.linkname, e.dbto, e.uid_to, e.score)
        for e in journal.iter_edges()
    )


def make_sink(**kw: Any) -> neo.Neo4jSink:
    kw.setdefault("sleep", lambda s: None)
    config = neo.Neo4jConfig.from_options("bolt://localhost:7687", env={})
    return neo.Neo4jSink.from_config(config, **kw)


def open_journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(StorePaths.of(tmp_path / "store").journal)
    yield j
    j.close()
