"""The journal's public API: what sinks, export, status and the engine rely on."""

from __future__ import annotations

import sqlite3

import pytest

from crawler.errors import BadInput, StoreError
from crawler.journal import SCHEMA_VERSION, Cursor, Journal


@pytest.fixture
def journal(tmp_path):
    with Journal(tmp_path / "store") as j:
        yield j


def test_nodes_and_edges_are_unique_and_ids_grow(journal):
    assert journal.add_nodes([("gene", "672", 0), ("protein", "1", 1)]) == 2
    assert journal.add_nodes([("gene", "672", 3), ("protein", "2", 1)]) == 1  # first depth kept
    assert journal.add_edges([("gene", "672", "gene_protein", "protein", "1", None)] * 2) == 1
    assert journal.add_edges([("gene", "672", "gene_protein_refseq", "protein", "1", None)]) == 1
    nodes = journal.nodes_between(0, 100)
    assert [(n.db, n.uid, n.depth) for n in nodes] == [
        ("gene", "672", 0), ("protein", "1", 1), ("protein", "2", 1)]
    assert [n.id for n in nodes] == sorted(n.id for n in nodes)
    ids = journal.max_ids()  # ids only grow (an ignored duplicate may use one up)
    assert ids.node >= 3 and ids.prop == 0
    edges = journal.edges_between(0, ids.edge)
    assert [e.linkname for e in edges] == ["gene_protein", "gene_protein_refseq"]
    assert [e.linkname for e in journal.edges_between(edges[0].id, ids.edge)] == [
        "gene_protein_refseq"]


def test_iterators_filter_and_chunk(journal):
    journal.add_nodes([("gene", str(i), 0) for i in range(25)] + [("protein", "1", 1)])
    journal.add_edges([("gene", str(i), "gene_protein", "protein", "1", i) for i in range(25)])
    journal.add_edges([("gene", "1", "gene_gene", "gene", "2", None)])
    assert len(list(journal.iter_nodes(chunk=4))) == 26
    assert [n.uid for n in journal.iter_nodes(dbs=["protein"], chunk=4)] == ["1"]
    assert len(list(journal.iter_edges(links=["gene_protein"], chunk=3))) == 25
    assert [e.linkname for e in journal.iter_edges(dbs=["gene"])] == ["gene_gene"]


def test_props_merge_and_get_new_ids(journal):
    journal.set_props("gene", "672", {"name": "BRCA1"})
    first = journal.max_ids().prop
    journal.set_props("gene", "672", {"organism": "Homo sapiens"})
    assert journal.props_of("gene", "672") == {"name": "BRCA1", "organism": "Homo sapiens"}
    assert journal.max_ids().prop > first  # a sink's prop cursor sees the change
    rows = list(journal.iter_props())
    assert len(rows) == 1 and rows[0].data["name"] == "BRCA1"
    assert journal.props_of("gene", "1") == {}


def test_cursors_settings_and_stats(journal):
    assert journal.get_cursor("neo4j:x") == Cursor()
    journal.set_cursor("neo4j:x", Cursor(3, 2, 1))
    assert journal.get_cursor("neo4j:x") == Cursor(3, 2, 1)
    journal.set_settings({"depth": 2})
    assert journal.settings() == {"depth": 2}
    journal.add_nodes([("gene", "1", 0)], state="new")
    journal.add_nodes([("gene", "2", 0)], state="done")
    journal.record_failure("gene", "3", "acheck", "Invalid uid")
    journal.count_request("neighbor", 4)
    journal.count_request("neighbor", 1)
    stats = journal.stats()
    assert stats["nodes"] == 2 and stats["pending"] == 1 and stats["failed"] == 1
    assert stats["requests"] == {"neighbor": 5} and stats["no_answer"] == 0


def test_transaction_is_atomic(journal):
    with pytest.raises(RuntimeError), journal.transaction():
        journal.add_nodes([("gene", "1", 0)])
        journal.add_edges([("gene", "1", "gene_gene", "gene", "2", None)])
        raise RuntimeError("crash inside the transaction")
    assert journal.nodes_between(0, 10**9) == [] and journal.edges_between(0, 10**9) == []


def test_inspect_never_creates_and_checks_version(tmp_path):
    store = tmp_path / "store"
    assert Journal.inspect(store) is None
    assert not store.exists()
    with Journal(store) as j:
        j.set_settings({"settings": {"depth": 1}})
    assert Journal.inspect(store) == {"settings": {"depth": 1}}
    con = sqlite3.connect(store / "journal.sqlite")
    con.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    con.commit()
    con.close()
    with pytest.raises(BadInput, match=f"incompatible.*schema 99.*reads {SCHEMA_VERSION}"):
        Journal.inspect(store)
    with pytest.raises(StoreError, match="incompatible"):
        Journal(store)


def test_foreign_files_are_refused(tmp_path):
    other = tmp_path / "other" / "journal.sqlite"
    other.parent.mkdir()
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE x(a)")
    con.commit()
    con.close()
    with pytest.raises(BadInput, match="not an entrez-graph journal"):
        Journal.inspect(other.parent)
    with pytest.raises(StoreError, match="not an entrez-graph journal"):
        Journal(other)
    garbage = tmp_path / "garbage" / "journal.sqlite"
    garbage.parent.mkdir()
    garbage.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(BadInput, match="not an entrez-graph journal"):
        Journal.inspect(garbage.parent)
    with pytest.raises(StoreError):
        Journal(tmp_path / "missing", create=False)


def test_bulk_writes_keep_row_order_types_and_counts_across_chunks(journal, monkeypatch):
    import crawler.journal as journal_module

    monkeypatch.setattr(journal_module, "BULK_CHUNK", 3)  # several statements per call
    rows = [("pubmed", str(u), 2) for u in (50, 7, 900, 7, 12, 3, 50, 8)]
    assert journal.add_nodes(rows, state="terminal") == 6  # duplicates ignored, not counted
    nodes = journal.nodes_between(0, 2**62)
    # ids follow the order given; of two equal rows the first wins (as with executemany)
    assert [n.uid for n in nodes] == ["50", "7", "900", "12", "3", "8"]
    assert [n.id for n in nodes] == sorted(n.id for n in nodes)
    assert {(n.depth, n.state) for n in nodes} == {(2, "terminal")}
    edges = [("gene", "1", "gene_pubmed", "pubmed", str(u), s)
             for u, s in ((50, None), (7, 12), (50, 99), ("0042", 5))]
    assert journal.add_edges(iter(edges)) == 3  # a generator is fine too
    stored = journal.edges_between(0, 2**62)
    assert [(e.uid_to, e.score) for e in stored] == [("50", None), ("7", 12), ("0042", 5)]
    # values keep their SQL types: UIDs stay text (a leading zero survives), scores integers
    types = journal.execute("SELECT DISTINCT typeof(uid_to), typeof(uid_from) FROM edges")
    assert types.fetchall() == [("text", "text")]
    assert journal.execute("SELECT typeof(score) FROM edges WHERE uid_to='7'").fetchone() == (
        "integer",)
    assert journal.add_nodes([]) == 0 and journal.add_edges([]) == 0


def test_bulk_rolls_back_with_its_transaction(journal):
    from crawler.journal import bulk, json_rows

    with pytest.raises(RuntimeError), journal.transaction() as db:
        assert bulk(db, f"INSERT OR IGNORE INTO nodes(db, uid, depth, state) {json_rows(4)}",
                    [("gene", "1", 0, "new"), ("gene", "2", 0, "new")]) == 2
        raise RuntimeError("interrupted")
    assert journal.stats()["nodes"] == 0


def test_set_node_state_many_and_text_with_quotes(journal, monkeypatch):
    import crawler.journal as journal_module

    monkeypatch.setattr(journal_module, "BULK_CHUNK", 4)
    journal.add_nodes([("gene", str(i), 0) for i in range(10)])
    journal.set_node_state("gene", (str(i) for i in range(0, 10, 2)), "done")
    states = dict(journal.execute("SELECT uid, state FROM nodes").fetchall())
    assert [u for u, s in sorted(states.items(), key=lambda kv: int(kv[0])) if s == "done"] == [
        "0", "2", "4", "6", "8"]
    # text passes as JSON, so quotes and backslashes need no escaping by us
    journal.record_failure("gene", "1", "acheck", 'bad "id" \\ here')
    with journal.transaction() as db:
        from crawler.journal import bulk, json_rows

        bulk(db, f"INSERT OR REPLACE INTO failed(db, uid, step, error) {json_rows(4)}",
             [("gene", "3", "acheck", "it's \"odd\" \\ é")])
    errors = dict(journal.execute("SELECT uid, error FROM failed").fetchall())
    assert errors == {"1": 'bad "id" \\ here', "3": "it's \"odd\" \\ é"}
