"""Every bundled query, run through `entrez-graph query` on a store made by `entrez-graph crawl`
against the emulator, equals the answer computed from the emulator's own world (`links_from`).

Record names and accessions come from the journal (what ESummary stored), never from the store.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawler.cli import main
from crawler.emulator import Emulator, World
from crawler.journal import Journal
from crawler.querying import BundledQuery, cypher_dir, list_queries, return_columns, run_query
from crawler.store import StorePaths

SEED = ("gene", "672")
DEPTH = 2
LINKS = ("gene_protein_refseq", "protein_structure", "gene_nuccore", "gene_nuccore_refseqrna",
         "nuccore_gene", "nuccore_pubmed", "protein_pubmed", "pubmed_pubmed", "gene_pubmed",
         "pubmed_nuccore")
REQUIRED = {"gene_refseq_proteins", "gene_protein_structures", "nucleotide_genes",
            "related_articles", "sequence_publications", "links_per_linkname", "records_per_db",
            "paths_between", "top_hubs"}

Edge = tuple[str, str, str, str, str, "int | None"]  # dbfrom, uid, linkname, dbto, target, score


def world_subgraph(world: World) -> tuple[dict[tuple[str, str], int], set[Edge]]:
    """The crawl's graph by the documented rule: seeds at depth 0, every record of depth < DEPTH
    expanded, every link with a followed link name an edge (no self-links), targets recorded at
    their smallest depth."""
    depth = {SEED: 0}
    edges: set[Edge] = set()
    frontier = [SEED]
    for level in range(DEPTH):
        nxt = []
        for db, uid in sorted(frontier):
            for link in world.links_from(db, uid):
                if link.linkname not in LINKS or (link.dbto, link.target) == (db, uid):
                    continue
                edges.add((db, uid, link.linkname, link.dbto, link.target, link.score))
                if (link.dbto, link.target) not in depth:
                    depth[(link.dbto, link.target)] = level + 1
                    nxt.append((link.dbto, link.target))
        frontier = nxt
    return depth, edges


def invoke(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


@pytest.fixture(scope="module")
def crawled(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """One crawl through the real CLI (scores and summaries on), shared by this module's tests."""
    store = tmp_path_factory.mktemp("bundled") / "store"
    with Emulator(world, rate_limit=0) as emu:
        args = ["crawl", f"{SEED[0]}:{SEED[1]}", "--depth", str(DEPTH), "--scores",
                "--summaries", "--store", str(store), "--eutils-url", emu.url, "--rps", "1000"]
        for link in LINKS:
            args += ["--link", link]
        invoke(*args)
    depth, edges = world_subgraph(world)
    with Journal(StorePaths.of(store).journal, create=False) as journal:
        props = {(p.db, p.uid): p.data for p in journal.iter_props()}
        journal_edges = {
            (e.dbfrom, e.uid_from, e.linkname, e.dbto, e.uid_to): e.score
            for e in journal.iter_edges()
        }
    # The crawl itself is the ENGINE's business; this only guards the premise of the answers.
    assert {e[:5] for e in edges} == set(journal_edges)
    scores = {e[:5]: e[5] for e in edges}
    assert scores == journal_edges
    yield {"store": store, "depth": depth, "edges": edges, "props": props}


def query(store: Path, name: str, *params: str) -> list[dict]:
    args = ["query", "--store", str(store), "--format", "json", name]
    for p in params:
        args += ["--param", p]
    return json.loads(invoke(*args))


def _name(c: dict, db: str, uid: str) -> str | None:
    return c["props"].get((db, uid), {}).get("name")


def _acc(c: dict, db: str, uid: str) -> str | None:
    return c["props"].get((db, uid), {}).get("accession")


# -- the files -----------------------------------------------------------------------------------


def test_bundled_files_are_complete_and_well_formed() -> None:
    queries = {q.name: q for q in list_queries()}
    assert set(queries) >= REQUIRED
    for q in queries.values():
        assert q.description, q.name
        ladybug_text, neo4j_text = q.text_for("embedded"), q.text_for("neo4j")
        for text in (ladybug_text, neo4j_text):
            assert text.startswith(f"// name: {q.name}\n")
            assert "ORDER BY" in text, f"{q.name}: results must be deterministic"
            for used in set(re.findall(r"\$([a-z_]+)", text)):
                assert used in q.params, f"{q.name} uses ${used} without a header default"
        assert return_columns(ladybug_text) == return_columns(neo4j_text), q.name
        # Dialects: LadybugDB has label(x) and list_transform; Neo4j has type(r) and labels(n).
        assert not re.search(r"\btype\(|\blabels\(", ladybug_text), q.name
        assert not re.search(r"\blabel\(|list_transform|list_to_string", neo4j_text), q.name
    assert queries["gene_refseq_proteins"].params == {"gene": "672"}
    assert queries["related_articles"].params == {"pmid": "", "limit": 10}
    assert all(p.suffixes[-1] == ".cypher" for p in cypher_dir().iterdir() if p.is_file())


def test_list_shows_every_query() -> None:
    out = invoke("query", "--list")
    for name in REQUIRED:
        assert name in out
    listed = json.loads(invoke("query", "--list", "--format", "json"))
    assert {q["name"] for q in listed} >= REQUIRED
    assert next(q for q in listed if q["name"] == "top_hubs")["params"] == {"limit": 10}


# -- the answers ----------------------------------------------------------------------------------


def test_gene_refseq_proteins(crawled: dict) -> None:
    proteins = sorted(t for db, uid, link, _, t, _ in crawled["edges"]
                      if (db, uid, link) == ("gene", "672", "gene_protein_refseq"))
    expected = [
        {"gene": "672", "gene_name": _name(crawled, "gene", "672"), "protein": p,
         "accession": _acc(crawled, "protein", p), "protein_name": _name(crawled, "protein", p)}
        for p in proteins
    ]
    assert len(expected) > 3 and expected[0]["gene_name"] == "BRCA1"
    assert all(row["protein_name"] for row in expected)  # names beside UIDs
    assert query(crawled["store"], "gene_refseq_proteins", "gene=672") == expected
    assert query(crawled["store"], "gene_refseq_proteins") == expected  # the default
    assert query(crawled["store"], "gene_refseq_proteins", "gene=999999999") == []


def test_gene_protein_structures(crawled: dict) -> None:
    refseq = {t for db, uid, link, _, t, _ in crawled["edges"]
              if (db, uid, link) == ("gene", "672", "gene_protein_refseq")}
    pairs = sorted((uid, t) for db, uid, link, _, t, _ in crawled["edges"]
                   if db == "protein" and link == "protein_structure" and uid in refseq)
    expected = [
        {"gene": "672", "gene_name": "BRCA1", "protein": p,
         "protein_name": _name(crawled, "protein", p), "structure": s,
         "structure_name": _name(crawled, "structure", s)}
        for p, s in pairs
    ]
    assert expected, "the emulator's BRCA1 chain reaches structures"
    assert query(crawled["store"], "gene_protein_structures") == expected


def test_nucleotide_genes(crawled: dict) -> None:
    pairs = set()
    for db, uid, link, dbto, t, _ in crawled["edges"]:
        if (db, dbto, link) == ("nuccore", "gene", "nuccore_gene"):
            pairs.add((uid, t))
        elif db == "gene" and dbto == "nuccore" and link.startswith("gene_nuccore"):
            pairs.add((t, uid))
    expected = [
        {"nuccore": n, "accession": _acc(crawled, "nuccore", n), "gene": g,
         "gene_name": _name(crawled, "gene", g)}
        for n, g in sorted(pairs)
    ]
    assert len(expected) > 10
    assert query(crawled["store"], "nucleotide_genes") == expected
    one = expected[0]["nuccore"]
    assert query(crawled["store"], "nucleotide_genes", f"nuccore={one}") == [
        r for r in expected if r["nuccore"] == one]


def test_related_articles(crawled: dict) -> None:
    links = [(uid, t, s) for db, uid, link, _, t, s in crawled["edges"] if link == "pubmed_pubmed"]
    assert links and all(s is not None for *_, s in links), "crawled with --scores"
    by_source = Counter(uid for uid, _, _ in links)
    pmid = sorted(by_source, key=lambda u: (-by_source[u], u))[0]
    ranked = sorted((x for x in links if x[0] == pmid), key=lambda x: (-x[2], x[0], x[1]))
    expected = [
        {"pmid": pmid, "related": t, "title": _name(crawled, "pubmed", t), "score": s}
        for _, t, s in ranked[:3]
    ]
    assert query(crawled["store"], "related_articles", f"pmid={pmid}", "limit=3") == expected
    overall = sorted(links, key=lambda x: (-x[2], x[0], x[1]))[:10]
    got = query(crawled["store"], "related_articles")
    assert [(r["pmid"], r["related"], r["score"]) for r in got] == overall


def test_sequence_publications(crawled: dict) -> None:
    pairs = set()
    for db, uid, _, dbto, t, _ in crawled["edges"]:
        if db in ("nuccore", "protein") and dbto == "pubmed":
            pairs.add((db, uid, t))
        elif db == "pubmed" and dbto in ("nuccore", "protein"):
            pairs.add((dbto, t, uid))
    expected = [
        {"db": db, "uid": uid, "accession": _acc(crawled, db, uid), "pmid": p,
         "title": _name(crawled, "pubmed", p)}
        for db, uid, p in sorted(pairs)
    ]
    assert {r["db"] for r in expected} == {"nuccore", "protein"}
    assert query(crawled["store"], "sequence_publications") == expected
    db, uid = expected[-1]["db"], expected[-1]["uid"]
    assert query(crawled["store"], "sequence_publications", f"db={db}", f"uid={uid}") == [
        r for r in expected if (r["db"], r["uid"]) == (db, uid)]


def test_links_per_linkname(crawled: dict) -> None:
    counts = Counter((link, db, dbto) for db, _, link, dbto, _, _ in crawled["edges"])
    expected = [
        {"linkname": link, "dbfrom": db, "dbto": dbto, "links": n}
        for (link, db, dbto), n in sorted(counts.items())
    ]
    assert query(crawled["store"], "links_per_linkname") == expected


def test_records_per_db(crawled: dict) -> None:
    by_db: dict[str, list[str]] = defaultdict(list)
    for db, uid in crawled["depth"]:
        by_db[db].append(uid)
    expected = [
        {"db": db, "records": len(uids),
         "named": sum(1 for u in uids if _name(crawled, db, u) is not None)}
        for db, uids in sorted(by_db.items())
    ]
    assert query(crawled["store"], "records_per_db") == expected


def test_top_hubs(crawled: dict) -> None:
    degree: Counter = Counter()
    for db, uid, _, dbto, t, _ in crawled["edges"]:
        degree[(db, uid)] += 1
        degree[(dbto, t)] += 1
    ranked = sorted(degree.items(), key=lambda kv: (-kv[1], kv[0]))[:7]
    expected = [
        {"db": db, "uid": uid, "name": _name(crawled, db, uid), "links": n}
        for (db, uid), n in ranked
    ]
    assert expected[0]["uid"] == "672"
    assert query(crawled["store"], "top_hubs", "limit=7") == expected


def _trails(edges: set[Edge], start: tuple[str, str], to_db: str, hops: int) -> list[dict]:
    """Every path of at most `hops` links, either direction, no link used twice (Cypher's rule)."""
    incident: dict[tuple[str, str], list[tuple[Edge, tuple[str, str]]]] = defaultdict(list)
    for e in edges:
        a, b = (e[0], e[1]), (e[3], e[4])
        incident[a].append((e, b))
        incident[b].append((e, a))
    found = []

    def walk(node: tuple[str, str], route: list, via: list, used: set) -> None:
        if via and node[0] == to_db:
            found.append({"hops": len(via), "route": " ".join(f"{d}:{u}" for d, u in route),
                          "via": " ".join(via)})
        if len(via) == hops:
            return
        for e, other in incident[node]:
            if e not in used:
                walk(other, [*route, other], [*via, e[2]], used | {e})

    walk(start, [start], [], set())
    return sorted(found, key=lambda p: (p["hops"], p["route"], p["via"]))


def test_paths_between(crawled: dict) -> None:
    expected = _trails(crawled["edges"], SEED, "structure", 2)
    assert expected
    got = query(crawled["store"], "paths_between", "hops=2", "limit=1000")
    assert [{k: r[k] for k in ("hops", "route", "via")} for r in got] == expected
    first = got[0]["path"]
    assert [f"{n['db']}:{n['uid']}" for n in first["nodes"]] == expected[0]["route"].split()
    assert [r["linkname"] for r in first["rels"]] == expected[0]["via"].split()
    # One target, a longer bound, and the default limit.
    target = expected[-1]["route"].split()[-1].split(":")[1]
    three = _trails(crawled["edges"], SEED, "structure", 3)
    got = query(crawled["store"], "paths_between", f"to_uid={target}")
    assert [r["route"] for r in got] == [
        p["route"] for p in three if p["route"].endswith(f"structure:{target}")][:25]


def test_missing_tables_mean_no_rows(world: World, tmp_path: Path) -> None:
    """A crawl without protein_structure links has no such table: the answer is no rows."""
    store = tmp_path / "store"
    with Emulator(world, rate_limit=0) as emu:
        invoke("crawl", "gene:672", "--depth", "1", "--link", "gene_protein_refseq",
               "--store", str(store), "--eutils-url", emu.url, "--rps", "1000")
    result = run_query(store, "gene_protein_structures", {})
    assert result.columns == ["gene", "gene_name", "protein", "protein_name", "structure",
                              "structure_name"]
    assert result.rows == []
    assert len(run_query(store, "gene_refseq_proteins", {}).rows) > 3
    for q in list_queries():  # every bundled query answers on a store lacking most tables
        assert isinstance(run_query(store, q.name, {}).rows, list), q.name


def test_columns_parsed_from_every_query(crawled: dict) -> None:
    for q in list_queries():
        assert isinstance(q, BundledQuery)
        assert run_query(crawled["store"], q.name, {}).columns == q.columns, q.name


def test_packaged_folder_is_preferred_and_headers_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An installed wheel carries the queries as package data (crawler/cypher): that copy wins."""
    import importlib.resources

    from crawler import querying
    from crawler.errors import StoreError

    package = tmp_path / "crawler"
    (package / "cypher").mkdir(parents=True)
    (package / "cypher" / "only_one.cypher").write_text(
        "// name: only_one\n// params: uid=\"5\", n=3\n// answers: a test\n"
        "MATCH (g:gene {uid: $uid}) RETURN g.uid AS uid LIMIT $n\n"
    )
    monkeypatch.setattr(importlib.resources, "files", lambda name: package)
    querying._load.cache_clear()
    assert cypher_dir() == package / "cypher"
    (q,) = list_queries()
    assert (q.name, q.params, q.description) == ("only_one", {"uid": "5", "n": 3}, "a test")
    assert q.columns == ["uid"]
    (package / "cypher" / "broken.neo4j.cypher").write_text("// name: other\nRETURN 1 AS x\n")
    querying._load.cache_clear()  # the folder is read once per process
    with pytest.raises(StoreError, match="header names 'other'"):
        list_queries()


# -- every bundled query at every value it allows ------------------------------------------------

# Integer parameters without an upper bound (limits) are swept over LIMITS; UID parameters over
# "", one absent UID and the records with the most answers (SAMPLE of them, and the first and last).
LIMITS = (1, 2, 3, 10, 100_000)
SAMPLE = 4
# paths_between from a structure: every trail of up to 4 links is compared (a few thousand); from
# gene:672 the trails into pubmed number 350,000 at 4 links, so only structures are asked there.
PATHS_FROM = ("structure", "200001")
PATH_ROWS = 300  # the first rows of each run are compared (the order is part of the answer)


def _edges_of(c: dict) -> set[Edge]:
    return c["edges"]


def _oracle_gene_refseq_proteins(c: dict, p: dict) -> list[dict]:
    return [
        {"gene": p["gene"], "gene_name": _name(c, "gene", p["gene"]), "protein": t,
         "accession": _acc(c, "protein", t), "protein_name": _name(c, "protein", t)}
        for t in sorted(t for db, uid, link, _, t, _ in _edges_of(c)
                        if (db, uid, link) == ("gene", p["gene"], "gene_protein_refseq"))
    ]


def _oracle_gene_protein_structures(c: dict, p: dict) -> list[dict]:
    refseq = {t for db, uid, link, _, t, _ in _edges_of(c)
              if (db, uid, link) == ("gene", p["gene"], "gene_protein_refseq")}
    pairs = sorted((uid, t) for db, uid, link, _, t, _ in _edges_of(c)
                   if db == "protein" and link == "protein_structure" and uid in refseq)
    return [
        {"gene": p["gene"], "gene_name": _name(c, "gene", p["gene"]), "protein": pr,
         "protein_name": _name(c, "protein", pr), "structure": s,
         "structure_name": _name(c, "structure", s)}
        for pr, s in pairs
    ]


def _oracle_nucleotide_genes(c: dict, p: dict) -> list[dict]:
    pairs = set()
    for db, uid, link, dbto, t, _ in _edges_of(c):
        if (db, dbto, link) == ("nuccore", "gene", "nuccore_gene"):
            pairs.add((uid, t))
        elif db == "gene" and dbto == "nuccore" and link.startswith("gene_nuccore"):
            pairs.add((t, uid))
    return [
        {"nuccore": n, "accession": _acc(c, "nuccore", n), "gene": g,
         "gene_name": _name(c, "gene", g)}
        for n, g in sorted(pairs) if p["nuccore"] in ("", n)
    ]


def _oracle_related_articles(c: dict, p: dict) -> list[dict]:
    links = [(uid, t, s) for db, uid, link, _, t, s in _edges_of(c)
             if link == "pubmed_pubmed" and p["pmid"] in ("", uid)]
    ranked = sorted(links, key=lambda x: (-(x[2] if x[2] is not None else -1), x[0], x[1]))
    return [{"pmid": a, "related": b, "title": _name(c, "pubmed", b), "score": s}
            for a, b, s in ranked[: p["limit"]]]


def _oracle_sequence_publications(c: dict, p: dict) -> list[dict]:
    pairs = set()
    for db, uid, _, dbto, t, _ in _edges_of(c):
        if db in ("nuccore", "protein") and dbto == "pubmed":
            pairs.add((db, uid, t))
        elif db == "pubmed" and dbto in ("nuccore", "protein"):
            pairs.add((dbto, t, uid))
    return [
        {"db": db, "uid": uid, "accession": _acc(c, db, uid), "pmid": pm,
         "title": _name(c, "pubmed", pm)}
        for db, uid, pm in sorted(pairs) if p["db"] in ("", db) and p["uid"] in ("", uid)
    ]


def _oracle_links_per_linkname(c: dict, p: dict) -> list[dict]:
    counts = Counter((link, db, dbto) for db, _, link, dbto, _, _ in _edges_of(c))
    return [{"linkname": link, "dbfrom": db, "dbto": dbto, "links": n}
            for (link, db, dbto), n in sorted(counts.items())]


def _oracle_records_per_db(c: dict, p: dict) -> list[dict]:
    by_db: dict[str, list[str]] = defaultdict(list)
    for db, uid in c["depth"]:
        by_db[db].append(uid)
    return [{"db": db, "records": len(uids),
             "named": sum(1 for u in uids if _name(c, db, u) is not None)}
            for db, uids in sorted(by_db.items())]


def _oracle_top_hubs(c: dict, p: dict) -> list[dict]:
    degree: Counter = Counter()
    for db, uid, _, dbto, t, _ in _edges_of(c):
        degree[(db, uid)] += 1
        degree[(dbto, t)] += 1
    ranked = sorted(degree.items(), key=lambda kv: (-kv[1], kv[0]))[: p["limit"]]
    return [{"db": db, "uid": uid, "name": _name(c, db, uid), "links": n}
            for (db, uid), n in ranked]


def _oracle_paths_between(c: dict, p: dict) -> list[dict]:
    found = [t for t in _trails(_edges_of(c), (p["from_db"], p["from_uid"]), p["to_db"], p["hops"])
             if p["to_uid"] in ("", t["route"].rsplit(":", 1)[1])]
    return found[: p["limit"]]


ORACLES = {name[len("_oracle_"):]: f for name, f in list(globals().items())
           if name.startswith("_oracle_")}


def _domains(c: dict, q: BundledQuery) -> list[dict]:
    """The parameter values the sweep runs for `q`: each parameter through all its allowed
    values (the others at their defaults), and for paths_between every hop count with every
    target database."""
    uids: dict[str, list[str]] = defaultdict(list)
    for db, uid in sorted(c["depth"]):
        uids[db].append(uid)
    if q.name == "paths_between":
        runs: list[dict] = []
        for hops in q.allowed["hops"].values(q.params["hops"]):
            runs.append({"hops": hops, "limit": 100_000})
            runs += [{"hops": hops, "from_db": PATHS_FROM[0], "from_uid": PATHS_FROM[1],
                      "to_db": db, "limit": PATH_ROWS} for db in sorted(uids)]
        runs += [{"hops": 4, "to_uid": s} for s in uids["structure"]]
        runs += [{"hops": 4, "from_db": db, "from_uid": uids[db][-1], "limit": 100_000}
                 for db in sorted(uids)]
        return runs + [{"limit": n} for n in LIMITS]
    by_param = {"gene": "gene", "nuccore": "nuccore", "pmid": "pubmed"}
    runs = [{}]
    for key, default in q.params.items():
        allowed = q.allowed.get(key)
        if allowed is not None and allowed.high is None and not allowed.choices:
            values: list = list(LIMITS)
        elif allowed is not None:
            values = allowed.values(default)
        else:
            candidates = (uids[by_param[key]] if key in by_param
                          else uids["nuccore"] + uids["protein"] if key == "uid" else None)
            assert candidates is not None, f"{q.name}: no values to sweep for {key!r}"
            rows = Counter({u: len(ORACLES[q.name](c, q.typed({key: u}))) for u in candidates})
            busiest = [u for u, _ in rows.most_common(SAMPLE)]
            values = ["", "999999999", candidates[0], candidates[-1], *busiest]
        runs += [{key: v} for v in dict.fromkeys(values)]
    return runs


def _rows(result) -> list[dict]:
    return result.plain_records()


def test_every_bundled_query_at_every_allowed_value(crawled: dict) -> None:
    """The embedded store answers every bundled query, at every parameter value its header
    allows, exactly as the crawl's own graph does (paths: the same trails, and each row's route
    and links agree with its path)."""
    queries = list_queries()
    assert {q.name for q in queries} == set(ORACLES), "every bundled query needs an oracle"
    runs = 0
    for q in queries:
        for given in _domains(crawled, q):
            params = q.typed(given)
            got = _rows(run_query(crawled["store"], q.name, given))
            expected = ORACLES[q.name](crawled, params)
            runs += 1
            if q.name == "paths_between":
                for row in got:
                    path = row.pop("path")
                    assert [f"{n['db']}:{n['uid']}" for n in path["nodes"]] == row["route"].split()
                    assert [r["linkname"] for r in path["rels"]] == row["via"].split()
            assert got == expected, (q.name, given)
    assert runs > 60


def test_values_outside_what_a_query_allows_are_refused(crawled: dict) -> None:
    for args, message in [
        (("paths_between", "--param", "hops=5"), "'hops' of 'paths_between' must be between 1"),
        (("paths_between", "--param", "hops=0"), "must be between 1 and 4, not 0"),
        (("top_hubs", "--param", "limit=0"), "must be at least 1"),
        (("top_hubs", "--param", "limit=ten"), "must be an integer"),
        (("sequence_publications", "--param", "db=gene"), "must be one of"),
    ]:
        result = CliRunner().invoke(main, ["query", "--store", str(crawled["store"]), *args])
        assert result.exit_code == 2, result.output
        assert result.output.startswith("Error: ") and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("where", ["store", "neo4j"])
def test_a_missing_parameter_is_named_on_both_stores(
    where: str, crawled: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cypher using $g without --param g: LadybugDB answered no rows, Neo4j refuses; both now say
    which parameter is missing, before the query reaches either store."""
    from crawler.sinks import neo4j as neo4j_sink

    def never(*args, **kwargs):
        raise AssertionError("the query reached Neo4j")

    monkeypatch.setattr(neo4j_sink, "run_cypher", never)
    target = (["--store", str(crawled["store"])] if where == "store"
              else ["--neo4j", "bolt://127.0.0.1:1"])
    text = "MATCH (g:gene {uid: $g}) RETURN g.uid AS uid // not $h"
    result = CliRunner().invoke(main, ["query", *target, text])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == "Error: missing parameter g: give --param g=VALUE"
    ok = CliRunner().invoke(main, ["query", "--store", str(crawled["store"]), text,
                                   "--param", "g=672", "--format", "json"])
    assert json.loads(ok.output) == [{"uid": "672"}]
