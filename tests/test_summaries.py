"""Names and summaries from ESummary (issue 7): mapping, batching, exactly-once, CLI.

Mapping tests feed document summaries shaped like NCBI's ESummary 2.0 answers (field names as
NCBI sends them, flattened the way the client's parser flattens nested elements); run tests go
through the real CLI against the package's emulator, never the internet.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawler.cli import main
from crawler.errors import PermanentError, TransientError
from crawler.eutils.models import DocSummary
from crawler.journal import Journal
from crawler.sinks import NODE_PROPERTIES
from crawler.store import StorePaths
from crawler.summaries import (
    FIELD_MAPS,
    MARKER_TABLE,
    pending_counts,
    properties,
    summarize,
)

# ------------------------------------------------------------------------------------------
# Mapping: one document summary -> node properties
# ------------------------------------------------------------------------------------------


def _doc(uid: str, **fields: str) -> DocSummary:
    return DocSummary(uid=uid, fields={k.replace("__", "/"): v for k, v in fields.items()})


def test_gene_symbol_description_and_nested_organism() -> None:
    doc = _doc(
        "672",
        Name="BRCA1",
        Description="BRCA1 DNA repair associated",
        Status="0",
        CurrentID="0",
        Organism__ScientificName="Homo sapiens",
        Organism__CommonName="human",
        Organism__TaxID="9606",
        NomenclatureSymbol="BRCA1",
    )
    assert properties("gene", doc) == {
        "name": "BRCA1",
        "description": "BRCA1 DNA repair associated",
        "organism": "Homo sapiens",
    }


def test_gene_of_the_older_flat_shape_still_gets_its_organism() -> None:
    doc = _doc("21803", Name="Tgfb1", Orgname="Mus musculus", Status="0", CurrentID="0")
    assert properties("gene", doc)["organism"] == "Mus musculus"


def test_secondary_and_discontinued_genes_get_a_status() -> None:
    merged = _doc("100", Name="OLD1", Status="1", CurrentID="672")
    assert properties("gene", merged)["status"] == "replaced by 672"
    gone = _doc("101", Name="GONE1", Status="2", CurrentID="0")
    assert properties("gene", gone)["status"] == "discontinued"
    assert "status" not in properties("gene", _doc("672", Name="BRCA1", Status="0"))


@pytest.mark.parametrize("db", ["protein", "nuccore"])
def test_sequences_take_title_accession_organism(db: str) -> None:
    doc = _doc(
        "6552302",
        Caption="NP_009225",
        Title="breast cancer type 1 susceptibility protein isoform 1 [Homo sapiens]",
        Extra="gi|6552302|ref|NP_009225.1|",
        TaxId="9606",
        Organism="Homo sapiens",
        AccessionVersion="NP_009225.1",
    )
    props = properties(db, doc)
    assert props["name"].startswith("breast cancer type 1")
    assert props["accession"] == "NP_009225.1"
    assert props["organism"] == "Homo sapiens"


def test_sequence_replaced_by_newer_record() -> None:
    doc = _doc("5", Caption="X1", Title="old", AccessionVersion="X1.1", ReplacedBy="X1.2")
    assert properties("nuccore", doc)["status"] == "replaced by X1.2"


def test_pubmed_title_journal_and_year() -> None:
    doc = _doc(
        "22144687",
        PubDate="2012 Jan",
        EPubDate="2011 Dec 5",
        Source="Nucleic Acids Res",
        Authors__Author__Name="Benson DA",
        Title="GenBank.",
        FullJournalName="Nucleic acids research",
        SortPubDate="2012/01/01 00:00",
    )
    assert properties("pubmed", doc) == {
        "name": "GenBank.",
        "journal": "Nucleic acids research",
        "year": 2012,
    }


def test_pubmed_without_full_journal_name_uses_source_and_sort_date() -> None:
    doc = _doc("1", Title="A title", Source="J Virol", PubDate="", SortPubDate="1987/04/01 00:00")
    props = properties("pubmed", doc)
    assert props["journal"] == "J Virol" and props["year"] == 1987


def test_pmc_gets_its_pmcid_as_accession() -> None:
    doc = _doc("254085", Title="Overproduction of T antigen", PubDate="1987 Apr",
               FullJournalName="Journal of Virology")
    props = properties("pmc", doc)
    assert props == {
        "name": "Overproduction of T antigen",
        "journal": "Journal of Virology",
        "year": 1987,
        "accession": "PMC254085",
    }


def test_structure_description_accession_and_first_organism() -> None:
    doc = _doc(
        "12345",
        PdbAcc="1JM7",
        PdbDescr="Solution structure of the BRCA1/BARD1 RING-domain heterodimer",
        OrganismList__string="Homo sapiens",
    )
    assert properties("structure", doc) == {
        "name": "Solution structure of the BRCA1/BARD1 RING-domain heterodimer",
        "accession": "1JM7",
        "organism": "Homo sapiens",
    }


def test_taxonomy_name_common_name_and_merged_taxon() -> None:
    doc = _doc("9606", Status="active", Rank="species", ScientificName="Homo sapiens",
               CommonName="human", TaxId="9606", AkaTaxId="0")
    assert properties("taxonomy", doc) == {"name": "Homo sapiens", "description": "human"}
    merged = _doc("36", Status="merged", ScientificName="Bacteria X", TaxId="37", AkaTaxId="0")
    assert properties("taxonomy", merged)["status"] == "replaced by 37"


def test_snp_is_named_by_its_rs_number_and_merges_show() -> None:
    doc = _doc("80357906", SNP_ID="80357906", CLINICAL_SIGNIFICANCE="pathogenic",
               GENES__GENE_E__NAME="BRCA1", GENES__GENE_E__GENE_ID="672")
    assert properties("snp", doc) == {"name": "rs80357906", "description": "pathogenic"}
    merged = _doc("111", SNP_ID="222")
    props = properties("snp", merged)
    assert props["name"] == "rs222" and props["status"] == "replaced by 222"


def test_clinvar_title_accession_classification() -> None:
    doc = _doc(
        "17661",
        obj_type="single nucleotide variant",
        accession="VCV000017661",
        accession_version="VCV000017661.12",
        title="NM_007294.4(BRCA1):c.5266dup (p.Gln1756fs)",
        germline_classification__description="Pathogenic",
        record_status="",
    )
    assert properties("clinvar", doc) == {
        "name": "NM_007294.4(BRCA1):c.5266dup (p.Gln1756fs)",
        "accession": "VCV000017661.12",
        "description": "Pathogenic",
    }


def test_cdd_homologene_biosample_assembly_bioproject() -> None:
    cdd = properties("cdd", _doc("201140", Accession="pfam00302", Title="CAT",
                                 Subtitle="Chloramphenicol acetyltransferase",
                                 Organism="Bacteria", Status="0", LivePssmID="0"))
    assert cdd == {"name": "CAT", "accession": "pfam00302", "organism": "Bacteria",
                   "description": "Chloramphenicol acetyltransferase"}
    hg = properties("homologene", _doc("5276", Title="breast cancer 1",
                                       Description="BRCA1, Brca1 - conserved in Euarchontoglires",
                                       HomoloGeneDataList__HomoloGeneData__Symbol="BRCA1"))
    assert hg["name"] == "breast cancer 1" and hg["description"].startswith("BRCA1")
    sample_data = ('&lt;BioSample&gt;&lt;Description&gt;&lt;Organism taxonomy_id="9685" '
                   'taxonomy_name="Felis catus"/&gt;&lt;/Description&gt;&lt;/BioSample&gt;')
    bs = properties("biosample", _doc("182293", Title="cat genomic DNA",
                                      Accession="SAMN00182293", SampleData=sample_data))
    assert bs == {"name": "cat genomic DNA", "accession": "SAMN00182293",
                  "organism": "Felis catus"}
    asm = properties("assembly", _doc("440818", AssemblyAccession="GCF_000181335.1",
                                      AssemblyName="Felis_catus-6.2", Organism="Felis catus"))
    assert asm == {"name": "Felis_catus-6.2", "accession": "GCF_000181335.1",
                   "organism": "Felis catus"}
    bp = properties("bioproject", _doc("171168", Project_Acc="PRJNA171168",
                                       Project_Title="Hypothalamic transcriptome",
                                       Organism_Name="Mus musculus"))
    assert bp == {"name": "Hypothalamic transcriptome", "accession": "PRJNA171168",
                  "organism": "Mus musculus"}


def test_sra_reads_its_escaped_experiment_xml() -> None:
    exp = ('<Summary><Title>Amplicon survey of sample UC1</Title></Summary>'
           '<Experiment acc="SRX026226" ver="5" status="public" name="UC1 v3v5"/>'
           '<Organism taxid="646099" ScientificName="human metagenome"/>')
    props = properties("sra", _doc("30750", ExpXml=exp, Runs='<Run acc="SRR064905"/>'))
    assert props == {"name": "Amplicon survey of sample UC1", "accession": "SRX026226",
                     "organism": "human metagenome"}


def test_unknown_database_takes_title_or_name() -> None:
    assert properties("newdb", _doc("1", Title="Some record", Organism="Mus musculus")) == {
        "name": "Some record",
        "organism": "Mus musculus",
    }
    assert properties("otherdb", _doc("2", Name="thing"))["name"] == "thing"
    assert properties("otherdb", _doc("3", Unrelated="x")) == {}


def test_missing_record_gets_only_a_status() -> None:
    doc = DocSummary(uid="999999999", error="cannot get document summary")
    assert properties("pubmed", doc) == {"status": "missing: cannot get document summary"}


def test_properties_stay_within_the_store_schema_and_types() -> None:
    doc = _doc("1", Title="  spaced\n\ttitle  ", PubDate="Winter 1999", Source="J")
    props = properties("pubmed", doc)
    assert props["name"] == "spaced title" and props["year"] == 1999
    for db in [*FIELD_MAPS, "unknown"]:
        got = properties(db, _doc("9", Title="t", Name="n", PubDate="2001", Status="2",
                                  ExpXml="<Summary><Title>x</Title></Summary>"))
        assert set(got) <= set(NODE_PROPERTIES), db
        assert all(isinstance(v, int if k == "year" else str) for k, v in got.items())


def test_every_design_database_has_a_mapping() -> None:
    for db in ("gene", "protein", "nuccore", "pubmed", "pmc", "structure", "taxonomy", "snp",
               "clinvar", "cdd", "homologene", "biosample", "sra"):
        assert db in FIELD_MAPS


def test_parser_output_maps_end_to_end() -> None:
    """The client's parser flattens nested elements; the mapping reads what it makes."""
    from crawler.eutils.parse import parse_esummary

    body = b"""<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE eSummaryResult PUBLIC "-//NLM//DTD esummary gene 20240101//EN" "https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20240101/esummary_gene.dtd">
<eSummaryResult>
<DocumentSummarySet status="OK">
<DbBuild>Build000000-0000.1</DbBuild>
<DocumentSummary uid="672">
  <Name>BRCA1</Name>
  <Description>BRCA1 DNA repair associated</Description>
  <Status>0</Status>
  <CurrentID>0</CurrentID>
  <Organism>
    <ScientificName>Homo sapiens</ScientificName>
    <CommonName>human</CommonName>
    <TaxID>9606</TaxID>
  </Organism>
</DocumentSummary>
<DocumentSummary uid="1">
  <error>cannot get document summary</error>
</DocumentSummary>
</DocumentSummarySet>
</eSummaryResult>
"""
    docs = {d.uid: d for d in parse_esummary(body, asked=["672", "1"])}
    assert properties("gene", docs["672"]) == {
        "name": "BRCA1",
        "description": "BRCA1 DNA repair associated",
        "organism": "Homo sapiens",
    }
    assert properties("gene", docs["1"]) == {"status": "missing: cannot get document summary"}


# ------------------------------------------------------------------------------------------
# summarize() with a scripted client: batching, isolation, deferral, exactly-once
# ------------------------------------------------------------------------------------------


class ScriptedClient:
    """The client's ESummary contract over a dict, for exercising `summarize` alone.

    `esummary_batch` behaves as EutilsClient's does: one request per call (plus bisection
    when an ID is refused, like a 400 for a malformed ID), `failed` for refused IDs, an error
    summary for unknown ones; PermanentError for a refused database; TransientError when NCBI
    stays down; `silent` IDs are left out of the first answer that holds them.
    """

    def __init__(self, names: dict[tuple[str, str], str], bad: frozenset[str] = frozenset(),
                 down: bool = False, refuse_db: str | None = None,
                 silent: frozenset[str] = frozenset()) -> None:
        self.names = names
        self.bad = set(bad)
        self.down = down
        self.refuse_db = refuse_db
        self.silent = set(silent)
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self.requests_sent = 0
        self.concurrency = 3

    def _request(self, db: str, ids: list[str]) -> dict[str, DocSummary]:
        self.calls.append((db, tuple(ids)))
        self.requests_sent += 1
        if db == self.refuse_db:
            raise PermanentError(f"Invalid db name specified: {db}")
        if self.down:
            raise TransientError("Search Backend failed", status=502)
        if self.bad & set(ids):
            raise PermanentError("Bad request: invalid id")
        out = {}
        for uid in ids:
            if uid in self.silent:
                self.silent.discard(uid)
                out[uid] = DocSummary(uid=uid, error="no summary returned")
                continue
            name = self.names.get((db, uid))
            out[uid] = (
                DocSummary(uid=uid, error="cannot get document summary") if name is None
                else DocSummary(uid=uid, fields={"Title": name, "Name": name})
            )
        return out

    def esummary_batch(self, db: str, ids: list[str], batch_size: int = 500
                       ) -> tuple[dict[str, DocSummary], dict[str, str]]:
        answered: dict[str, DocSummary] = {}
        failed: dict[str, str] = {}

        def run(chunk: list[str]) -> None:
            try:
                answered.update(self._request(db, chunk))
            except PermanentError as exc:
                if "db name" in str(exc):
                    raise
                if len(chunk) == 1:
                    failed[chunk[0]] = str(exc)
                    return
                run(chunk[: len(chunk) // 2])
                run(chunk[len(chunk) // 2 :])

        for i in range(0, len(ids), batch_size):
            run(list(ids[i : i + batch_size]))
        return answered, failed


def _journal(tmp_path: Path, per_db: dict[str, int]) -> Journal:
    j = Journal(tmp_path / "store")
    for db, n in per_db.items():
        j.add_nodes((db, str(1000 + i), 0) for i in range(n))
    return j


def _names(per_db: dict[str, int]) -> dict[tuple[str, str], str]:
    return {(db, str(1000 + i)): f"{db} record {i}" for db, n in per_db.items()
            for i in range(n)}


def test_batches_are_ceil_records_over_batch_per_database(tmp_path: Path) -> None:
    sizes = {"gene": 250, "protein": 101, "pubmed": 7}
    j = _journal(tmp_path, sizes)
    client = ScriptedClient(_names(sizes))
    report = summarize(j, client, batch_size=50)
    per_db = Counter(db for db, _ in client.calls)
    assert per_db == {db: math.ceil(n / 50) for db, n in sizes.items()}
    assert all(len(ids) <= 50 for _, ids in client.calls)
    assert report.summarized == report.records == 358 and report.named == 358
    assert j.props_of("protein", "1100") == {"name": "protein record 100"}
    # a second run asks nothing
    again = ScriptedClient(_names(sizes))
    report2 = summarize(j, again, batch_size=50)
    assert again.calls == [] and report2.fetched == 0 and report2.summarized == 358


def test_refused_id_is_isolated_and_recorded_the_rest_answered(tmp_path: Path) -> None:
    sizes = {"gene": 64}
    j = _journal(tmp_path, sizes)
    client = ScriptedClient(_names(sizes), bad={"1013"})
    report = summarize(j, client, batch_size=64)
    assert report.failed == 1 and report.named == 63 and report.deferred == 0
    assert j.props_of("gene", "1013")["status"].startswith("missing: Bad request")
    assert j.execute("SELECT step FROM failed WHERE uid='1013'").fetchone() == ("summary",)
    assert len(client.calls) <= 2 * math.ceil(math.log2(64)) + 1


def test_unknown_ids_get_a_status_not_an_error(tmp_path: Path) -> None:
    j = _journal(tmp_path, {"pubmed": 5})
    names = _names({"pubmed": 5})
    del names[("pubmed", "1002")]
    report = summarize(j, ScriptedClient(names))
    assert report.complete and report.status == 1
    assert j.props_of("pubmed", "1002") == {"status": "missing: cannot get document summary"}


def test_silently_omitted_ids_are_asked_again_once(tmp_path: Path) -> None:
    sizes = {"protein": 20}
    j = _journal(tmp_path, sizes)
    client = ScriptedClient(_names(sizes), silent=frozenset({"1003", "1011"}))
    report = summarize(j, client, batch_size=20)
    assert client.calls[1] == ("protein", ("1003", "1011"))
    assert report.named == 20 and report.status == 0


def test_ncbi_down_defers_records_to_the_next_run(tmp_path: Path) -> None:
    sizes = {"gene": 30}
    j = _journal(tmp_path, sizes)
    report = summarize(j, ScriptedClient(_names(sizes), down=True), batch_size=10)
    assert report.deferred == 30 and not report.complete and report.summarized == 0
    assert pending_counts(j) == {"gene": 30}
    later = ScriptedClient(_names(sizes))
    assert summarize(j, later, batch_size=10).complete
    assert len(later.calls) == 3 and pending_counts(j) == {}


def test_database_without_summaries_is_reported_once(tmp_path: Path) -> None:
    sizes = {"gene": 5, "oddb": 40}
    j = _journal(tmp_path, sizes)
    client = ScriptedClient(_names(sizes), refuse_db="oddb")
    report = summarize(j, client, batch_size=10, workers=1)
    assert "oddb" in report.unsupported and report.by_db["gene"].named == 5
    assert sum(1 for db, _ in client.calls if db == "oddb") == 1


def test_marker_and_props_commit_together(tmp_path: Path) -> None:
    """A batch whose write fails leaves neither props nor markers (one transaction)."""
    sizes = {"gene": 4}
    j = _journal(tmp_path, sizes)
    real = j.set_props
    calls = {"n": 0}

    def failing(db: str, uid: str, data: dict) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk full")
        real(db, uid, data)

    j.set_props = failing  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        summarize(j, ScriptedClient(_names(sizes)), batch_size=4)
    j.set_props = real  # type: ignore[method-assign]
    assert j.execute(f"SELECT count(*) FROM {MARKER_TABLE}").fetchone()[0] == 0
    assert j.execute("SELECT count(*) FROM props").fetchone()[0] == 0


def test_db_filter_and_bad_batch_size(tmp_path: Path) -> None:
    from crawler.errors import BadInput

    sizes = {"gene": 3, "protein": 3}
    j = _journal(tmp_path, sizes)
    client = ScriptedClient(_names(sizes))
    summarize(j, client, dbs=["protein"])
    assert {db for db, _ in client.calls} == {"protein"}
    with pytest.raises(BadInput):
        summarize(j, client, batch_size=0)


# ------------------------------------------------------------------------------------------
# Through the real CLI against the emulator
# ------------------------------------------------------------------------------------------

E2E_DBS = ("gene", "protein", "nuccore", "pubmed", "pmc", "structure", "taxonomy", "snp",
           "clinvar", "cdd", "homologene", "biosample", "sra")
# UIDs no generated world holds: NCBI answers them with <error>, they must end with a status.
UNKNOWN = (("gene", "999999901"), ("pubmed", "999999902"))


def _ids_of(params: dict) -> list[str]:
    raw = params.get("id", [])
    values = raw if isinstance(raw, list | tuple) else [raw]
    return [i for v in values for i in str(v).split(",") if i]


def _param(params: dict, key: str) -> str | None:
    v = params.get(key)
    if isinstance(v, list | tuple):
        return str(v[0]) if v else None
    return None if v is None else str(v)


def _esummary_requests(log: list[dict]) -> list[tuple[str, list[str]]]:
    """(db, ids) of every ESummary request the emulator answered with 200."""
    out = []
    for entry in log:
        if "esummary" in str(entry.get("path", "")) and entry.get("status") == 200:
            params = entry.get("params") or {}
            out.append((_param(params, "db") or "", _ids_of(params)))
    return out


def _filled_store(tmp_path: Path, world, per_db: int) -> tuple[Path, dict[str, list[str]]]:
    """A store whose journal holds up to `per_db` records of each database (a finished crawl)."""
    store = tmp_path / "store"
    chosen: dict[str, list[str]] = {}
    with Journal(StorePaths.of(store).journal) as j:
        for db in E2E_DBS:
            uids = [u for _, u in zip(range(per_db), world.uids(db), strict=False)]
            chosen[db] = uids
            j.add_nodes(((db, u, 1) for u in uids), state="done")
        j.add_nodes(((db, u, 1) for db, u in UNKNOWN), state="done")
    return store, chosen


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NCBI_API_KEY"}
    env.update(ENTREZ_GRAPH_RATE_DIR=str(tmp_path / "rate"), NCBI_EMAIL="test@example.org",
               PYTHONUNBUFFERED="1")
    return env


@pytest.fixture
def e2e_world():
    from crawler.emulator import World

    return World.generate(seed=5, size=800)


def test_summarize_names_every_record_in_minimal_requests(tmp_path, e2e_world, monkeypatch):
    from crawler.emulator import Emulator

    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))
    store, chosen = _filled_store(tmp_path, e2e_world, per_db=120)
    batch = 50
    with Emulator(e2e_world) as emu:
        args = ["summarize", "--store", str(store), "--eutils-url", emu.url, "--rps", "1000",
                "--batch-size", str(batch), "--format", "json"]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        first = _esummary_requests(emu.log)
        again = CliRunner().invoke(main, args)
        assert again.exit_code == 0, again.output
        assert _esummary_requests(emu.log) == first  # a finished run asks NCBI nothing

    with Journal(StorePaths.of(store).journal, create=False) as j:
        for db, uids in chosen.items():
            for uid in uids:
                props = j.props_of(db, uid)
                assert props.get("name"), (db, uid, props)
                assert "status" not in props, (db, uid, props)
        for db, uid in UNKNOWN:
            assert j.props_of(db, uid)["status"].startswith("missing: "), (db, uid)
            assert "name" not in j.props_of(db, uid)
        assert j.props_of("gene", "672")["name"] == "BRCA1"

    records = {db: len(u) + sum(1 for d, _ in UNKNOWN if d == db) for db, u in chosen.items()}
    per_db = Counter(db for db, _ in first)
    assert per_db == {db: math.ceil(n / batch) for db, n in records.items()}
    asked = Counter((db, i) for db, ids in first for i in ids)
    assert len(asked) == sum(records.values()) and max(asked.values()) == 1  # each once
    assert report["records"] == sum(records.values()) == report["summarized"]
    assert report["status"] == len(UNKNOWN) and report["complete"]


def test_summarize_survives_faults_and_isolates_a_refused_id(tmp_path, e2e_world, monkeypatch):
    from crawler.emulator import Emulator

    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))
    store, chosen = _filled_store(tmp_path, e2e_world, per_db=40)
    others = {u for db, uids in chosen.items() if db != "nuccore" for u in uids}
    poisoned = next(u for u in chosen["nuccore"][5:] if u not in others)  # poison is per ID
    faults = "429=0.1,5xx=0.1,drop=0.05,truncate=0.05,error=0.05"
    with Emulator(e2e_world, faults=faults, fault_seed=3, poison=(poisoned,)) as emu:
        result = CliRunner().invoke(main, ["summarize", "--store", str(store), "--eutils-url",
                                           emu.url, "--rps", "1000", "--batch-size", "25"])
    assert result.exit_code == 0, result.output
    with Journal(StorePaths.of(store).journal, create=False) as j:
        for db, uids in chosen.items():
            for uid in uids:
                props = j.props_of(db, uid)
                if uid == poisoned and db == "nuccore":
                    assert props["status"].startswith("missing: ") and "name" not in props
                else:
                    assert props.get("name"), (db, uid, props)
        assert j.execute(
            "SELECT step FROM failed WHERE db='nuccore' AND uid=?", (poisoned,)
        ).fetchone() == ("summary",)


def test_summarize_resumes_after_sigkill_without_asking_twice(tmp_path, e2e_world):
    from crawler.emulator import Emulator

    store, chosen = _filled_store(tmp_path, e2e_world, per_db=60)
    total = sum(len(u) for u in chosen.values()) + len(UNKNOWN)
    journal_file = StorePaths.of(store).journal
    latency_ms = 120
    with Emulator(e2e_world, latency_ms=latency_ms) as emu:
        cmd = [sys.executable, "-m", "crawler", "summarize", "--store", str(store),
               "--eutils-url", emu.url, "--rps", "1000", "--batch-size", "10"]
        proc = subprocess.Popen(cmd, env=_env(tmp_path), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)

        def markers() -> int:
            con = sqlite3.connect(f"file:{journal_file}?mode=ro", uri=True, timeout=30)
            try:
                return con.execute(f"SELECT count(*) FROM {MARKER_TABLE}").fetchone()[0]
            except sqlite3.OperationalError:
                return 0  # the marker table is not there yet
            finally:
                con.close()

        deadline = time.monotonic() + 120
        while markers() < 30:
            assert proc.poll() is None, "summarize finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        time.sleep(3 * latency_ms / 1000)  # requests in flight at the kill get answered/logged
        done_at_kill = {tuple(r) for r in sqlite3.connect(journal_file).execute(
            f"SELECT db, uid FROM {MARKER_TABLE}").fetchall()}
        assert 30 <= len(done_at_kill) < total
        cut = len(emu.log)

        resumed = subprocess.run(cmd, env=_env(tmp_path), capture_output=True, text=True,
                                 timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        after = _esummary_requests(emu.log[cut:])

    asked_again = {(db, i) for db, ids in after for i in ids}
    assert not asked_again & done_at_kill
    with Journal(journal_file, create=False) as j:
        assert j.execute(f"SELECT count(*) FROM {MARKER_TABLE}").fetchone()[0] == total
        for db, uids in chosen.items():
            assert all(j.props_of(db, u).get("name") for u in uids), db


def test_summarize_bad_input_is_one_line_exit_2(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(main, ["summarize", "--store", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and missing.output.count("\n") == 1
    assert "Error: no entrez-graph store" in missing.output
    assert not (tmp_path / "nowhere").exists()
    Journal(tmp_path / "s").close()
    bad_db = runner.invoke(main, ["summarize", "--store", str(tmp_path / "s"), "--db", "Bad DB"])
    assert bad_db.exit_code == 2 and "invalid database name" in bad_db.output
    bad_batch = runner.invoke(main, ["summarize", "--store", str(tmp_path / "s"),
                                     "--batch-size", "0"])
    assert bad_batch.exit_code == 2


def _store_names(store: Path, db: str) -> dict[str, dict]:
    """uid -> the NODE_PROPERTIES of every `db` node in the embedded store (LadybugDB)."""
    from crawler.querying import run_query

    cols = ", ".join(f"n.{k} AS {k}" for k in NODE_PROPERTIES)
    result = run_query(store, f"MATCH (n:{db}) RETURN n.uid AS uid, {cols}")
    return {r["uid"]: r for r in result.records()}


def test_crawl_with_summaries_names_every_record_in_journal_and_store(tmp_path, e2e_world,
                                                                        monkeypatch):
    from crawler.emulator import Emulator

    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))
    store = tmp_path / "store"
    with Emulator(e2e_world) as emu:
        result = CliRunner().invoke(main, [
            "crawl", "gene:672", "--depth", "2", "--link", "gene_protein_refseq",
            "--link", "protein_structure", "--link", "gene_pubmed", "--summaries",
            "--store", str(store), "--eutils-url", emu.url, "--rps", "1000",
            "--format", "json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)["summaries"]
    assert summary["complete"] and summary["named"] == summary["records"] > 0

    with Journal(StorePaths.of(store).journal, create=False) as j:
        nodes = [(r.db, r.uid) for r in j.iter_nodes()]
        assert {db for db, _ in nodes} >= {"gene", "protein", "structure", "pubmed"}
        for db, uid in nodes:
            assert j.props_of(db, uid).get("name"), (db, uid)
    genes = _store_names(store, "gene")
    assert genes["672"]["name"] == "BRCA1" and genes["672"]["organism"] == "Homo sapiens"
    for db in ("protein", "structure", "pubmed"):
        in_store = _store_names(store, db)
        assert in_store and all(r["name"] for r in in_store.values()), db
    proteins = _store_names(store, "protein")
    assert any(str(r["accession"]).startswith("NP_009225") for r in proteins.values())
    assert any(r["accession"] == "1JM7" for r in _store_names(store, "structure").values())
    assert all(isinstance(r["year"], int) for r in _store_names(store, "pubmed").values())


def test_summarize_after_a_crawl_reaches_the_embedded_store(tmp_path, e2e_world, monkeypatch):
    from crawler.emulator import Emulator

    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))
    store = tmp_path / "store"
    with Emulator(e2e_world) as emu:
        common = ["--store", str(store), "--eutils-url", emu.url, "--rps", "1000"]
        crawled = CliRunner().invoke(main, ["crawl", "gene:672", "--depth", "1", *common])
        assert crawled.exit_code == 0, crawled.output
        assert not any(r["name"] for r in _store_names(store, "protein").values())
        done = CliRunner().invoke(main, ["summarize", *common])
        assert done.exit_code == 0, done.output
        assert "Store embedded:" in done.output and "in step" in done.output
    with Journal(StorePaths.of(store).journal, create=False) as j:
        by_db = j.stats()["by_db"]
    for db, n in by_db.items():
        in_store = _store_names(store, db)
        assert len(in_store) == n and all(r["name"] for r in in_store.values()), db


def test_long_escaped_fragments_are_parsed_whole_and_only_values_cut() -> None:
    """NCBI's ExpXml runs to ~3,000 characters and SampleData to ~1,300, the organism near the
    end: cutting the fragment before parsing it lost every SRA name and BioSample organism."""
    protocol = "Total RNA was extracted and reverse transcribed; " * 60
    exp = ('<Summary><Title>' + "long title " * 120 + '</Title></Summary>'
           '<Experiment acc="SRX026226" ver="5" status="public" name="UC1 v3v5"/>'
           f'<Library_descriptor><LIBRARY_CONSTRUCTION_PROTOCOL>{protocol}'
           '</LIBRARY_CONSTRUCTION_PROTOCOL></Library_descriptor>'
           '<Organism taxid="646099" ScientificName="human metagenome"/>')
    assert len(exp) > 3000 and exp.index("<Organism") > 2000
    for given in (exp, exp.replace("<", "&lt;").replace(">", "&gt;")):  # raw or escaped
        props = properties("sra", _doc("30750", ExpXml=given))
        assert props["organism"] == "human metagenome" and props["accession"] == "SRX026226"
        assert props["name"].startswith("long title") and len(props["name"]) == 1000
    attributes = "".join(f'&lt;Attribute attribute_name="a{i}"&gt;{"v" * 40}&lt;/Attribute&gt;'
                         for i in range(20))
    sample = (f'&lt;BioSample&gt;&lt;Attributes&gt;{attributes}&lt;/Attributes&gt;'
              '&lt;Organism taxonomy_id="9685" taxonomy_name="Felis catus"/&gt;&lt;/BioSample&gt;')
    assert len(sample) > 1300
    bs = properties("biosample", _doc("182293", Title="cat", SampleData=sample))
    assert bs["organism"] == "Felis catus"


def test_a_database_refused_as_a_whole_is_said_once_with_its_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sizes = {"gene": 5, "oddb": 40}
    j = _journal(tmp_path, sizes)
    with caplog.at_level("WARNING", logger="crawler"):
        summarize(j, ScriptedClient(_names(sizes), refuse_db="oddb"), batch_size=10, workers=1)
    said = [r.getMessage() for r in caplog.records if "oddb" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("No summaries for 40 oddb records"), said


def test_second_summarize_still_counts_the_names_and_a_refused_db_is_on_stderr(
    tmp_path, e2e_world, monkeypatch
):
    from crawler.emulator import Emulator

    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rate"))
    store, chosen = _filled_store(tmp_path, e2e_world, per_db=10)
    with Journal(StorePaths.of(store).journal, create=False) as j:
        j.add_nodes((("dbvar", str(u), 1) for u in range(1, 8)), state="done")
    args = ["summarize", "--store", str(store), "--rps", "1000"]
    with Emulator(e2e_world) as emu:
        first = CliRunner().invoke(main, [*args, "--eutils-url", emu.url])
        again = CliRunner().invoke(
            main, [*args, "--eutils-url", emu.url, "--format", "json"])
    assert first.exit_code == 0, first.output
    refused = [ln for ln in first.stderr.splitlines() if "dbvar" in ln]
    assert refused == ["No summaries for 7 dbvar records: NCBI refused ESummary for dbvar "
                       "(Invalid db name specified: dbvar)"], first.stderr
    assert "dbvar" not in first.stdout.split("\n\n")[0]
    report = json.loads(again.stdout)
    assert report["fetched"] == 0
    for db in ("sra", "biosample", "gene"):
        assert report["by_db"][db]["named"] == len(chosen[db]) > 0, db
    with Journal(StorePaths.of(store).journal, create=False) as j:
        for db in ("sra", "biosample"):
            for uid in chosen[db]:
                assert j.props_of(db, uid).get("organism"), (db, uid)
