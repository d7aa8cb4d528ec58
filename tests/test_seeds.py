"""Seed parsing, seed files and ESearch resolution (against a stand-in searcher)."""

from __future__ import annotations

import io

import pytest

from crawler.errors import BadInput, PermanentError
from crawler.eutils.models import SearchResult
from crawler.seeds import parse_seed, parse_seeds, read_seed_lines, resolve_seeds, search_term


class Searcher:
    def __init__(self, answers):
        self.answers = answers
        self.terms: list[tuple[str, str, int]] = []

    def esearch(self, db, term, retmax=20):
        self.terms.append((db, term, retmax))
        answer = self.answers.get((db, term))
        if isinstance(answer, Exception):
            raise answer
        ids = tuple(answer or ())
        return SearchResult(count=len(ids), ids=ids)


def test_parse_seed_forms():
    assert (parse_seed("gene:672").db, parse_seed("gene:672").value) == ("gene", "672")
    assert parse_seed("nucleotide:NM_007294.4").db == "nuccore"
    assert parse_seed(" Structure:1JM7 ").db == "structure"
    assert not parse_seed("nuccore:NM_007294").is_uid
    assert parse_seeds(["gene:1", "gene:1", "gene:2"]) == [parse_seed("gene:1"),
                                                            parse_seed("gene:2")]


@pytest.mark.parametrize(
    ("text", "message"),
    [("672", "invalid seed"), ("gene:", "invalid seed"), (":672", "invalid seed"),
     ("gnee:672", "unknown database"), ("gene:6 72", "invalid ID"),
     ("gene:67;2", "invalid ID"), ("Gene Name:1", "database")],
)
def test_parse_seed_errors(text, message):
    with pytest.raises(BadInput, match=message):
        parse_seed(text)


def test_search_terms_per_database():
    assert search_term(parse_seed("nuccore:NM_007294")) == "NM_007294[accn]"
    assert search_term(parse_seed("pmc:PMC1234567")) == "PMC1234567[pmcid]"
    assert search_term(parse_seed("snp:rs80357906")) == "rs80357906"
    assert search_term(parse_seed("structure:1JM7")) == "1JM7"
    assert search_term(parse_seed("gene:BRCA1")) == "BRCA1[sym]"


def test_read_seed_lines(tmp_path, monkeypatch):
    f = tmp_path / "seeds.txt"
    f.write_text("# BRCA1 and friends\ngene:672, gene:675\n\nnuccore:NM_007294  # mRNA\n")
    assert read_seed_lines(str(f)) == ["gene:672", "gene:675", "nuccore:NM_007294"]
    monkeypatch.setattr("sys.stdin", io.StringIO("protein:6552302\n"))
    assert read_seed_lines("-") == ["protein:6552302"]
    with pytest.raises(BadInput, match="cannot read seeds file"):
        read_seed_lines(str(tmp_path / "missing.txt"))


def test_resolve_uids_identifiers_and_query():
    s = Searcher({
        ("nuccore", "NM_007294[accn]"): ["237757283"],
        ("gene", "BRCA1[gene] AND human[orgn]"): ["672"],
    })
    seeds = resolve_seeds(
        parse_seeds(["gene:0672", "nuccore:NM_007294"]), s,
        query="BRCA1[gene] AND human[orgn]", query_db="gene",
    )
    # leading zeros dropped; duplicate (gene:672 from the query) kept once, order kept
    assert seeds == [("gene", "672"), ("nuccore", "237757283")]
    assert [t[1] for t in s.terms] == ["NM_007294[accn]", "BRCA1[gene] AND human[orgn]"]


def test_resolve_reports_every_problem_at_once():
    s = Searcher({
        ("gene", "BRCA1[sym]"): ["672", "12189", "83712"],
        ("pmc", "PMC9[pmcid]"): PermanentError("Invalid term"),
    })
    with pytest.raises(BadInput) as err:
        resolve_seeds(parse_seeds(["gene:BRCA1", "nuccore:NM_0", "pmc:PMC9"]), s)
    text = str(err.value)
    assert "gene:BRCA1 matches 3 records (672, 12189, 83712)" in text
    assert "nuccore:NM_0 matches no record" in text
    assert "pmc:PMC9: lookup failed" in text
    assert "\n" not in text


def test_resolve_query_errors():
    s = Searcher({})
    with pytest.raises(BadInput, match="matches no record"):
        resolve_seeds([], s, query="nothing[title]", query_db="pubmed")
    with pytest.raises(BadInput, match="--query-db needs --query"):
        resolve_seeds(parse_seeds(["gene:1"]), s, query_db="gene")
    with pytest.raises(BadInput, match="no seeds"):
        resolve_seeds([], s)
