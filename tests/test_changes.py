"""Removals and updates flow through the sinks (issue 13): the journal's `changes` and its API.

The refresh engine removes links NCBI no longer returns and updates depths and scores through
`Journal.remove_edges / remove_nodes / update_nodes / update_edges`; each change is a row with a
growing id, applied by every sink from its own change cursor, before the additions of its pass.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from crawler import journal as journal_module
from crawler.journal import Cursor, Journal
from crawler.sinks.verify import rows_behind


def _small(journal: Journal) -> None:
    journal.add_nodes([("gene", "1", 0), ("protein", "2", 1), ("protein", "3", 1),
                       ("pubmed", "4", 1)])
    journal.add_edges([
        ("gene", "1", "gene_protein", "protein", "2", None),
        ("gene", "1", "gene_protein", "protein", "3", None),
        ("gene", "1", "gene_pubmed", "pubmed", "4", None),
        ("pubmed", "4", "pubmed_gene", "gene", "1", 5),
        ("protein", "3", "protein_gene", "gene", "1", None),
    ])
    journal.set_props("protein", "3", {"name": "P3"})


def _changes(journal: Journal) -> list[tuple]:
    return [(c.kind, c.db, c.uid, c.linkname, c.uid_to, c.depth, c.score)
            for c in journal.changes_between(0, 10**9)]


def test_removals_change_the_graph_and_append_change_rows(tmp_path: Path) -> None:
    with Journal(tmp_path / "s") as journal:
        _small(journal)
        before = journal.max_ids()
        with journal.transaction() as con:
            assert journal.remove_edges(con, [
                ("gene", "1", "gene_protein", "protein", "2"),
                ("gene", "1", "gene_protein", "protein", "2"),  # twice: removed once
                ("gene", "9", "gene_protein", "protein", "2"),  # unknown: skipped
            ]) == 1
            assert journal.remove_nodes(con, [("protein", "3"), ("nuccore", "7")]) == 1
        assert _changes(journal) == [
            ("edge-", "gene", "1", "gene_protein", "2", None, None),
            # the node's edges first (both directions, in id order), then the node
            ("edge-", "gene", "1", "gene_protein", "3", None, None),
            ("edge-", "protein", "3", "protein_gene", "1", None, None),
            ("node-", "protein", "3", None, None, 1, None),
        ]
        assert [(n.db, n.uid) for n in journal.iter_nodes()] == [
            ("gene", "1"), ("protein", "2"), ("pubmed", "4")]
        assert {e.linkname for e in journal.iter_edges()} == {"gene_pubmed", "pubmed_gene"}
        assert journal.props_of("protein", "3") == {}
        # the bounds never move back, so no sink's cursor is ever past them
        after = journal.max_ids()
        assert (after.node, after.edge, after.prop) == (before.node, before.edge, before.prop)
        assert after.change == 4
        behind = rows_behind(journal, Cursor(after.node, after.edge, after.prop, 1))
        assert behind["changes"] == 3 and behind["total"] == 3
        # a record seen again is a new row, after its removal
        journal.add_nodes([("protein", "3", 2)])
        assert journal.nodes_between(after.node, 10**9)[0].uid == "3"


def test_updates_write_a_change_only_where_a_value_changed(tmp_path: Path) -> None:
    with Journal(tmp_path / "s") as journal:
        _small(journal)
        with journal.transaction() as con:
            assert journal.update_nodes(con, [("pubmed", "4", 2, None), ("gene", "1", 0, None),
                                              ("gene", "99", 1, None)]) == 1
            assert journal.update_edges(con, [
                ("pubmed", "4", "pubmed_gene", "gene", "1", 9, None),
                ("gene", "1", "gene_pubmed", "pubmed", "4", None, None),  # unchanged
            ]) == 1
        assert _changes(journal) == [
            ("node~", "pubmed", "4", None, None, 2, None),
            ("edge~", "pubmed", "4", "pubmed_gene", "1", None, 9),
        ]
        assert {(n.uid, n.depth) for n in journal.iter_nodes()} >= {("4", 2), ("1", 0)}
        assert {e.score for e in journal.iter_edges() if e.linkname == "pubmed_gene"} == {9}


def test_changes_roll_back_with_the_callers_transaction(tmp_path: Path) -> None:
    with Journal(tmp_path / "s") as journal:
        _small(journal)
        with pytest.raises(RuntimeError), journal.transaction() as con:
            journal.remove_nodes(con, [("gene", "1")])
            raise RuntimeError("the refresh failed midway")
        assert journal.max_ids().change == 0 and len(list(journal.iter_edges())) == 5


def _schema_1(path: Path) -> None:
    """A journal as schema 1 made it: no `changes`, no change cursor."""
    schema = journal_module.SCHEMA
    schema = schema[: schema.index("-- What was removed")]
    schema = schema.replace(",\n    change_cursor INTEGER NOT NULL DEFAULT 0", "")
    db = sqlite3.connect(path)
    db.executescript(
        schema + "INSERT INTO meta VALUES ('schema_version', '1');"
        "INSERT INTO nodes(db, uid, depth) VALUES ('gene', '1', 0);"
        "INSERT INTO cursors(sink, node_cursor) VALUES ('neo4j:x', 1);"
    )
    db.commit()
    db.close()


def test_a_schema_1_journal_is_read_as_it_is_and_migrated_by_writers(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    _schema_1(path)
    with Journal(path, create=False) as reader:  # a reader changes nothing
        assert reader.get_cursor("neo4j:x") == Cursor(1, 0, 0, 0)
        assert reader.max_ids().change == 0 and reader.changes_between(0, 10) == []
        assert rows_behind(reader, Cursor())["changes"] == 0
    assert sqlite3.connect(path).execute("SELECT value FROM meta").fetchone()[0] == "1"
    with Journal(path) as writer:
        assert writer.get_meta("schema_version") == str(journal_module.SCHEMA_VERSION)
        assert writer.get_cursor("neo4j:x") == Cursor(1, 0, 0, 0)
        with writer.transaction() as con:
            writer.remove_nodes(con, [("gene", "1")])
        writer.set_cursor("neo4j:x", Cursor(1, 0, 0, 1))
        assert writer.cursors() == {"neo4j:x": Cursor(1, 0, 0, 1)}
