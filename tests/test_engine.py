"""Engine unit tests against a small in-memory stand-in for the E-utilities client.

The stand-in answers from a dict graph, can refuse IDs (as NCBI refuses a malformed one), leave
answers out, and raise transient errors, so the BFS rules, caps, states and resume behaviour are
checked without HTTP. End-to-end tests against the emulator live in test_crawl_*.py.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from pathlib import Path

import pytest

from crawler.crawling.api import crawl
from crawler.crawling.committer import Committer
from crawler.crawling.plan import make_plan
from crawler.crawling.settings import build_settings
from crawler.errors import BadInput, NCBIError, SettingsMismatch, StoreLocked, TransientError
from crawler.eutils.models import (
    BatchOutcome,
    IdLinkSet,
    Link,
    LinkInfo,
    LinkSet,
    LinkSetDb,
    SearchResult,
)
from crawler.journal import Journal
from crawler.linknames import LinkFilter
from crawler.sinks import SyncReport

# (db, uid) -> [(linkname, dbto, target, score)]
GRAPH: dict[tuple[str, str], list[tuple[str, str, str, int | None]]] = {
    ("gene", "1"): [
        ("gene_protein", "protein", "10", None),
        ("gene_protein", "protein", "11", None),
        ("gene_protein_refseq", "protein", "10", None),
        ("gene_pubmed", "pubmed", "100", None),
        ("gene_taxonomy", "taxonomy", "9606", None),
    ],
    ("gene", "2"): [
        ("gene_protein", "protein", "11", None),
        ("gene_protein", "protein", "12", None),
    ],
    ("protein", "10"): [
        ("protein_structure", "structure", "1000", None),
        ("protein_gene", "gene", "1", None),
        ("protein_protein", "protein", "10", 999),  # self-link
        ("protein_protein", "protein", "12", 50),
        ("protein_protein", "protein", "13", 70),
        ("protein_protein", "protein", "14", 70),
    ],
    ("protein", "11"): [("protein_structure", "structure", "1001", None)],
    ("protein", "12"): [("protein_structure", "structure", "1002", None)],
    ("pubmed", "100"): [
        ("pubmed_pubmed", "pubmed", "100", 1000),
        ("pubmed_pubmed", "pubmed", "101", 300),
        ("pubmed_pubmed_five", "pubmed", "101", 300),
    ],
    ("taxonomy", "9606"): [("taxonomy_gene", "gene", "3", None)],
}


class FakeClient:
    """Answers acheck / neighbor / neighbor_score / esearch from GRAPH (thread-safe)."""

    def __init__(self, graph=GRAPH, *, poison=(), silent=(), transient=0, accessions=None):
        self.graph = graph
        self.poison = set(poison)
        self.silent = set(silent)  # IDs never answered
        self.transient = transient  # how many calls raise TransientError first
        self.accessions = accessions or {}
        self.calls: list[tuple] = []
        self._lock = threading.Lock()
        self._sent = 0
        self.rps = 3.0

    @property
    def requests_sent(self) -> int:
        return self._sent

    def _tick(self, *call) -> None:
        with self._lock:
            self._sent += 1
            self.calls.append(call)
            if self.transient > 0:
                self.transient -= 1
                raise TransientError("Search Backend failed", status=200, kind="error")

    def acheck_batch(self, dbfrom, ids):
        ids = list(ids)
        self._tick("acheck", dbfrom, tuple(ids))
        answers, failed = {}, {}
        for uid in ids:
            if uid in self.poison:
                failed[uid] = "Invalid uid"
                continue
            if uid in self.silent:
                continue
            names = sorted({(ln, to) for ln, to, _, _ in self.graph.get((dbfrom, uid), [])})
            infos = [LinkInfo(to, ln) for ln, to in names]
            infos.append(LinkInfo("LinkOut", "ExternalLink"))
            answers[uid] = IdLinkSet(uid, tuple(infos))
        return answers, failed

    def elink_batch(self, dbfrom, ids, *, cmd="neighbor", db=None, linkname=None):
        ids = list(ids)
        self._tick(cmd, dbfrom, linkname, tuple(ids))
        out = BatchOutcome(requests=1)
        for uid in ids:
            if uid in self.poison:
                out.failed[uid] = "Invalid uid"
                continue
            if uid in self.silent:
                out.no_answer.add(uid)
                continue
            by_name: dict[tuple[str, str], list[Link]] = defaultdict(list)
            for ln, to, target, score in self.graph.get((dbfrom, uid), []):
                if cmd == "neighbor" and ln == linkname:
                    by_name[(ln, to)].append(Link(target))
                elif cmd == "neighbor_score" and score is not None:
                    by_name[(ln, to)].append(Link(target, score))
            dbs = tuple(LinkSetDb(to, ln, tuple(v)) for (ln, to), v in by_name.items())
            out.answered[uid] = LinkSet(dbfrom, (uid,), dbs)
        return out

    def esearch(self, db, term, retmax=20):
        self._tick("esearch", db, term)
        ids = self.accessions.get((db, term), ())
        return SearchResult(count=len(ids), ids=tuple(ids))

    def close(self) -> None:
        pass


def graph_of(store: Path) -> tuple[set, set]:
    with Journal(store / "journal.sqlite", create=False) as j:
        nodes = {(n.db, n.uid, n.depth) for n in j.iter_nodes()}
        edges = {(e.dbfrom, e.uid_from, e.linkname, e.dbto, e.uid_to, e.score)
                 for e in j.iter_edges()}
    return nodes, edges


def run(store, seeds=("gene:1",), client=None, **kw):
    kw.setdefault("embedded", False)
    return crawl(store, seeds, client=client or FakeClient(), **kw)


def test_depth_one_acheck_path(tmp_path):
    report = run(tmp_path / "s", depth=1)
    nodes, edges = graph_of(tmp_path / "s")
    assert nodes == {
        ("gene", "1", 0), ("protein", "10", 1), ("protein", "11", 1), ("pubmed", "100", 1),
        ("taxonomy", "9606", 1),
    }
    assert ("gene", "1", "gene_protein_refseq", "protein", "10", None) in edges
    assert len(edges) == 5
    assert report.complete and report.nodes == 5 and report.edges == 5


def test_depth_two_rules(tmp_path):
    run(tmp_path / "s", depth=2)
    nodes, edges = graph_of(tmp_path / "s")
    names = {e[2] for e in edges}
    # self-link dropped, hub (taxonomy) recorded not expanded, subset skipped beside its parent
    assert ("protein", "10", "protein_protein", "protein", "10", None) not in edges
    assert "taxonomy_gene" not in names
    assert "pubmed_pubmed_five" not in names
    assert ("pubmed", "100", "pubmed_pubmed", "pubmed", "101", None) in edges
    # a record keeps its smallest depth; the edge back to the seed exists
    assert ("gene", "1", 0) in nodes and ("structure", "1000", 2) in nodes
    assert ("protein", "10", "protein_gene", "gene", "1", None) in edges
    with Journal(tmp_path / "s" / "journal.sqlite", create=False) as j:
        states = dict(j.execute("SELECT db || ':' || uid, state FROM nodes").fetchall())
    assert states["taxonomy:9606"] == "terminal" and states["structure:1000"] == "terminal"
    assert states["gene:1"] == "done"


def test_expand_hubs_and_include_subsets(tmp_path):
    run(tmp_path / "s", depth=2, expand_hubs=True, include_subsets=True)
    _, edges = graph_of(tmp_path / "s")
    names = {e[2] for e in edges}
    assert {"taxonomy_gene", "pubmed_pubmed_five"} <= names


def test_named_links_skip_acheck(tmp_path):
    client = FakeClient()
    run(tmp_path / "s", depth=2, links=["gene_protein", "protein_structure"], client=client)
    assert not [c for c in client.calls if c[0] == "acheck"]
    nodes, edges = graph_of(tmp_path / "s")
    assert {e[2] for e in edges} == {"gene_protein", "protein_structure"}
    assert ("structure", "1001", 2) in nodes and len(edges) == 4
    # one neighbor request per link name per batch, with that link name
    assert all(c[0] == "neighbor" and c[2] in ("gene_protein", "protein_structure")
               for c in client.calls)


def test_to_and_exclude_filters(tmp_path):
    run(tmp_path / "s", depth=1, to_dbs=["protein"], exclude_links=["gene_protein_refseq"])
    _, edges = graph_of(tmp_path / "s")
    assert {e[2] for e in edges} == {"gene_protein"}


def test_scores_and_cap(tmp_path):
    client = FakeClient()
    run(tmp_path / "s", ("protein:10",), depth=1, scores=True, max_links_per_record=2,
        client=client)
    _, edges = graph_of(tmp_path / "s")
    pp = sorted((e[4], e[5]) for e in edges if e[2] == "protein_protein")
    # top 2 by score; the tie 70/70 broken by UID, self-link gone before the cap
    assert pp == [("13", 70), ("14", 70)]
    assert any(c[0] == "neighbor_score" for c in client.calls)


def test_poisoned_id_fails_alone(tmp_path):
    run(tmp_path / "s", ("gene:1", "gene:2"), depth=1, client=FakeClient(poison={"2"}))
    nodes, _ = graph_of(tmp_path / "s")
    assert ("protein", "10", 1) in nodes  # batch-mate crawled
    with Journal(tmp_path / "s" / "journal.sqlite", create=False) as j:
        failed = j.execute("SELECT db, uid, step FROM failed").fetchall()
        assert j.stats()["failed"] == 1
    assert failed == [("gene", "2", "acheck")]


def test_silent_ids_are_no_answer_and_retry_failed(tmp_path):
    store = tmp_path / "s"
    report = run(store, ("gene:1", "gene:2"), depth=1, client=FakeClient(silent={"2"}))
    assert report.no_answer == 1 and report.complete
    again = run(store, ("gene:1", "gene:2"), depth=1, retry_failed=True)
    nodes, _ = graph_of(store)
    assert ("protein", "12", 1) in nodes and again.no_answer == 0


def test_transient_errors_are_asked_again(tmp_path):
    client = FakeClient(transient=2)
    run(tmp_path / "a", depth=2, client=client)
    run(tmp_path / "b", depth=2)
    assert graph_of(tmp_path / "a") == graph_of(tmp_path / "b")


def test_persistent_transient_failure_stops_resumably(tmp_path):
    with pytest.raises(NCBIError, match="run the same command again"):
        run(tmp_path / "s", depth=1, client=FakeClient(transient=100))
    run(tmp_path / "s", depth=1)
    run(tmp_path / "ref", depth=1)
    assert graph_of(tmp_path / "s") == graph_of(tmp_path / "ref")


def test_max_nodes_is_deterministic_and_bounded(tmp_path):
    run(tmp_path / "a", depth=2, max_nodes=6)
    nodes, edges = graph_of(tmp_path / "a")
    assert len(nodes) == 6
    assert all((e[3], e[4]) in {(n[0], n[1]) for n in nodes} for e in edges)
    # the same with another batch size and worker count (different completion order)
    run(tmp_path / "b", depth=2, max_nodes=6, batch_size=1, workers=3)
    assert graph_of(tmp_path / "b") == (nodes, edges)
    # without reaching the cap, the capped crawl equals the uncapped one
    run(tmp_path / "c", depth=2, max_nodes=10_000)
    run(tmp_path / "d", depth=2)
    assert graph_of(tmp_path / "c") == graph_of(tmp_path / "d")


@pytest.mark.parametrize("cap", [None, 7])
def test_resume_from_every_committed_batch(tmp_path, cap):
    """Interrupt after k committed batches, for every k, then resume: the same graph.

    With a --max-nodes cap too: the capped graph must not depend on where the crawl stopped.
    """
    ref = tmp_path / "ref"
    run(ref, depth=2, batch_size=1, max_nodes=cap)
    expected = graph_of(ref)

    class Stop(Exception):
        pass

    k = 0
    while True:
        k += 1
        store = tmp_path / f"k{k}"
        original = Committer.fetch
        count = {"n": 0}

        def limited(self, *a, _orig=original, _count=count, _k=k):
            if _count["n"] >= _k:
                raise Stop
            _count["n"] += 1
            return _orig(self, *a)

        Committer.fetch = limited  # type: ignore[method-assign]
        try:
            run(store, depth=2, batch_size=1, max_nodes=cap)
            finished = True
        except Stop:
            finished = False
        finally:
            Committer.fetch = original  # type: ignore[method-assign]
        run(store, depth=2, batch_size=1, max_nodes=cap)
        assert graph_of(store) == expected, f"interrupted after {k} batches"
        if finished:
            break
    assert k > 3


def test_interrupted_before_admitting_a_capped_level(tmp_path, monkeypatch):
    """Killed after a level's last batch but before its records were admitted: resume admits."""
    run(tmp_path / "ref", depth=2, max_nodes=7)
    original = Committer.promote

    def crash(self, level):
        raise KeyboardInterrupt

    monkeypatch.setattr(Committer, "promote", crash)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "s", depth=2, max_nodes=7)
    with Journal(tmp_path / "s" / "journal.sqlite", create=False) as j:
        assert j.execute("SELECT count(*) FROM candidates").fetchone()[0] > 0
    monkeypatch.setattr(Committer, "promote", original)
    client = FakeClient()
    run(tmp_path / "s", depth=2, max_nodes=7, client=client)
    assert graph_of(tmp_path / "s") == graph_of(tmp_path / "ref")


def test_settings_mismatch_and_resume_of_finished(tmp_path):
    store = tmp_path / "s"
    run(store, depth=2)
    client = FakeClient()
    report = run(store, depth=2, client=client)
    assert client.calls == [] and report.complete  # finished: nothing asked again
    with pytest.raises(SettingsMismatch, match="another --store"):  # narrower: refused
        run(store, depth=1)
    with pytest.raises(SettingsMismatch, match="--link "):  # named as the option
        run(store, depth=2, links=["gene_protein"])


def test_store_lock(tmp_path):
    from crawler.crawling.lock import StoreLock

    store = tmp_path / "s"
    store.mkdir()
    lock = StoreLock(store)
    lock.acquire()
    try:
        with pytest.raises(StoreLocked, match="another entrez-graph crawl"):
            run(store, depth=1)
    finally:
        lock.release()
    run(store, depth=1)


def test_seed_resolution_and_errors(tmp_path):
    client = FakeClient(accessions={
        ("nuccore", "NM_007294[accn]"): ["1"],
        ("gene", "BRCA1[sym]"): ["672", "12189"],
    })
    plan = run(tmp_path / "s", ("nuccore:NM_007294",), client=client, dry_run=True)
    assert plan.seeds == ["nuccore:1"]
    assert not (tmp_path / "s").exists()  # dry run writes nothing
    with pytest.raises(BadInput, match=r"gene:BRCA1 matches 2 records \(672, 12189\)"):
        run(tmp_path / "s", ("gene:BRCA1", "nuccore:NM_000000"), client=client)
    with pytest.raises(BadInput, match="nuccore:NM_000000 matches no record"):
        run(tmp_path / "s", ("nuccore:NM_000000",), client=client)
    assert not (tmp_path / "s").exists()
    assert all(c[0] == "esearch" for c in client.calls)  # no link request before the error


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"seeds": ["gene"]}, "invalid seed"),
        ({"seeds": ["genes:1"]}, "unknown database"),
        ({"seeds": ["gene:1 2"]}, "invalid ID"),
        ({"depth": -1}, "invalid --depth"),
        ({"links": ["Gene_Protein"]}, "invalid link name"),
        ({"links": ["foo_bar"]}, "cannot tell the databases"),
        ({"to_dbs": ["nowhere"]}, "unknown database"),
        ({"max_nodes": 0}, "--max-nodes"),
        ({"query": "x"}, "--query needs --query-db"),
        ({"seeds": []}, "no seeds"),
    ],
)
def test_bad_input(kw, message):
    kw.setdefault("seeds", ["gene:1"])
    seeds = kw.pop("seeds")
    with pytest.raises(BadInput, match=message):
        build_settings(seeds, **kw)


def test_sinks_are_synced_from_their_own_thread(tmp_path):
    class Recorder:
        name = "recorder"

        def __init__(self):
            self.seen: list[int] = []
            self.threads: set[str] = set()

        def sync(self, journal):
            self.threads.add(threading.current_thread().name)
            self.seen.append(journal.max_ids().edge)
            return SyncReport(self.name)

        def close(self):
            pass

    sink = Recorder()
    report = run(tmp_path / "s", depth=2, sinks=[sink])
    # level ends ask for syncs (folded together when they come faster than a sync), the end
    # waits for one that holds every edge; always on the sinks' thread, never the crawl's
    assert sink.seen and sink.seen == sorted(sink.seen) and sink.seen[-1] == report.edges
    assert sink.threads == {"entrez-sync"}
    assert report.sinks_ok and report.sinks[0].name == "recorder"


def test_plan_estimate():
    settings = build_settings(["gene:1", "gene:2"], depth=1, links=["gene_protein"])
    plan = make_plan(Path("x"), settings, [("gene", "1"), ("gene", "2")], 200, 3.0, False)
    assert plan.estimated_requests == 1  # one neighbor request, no acheck
    assert plan.link_names == {"gene": ["gene_protein"]}


def test_filter_select_rules():
    flt = LinkFilter.build()
    offered = [("pubmed_pubmed", "pubmed"), ("pubmed_pubmed_five", "pubmed"),
               ("pubmed_gene", "gene"), ("ExternalLink", "LinkOut"), ("Bad Name", "gene")]
    assert flt.select(offered) == [("pubmed_gene", "gene"), ("pubmed_pubmed", "pubmed")]
    assert ("pubmed_pubmed_five", "pubmed") in LinkFilter.build(
        include_subsets=True).select(offered)
    assert LinkFilter.build(links=["nucleotide_protein"]).named_for("nuccore") == [
        ("nucleotide_protein", "protein")]


class _Tty:
    """A stderr stand-in that says it is a terminal."""

    def __init__(self, tty: bool):
        self.tty = tty
        self.text = ""

    def isatty(self):
        return self.tty

    def write(self, s):
        self.text += s

    def flush(self):
        pass


def test_progress_line_on_a_terminal_only(tmp_path):
    from crawler.progress import Progress

    tty = _Tty(True)
    report = run(tmp_path / "a", depth=2, progress=Progress(tty, interval=0))
    last = tty.text.rsplit("\r", 1)[-1]
    assert "level 1" in tty.text and "requests (" in last
    assert f"{report.nodes} records" in last and f"{report.edges} edges" in last
    assert "left" in last and tty.text.endswith("\n")
    pipe = _Tty(False)
    run(tmp_path / "b", depth=2, progress=Progress(pipe, interval=0))
    assert pipe.text == ""  # quiet when not a terminal
    Progress(pipe).note("Neo4j unavailable: x")
    assert pipe.text == "Neo4j unavailable: x\n"  # notes always show


# -- the next level, worked on ahead; requests in flight sized by rate × latency ------------------

OVERTAKE = {
    ("gene", "1"): [("gene_protein", "protein", "10", None)],
    ("gene", "2"): [("gene_pubmed", "pubmed", "7", None)],
    ("protein", "10"): [("protein_pubmed", "pubmed", "7", None),
                        ("protein_structure", "structure", "100", None)],
    ("pubmed", "7"): [("pubmed_gene", "gene", "1", None)],
}


class SlowSecondSeed(FakeClient):
    """gene:2's gene_pubmed answer waits until protein:10 (a level-1 record, found through
    gene:1) has had its own links asked: level 1 is worked on while level 0 is unfinished."""

    def __init__(self):
        super().__init__(OVERTAKE)
        self.level1_asked = threading.Event()
        self.level1_checked = threading.Event()
        self.overtaken = False

    def acheck_batch(self, dbfrom, ids):
        ids = list(ids)
        if dbfrom == "protein":
            self.level1_checked.set()
        return super().acheck_batch(dbfrom, ids)

    def elink_batch(self, dbfrom, ids, **kw):
        ids = list(ids)
        if kw.get("linkname") == "protein_pubmed":
            self.level1_asked.set()
        if kw.get("linkname") == "gene_pubmed":
            self.overtaken = self.level1_asked.wait(10)
        return super().elink_batch(dbfrom, ids, **kw)


def test_next_level_asked_early_keeps_smallest_depths(tmp_path):
    """pubmed:7 is a level-1 record (gene:2 links it) and also a link of level-1 protein:10,
    whose answer comes first: held until level 0 is complete, it must not make pubmed:7 depth 2."""
    client = SlowSecondSeed()
    report = run(tmp_path / "s", seeds=("gene:1", "gene:2"), depth=2, batch_size=1,
                 client=client)
    assert client.level1_checked.is_set() and client.overtaken
    nodes, edges = graph_of(tmp_path / "s")
    assert nodes == {("gene", "1", 0), ("gene", "2", 0), ("protein", "10", 1),
                     ("pubmed", "7", 1), ("structure", "100", 2)}
    assert {(e[0], e[1], e[2], e[4]) for e in edges} == {
        ("gene", "1", "gene_protein", "10"), ("gene", "2", "gene_pubmed", "7"),
        ("protein", "10", "protein_pubmed", "7"), ("protein", "10", "protein_structure", "100"),
        ("pubmed", "7", "pubmed_gene", "1"),
    }
    assert report.complete


def test_no_early_work_under_max_nodes(tmp_path):
    """With --max-nodes the next level's records are admitted only once the level is complete,
    so nothing of level 1 can be asked before gene:2's answer."""
    client = SlowSecondSeed()
    client.level1_asked.set()  # do not wait: nothing may overtake
    run(tmp_path / "s", seeds=("gene:1", "gene:2"), depth=2, batch_size=1, max_nodes=50,
        client=client)
    order = [c for c in client.calls if c[0] != "esearch"]
    last_level0 = max(i for i, c in enumerate(order) if c[1] == "gene")
    first_level1 = min(i for i, c in enumerate(order) if c[1] != "gene")
    assert last_level0 < first_level1


class _Limiter:
    def __init__(self):
        self.acquired = 0

    def acquire(self):
        self.acquired += 1
        return 0.0


class _TimedClient(FakeClient):
    """A client with a limiter and answers that take `delay` seconds once the slot is granted."""

    def __init__(self, delay):
        super().__init__()
        self.limiter = _Limiter()
        self.rps = 10.0
        self.delay = delay

    def acheck_batch(self, dbfrom, ids):
        self.limiter.acquire()
        import time

        time.sleep(self.delay)
        return super().acheck_batch(dbfrom, ids)


def test_in_flight_follows_rate_times_latency():
    from crawler.crawling.pipeline import HEADROOM, MAX_IN_FLIGHT, Pipeline
    from crawler.crawling.tasks import CheckTask

    client = _TimedClient(0.02)
    limiter = client.limiter
    pipe = Pipeline(client)
    pipe.latency = 1.0
    assert pipe.target == int(10 * 1.0 * HEADROOM) + 1
    pipe.latency = 3.0
    assert pipe.target == int(10 * 3.0 * HEADROOM) + 1
    pipe.latency = 60.0
    assert pipe.target == MAX_IN_FLIGHT
    # the latency is learnt from the requests themselves (2 s guess -> the real 20 ms)
    for _ in range(30):
        pipe.submit(CheckTask("gene", ["1"]), owner=None)
    answers = [pipe.get(timeout=30) for _ in range(30)]
    assert all(a is not None and a.error is None for a in answers)
    assert pipe.latency < 1.0 and limiter.acquired == 30
    assert client.limiter is not limiter  # wrapped while the pipeline runs ...
    pipe.close(wait=True)
    assert client.limiter is limiter  # ... and given back
    assert Pipeline(client, workers=3).target == 3
