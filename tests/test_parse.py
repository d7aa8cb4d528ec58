"""Every real NCBI response in tests/data parses into the typed results, with its real values."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from crawler.errors import PermanentError, RateLimited, TransientError
from crawler.eutils import parse
from crawler.eutils.fastlink import FAST_CMDS, read_elink
from crawler.eutils.parse import _elink_from_tree, _entrez, _tree

DATA = Path(__file__).parent / "data"


def read(name: str) -> bytes:
    return (DATA / name).read_bytes()


ELINK_FILES = sorted(
    p.name
    for p in DATA.iterdir()
    if p.suffix == ".xml" and ("elink" in p.name or "link_" in p.name)
)


def test_every_sample_file_is_covered() -> None:
    names = {p.name for p in DATA.iterdir() if p.name != "INDEX.md"}
    covered = set(ELINK_FILES) | {
        "biopython__epost2.xml",
        "biopython__esearch1.xml",
        "biopython__esearch8.xml",
        "issue-rentrez-132__http429_rate_limit.json",
    }
    assert names <= covered, names - covered


@pytest.mark.parametrize("name", ELINK_FILES)
def test_bio_entrez_reads_every_elink_sample_and_agrees_with_elementtree(name: str) -> None:
    data = read(name)
    # http:// DOCTYPEs, unshipped 2002 DTDs and bodies without declaration all reach Bio.Entrez
    assert _entrez(data) is not None
    assert parse.parse_elink(data) == _elink_from_tree(_tree(data), "neighbor")


def test_per_id_linksets_keyed_by_echoed_id() -> None:
    result = parse.parse_elink(read("biogo-ncbi__link_test_case0.xml"))
    by = result.by_source()
    assert set(by) == {"15718680", "157427902"}
    assert by["15718680"].linksetdbs[0].linkname == "protein_gene"
    assert by["15718680"].linksetdbs[0].dbto == "gene"
    assert [link.uid for link in by["15718680"].linksetdbs[0].links] == ["3702"]
    assert [link.uid for link in by["157427902"].linksetdbs[0].links] == ["522311"]


def test_merged_linkset_holds_both_ids() -> None:
    result = parse.parse_elink(read("biogo-ncbi__link_test_case1.xml"))
    assert len(result.linksets) == 1
    ls = result.linksets[0]
    assert ls.ids == ("15718680", "157427902")
    assert result.by_source() == {}  # merged: never keyed by position
    assert {link.uid for link in ls.linksetdbs[0].links} == {"3702", "522311"}


def test_2002_dtd_scores_including_self_score() -> None:
    result = parse.parse_elink(read("biopython-2008__elink1.xml"))
    db = result.by_source()["9298984"].linksetdbs[0]
    assert db.linkname == "pubmed_pubmed"
    assert len(db.links) == 144
    assert db.links[0].uid == "9298984" and db.links[0].score == 2147483647
    assert db.links[1].uid == "8794856" and db.links[1].score == 65259341
    assert all(link.score is not None for link in db.links)


def test_empty_result_without_linksetdb() -> None:
    result = parse.parse_elink(read("biopython-2008__elink2.xml"))
    ls = result.linksets[0]
    assert ls.dbfrom == "nucleotide"
    assert ls.ids == ("48819", "7140345")
    assert ls.is_empty and ls.linksetdbs == ()


def test_new_style_neighbor_without_scores() -> None:
    result = parse.parse_elink(read("biopython__elink1.xml"))
    ls = result.by_source()["9298984"]
    names = {db.linkname: db for db in ls.linksetdbs}
    assert set(names) == {
        "pubmed_pubmed",
        "pubmed_pubmed_citedin",
        "pubmed_pubmed_combined",
        "pubmed_pubmed_five",
        "pubmed_pubmed_refs",
        "pubmed_pubmed_reviews",
        "pubmed_pubmed_reviews_five",
    }
    assert len(names["pubmed_pubmed"].links) == 101
    assert names["pubmed_pubmed"].links[0].uid == "9298984"  # NCBI lists the source itself
    assert names["pubmed_pubmed_citedin"].links[0].uid == "38830800"
    assert all(link.score is None for db in ls.linksetdbs for link in db.links)


def test_nucleotide_echoed_as_nuccore() -> None:
    result = parse.parse_elink(read("biopython__elink2.xml"))
    ls = result.linksets[0]
    assert result.dbfrom == "nuccore" and ls.ids == ("48819", "7140345")
    assert ls.linksetdbs[0].linkname == "nuccore_protein"
    assert [link.uid for link in ls.linksetdbs[0].links] == ["48820"]


def test_merged_with_dates_and_term() -> None:
    r3 = parse.parse_elink(read("biopython__elink3.xml")).linksets[0]
    assert r3.ids == ("11812492", "11774222")
    counts = {db.linkname: len(db.links) for db in r3.linksetdbs}
    assert counts["pubmed_pubmed"] == 284 and counts["pubmed_pubmed_reviews"] == 282
    assert sum(counts.values()) == 599
    r4 = parse.parse_elink(read("biopython__elink4.xml")).by_source()["12242737"]
    first = {db.linkname: db.links[0].uid for db in r4.linksetdbs}
    assert first["pubmed_pubmed"] == "38997184"
    assert first["pubmed_pubmed_citedin"] == "40900773"


def test_prlinks_objurl_with_provider() -> None:
    result = parse.parse_elink(read("biopython__elink5.xml"), "prlinks")
    (s,) = result.idurlsets
    assert s.uid == "10611131"
    (o,) = s.objurls
    assert o.url == "https://academic.oup.com/brain/article-lookup/doi/10.1093/brain/123.1.171"
    assert o.category == "Full Text Sources"
    assert o.attributes == ("subscription/membership/fee required",)
    assert o.provider.name == "Silverchair Information Systems"
    assert o.provider.name_abbr == "silverchair" and o.provider.id == "7898"


def test_llinks_two_idurlsets_and_duplicate_objurl() -> None:
    result = parse.parse_elink(read("biopython__elink6.xml"), "llinks")
    by = {s.uid: s for s in result.idurlsets}
    assert set(by) == {"12085856", "12085853"}
    assert by["12085856"].objurls[0].link_name == "Coronary Artery Bypass Surgery"
    assert [o.provider.name for o in by["12085853"].objurls] == [
        "MedlinePlus Health Information",
        "MedlinePlus Consumer Health Information",
    ]
    assert by["12085853"].objurls[1].provider.name_abbr == "medlineplus2"


def test_acheck_linkinfo_and_linkout_apart() -> None:
    result = parse.parse_elink(read("biopython__elink7.xml"), "acheck")
    by = {s.uid: s for s in result.idlinksets}
    assert set(by) == {"12169658", "11748140"}
    first = by["12169658"]
    assert len(first.infos) == 16 and len(first.entrez) == 15
    assert [(i.dbto, i.linkname) for i in first.linkout] == [("LinkOut", "ExternalLink")]
    books = first.infos[0]
    assert (books.dbto, books.linkname, books.menu_tag, books.priority) == (
        "books",
        "pubmed_books_refs",
        "Cited in Books",
        185,
    )
    assert "pubmed_gene" in {i.linkname for i in first.entrez}
    assert len(by["11748140"].entrez) == 14


def test_ncheck_has_neighbor() -> None:
    result = parse.parse_elink(read("biopython__elink8.xml"), "ncheck")
    assert [(c.uid, c.has_neighbor, c.has_linkout) for c in result.idchecks] == [
        ("12068369", True, None)
    ]


def test_body_without_declaration_echoes_zero() -> None:
    result = parse.parse_elink(read("metapub__medgen_elink_pubmed_0_entries.xml"))
    assert result.dbfrom == "medgen"
    assert result.linksets[0].ids == ("0",) and result.linksets[0].is_empty


def test_esearch_samples() -> None:
    r = parse.parse_esearch(read("biopython__esearch1.xml"))
    assert r.count == 63 and len(r.ids) == 20 and r.ids[0] == "41282813"
    r8 = parse.parse_esearch(read("biopython__esearch8.xml"))
    assert r8.count == 0 and r8.ids == ()
    assert r8.query_translation == "(abcXYZ[All Fields])"
    assert r8.errors == ("PhraseNotFound: abcXYZ",)
    assert r8.warnings == ("OutputMessage: No items found.",)


def test_invalid_db_error_is_permanent() -> None:
    with pytest.raises(PermanentError, match="Invalid db name specified: nothing"):
        parse.parse_elink(read("biopython__epost2.xml"))


def test_429_json_is_rate_limited_not_a_parse_error() -> None:
    body = read("issue-rentrez-132__http429_rate_limit.json")
    assert json.loads(body)["limit"] == "3"
    for parser in (parse.parse_elink, parse.parse_esearch, parse.parse_einfo):
        with pytest.raises(RateLimited, match="API rate limit exceeded"):
            parser(body)


ELINK_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8" ?>\n<!DOCTYPE eLinkResult PUBLIC "-//NLM//DTD elink '
    b'20101123//EN" "https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20101123/elink.dtd">\n'
)


@pytest.mark.parametrize(
    "text",
    [
        "Search Backend failed: read error",
        "Couldn't resolve #exLinkSrv2, the address table is empty.",
        "Timeout",
        "Unable to open connection to #eLinkSrv3",
    ],
)
def test_transient_error_texts_in_200(text: str) -> None:
    top = ELINK_HEAD + b"<eLinkResult><ERROR>" + text.encode() + b"</ERROR></eLinkResult>"
    nested = (
        ELINK_HEAD + b"<eLinkResult><LinkSet><DbFrom>gene</DbFrom><IdList><Id>1</Id></IdList>"
        b"<ERROR>" + text.encode() + b"</ERROR></LinkSet></eLinkResult>"
    )
    for body in (top, nested):
        with pytest.raises(TransientError) as info:
            parse.parse_elink(body)
        assert not isinstance(info.value, PermanentError)
    assert parse.classify_error("Timeout", 400).kind == "timeout"  # timeouts came back as 400


def test_permanent_texts() -> None:
    for text in ("Invalid db name specified: foo", "llinkslib command not supported"):
        assert isinstance(parse.classify_error(text), PermanentError)
    assert isinstance(parse.classify_error("Some bad parameter", 400), PermanentError)
    assert isinstance(parse.classify_error("strange", 200), TransientError)


def test_linkset_level_permanent_error_kept_on_linkset() -> None:
    body = (
        ELINK_HEAD + b"<eLinkResult><LinkSet><DbFrom>gene</DbFrom><IdList><Id>5</Id></IdList>"
        b"<ERROR>Invalid uid 5</ERROR></LinkSet></eLinkResult>"
    )
    ls = parse.parse_elink(body).by_source()["5"]
    assert ls.error == "Invalid uid 5"


def test_linkset_info_falls_back_to_elementtree() -> None:
    body = (
        ELINK_HEAD + b"<eLinkResult><LinkSet><DbFrom>gene</DbFrom><IdList><Id>7</Id></IdList>"
        b"<Info>Empty result</Info></LinkSet></eLinkResult>"
    )
    ls = parse.parse_elink(body).by_source()["7"]
    assert ls.info == "Empty result" and ls.is_empty


def test_truncated_and_garbage_bodies_are_transient() -> None:
    full = read("biopython__elink3.xml")
    for body in (full[: len(full) // 2], b"", b"<html><body>Bad Gateway", b'{"error": "x'):
        with pytest.raises(TransientError) as info:
            parse.parse_elink(body)
        assert info.value.kind in ("parse", "error")


def test_neighbor_history() -> None:
    body = (
        ELINK_HEAD + b"<eLinkResult><LinkSet><DbFrom>gene</DbFrom><IdList><Id>672</Id></IdList>"
        b"<LinkSetDbHistory><DbTo>protein</DbTo><LinkName>gene_protein</LinkName>"
        b"<QueryKey>1</QueryKey></LinkSetDbHistory><WebEnv>MCID_abc</WebEnv>"
        b"</LinkSet></eLinkResult>"
    )
    ls = parse.parse_elink(body, "neighbor_history").by_source()["672"]
    assert ls.webenv == "MCID_abc"
    assert [(h.dbto, h.linkname, h.query_key) for h in ls.histories] == [
        ("protein", "gene_protein", "1")
    ]


def test_einfo_list_and_links() -> None:
    head = (
        b'<?xml version="1.0" encoding="UTF-8" ?>\n<!DOCTYPE eInfoResult PUBLIC "-//NLM//DTD '
        b'einfo 20190110//EN" "https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20190110/einfo.dtd">\n'
    )
    dblist = parse.parse_einfo(
        head + b"<eInfoResult><DbList><DbName>pubmed</DbName><DbName>gene</DbName></DbList>"
        b"</eInfoResult>"
    )
    assert dblist.databases == ("pubmed", "gene")
    one = parse.parse_einfo(
        head + b"<eInfoResult><DbInfo><DbName>gene</DbName><MenuName>Gene</MenuName>"
        b"<Description>Gene database</Description><DbBuild>b</DbBuild><Count>5</Count>"
        b"<LastUpdate>2024/01/01 00:00</LastUpdate><FieldList/><LinkList><Link>"
        b"<Name>gene_protein</Name><Menu>Protein</Menu><Description>prot</Description>"
        b"<DbTo>protein</DbTo></Link></LinkList></DbInfo></eInfoResult>"
    )
    assert one.name == "gene" and one.count == 5
    assert [(link.name, link.dbto) for link in one.links] == [("gene_protein", "protein")]


def test_esummary_v2_fields_and_errors() -> None:
    body = (
        b'<?xml version="1.0" encoding="UTF-8" ?>\n<!DOCTYPE eSummaryResult PUBLIC "-//NLM//DTD '
        b'esummary gene 20160727//EN" "https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20160727/'
        b'esummary_gene.dtd">\n<eSummaryResult><DocumentSummarySet status="OK">'
        b"<DbBuild>Build</DbBuild>"
        b'<DocumentSummary uid="672"><Name>BRCA1</Name><Description>BRCA1 DNA repair '
        b"associated</Description><Organism><ScientificName>Homo sapiens</ScientificName>"
        b"<CommonName>human</CommonName><TaxID>9606</TaxID></Organism></DocumentSummary>"
        b'<DocumentSummary uid="999999999"><error>cannot get document summary</error>'
        b"</DocumentSummary></DocumentSummarySet></eSummaryResult>"
    )
    out = {s.uid: s for s in parse.parse_esummary(body, asked=["672", "999999999", "5"])}
    assert out["672"].fields["Name"] == "BRCA1"
    assert out["672"].fields["Organism/ScientificName"] == "Homo sapiens"
    assert out["672"].error is None
    assert out["999999999"].error == "cannot get document summary"
    assert out["5"].error == "no summary returned"


# ------------------------------------------------- the fast reader equals the Bio.Entrez path

NATURAL_CMD = {"biopython__elink5.xml": "prlinks", "biopython__elink6.xml": "llinks",
               "biopython__elink7.xml": "acheck", "biopython__elink8.xml": "ncheck"}


def outcome(parser: object, data: bytes, cmd: str) -> object:
    """The typed result, or the exception's type and text (both paths must raise alike)."""
    try:
        return parser(data, cmd)  # type: ignore[operator]
    except Exception as exc:
        return (type(exc), str(exc))


@pytest.mark.parametrize("name", ELINK_FILES)
def test_fast_reader_equals_bio_entrez_on_every_real_sample(name: str) -> None:
    data = read(name)
    cmds = {NATURAL_CMD.get(name, "neighbor"), "neighbor", "neighbor_score", "acheck"}
    for cmd in sorted(cmds):
        fast = parse.parse_elink(data, cmd)
        slow = parse.parse_elink_entrez(data, cmd)
        assert fast == slow, (name, cmd)
    if NATURAL_CMD.get(name, "neighbor") in FAST_CMDS:
        _, root, top, nested = read_elink(data, "neighbor")  # really read by the fast path
        assert root == "eLinkResult" and not top and not nested


def _variants(data: bytes) -> list[bytes]:
    """The same answer with the DOCTYPE and declaration shapes NCBI has sent."""
    body = re.sub(rb"^\s*<\?xml[^>]*\?>\s*", b"", data)
    body = re.sub(rb"<!DOCTYPE[^>]*>\s*", b"", body, count=1)
    return [
        data,
        body,  # no declaration, no DOCTYPE (metapub's sample)
        b'<?xml version="1.0"?>\n' + body,  # declaration only
        ELINK_HEAD.replace(b"https://", b"http://") + body,  # an http:// DOCTYPE
        b"\xef\xbb\xbf" + ELINK_HEAD + body,  # a byte-order mark
    ]


SYNTHETIC = [
    b"<eLinkResult><LinkSet><DbFrom>gene</DbFrom><IdList><Id>7</Id></IdList>"
    b"<Info>Empty result</Info></LinkSet></eLinkResult>",
    b"<eLinkResult><LinkSet><DbFrom>gene</DbFrom><IdList><Id>5</Id></IdList>"
    b"<ERROR>Invalid uid 5</ERROR></LinkSet><LinkSet><DbFrom>gene</DbFrom><IdList><Id>6</Id>"
    b"</IdList><LinkSetDb><DbTo>protein</DbTo><LinkName>gene_protein</LinkName><Link><Id> 9 "
    b"</Id></Link></LinkSetDb></LinkSet></eLinkResult>",
    b"<eLinkResult><ERROR>Invalid db name specified: nothing</ERROR></eLinkResult>",
    b"<eLinkResult><ERROR>Search Backend failed: read error</ERROR></eLinkResult>",
    b"<eLinkResult><LinkSet><DbFrom>gene</DbFrom><IdList><Id>1</Id></IdList>"
    b"<ERROR>Couldn't resolve #exLinkSrv2, the address table is empty.</ERROR></LinkSet>"
    b"</eLinkResult>",
    b"<eLinkResult><LinkSet><DbFrom>gene</DbFrom><IdList><Id>672</Id></IdList>"
    b"<LinkSetDbHistory><DbTo>protein</DbTo><LinkName>gene_protein</LinkName>"
    b"<QueryKey>1</QueryKey></LinkSetDbHistory><LinkSetDbHistory><DbTo>x</DbTo>"
    b"<LinkName>gene_x</LinkName><QueryKey> </QueryKey></LinkSetDbHistory>"
    b"<WebEnv>MCID_abc</WebEnv></LinkSet></eLinkResult>",
    b"<eLinkResult><LinkSet><DbFrom>pubmed</DbFrom><IdList><Id>1</Id></IdList><LinkSetDb>"
    b"<DbTo>pubmed</DbTo><LinkName>pubmed_pubmed</LinkName><Link><Id>2</Id><Score>x</Score>"
    b"</Link><Link><Id>3</Id><Score> 12 </Score></Link></LinkSetDb></LinkSet></eLinkResult>",
    b"<eLinkResult><LinkSet><DbFrom>gene</DbFrom><IdCheckList><IdLinkSet><Id>1</Id><LinkInfo>"
    b"<DbTo>protein</DbTo><LinkName>gene_protein</LinkName><MenuTag>Protein &amp; more"
    b"</MenuTag><HtmlTag/><Priority>128</Priority></LinkInfo></IdLinkSet><Id HasLinkOut=\"N\">"
    b"2</Id></IdCheckList></LinkSet></eLinkResult>",
    b"<eSearchResult><Count>0</Count></eSearchResult>",
]


@pytest.mark.parametrize("index", range(len(SYNTHETIC)))
def test_fast_reader_equals_bio_entrez_on_errors_and_doctype_variants(index: int) -> None:
    for data in _variants(ELINK_HEAD + SYNTHETIC[index]):
        for cmd in ("neighbor", "neighbor_history", "acheck", "lcheck"):
            fast = outcome(parse.parse_elink, data, cmd)
            assert fast == outcome(parse.parse_elink_entrez, data, cmd), (data[:80], cmd)


@pytest.mark.parametrize("name", [n for n in ELINK_FILES if n not in NATURAL_CMD])
def test_fast_reader_equals_bio_entrez_without_declaration_or_with_http_doctype(name: str) -> None:
    for data in _variants(read(name)):
        assert outcome(parse.parse_elink, data, "neighbor") == outcome(
            parse.parse_elink_entrez, data, "neighbor")


def test_fast_reader_classifies_broken_bodies_like_bio_entrez() -> None:
    full = read("biopython__elink3.xml")
    for body in (full[: len(full) // 2], full[:-20], b"", b"   ", b"<html><body>Bad Gateway",
                 b'{"error": "x', read("issue-rentrez-132__http429_rate_limit.json")):
        fast = outcome(parse.parse_elink, body, "neighbor")
        assert isinstance(fast, tuple) and issubclass(fast[0], TransientError), body[:40]
        assert fast[0] is outcome(parse.parse_elink_entrez, body, "neighbor")[0]  # type: ignore[index]


def test_emulator_answers_read_alike_by_both_paths() -> None:
    """Big rendered answers (every shape the emulator sends in a crawl) agree link for link."""
    from crawler.emulator import render

    body = render.elink_neighbor("pubmed", [
        ([str(100 + i)], [("pubmed", "pubmed_pubmed",
                           [(str(10_000 + i * 7 + k), 1000 - k) for k in range(40)]),
                          ("pubmed", "pubmed_pubmed_citedin", [])])
        for i in range(60)
    ], scores=True)
    assert parse.parse_elink(body, "neighbor_score") == parse.parse_elink_entrez(
        body, "neighbor_score")
    checks = render.elink_acheck("gene", [[(str(i), [("protein", "gene_protein", "Protein",
                                                      "Protein", 128)]) for i in range(50)]])
    assert parse.parse_elink(checks, "acheck") == parse.parse_elink_entrez(checks, "acheck")
