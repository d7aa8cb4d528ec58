"""XML bodies in the exact shapes (declaration, DOCTYPE, element order) NCBI sends today.

Every DOCTYPE points at the https DTD URL NCBI uses now, so `Bio.Entrez.read` validates the
answers with the DTDs Biopython ships (elink.dtd, esearch.dtd, einfo.dtd, esummary_gene.dtd).
NCBI's per-database ESummary 2.0 DTDs for the other databases are not shipped by Biopython, which
would download them; `write_esummary_dtds` writes equivalents into Biopython's DTD cache so
that offline tests parse ESummary answers without the network.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

_DECL = '<?xml version="1.0" encoding="UTF-8" ?>\n'
_URL = "https://eutils.ncbi.nlm.nih.gov/eutils/dtd"
ELINK_DOCTYPE = (f'<!DOCTYPE eLinkResult PUBLIC "-//NLM//DTD elink 20101123//EN" '
                 f'"{_URL}/20101123/elink.dtd">\n')
ESEARCH_DOCTYPE = (f'<!DOCTYPE eSearchResult PUBLIC "-//NLM//DTD esearch 20060628//EN" '
                   f'"{_URL}/20060628/esearch.dtd">\n')
EINFO_DOCTYPE = (f'<!DOCTYPE eInfoResult PUBLIC "-//NLM//DTD einfo 20190110//EN" '
                 f'"{_URL}/20190110/einfo.dtd">\n')
# ESummary version=2.0: one DTD per database (the dates are those in NCBI's DTD URLs).
_ESUMMARY_DTD = {
    "gene": "20130306", "pubmed": "20160808", "protein": "20160216", "nuccore": "20160216",
    "structure": "20150527", "taxonomy": "20131106", "snp": "20171012", "pmc": "20160609",
    "clinvar": "20141218", "homologene": "20130305", "cdd": "20130305",
    "biosample": "20130829", "sra": "20130621",
}


def esummary_doctype(db: str) -> str:
    date = _ESUMMARY_DTD.get(db, "20130306")
    return (f'<!DOCTYPE eSummaryResult PUBLIC "-//NLM//DTD esummary {db} {date}//EN" '
            f'"{_URL}/{date}/esummary_{db}.dtd">\n')


# XML 1.0 has no way to write these (not even as &#0;): they become U+FFFD, as a lenient server
# would send them, so that every answer stays well-formed whatever a --graph file holds.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_QUOTES = {'"': "&quot;"}  # attributes are always written in double quotes


def _t(text: object) -> str:
    """Text for an element or a quoted attribute: markup and quotes escaped, and characters XML
    cannot hold replaced."""
    return _NOT_XML.sub("\ufffd", escape(str(text), _QUOTES))


# --- ELink -------------------------------------------------------------------------------------

Targets = Sequence[tuple[str, int | None]]  # (target uid, score or None)


def elink_error(message: str) -> bytes:
    """`<ERROR>` at the top of eLinkResult (invalid db, unknown cmd, transient failures)."""
    return (f"{_DECL}{ELINK_DOCTYPE}<eLinkResult>\n\t<ERROR>{_t(message)}</ERROR>\n"
            f"</eLinkResult>\n").encode()


def elink_neighbor(dbfrom: str,
                   linksets: Iterable[tuple[Sequence[str], Sequence[tuple[str, str, Targets]]]],
                   scores: bool = False) -> bytes:
    """cmd=neighbor / neighbor_score: one LinkSet per (ids, [(dbto, linkname, targets)]).

    `scores`: a Score on every link that has one (neighbor_score, and db=all as NCBI sends it)."""
    out = [_DECL, ELINK_DOCTYPE, "<eLinkResult>\n\n"]
    for ids, dbs in linksets:
        out.append(f"  <LinkSet>\n    <DbFrom>{_t(dbfrom)}</DbFrom>\n    <IdList>\n")
        out.extend(f"      <Id>{_t(i)}</Id>\n" for i in ids)
        out.append("    </IdList>\n")
        for dbto, linkname, targets in dbs:
            if not targets:  # db=all lists every link name; NCBI marks the empty ones so
                out.append(f"    <LinkSetDb>\n      <DbTo>{_t(dbto)}</DbTo>\n"
                           f"      <LinkName>{_t(linkname)}</LinkName>\n"
                           "      <Info>Empty result</Info>\n    </LinkSetDb>\n")
                continue
            out.append(f"    <LinkSetDb>\n      <DbTo>{_t(dbto)}</DbTo>\n"
                       f"      <LinkName>{_t(linkname)}</LinkName>\n      \n")
            for target, score in targets:
                if scores and score is not None:
                    out.append(f"        <Link>\n\t\t\t\t<Id>{target}</Id>\n"
                               f"\t\t\t\t<Score>{score}</Score>\n\t\t\t</Link>\n")
                else:
                    out.append(f"        <Link>\n\t\t\t\t<Id>{target}</Id>\n\t\t\t</Link>\n")
            out.append("      \n    </LinkSetDb>\n")
        out.append("  </LinkSet>\n")
    out.append("</eLinkResult>\n")
    return "".join(out).encode()


def elink_history(dbfrom: str,
                  linksets: Iterable[tuple[Sequence[str], Sequence[tuple[str, str, str]]]],
                  webenv: str) -> bytes:
    """cmd=neighbor_history: LinkSetDbHistory (DbTo, LinkName, QueryKey) and the WebEnv."""
    out = [_DECL, ELINK_DOCTYPE, "<eLinkResult>\n"]
    for ids, hists in linksets:
        out.append(f"  <LinkSet>\n    <DbFrom>{_t(dbfrom)}</DbFrom>\n    <IdList>\n")
        out.extend(f"      <Id>{_t(i)}</Id>\n" for i in ids)
        out.append("    </IdList>\n")
        for dbto, linkname, key in hists:
            out.append(f"    <LinkSetDbHistory>\n      <DbTo>{_t(dbto)}</DbTo>\n"
                       f"      <LinkName>{_t(linkname)}</LinkName>\n"
                       f"      <QueryKey>{_t(key)}</QueryKey>\n    </LinkSetDbHistory>\n")
        out.append(f"    <WebEnv>{_t(webenv)}</WebEnv>\n  </LinkSet>\n")
    out.append("</eLinkResult>\n")
    return "".join(out).encode()


LinkInfoRow = tuple[str, str, str, str, int]  # dbto, linkname, menu tag, html tag, priority


def elink_acheck(dbfrom: str, groups: Iterable[Sequence[tuple[str, Sequence[LinkInfoRow]]]]
                 ) -> bytes:
    """cmd=acheck: per LinkSet an IdCheckList with one IdLinkSet per ID."""
    out = [_DECL, ELINK_DOCTYPE, "<eLinkResult>\n"]
    for group in groups:
        out.append(f"\t<LinkSet>\n\t\t<DbFrom>{_t(dbfrom)}</DbFrom>\n\t\t<IdCheckList>\n")
        for uid, infos in group:
            out.append(f"\t\t\t<IdLinkSet>\n\t\t\t\t<Id>{_t(uid)}</Id>\n")
            for dbto, linkname, menu, html, priority in infos:
                out.append(
                    f"\t\t\t\t<LinkInfo>\n\t\t\t\t\t<DbTo>{_t(dbto)}</DbTo>\n"
                    f"\t\t\t\t\t<LinkName>{_t(linkname)}</LinkName>\n"
                    f"\t\t\t\t\t<MenuTag>{_t(menu)}</MenuTag>\n"
                    f"\t\t\t\t\t<HtmlTag>{_t(html)}</HtmlTag>\n"
                    f"\t\t\t\t\t<Priority>{priority}</Priority>\n\t\t\t\t</LinkInfo>\n")
            out.append("\t\t\t</IdLinkSet>\n")
        out.append("\t\t</IdCheckList>\n\t</LinkSet>\n")
    out.append("</eLinkResult>\n")
    return "".join(out).encode()


def elink_idcheck(dbfrom: str, groups: Iterable[Sequence[tuple[str, bool]]], attr: str
                  ) -> bytes:
    """cmd=ncheck (attr HasNeighbor) / lcheck (attr HasLinkOut): `<Id attr="Y|N">`."""
    out = [_DECL, ELINK_DOCTYPE, "<eLinkResult>\n"]
    for group in groups:
        out.append(f"\t<LinkSet>\n\t\t<DbFrom>{_t(dbfrom)}</DbFrom>\n\t\t<IdCheckList>\n")
        out.extend(f'\t\t\t<Id {attr}="{"Y" if flag else "N"}">{_t(uid)}</Id>\n'
                   for uid, flag in group)
        out.append("\t\t</IdCheckList>\n\t</LinkSet>\n")
    out.append("</eLinkResult>\n")
    return "".join(out).encode()


def elink_urls(dbfrom: str, groups: Iterable[Sequence[tuple[str, Sequence[Any]]]]) -> bytes:
    """cmd=llinks / llinkslib / prlinks: IdUrlList with one IdUrlSet (ObjUrl+ or Info) per ID."""
    out = [_DECL, ELINK_DOCTYPE, "<eLinkResult>\n"]
    for group in groups:
        out.append(f"<LinkSet><DbFrom>{_t(dbfrom)}</DbFrom><IdUrlList>")
        for n, (uid, objurls) in enumerate(group):
            out.append(("" if n == 0 else "\n") + f"<IdUrlSet>\n\t<Id>{_t(uid)}</Id>\n")
            if not objurls:
                out.append("\t<Info>No links available</Info>\n")
            for lo in objurls:
                host = lo.url.split("/")[2] if lo.url.count("/") >= 2 else lo.abbr
                out.append(
                    f"\t<ObjUrl>\n\t\t<Url>{_t(lo.url)}</Url>\n"
                    f"\t\t<IconUrl>/corehtml/query/egifs/https:--{_t(host)}-images-"
                    f"{_t(lo.abbr.lower())}.png</IconUrl>\n"
                    + (f"\t\t<LinkName>{_t(lo.linkname)}</LinkName>\n" if lo.linkname else "")
                    + f"\t\t<Category>{_t(lo.category)}</Category>\n"
                    f"\t\t<Attribute>{_t(lo.attribute)}</Attribute>\n"
                    f"\t\t<Provider>\n\t\t\t<Name>{_t(lo.provider)}</Name>\n"
                    f"\t\t\t<NameAbbr>{_t(lo.abbr)}</NameAbbr>\n"
                    f"\t\t\t<Id>{_t(lo.provider_id)}</Id>\n\t\t</Provider>\n\t</ObjUrl>\n")
            out.append("</IdUrlSet>\n")
        out.append("</IdUrlList></LinkSet>\n")
    out.append("</eLinkResult>\n")
    return "".join(out).encode()


# --- ESearch -----------------------------------------------------------------------------------

def esearch_error(message: str) -> bytes:
    return (f"{_DECL}{ESEARCH_DOCTYPE}<eSearchResult>\n\t<ERROR>{_t(message)}</ERROR>\n"
            f"</eSearchResult>\n").encode()


def esearch(count: int, ids: Sequence[str], retstart: int, translation: str,
            not_found: Sequence[str] = (), webenv: str | None = None,
            query_key: str | None = None) -> bytes:
    """An eSearchResult as NCBI lays it out (biopython esearch1.xml / esearch8.xml)."""
    hist = ""
    if webenv is not None:
        hist = f"<QueryKey>{_t(query_key)}</QueryKey><WebEnv>{_t(webenv)}</WebEnv>"
    if ids:
        idlist = "<IdList>\n" + "".join(f"<Id>{i}</Id>\n" for i in ids) + "</IdList>"
    else:
        idlist = "<IdList/>"
    tail = ""
    if count == 0:
        tail = ("<ErrorList>" + "".join(f"<PhraseNotFound>{_t(p)}</PhraseNotFound>"
                                        for p in not_found)
                + "</ErrorList><WarningList><OutputMessage>No items found.</OutputMessage>"
                  "</WarningList>")
    return (f"{_DECL}{ESEARCH_DOCTYPE}<eSearchResult><Count>{count}</Count>"
            f"<RetMax>{len(ids)}</RetMax><RetStart>{retstart}</RetStart>{hist}{idlist}"
            f"<TranslationSet/><QueryTranslation>{_t(translation)}</QueryTranslation>{tail}"
            f"</eSearchResult>\n").encode()


# --- EInfo -------------------------------------------------------------------------------------

def einfo_error(message: str) -> bytes:
    return (f"{_DECL}{EINFO_DOCTYPE}<eInfoResult>\n\t<ERROR>{_t(message)}</ERROR>\n"
            f"</eInfoResult>\n").encode()


def einfo_dblist(dbs: Iterable[str]) -> bytes:
    body = "".join(f"\t\t<DbName>{_t(d)}</DbName>\n" for d in dbs)
    return (f"{_DECL}{EINFO_DOCTYPE}<eInfoResult>\n\t<DbList>\n{body}\t</DbList>\n"
            f"</eInfoResult>\n").encode()


_FIELDS = (
    ("ALL", "All Fields", "All terms from all searchable fields", "N", "N"),
    ("UID", "UID", "Unique number assigned to each record", "N", "Y"),
    ("ACCN", "Accession", "Accession number of sequence or record", "N", "N"),
    ("ORGN", "Organism", "Scientific and common names of organism", "N", "N"),
    ("GENE", "Gene Name", "Name of gene associated with sequence", "N", "N"),
)


def einfo_db(db: str, menu: str, description: str, count: int, build: str, last_update: str,
             links: Iterable[tuple[str, str, str, str]]) -> bytes:
    """DbInfo with FieldList and LinkList (Name, Menu, Description, DbTo) per link name."""
    out = [_DECL, EINFO_DOCTYPE, "<eInfoResult>\n\t<DbInfo>\n",
           f"\t<DbName>{_t(db)}</DbName>\n\t<MenuName>{_t(menu)}</MenuName>\n",
           f"\t<Description>{_t(description)}</Description>\n",
           f"\t<DbBuild>{_t(build)}</DbBuild>\n\t<Count>{count}</Count>\n",
           f"\t<LastUpdate>{_t(last_update)}</LastUpdate>\n\t<FieldList>\n"]
    for name, full, desc, is_date, is_num in _FIELDS:
        out.append(f"\t\t<Field>\n\t\t\t<Name>{name}</Name>\n\t\t\t<FullName>{full}</FullName>\n"
                   f"\t\t\t<Description>{desc}</Description>\n\t\t\t<TermCount>{count}"
                   f"</TermCount>\n\t\t\t<IsDate>{is_date}</IsDate>\n"
                   f"\t\t\t<IsNumerical>{is_num}</IsNumerical>\n"
                   f"\t\t\t<SingleToken>Y</SingleToken>\n\t\t\t<Hierarchy>N</Hierarchy>\n"
                   f"\t\t\t<IsHidden>N</IsHidden>\n\t\t\t<IsTruncatable>Y</IsTruncatable>\n"
                   f"\t\t\t<IsRangable>N</IsRangable>\n\t\t</Field>\n")
    out.append("\t</FieldList>\n\t<LinkList>\n")
    for name, menu_, desc, dbto in links:
        out.append(f"\t\t<Link>\n\t\t\t<Name>{_t(name)}</Name>\n\t\t\t<Menu>{_t(menu_)}</Menu>\n"
                   f"\t\t\t<Description>{_t(desc)}</Description>\n"
                   f"\t\t\t<DbTo>{_t(dbto)}</DbTo>\n\t\t</Link>\n")
    out.append("\t</LinkList>\n\t</DbInfo>\n</eInfoResult>\n")
    return "".join(out).encode()


# --- ESummary (version=2.0) --------------------------------------------------------------------

def esummary(db: str, build: str, docs: Iterable[tuple[str, dict[str, Any] | None]]) -> bytes:
    """DocumentSummarySet; an unknown ID gets `<error>cannot get document summary</error>`."""
    out = [_DECL, esummary_doctype(db), "<eSummaryResult>\n",
           f'<DocumentSummarySet status="OK">\n<DbBuild>{_t(build)}</DbBuild>\n\n']
    for uid, rec in docs:
        out.append(f"<DocumentSummary uid={quoteattr(str(uid))}>\n")
        if rec is None:
            out.append("<error>cannot get document summary</error>\n")
        else:
            out.extend(_docsum_fields(db, rec))
        out.append("</DocumentSummary>\n\n")
    out.append("</DocumentSummarySet>\n</eSummaryResult>\n")
    return "".join(out).encode()


ESUMMARY_V1_DOCTYPE = (f'<!DOCTYPE eSummaryResult PUBLIC "-//NLM//DTD esummary v1 20041029//EN" '
                       f'"{_URL}/20041029/esummary-v1.dtd">\n')

# version 1.0 DocSum items per database: (Item name, record field, Type).
_V1_ITEMS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "gene": (("Name", "name", "String"), ("Description", "description", "String"),
             ("Orgname", "organism", "String"), ("Chromosome", "chromosome", "String"),
             ("MapLocation", "maplocation", "String"), ("TaxID", "taxid", "Integer")),
    "pubmed": (("PubDate", "pubdate", "Date"), ("Source", "journal", "String"),
               ("Title", "title", "String"), ("FullJournalName", "journal", "String")),
    "structure": (("PdbAcc", "accession", "String"), ("PdbDescr", "title", "String")),
    "taxonomy": (("ScientificName", "name", "String"), ("CommonName", "commonname", "String"),
                 ("TaxId", "uid", "Integer")),
}
_V1_SEQ = (("Caption", "accession", "String"), ("Title", "title", "String"),
           ("Gi", "uid", "Integer"), ("TaxId", "taxid", "Integer"),
           ("AccessionVersion", "accessionversion", "String"))
_V1_OTHER = (("Accession", "accession", "String"), ("Title", "name", "String"))


def esummary_v1(db: str, docs: Iterable[tuple[str, dict[str, Any] | None]]) -> bytes:
    """ESummary without version=2.0: DocSum/Item; an unknown UID is an `<ERROR>` of its own."""
    items = _V1_ITEMS.get(db, _V1_SEQ if db in ("protein", "nuccore") else _V1_OTHER)
    out = [_DECL, ESUMMARY_V1_DOCTYPE, "<eSummaryResult>\n"]
    for uid, rec in docs:
        if rec is None:
            out.append(f"<ERROR>UID={_t(uid)}: cannot get document summary</ERROR>\n")
            continue
        out.append(f"<DocSum>\n\t<Id>{_t(uid)}</Id>\n")
        out.extend(f'\t<Item Name="{name}" Type="{typ}">{_t(rec.get(field, ""))}</Item>\n'
                   for name, field, typ in items)
        out.append("</DocSum>\n\n")
    out.append("</eSummaryResult>\n")
    return "".join(out).encode()


def esummary_error(db: str, message: str) -> bytes:
    return (f"{_DECL}{esummary_doctype(db)}<eSummaryResult>\n\t<ERROR>{_t(message)}</ERROR>\n"
            f"</eSummaryResult>\n").encode()


_GENE_STATUS = {"replaced": 1, "withdrawn": 2}


def _el(name: str, value: object) -> str:
    return f"\t<{name}>{_t(value if value is not None else '')}</{name}>\n"


def _docsum_fields(db: str, rec: dict[str, Any]) -> list[str]:
    uid = rec["uid"]
    org = rec.get("organism", "")
    taxid = rec.get("taxid", "")
    if db == "gene":
        return [
            _el("Name", rec.get("name")), _el("Description", rec.get("description")),
            # NCBI's gene Status: 0 live, 1 secondary (CurrentID: the current gene), 2 discontinued
            _el("Status", _GENE_STATUS.get(rec.get("status"), 0)),
            _el("CurrentID", rec.get("replaced_by", 0)), _el("Chromosome", rec.get("chromosome")),
            _el("GeneticSource", "genomic"), _el("MapLocation", rec.get("maplocation")),
            _el("OtherAliases", rec.get("aliases", "")),
            _el("OtherDesignations", rec.get("description")),
            _el("NomenclatureSymbol", rec.get("name")),
            _el("NomenclatureName", rec.get("description")),
            _el("NomenclatureStatus", "Official"), "\t<Mim>\n\t</Mim>\n",
            "\t<GenomicInfo>\n\t</GenomicInfo>\n", _el("GeneWeight", rec.get("weight", 1000)),
            _el("Summary", rec.get("summary", "")),
            "\t<Organism>\n"
            f"\t\t<ScientificName>{_t(org)}</ScientificName>\n"
            f"\t\t<CommonName>{_t(rec.get('commonname', ''))}</CommonName>\n"
            f"\t\t<TaxID>{_t(taxid)}</TaxID>\n\t</Organism>\n",
        ]
    if db in ("protein", "nuccore"):
        acc = rec.get("accession", "")
        accver = rec.get("accessionversion", acc)
        return [
            _el("Caption", acc), _el("Title", rec.get("title")),
            _el("Extra", f"gi|{uid}|ref|{accver}|"), _el("Gi", uid),
            _el("CreateDate", rec.get("createdate", "1999/03/31")),
            _el("UpdateDate", rec.get("updatedate", "2025/01/10")), _el("Flags", 0),
            _el("TaxId", taxid), _el("Slen", rec.get("length", 1863 if db == "protein" else 7088)),
            _el("Biomol", "" if db == "protein" else "mRNA"),
            _el("MolType", "aa" if db == "protein" else "rna"), _el("Topology", "linear"),
            _el("SourceDb", "refseq"), _el("SegSetSize", 0), _el("ProjectId", 0),
            _el("Genome", "genomic"), _el("SubType", ""), _el("SubName", ""),
            _el("AssemblyGi", 0), _el("AssemblyAcc", ""), _el("Tech", ""),
            _el("Completeness", ""), _el("GeneticCode", 1), _el("Strand", ""),
            _el("Organism", org), _el("Strain", ""), _el("BioSample", ""),
            _el("AccessionVersion", accver),
            # a record no longer current: its Status, and the accession.version replacing it
            *([_el("Status", rec["status"]),
               _el("ReplacedBy", rec.get("replaced_by_accession", ""))]
              if rec.get("status") else []),
        ]
    if db == "pubmed":
        return [
            _el("PubDate", rec.get("pubdate")), _el("EPubDate", ""),
            _el("Source", rec.get("source", rec.get("journal", ""))),
            "\t<Authors>\n\t\t<Author>\n\t\t\t<Name>Smith J</Name>\n"
            "\t\t\t<AuthType>Author</AuthType>\n\t\t\t<ClusterID></ClusterID>\n"
            "\t\t</Author>\n\t</Authors>\n",
            _el("LastAuthor", "Smith J"), _el("Title", rec.get("title")),
            _el("SortTitle", str(rec.get("title", "")).lower()), _el("Volume", ""),
            _el("Issue", ""), _el("Pages", ""), "\t<Lang>\n\t\t<string>eng</string>\n\t</Lang>\n",
            _el("NlmUniqueID", ""), _el("ISSN", ""), _el("ESSN", ""),
            "\t<PubType>\n\t\t<flag>Journal Article</flag>\n\t</PubType>\n",
            _el("RecordStatus", "PubMed - indexed for MEDLINE"), _el("PubStatus", 4),
            "\t<ArticleIds>\n\t\t<ArticleId>\n\t\t\t<IdType>pubmed</IdType>\n"
            f"\t\t\t<IdTypeN>1</IdTypeN>\n\t\t\t<Value>{_t(uid)}</Value>\n"
            "\t\t</ArticleId>\n\t</ArticleIds>\n",
            "\t<History>\n\t</History>\n\t<References>\n\t</References>\n",
            "\t<Attributes>\n\t\t<flag>Has Abstract</flag>\n\t</Attributes>\n",
            _el("PmcRefCount", 0), _el("FullJournalName", rec.get("journal")),
            _el("ELocationID", ""), _el("DocType", "citation"),
            _el("SortPubDate", rec.get("pubdate")), _el("SortFirstAuthor", "Smith J"),
        ]
    if db == "structure":
        return [
            _el("PdbAcc", rec.get("accession")), _el("PdbDescr", rec.get("title")),
            _el("EC", ""), _el("Resolution", "2.5"), _el("ExpMethod", "X-Ray Diffraction"),
            _el("PdbClass", "Ligase"), _el("PdbDepositDate", "2001/07/17 00:00"),
            _el("MMDBEntryDate", "2001/10/10 00:00"), _el("MMDBModifyDate", "2011/11/21 00:00"),
            f"\t<OrganismList>\n\t\t<string>{_t(org)}</string>\n\t</OrganismList>\n",
            "\t<PdbAccSynList>\n\t</PdbAccSynList>\n", _el("LigCode", ""), _el("LigCount", 0),
            _el("ModProteinResCount", 0), _el("ModDNAResCount", 0), _el("ModRNAResCount", 0),
            _el("ProteinMoleculeCount", 2), _el("DNAMoleculeCount", 0),
            _el("RNAMoleculeCount", 0),
        ]
    if db == "taxonomy":
        name = str(rec.get("name", ""))
        genus, _, species = name.partition(" ")
        return [
            _el("Status", "active"), _el("Rank", "species"), _el("Division", ""),
            _el("ScientificName", name), _el("CommonName", rec.get("commonname", "")),
            _el("TaxId", uid), _el("AkaTaxId", 0), _el("Genus", genus),
            _el("Species", species), _el("Subsp", ""),
            _el("ModificationDate", "2024/11/06 00:00"),
        ]
    if db == "clinvar":  # the field names of NCBI's esummary_clinvar.dtd (Biopython ships it)
        return [_el("obj_type", "single nucleotide variant"),
                _el("accession", rec.get("accession", "")),
                _el("accession_version", f"{rec.get('accession', '')}.1"),
                _el("title", rec.get("name", ""))]
    if db == "snp":
        gene = rec.get("gene", "")
        return [_el("SNP_ID", rec.get("replaced_by", uid)),  # a merged rs: the current one
                f"\t<GENES>\n\t\t<GENE_E>\n\t\t\t<NAME>{_t(gene)}</NAME>\n"
                f"\t\t\t<GENE_ID>{_t(rec.get('gene_id', ''))}</GENE_ID>\n"
                "\t\t</GENE_E>\n\t</GENES>\n",
                _el("CLINICAL_SIGNIFICANCE", rec.get("significance", "")),
                _el("SNP_CLASS", "snv"), _el("CHR", rec.get("chromosome", ""))]
    if db == "pmc":
        return [_el("PubDate", rec.get("pubdate", "2005 Jun")),
                _el("Source", rec.get("journal", "")), _el("Title", rec.get("title", "")),
                _el("FullJournalName", rec.get("journal", "")),
                "\t<ArticleIds>\n\t\t<ArticleId>\n\t\t\t<IdType>pmcid</IdType>\n"
                f"\t\t\t<Value>{_t(rec.get('accession', ''))}</Value>\n"
                "\t\t</ArticleId>\n\t</ArticleIds>\n"]
    if db == "sra":
        # As long as NCBI's (about 3,000 characters): the organism comes after the first 1,000.
        exp = (f'<Summary><Title>{_t(rec.get("title", ""))}</Title>'
               '<Platform instrument_model="Illumina HiSeq 2500">ILLUMINA</Platform>'
               '<Statistics total_runs="1" total_spots="24127658" total_bases="4825531600" '
               'total_size="2960138361" load_done="true" cluster_name="public"/></Summary>'
               '<Submitter acc="SRA000001" center_name="GEO" contact_name="NCBI" lab_name=""/>'
               f'<Experiment acc="{_t(rec.get("accession", ""))}" ver="1" status="public" '
               f'name="{_t(rec.get("title", ""))}"/>'
               '<Study acc="SRP000001" name="Transcriptome profiling of the emulated world"/>'
               f'<Library_descriptor><LIBRARY_NAME>{_t(rec.get("accession", ""))}</LIBRARY_NAME>'
               '<LIBRARY_STRATEGY>RNA-Seq</LIBRARY_STRATEGY><LIBRARY_SOURCE>TRANSCRIPTOMIC'
               '</LIBRARY_SOURCE><LIBRARY_SELECTION>cDNA</LIBRARY_SELECTION><LIBRARY_LAYOUT>'
               '<PAIRED/></LIBRARY_LAYOUT><LIBRARY_CONSTRUCTION_PROTOCOL>'
               + "Total RNA was extracted, poly(A) selected, fragmented and reverse transcribed; "
               * 25 + '</LIBRARY_CONSTRUCTION_PROTOCOL></Library_descriptor>'
               f'<Organism taxid="{_t(taxid)}" ScientificName="{_t(org)}"/>'
               '<Sample acc="SRS000001" name=""/><Instrument ILLUMINA="Illumina HiSeq 2500"/>'
               '<Bioproject>PRJNA000001</Bioproject><Biosample>SAMN00000001</Biosample>')
        return [_el("ExpXml", exp), _el("Runs", ""), _el("CreateDate", "2019/06/01"),
                _el("UpdateDate", "2019/06/01")]
    if db == "biosample":
        # As NCBI's: about 1,300 characters, the organism only inside it, after 1,000.
        attributes = "".join(
            f'<Attribute attribute_name="{k}" harmonized_name="{k}" display_name="{k}">{v}'
            "</Attribute>"
            for k, v in (("isolate", "emulated"), ("age", "not collected"),
                         ("sex", "not collected"), ("tissue", "whole organism"),
                         ("collection_date", "2019-06-01"), ("geo_loc_name", "not collected"),
                         ("biomaterial_provider", "entrez-graph emulator"))
        )
        sample = (f'<BioSample access="public" id="{_t(uid)}" '
                  f'accession="{_t(rec.get("accession", ""))}"><Ids><Id db="BioSample" '
                  f'is_primary="1">{_t(rec.get("accession", ""))}</Id></Ids><Description>'
                  f"<Title>{_t(rec.get('title', ''))}</Title></Description>"
                  f"<Attributes>{attributes}</Attributes>"
                  '<Owner><Name>entrez-graph emulator</Name></Owner>'
                  '<Models><Model>Generic</Model></Models><Package display_name="Generic">'
                  "Generic.1.0</Package>"
                  f'<Organism taxonomy_id="{_t(taxid)}" taxonomy_name="{_t(org)}"/>'
                  "</BioSample>")
        return [_el("Title", rec.get("title", "")), _el("Accession", rec.get("accession", "")),
                _el("Taxonomy", taxid), _el("SampleData", sample)]
    if db in ("cdd", "homologene"):
        return [_el("Accession", rec.get("accession", "")), _el("Title", rec.get("title", "")),
                _el("Subtitle", rec.get("description", "")),
                _el("Description", rec.get("description", "")), _el("Organism", org),
                # a replaced domain model names its live one (CDD's LivePssmID)
                *([_el("LivePssmID", rec["replaced_by"])] if rec.get("replaced_by") else [])]
    # Other databases: the record's accession and name in generic fields.
    return [_el("Accession", rec.get("accession", "")), _el("Title", rec.get("name", "")),
            _el("Organism", org)]


# --- ESummary DTDs -----------------------------------------------------------------------------
# Element -> None (text), ("list", child) or ("seq", children). Mirrors what `_docsum_fields`
# writes; Biopython ships esummary_gene.dtd and esummary_clinvar.dtd itself.

_SEQ_FIELDS = ("Caption", "Title", "Extra", "Gi", "CreateDate", "UpdateDate", "Flags", "TaxId",
               "Slen", "Biomol", "MolType", "Topology", "SourceDb", "SegSetSize", "ProjectId",
               "Genome", "SubType", "SubName", "AssemblyGi", "AssemblyAcc", "Tech",
               "Completeness", "GeneticCode", "Strand", "Organism", "Strain", "BioSample",
               "AccessionVersion", "Status", "ReplacedBy")
_DTD_MODELS: dict[str, dict[str, Any]] = {
    "protein": {"DocumentSummary": ("seq", _SEQ_FIELDS)},
    "nuccore": {"DocumentSummary": ("seq", _SEQ_FIELDS)},
    "pubmed": {
        "DocumentSummary": ("seq", (
            "PubDate", "EPubDate", "Source", "Authors", "LastAuthor", "Title", "SortTitle",
            "Volume", "Issue", "Pages", "Lang", "NlmUniqueID", "ISSN", "ESSN", "PubType",
            "RecordStatus", "PubStatus", "ArticleIds", "History", "References", "Attributes",
            "PmcRefCount", "FullJournalName", "ELocationID", "DocType", "SortPubDate",
            "SortFirstAuthor")),
        "Authors": ("list", "Author"), "Author": ("seq", ("Name", "AuthType", "ClusterID")),
        "Lang": ("list", "string"), "PubType": ("list", "flag"), "Attributes": ("list", "flag"),
        "ArticleIds": ("list", "ArticleId"),
        "ArticleId": ("seq", ("IdType", "IdTypeN", "Value")),
        "History": ("list", "PubMedPubDate"), "PubMedPubDate": ("seq", ("PubStatus", "Date")),
        "References": ("list", "Reference"),
        "Reference": ("seq", ("RefSource", "RefType", "PMID", "Note")),
    },
    "structure": {
        "DocumentSummary": ("seq", (
            "PdbAcc", "PdbDescr", "EC", "Resolution", "ExpMethod", "PdbClass", "PdbDepositDate",
            "MMDBEntryDate", "MMDBModifyDate", "OrganismList", "PdbAccSynList", "LigCode",
            "LigCount", "ModProteinResCount", "ModDNAResCount", "ModRNAResCount",
            "ProteinMoleculeCount", "DNAMoleculeCount", "RNAMoleculeCount")),
        "OrganismList": ("list", "string"), "PdbAccSynList": ("list", "string"),
    },
    "taxonomy": {"DocumentSummary": ("seq", (
        "Status", "Rank", "Division", "ScientificName", "CommonName", "TaxId", "AkaTaxId",
        "Genus", "Species", "Subsp", "ModificationDate"))},
}
_DTD_MODELS["pmc"] = {
    "DocumentSummary": ("seq", ("PubDate", "Source", "Title", "FullJournalName", "ArticleIds")),
    "ArticleIds": ("list", "ArticleId"), "ArticleId": ("seq", ("IdType", "Value")),
}
_DTD_MODELS["snp"] = {
    "DocumentSummary": ("seq", ("SNP_ID", "GENES", "CLINICAL_SIGNIFICANCE", "SNP_CLASS", "CHR")),
    "GENES": ("list", "GENE_E"), "GENE_E": ("seq", ("NAME", "GENE_ID")),
}
_DTD_MODELS["sra"] = {"DocumentSummary": ("seq", ("ExpXml", "Runs", "CreateDate", "UpdateDate"))}
_DTD_MODELS["biosample"] = {"DocumentSummary": ("seq", (
    "Title", "Accession", "Taxonomy", "SampleData"))}
_DTD_MODELS["cdd"] = _DTD_MODELS["homologene"] = {"DocumentSummary": ("seq", (
    "Accession", "Title", "Subtitle", "Description", "Organism", "LivePssmID"))}
_GENERIC_MODEL = {"DocumentSummary": ("seq", ("Accession", "Title", "Organism"))}


def esummary_dtd(db: str) -> str:
    """A DTD for NCBI's ESummary 2.0 shape of `db`, covering what this emulator sends."""
    model = _DTD_MODELS.get(db, _GENERIC_MODEL)
    lines = [f"<!-- DocSum DTD for {db} database (entrez-graph emulator) -->",
             '<!ENTITY % T_string "(#PCDATA)">']
    declared: set[str] = set()

    def text(name: str) -> None:
        if name not in declared and name not in model:
            declared.add(name)
            lines.append(f"<!ELEMENT {name} %T_string;>")

    for name, (kind, children) in model.items():
        if name == "DocumentSummary":
            continue
        if kind == "list":
            text(children)
            lines.append(f"<!ELEMENT {name} ({children})*>")
        else:
            for c in children:
                text(c)
            lines.append(f"<!ELEMENT {name} ({', '.join(c + '?' for c in children)})>")
        declared.add(name)
    fields = model["DocumentSummary"][1]
    for f in fields:
        text(f)
    text("error")
    lines += [
        f"<!ELEMENT DocumentSummary (({', '.join(f + '?' for f in fields)}) | error)>",
        "<!ATTLIST DocumentSummary uid CDATA #IMPLIED>",
        "<!ELEMENT DbBuild %T_string;>",
        "<!ELEMENT DocumentSummarySet (DbBuild?, DocumentSummary*)>",
        "<!ATTLIST DocumentSummarySet status CDATA #REQUIRED>",
        "<!ELEMENT ERROR %T_string;>",
        "<!ELEMENT eSummaryResult (DocumentSummarySet?|ERROR)>",
    ]
    return "\n".join(lines) + "\n"


def write_esummary_dtds(directory: str | Path) -> list[Path]:
    """Write the ESummary DTDs Biopython lacks into `directory` (a Biopython DTD cache).

    `Bio.Entrez` looks for a DTD in its user cache (`<Entrez.local_cache or
    ~/.config/biopython>/Bio/Entrez/DTDs`) before downloading it from NCBI.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for db in _ESUMMARY_DTD:
        if db in ("gene", "clinvar"):
            continue
        path = directory / f"esummary_{db}.dtd"
        path.write_text(esummary_dtd(db), encoding="utf-8")
        written.append(path)
    return written


def esummary_v1_error(message: str) -> bytes:
    return (f"{_DECL}{ESUMMARY_V1_DOCTYPE}<eSummaryResult>\n<ERROR>{_t(message)}</ERROR>\n"
            f"</eSummaryResult>\n").encode()
