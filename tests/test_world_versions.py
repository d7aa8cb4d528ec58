"""World versions: the emulator's world as NCBI changes it between two crawls (issue 13).

Version 0 is today's world exactly; version N drops and adds a known fraction of links and
retires about 1% of the records, deterministically from (seed, step), consistently from both
ends of a link, and the emulator's ELink and ESummary answers say so as NCBI does.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawler.cli import main
from crawler.emulator import World
from crawler.emulator.versions import GROWING
from crawler.emulator.world import REVERSE_LINKS, SUBSET_LINKS
from crawler.eutils.client import EutilsClient
from crawler.journal import Journal
from crawler.linknames import SUBSETS
from crawler.store import StorePaths

Key = tuple[str, str, str, str, str]


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path):
    for var in ("NEO4J_URI", "NCBI_API_KEY", "ENTREZ_GRAPH_STORE", "ENTREZ_GRAPH_EUTILS_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))


@pytest.fixture(scope="module")
def big() -> World:
    """Large enough for the fractions to be measured (about 30k links)."""
    return World.generate(seed=4, size=2000)


@pytest.fixture(scope="module")
def big_links(big: World) -> dict[int, dict[Key, int | None]]:
    """Every link of `big` at versions 0 and 1 (computed once for the module)."""
    return {v: _links(big, v) for v in (0, 1)}


def _links(world: World, version: int) -> dict[Key, int | None]:
    return {(lk.dbfrom, lk.uid, lk.linkname, lk.dbto, lk.target): lk.score
            for lk in world.iter_links(version)}


def _digest(seed: int, size: int, version: int) -> str:
    w = World.generate(seed=seed, size=size, version=version)
    h = hashlib.sha256()
    for lk in w.iter_links():
        h.update(repr(tuple(lk)).encode())
    for db in w.databases():
        for uid, st in sorted(w.retired(db).items()):
            h.update(repr((db, uid, tuple(st))).encode())
    return h.hexdigest()


def test_version_zero_is_todays_world(world: World, tmp_path: Path) -> None:
    v2, v0 = world.at_version(2), World.generate(1, 600, version=0)
    for db in world.databases():
        for uid in world.uids(db):
            assert v2.links_from(db, uid, 0) == world.links_from(db, uid)
            assert v0.summary(db, uid) == world.record(db, uid)
            assert v0.linkouts(db, uid) == world.linkouts(db, uid)
    # a loaded world at version 0 is the file; versions apply to loaded worlds as well
    path = tmp_path / "w.jsonl"
    world.dump(path)
    loaded = World.load(path)
    assert _links(loaded, 0) == _links(world, 0)
    later = World.load(path, version=1)
    assert _links(later, 1) != _links(world, 0)
    assert _links(later, 0) == _links(world, 0)


def test_same_seed_size_version_same_world_in_another_process() -> None:
    here = _digest(3, 300, 2)
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            "from test_world_versions import _digest; print(_digest(3, 300, 2))")
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={"PYTHONHASHSEED": "123", "PATH": "/usr/bin"})
    assert there.stdout.strip() == here
    assert _digest(3, 300, 1) != here


def test_a_step_drops_adds_and_retires_the_known_fractions(big: World, big_links) -> None:
    v0, v1 = big_links[0], big_links[1]
    alive = {(db, uid) for db in big.databases() for uid in big.uids(db)
             if big.record_status(db, uid, 1) is None}
    changeable = [k for k in v0 if (k[0], k[1]) in alive and (k[3], k[4]) in alive
                  and "taxonomy" not in (k[0], k[3]) and k[1] != k[4]
                  and k[2] not in SUBSET_LINKS]
    dropped = [k for k in changeable if k not in v1]
    assert 0.035 < len(dropped) / len(changeable) < 0.065
    growing = [k for k in v0 if min(k[2], REVERSE_LINKS.get(k[2], k[2])) in GROWING]
    added = [k for k in v1 if k not in v0]
    assert added and all(min(k[2], REVERSE_LINKS.get(k[2], k[2])) in GROWING for k in added)
    assert 0.03 < len(added) / len(growing) < 0.065
    assert any(k[2] == "pubmed_pubmed" for k in added)
    # every retired record has lost all its links, from it and to it
    retired = {(db, uid) for db in big.databases() for uid in big.retired(db, 1)}
    records = sum(big.count(db) for db in big.databases() if db != "taxonomy")
    assert 0.005 < len(retired) / records < 0.02
    assert not any((k[0], k[1]) in retired or (k[3], k[4]) in retired for k in v1)
    kinds = Counter(big.record_status(db, uid, 1).kind for db, uid in retired)
    assert kinds["replaced"] and kinds["withdrawn"]


def test_versions_keep_reverse_links_scores_and_subsets_consistent(world: World) -> None:
    big = world.at_version(2)
    v2 = _links(big, 2)
    for (a, u, name, b, t), score in v2.items():
        rev = REVERSE_LINKS.get(name)
        if rev is not None:
            assert (b, t, rev, a, u) in v2, (a, u, name, b, t)
            if rev == name:
                assert v2[(b, t, rev, a, u)] == score
        parent = SUBSET_LINKS.get(name)
        if parent is not None:
            assert (a, u, parent, b, t) in v2
    # steps are cumulative, and link_changes says exactly what a test must expect
    v0 = _links(world, 0)
    added_all = dropped_all = 0
    for db in ("pubmed", "gene"):
        for uid in list(big.uids(db))[:150]:
            added, dropped = big.link_changes(0, 2, db, uid)
            now = {(k[2], k[4]) for k in v2 if k[0] == db and k[1] == uid}
            then = {(k[2], k[4]) for k in v0 if k[0] == db and k[1] == uid}
            assert {(lk.linkname, lk.target) for lk in added} == now - then
            assert {(lk.linkname, lk.target) for lk in dropped} == then - now
            added_all += len(added)
            dropped_all += len(dropped)
    assert added_all and dropped_all


def test_emulator_elink_answers_follow_the_version(big: World, emulator_at) -> None:
    emu = emulator_at(1, world=big)
    w1 = emu.world
    assert w1.version == 1
    pmids = [u for u in big.uids("pubmed") if big.link_changes(0, 1, "pubmed", u)[0]][:5]
    assert pmids
    with EutilsClient(base_url=emu.url, rps=1000) as client:
        for cmd in ("neighbor", "neighbor_score"):
            res = client.elink("pubmed", pmids, cmd=cmd, db="pubmed")
            for ls in res.linksets:
                got = {lk.uid for db in ls.linksetdbs if db.linkname == "pubmed_pubmed"
                       for lk in db.links}
                want = {lk.target for lk in w1.links_from("pubmed", ls.ids[0])
                        if lk.linkname == "pubmed_pubmed"}
                assert got == want
        every = client.elink("pubmed", pmids, cmd="neighbor", db="all")
        for ls in every.linksets:
            got = {(db.linkname, lk.uid) for db in ls.linksetdbs for lk in db.links}
            assert got == {(lk.linkname, lk.target) for lk in w1.links_from("pubmed", ls.ids[0])}
        checked, _ = client.acheck_batch("pubmed", pmids)
        for uid, idls in checked.items():
            assert {li.linkname for li in idls.entrez} == {
                lk.linkname for lk in w1.links_from("pubmed", uid)}
        gone = next(u for u in big.uids("pubmed") if w1.record_status("pubmed", u)
                    and w1.linkouts("pubmed", u) == [] and big.linkouts("pubmed", u))
        res = client.elink("pubmed", [gone], cmd="llinks")
        assert not any(s.objurls for s in res.idurlsets)


def _crawl(url: str, store: Path, *seeds: str) -> dict:
    result = CliRunner().invoke(main, ["crawl", *seeds, "--depth", "1", "--no-embedded",
                                       "--store", str(store), "--eutils-url", url, "--rps", "1000",
                                       "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _edges_from(store: Path, db: str, uid: str) -> set[tuple[str, str]]:
    j = Journal(StorePaths(store).journal, create=False)
    try:
        return {(e.linkname, e.uid_to) for e in j.iter_edges()
                if e.dbfrom == db and e.uid_from == uid and e.linkname not in SUBSETS}
    finally:
        j.close()


def test_crawl_at_version_0_then_1_sees_the_changes_and_summarize_marks_retired(
        big: World, emulator_at, tmp_path: Path) -> None:
    seed = next(u for u in big.uids("pubmed") if all(big.link_changes(0, 1, "pubmed", u))
                and not big.record_status("pubmed", u, 1))
    retired: dict[str, tuple[str, str]] = {}  # wanted kind -> (db, uid)
    for db in ("gene", "nuccore", "protein", "snp", "pubmed"):
        for uid, st in big.retired(db, 1).items():
            retired.setdefault(f"{db} {st.kind}", (db, uid))
    seeds = [f"pubmed:{seed}", *(f"{db}:{uid}" for db, uid in retired.values())]
    first, second = tmp_path / "v0", tmp_path / "v1"
    _crawl(emulator_at(0, world=big).url, first, *seeds)
    v1 = emulator_at(1, world=big)
    _crawl(v1.url, second, *seeds)
    added, dropped = big.link_changes(0, 1, "pubmed", seed)
    before, after = _edges_from(first, "pubmed", seed), _edges_from(second, "pubmed", seed)
    assert after - before == {(lk.linkname, lk.target) for lk in added
                              if lk.linkname not in SUBSETS and lk.target != seed}
    assert before - after == {(lk.linkname, lk.target) for lk in dropped
                              if lk.linkname not in SUBSETS and lk.target != seed}
    # the records the version retired: no links at version 1; summarize (against version 1)
    # of the version-0 crawl marks them as NCBI's answers say
    for db, uid in retired.values():
        assert _edges_from(second, db, uid) == set() != _edges_from(first, db, uid) or (
            not big.links_from(db, uid, 0))
    result = CliRunner().invoke(main, ["summarize", "--store", str(first), "--eutils-url",
                                       v1.url, "--rps", "1000", "--no-sync", "--format",
                                       "json"])
    assert result.exit_code == 0, result.output
    j = Journal(StorePaths(first).journal, create=False)
    try:
        for what, (db, uid) in retired.items():
            st = big.record_status(db, uid, 1)
            status = j.props_of(db, uid).get("status")
            if st.kind == "replaced":
                by = st.by if db in ("gene", "snp") else big.record(db, st.by)["accessionversion"]
                assert status == f"replaced by {by}", what
            elif db == "gene":
                assert status == "discontinued"
            elif db in ("nuccore", "protein"):
                assert status == "withdrawn"
            else:
                assert status == "missing: cannot get document summary", what
        assert "status" not in j.props_of("pubmed", seed)
    finally:
        j.close()
    assert {"gene replaced", "gene withdrawn", "pubmed withdrawn"} <= set(retired)


def test_emulate_cli_refuses_a_negative_version_and_dumps_a_version(tmp_path: Path) -> None:
    bad = CliRunner().invoke(main, ["emulate", "--world-version", "-1"])
    assert bad.exit_code == 2 and "--world-version" in bad.output
    path = tmp_path / "v1.jsonl"
    done = CliRunner().invoke(main, ["emulate", "--size", "600", "--world-version", "1",
                                     "--dump", str(path)])
    assert done.exit_code == 0, done.output
    v1 = World.generate(1, 600, version=1)
    assert _links(World.load(path), 0) == _links(v1, 1)
    loaded = World.load(path)
    for db in ("gene", "pubmed", "protein"):
        for uid, st in v1.retired(db).items():
            assert loaded.summary(db, uid) == v1.summary(db, uid) or st.kind == "withdrawn"


def test_emulate_api_serves_a_version(world: World) -> None:
    from crawler import emulate
    from crawler.errors import BadInput

    gone = next(u for u in world.uids("pubmed") if world.record_status("pubmed", u, 1))
    with emulate(world_seed=1, size=600, world_version=1) as emu, \
            EutilsClient(base_url=emu.url, rps=1000) as client:
        assert emu.world.version == 1
        (doc,) = client.esummary("pubmed", [gone])
        assert doc.error == "cannot get document summary"
    with emulate(world=world, world_version=1) as emu:
        assert emu.world.version == 1 and world.version == 0
    with pytest.raises(BadInput, match="--world-version"):
        emulate(world=world, world_version=-1)
