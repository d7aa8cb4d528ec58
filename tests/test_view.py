"""`entrez-graph view`: the selection, the command, and the page as headless Chromium draws it.

The expected selection is computed apart from `crawler.viewing`: with networkx, from
`to_networkx` (an ego graph ignoring link direction). The browser tests load the written file in
Debian's `chromium` (skipped, with the reason, where it is not installed) and read what the page
reports about itself in `<body data-…>` after drawing: the nodes and edges vis-network really
draws, the resources the page fetched (Resource Timing) and the requests its
Content-Security-Policy blocked. One test adds requests to a page on purpose and sees them
caught, and a local server confirms none of them arrived.
"""

from __future__ import annotations

import html.parser
import http.server
import shutil
import subprocess
import threading
import webbrowser
from pathlib import Path
from typing import Any, ClassVar

import networkx as nx
import pytest
from click.testing import CliRunner

import crawler
from crawler.cli import main
from crawler.errors import BadInput
from crawler.exporting import to_networkx
from crawler.journal import Journal
from crawler.store import StorePaths
from crawler.viewing import page_data, select, view, vis_network

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium is not installed (apt-get install -y chromium): page not rendered",
)

HOSTILE = '</script><script>document.body.dataset.pwned="1"</script><!-- & "x"'
NODES = [
    ("gene", "672", 0), ("gene", "675", 1), ("protein", "1", 1), ("protein", "2", 1),
    ("nuccore", "100", 1), ("pubmed", "10", 1), ("pubmed", "11", 2), ("structure", "5", 2),
    ("taxonomy", "9606", 2),
]
EDGES = [
    ("gene", "672", "gene_protein", "protein", "1", None),
    ("gene", "672", "gene_protein_refseq", "protein", "1", None),  # parallel to the one above
    ("protein", "1", "protein_gene", "gene", "672", None),          # and its reverse
    ("gene", "672", "gene_protein", "protein", "2", None),
    ("gene", "672", "gene_nuccore", "nuccore", "100", None),
    ("gene", "672", "gene_pubmed", "pubmed", "10", None),
    ("gene", "675", "gene_pubmed", "pubmed", "10", None),
    ("pubmed", "10", "pubmed_pubmed", "pubmed", "11", 4321),
    ("protein", "1", "protein_structure", "structure", "5", None),
    ("nuccore", "100", "nuccore_taxonomy", "taxonomy", "9606", None),
]
PROPS = {
    ("gene", "672"): {"name": "BRCA1", "organism": "Homo sapiens", "description": HOSTILE},
    ("gene", "675"): {"name": "BRCA2"},
    ("nuccore", "100"): {"accession": "NM_007294.4", "name": "BRCA1 mRNA"},
    ("protein", "1"): {"accession": "NP_009225.1"},
}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    with Journal(StorePaths.of(root).journal) as journal:
        journal.add_nodes(NODES)
        journal.add_edges(EDGES)
        with journal.transaction():
            for (db, uid), data in PROPS.items():
                journal.set_props(db, uid, data)
    return root


def expected(store: Path, center: str, hops: int) -> tuple[set[str], int]:
    """(record keys, link count) of the hops-neighbourhood, by networkx."""
    graph = to_networkx(store)
    keys = set(nx.ego_graph(graph.to_undirected(as_view=True), center, radius=hops))
    return keys, graph.subgraph(keys).number_of_edges()


# -- the selection ------------------------------------------------------------------------------


@pytest.mark.parametrize("hops", [0, 1, 2, 3])
def test_around_equals_the_networkx_neighbourhood(store: Path, hops: int) -> None:
    selection = select(store, around="gene:672", hops=hops)
    keys, n_edges = expected(store, "gene:672", hops)
    assert {n.key for n in selection.nodes} == keys
    assert len(selection.edges) == n_edges
    assert selection.hops["gene:672"] == 0
    assert selection.center == "gene:672"


def test_around_by_accession_or_name_and_filters(store: Path) -> None:
    assert select(store, around="nuccore:NM_007294", hops=0).center == "nuccore:100"
    assert select(store, around="gene:brca2", hops=0).center == "gene:675"
    sel = select(store, around="gene:672", hops=2, dbs=["gene", "protein"])
    assert {n.key for n in sel.nodes} == {"gene:672", "protein:1", "protein:2"}
    assert len(sel.edges) == 4
    sel = select(store, around="gene:672", hops=5, links=["gene_pubmed", "pubmed_pubmed"])
    assert {n.key for n in sel.nodes} == {"gene:672", "gene:675", "pubmed:10", "pubmed:11"}
    whole = select(store)
    assert (len(whole.nodes), len(whole.edges)) == (len(NODES), len(EDGES))
    assert {n.key for n in select(store, dbs=["pubmed"]).nodes} == {"pubmed:10", "pubmed:11"}


def test_page_data_is_escaped_and_complete(store: Path, tmp_path: Path) -> None:
    out = view(store, tmp_path / "v.html", around="gene:672", hops=1)
    assert out == tmp_path / "v.html"
    text = out.read_text(encoding="utf-8")
    assert HOSTILE not in text and "pwned" in text  # the name is there, but cannot close a tag
    assert text.count("</script>") == 4  # guard, data, vis-network, app: nothing else closes
    data = page_data(select(store, around="gene:672", hops=1))
    gene = next(n for n in data["nodes"] if n["id"] == "gene:672")
    assert gene["label"] == "BRCA1" and gene["props"]["description"] == HOSTILE
    assert next(n for n in data["nodes"] if n["id"] == "protein:2")["label"] == "2"  # no name
    assert {e["linkname"] for e in data["edges"]} >= {"gene_protein", "gene_protein_refseq"}
    assert len(set(data["colors"].values())) == len(data["colors"])


# -- the command --------------------------------------------------------------------------------


def _run(*args: str) -> Any:
    return CliRunner().invoke(main, ["view", *args])


def test_command_writes_the_file(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "brca1.html"
    result = _run("--store", str(store), "--around", "gene:672", "--hops", "1", str(out))
    assert result.exit_code == 0, result.output
    keys, n_edges = expected(store, "gene:672", 1)
    assert result.output.strip() == (
        f"Wrote {len(keys)} records and {n_edges} links (gene:672 (BRCA1), 1 hop) to {out}.")
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("args, message", [
    (["--max-nodes", "5"], "the store holds 9 records (more than --max-nodes 5)"),
    (["--around", "gene:672", "--max-nodes", "4"],
     "the selection (gene:672 and 1 hop around it) holds 5 records (more than --max-nodes 4)"),
    (["--max-nodes", "1", "--db", "pubmed"], "holds 2 records (more than --max-nodes 1)"),
    (["--hops", "2"], "--hops needs --around db:uid"),
    (["--around", "gene:999"], "no such record in the store's journal"),
    (["--around", "gene"], "give db:uid"),
    (["--around", "gene:672", "--query", "records_per_db"], "not both"),
    (["--around", "gene:672", "--hops", "-1"], "--hops must be 0 or more"),
    (["--around", "gene:672", "--db", "pubmed"], "not in the chosen --db"),
    (["--db", "snp"], "nothing to view: no records match"),
    (["--param", "gene=672"], "--param needs --query"),
])
def test_bad_input_is_one_line(store: Path, tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "v.html"
    result = _run("--store", str(store), *args, str(out))
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: ") and message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_too_many_links_for_the_records_is_refused_with_the_count(tmp_path: Path) -> None:
    """Three records joined by 35 links (of as many link names): more than 10 per record."""
    root = tmp_path / "dense"
    with Journal(StorePaths.of(root).journal) as journal:
        journal.add_nodes([("gene", "1", 0), ("gene", "2", 1), ("gene", "3", 1)])
        journal.add_edges([("gene", "1", f"gene_link{i}", "gene", str(2 + i % 2), None)
                           for i in range(35)])
    result = _run("--store", str(root), "--max-nodes", "3", str(tmp_path / "v.html"))
    assert result.exit_code == 2
    assert "holds 35 links (more than 30, 10 per --max-nodes)" in result.output
    result = _run("--store", str(root), "--max-nodes", "4", str(tmp_path / "v.html"))
    assert result.exit_code == 0 and "3 records and 35 links" in result.output


def test_an_existing_file_is_replaced_only_with_force(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "v.html"
    out.write_text("mine", encoding="utf-8")
    refused = _run("--store", str(store), str(out))
    assert refused.exit_code == 2 and "pass --force" in refused.output
    assert out.read_text(encoding="utf-8") == "mine"
    forced = _run("--store", str(store), "--force", str(out))
    assert forced.exit_code == 0, forced.output
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_not_html_and_missing_store(store: Path, tmp_path: Path) -> None:
    result = _run("--store", str(store), str(tmp_path / "v.png"))
    assert result.exit_code == 2 and "give OUT a .html name" in result.output
    result = _run("--store", str(tmp_path / "nothing"), str(tmp_path / "v.html"))
    assert result.exit_code == 2 and "no entrez-graph store" in result.output


def test_open_and_the_python_api(store: Path, tmp_path: Path, monkeypatch) -> None:
    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url, *a, **k: opened.append(url) or True)
    result = _run("--store", str(store), "--open", str(tmp_path / "a.html"))
    assert result.exit_code == 0, result.output
    assert opened == [(tmp_path / "a.html").resolve().as_uri()]
    path = crawler.view(store, tmp_path / "b.html", dbs=["gene"])
    assert path == tmp_path / "b.html" and path.is_file() and len(opened) == 1


def test_missing_pyvis_is_a_clear_error(store: Path, tmp_path: Path, monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pyvis" else real(name, *a))
    with pytest.raises(BadInput, match=r"pip install 'entrez-graph\[view\]'"):
        view(store, tmp_path / "v.html")
    assert not (tmp_path / "v.html").exists()


def test_vis_network_comes_from_the_pyvis_package() -> None:
    version, text = vis_network()
    assert version.split(".")[0] >= "9" and f"@version {version}" in text[:400]
    assert "vis-network" in text[:200]


# -- the page in a browser ----------------------------------------------------------------------


class _Dom(html.parser.HTMLParser):
    """<body>'s attributes, the details panel's text and links, and every fetching element."""

    def __init__(self) -> None:
        super().__init__()
        self.body: dict[str, str] = {}
        self.fetching: list[tuple[str, dict[str, str | None]]] = []
        self.links: list[str] = []
        self.details: list[str] = []
        self._in_details = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body":
            self.body = {k: v or "" for k, v in a.items()}
        if tag in ("img", "iframe", "link", "object", "embed", "video", "audio", "source") or (
                tag == "script" and "src" in a):
            self.fetching.append((tag, a))
        if self._in_details or a.get("id") == "details":
            self._in_details += 1
            if tag == "a":
                self.links.append(a.get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        if self._in_details:
            self._in_details -= 1

    def handle_data(self, data: str) -> None:
        if self._in_details:
            self.details.append(data)


def render(url: str, profile: Path) -> _Dom:
    """The DOM after the page ran (virtual time lets the layout finish without waiting)."""
    assert CHROMIUM is not None
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-quic", "--disable-extensions", f"--user-data-dir={profile}",
         "--virtual-time-budget=120000", "--dump-dom", url],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = _Dom()
    dom.feed(proc.stdout)
    assert dom.body, f"no page rendered: {proc.stderr[-2000:]}"
    return dom


def assert_drawn(dom: _Dom, n_nodes: int, n_edges: int) -> None:
    body = dom.body
    assert body.get("data-ready") == "1", body
    assert body.get("data-stabilized") == "1", body
    assert (body["data-drawn-nodes"], body["data-drawn-edges"]) == (str(n_nodes), str(n_edges))
    assert (body["data-expected-nodes"], body["data-expected-edges"]) == (
        str(n_nodes), str(n_edges))


@needs_chromium
def test_the_browser_draws_a_crawl_neighbourhood_and_asks_for_nothing(
    tmp_path: Path, emulator
) -> None:
    """A real crawl through the CLI; the view around BRCA1 drawn in Chromium equals networkx's
    neighbourhood; clicking (#select) shows its properties and its NCBI page; search finds it."""
    store = tmp_path / "crawl"
    runner = CliRunner()
    env = {"ENTREZ_GRAPH_RATE_DIR": str(tmp_path / "rate"), "NCBI_EMAIL": "t@example.org",
           "NCBI_API_KEY": None}
    result = runner.invoke(main, ["crawl", "gene:672", "--depth", "1", "--rps", "1000",
                                  "--summaries", "--store", str(store),
                                  "--eutils-url", emulator.url], env=env)
    assert result.exit_code == 0, result.output
    out = tmp_path / "brca1.html"
    result = runner.invoke(main, ["view", "--store", str(store), "--around", "gene:672", str(out)])
    assert result.exit_code == 0, result.output
    keys, n_edges = expected(store, "gene:672", 1)
    assert len(keys) > 20 and n_edges > len(keys)

    source = _Dom()
    source.feed(out.read_text(encoding="utf-8"))
    assert source.fetching == []  # nothing in the file asks for a resource

    dom = render(f"{out.as_uri()}#search=brca1&select=gene:672", tmp_path / "profile")
    assert "data-pwned" not in dom.body
    assert_drawn(dom, len(keys), n_edges)
    assert (dom.body["data-resources"], dom.body["data-blocked"]) == ("0", "0")
    assert int(dom.body["data-matches"]) >= 1
    text = " ".join(dom.details)
    assert "BRCA1" in text and "Homo sapiens" in text and "Links in this view" in text
    assert dom.links[0] == "https://www.ncbi.nlm.nih.gov/gene/672"


class _Counter(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@needs_chromium
def test_the_page_would_show_a_request_and_none_gets_out(store: Path, tmp_path: Path) -> None:
    """Requests added to a view on purpose are blocked by its policy and counted by the page;
    a local server sees none of them. Hostile record text stays text."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counter)
    _Counter.hits = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        out = view(store, tmp_path / "v.html", around="gene:672", hops=1)
        keys, n_edges = expected(store, "gene:672", 1)
        page = out.read_text(encoding="utf-8").replace(
            '<main id="graph"></main>',
            f'<main id="graph"></main><img src="{base}/pixel.png">'
            f'<link rel="stylesheet" href="{base}/style.css">'
            f'<script src="{base}/lib.js"></script>',
        )
        tampered = tmp_path / "tampered.html"
        tampered.write_text(page, encoding="utf-8")
        dom = render(f"{tampered.as_uri()}#select=gene:672", tmp_path / "profile")
    finally:
        server.shutdown()
        server.server_close()
    assert_drawn(dom, len(keys), n_edges)
    assert int(dom.body["data-blocked"]) >= 3, dom.body
    assert base in dom.body["data-blocked-uris"]
    assert _Counter.hits == []
    assert "data-pwned" not in dom.body
    assert HOSTILE in "".join(dom.details)  # the hostile description, shown as plain text


# -- a crawl writing meanwhile, and a query -----------------------------------------------------


def test_rows_written_after_the_snapshot_are_not_drawn(store: Path, monkeypatch) -> None:
    """The selection is bounded by `max_ids()` taken once (as exports are): records and links a
    crawl commits while `view` reads never show up half (no link without both its records)."""
    with Journal(StorePaths.of(store).journal, create=False) as journal:
        bounds = journal.max_ids()
        journal.add_nodes([("protein", "77", 2)])
        journal.add_edges([("gene", "672", "gene_protein", "protein", "77", None),
                           ("gene", "672", "gene_protein", "protein", "2", None)])  # duplicate
    monkeypatch.setattr(Journal, "max_ids", lambda self: bounds)
    for selection in (select(store, around="gene:672", hops=1), select(store)):
        assert "protein:77" not in {n.key for n in selection.nodes}
        assert all(e.uid_to != "77" for e in selection.edges)
    monkeypatch.undo()
    assert "protein:77" in {n.key for n in select(store, around="gene:672", hops=1).nodes}


def test_view_of_a_bundled_query_on_the_embedded_store(tmp_path: Path, emulator) -> None:
    """`--query` draws what the query returns from the embedded store (crawled for real)."""
    store = tmp_path / "crawl"
    runner = CliRunner()
    env = {"ENTREZ_GRAPH_RATE_DIR": str(tmp_path / "rate"), "NCBI_EMAIL": "t@example.org",
           "NCBI_API_KEY": None}
    result = runner.invoke(main, ["crawl", "gene:672", "--depth", "2", "--rps", "1000",
                                  "--store", str(store), "--eutils-url", emulator.url], env=env)
    assert result.exit_code == 0, result.output
    graph = to_networkx(store)
    chains = {(p, s) for _, p, k in graph.out_edges("gene:672", keys=True)
              if k == "gene_protein_refseq"
              for _, s, k2 in graph.out_edges(p, keys=True) if k2 == "protein_structure"}
    assert chains
    expected_keys = {"gene:672"} | {k for chain in chains for k in chain}
    cypher = ("MATCH p = (:gene {uid: $gene})-[:gene_protein_refseq]->(:protein)"
              "-[:protein_structure]->(:structure) RETURN p")
    out = tmp_path / "chain.html"
    result = runner.invoke(main, ["view", "--store", str(store), "--query", cypher,
                                  "--param", "gene=672", str(out)])
    assert result.exit_code == 0, result.output
    selection = select(store, query=cypher, params=["gene=672"])
    assert {n.key for n in selection.nodes} == expected_keys
    assert sorted((e.source, e.target, e.linkname) for e in selection.edges) == sorted(
        {("gene:672", p, "gene_protein_refseq") for p, _ in chains}
        | {(p, s, "protein_structure") for p, s in chains})
    assert result.output.startswith(f"Wrote {len(expected_keys)} records")
    # a query of columns only has nothing to draw; one that returns paths works the same way
    result = runner.invoke(main, ["view", "--store", str(store), "--query",
                                  "gene_protein_structures", "--param", "gene=672",
                                  str(tmp_path / "cols.html")])
    assert result.exit_code == 2 and "no records or links to draw" in result.output
    paths = select(store, query="paths_between", params=["to_db=structure", "hops:int=2"])
    assert "gene:672" in {n.key for n in paths.nodes}
    assert {n.db for n in paths.nodes} >= {"gene", "structure"}
