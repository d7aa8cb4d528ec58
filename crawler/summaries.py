"""Names and a few filterable fields for every crawled record, from ESummary (issue 7).

ELink gives a graph of bare UIDs; ESummary (version 2.0) says what each one is: a gene symbol, a
protein title, an article title. `summarize` fetches the document summaries of every journal
node not summarized yet, in batches of hundreds of IDs per request through the shared client (so
the same rate limiter and retries as ELink), maps them to the small per-database property set
the sinks project (`NODE_PROPERTIES`), and writes them with `journal.set_props`.

Exactly-once: a marker table `summarized(db, uid)` in the journal is written in the same
transaction as the props of each batch, so a run killed at any moment resumes with the records it
had not committed yet, and a finished run asks NCBI nothing on a second call.

Records NCBI reports as missing (`cannot get document summary`), replaced (a secondary gene ID, a
merged taxon or rs number) or withdrawn keep their node and get a `status` property instead of
failing the crawl.
"""

from __future__ import annotations

import html
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import BadInput, NCBIError, PermanentError, TransientError

if TYPE_CHECKING:
    from .eutils.models import DocSummary
    from .journal import Journal

log = logging.getLogger(__name__)

DEFAULT_BATCH = 500          # IDs per ESummary request (NCBI: POST, up to 500 for version 2.0)
MAX_BATCH = 500
MARKER_TABLE = "summarized"
_MAX_TEXT = 1000             # a property is a label, not a document: long titles are cut here

MARKER_DDL = (
    f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE}("
    "db TEXT NOT NULL, uid TEXT NOT NULL, PRIMARY KEY(db, uid)) WITHOUT ROWID"
)

# ----------------------------------------------------------------------------------------------
# The per-database mapping: the one place that knows ESummary 2.0 field names.
# Each entry lists candidate fields, best first; a nested element is written "Parent/Child"
# (gene's <Organism><ScientificName>), and the lookup also accepts the other ways a flattening
# parser may spell it ("Organism.ScientificName", "ScientificName"). Field names are NCBI's own
# (checked against recorded DocumentSummarySet responses of each database).
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldMap:
    """Which ESummary fields give each node property of one database."""

    name: tuple[str, ...] = ()
    organism: tuple[str, ...] = ()
    description: tuple[str, ...] = ()
    accession: tuple[str, ...] = ()
    journal: tuple[str, ...] = ()
    year: tuple[str, ...] = ()


_SEQUENCE = FieldMap(
    name=("Title", "Caption"),
    organism=("Organism", "Organism/ScientificName"),
    accession=("AccessionVersion", "Caption"),
)
_ARTICLE = FieldMap(
    name=("Title", "BookTitle", "BookName"),
    journal=("FullJournalName", "Source"),
    year=("PubDate", "SortPubDate", "SortDate", "EPubDate"),
)

FIELD_MAPS: dict[str, FieldMap] = {
    # gene: current docsums nest <Organism><ScientificName>; older ones had a flat <Orgname>.
    "gene": FieldMap(
        name=("Name", "NomenclatureSymbol"),
        organism=("Organism/ScientificName", "Orgname"),
        description=("Description", "NomenclatureName"),
    ),
    "protein": _SEQUENCE,
    "nuccore": _SEQUENCE,
    "nucest": _SEQUENCE,
    "nucgss": _SEQUENCE,
    "popset": _SEQUENCE,
    "pubmed": _ARTICLE,
    "pmc": _ARTICLE,
    "books": FieldMap(name=("Title", "BookTitle"), year=("PubDate",)),
    "structure": FieldMap(
        name=("PdbDescr", "PdbAcc"),
        organism=("OrganismList", "OrganismList/string"),
        accession=("PdbAcc",),
    ),
    "taxonomy": FieldMap(name=("ScientificName",), description=("CommonName",)),
    # snp: the name is the rs number (made in _special); GENES/GENE_E/NAME in current docsums.
    "snp": FieldMap(description=("CLINICAL_SIGNIFICANCE", "clinical_significance")),
    "clinvar": FieldMap(
        name=("title",),
        accession=("accession_version", "accession"),
        description=(
            "germline_classification/description",
            "clinical_significance/description",
            "obj_type",
        ),
    ),
    "cdd": FieldMap(
        name=("Title", "Accession"),
        organism=("Organism",),
        description=("Subtitle",),
        accession=("Accession",),
    ),
    "homologene": FieldMap(name=("Title",), description=("Description", "Caption")),
    "biosample": FieldMap(
        name=("Title",), organism=("Organism",), accession=("Accession",)
    ),
    # sra: everything is inside <ExpXml>, an escaped XML fragment (made in _special).
    "sra": FieldMap(),
    "assembly": FieldMap(
        name=("AssemblyName",),
        organism=("Organism", "SpeciesName"),
        accession=("AssemblyAccession",),
        description=("AssemblyDescription",),
    ),
    "bioproject": FieldMap(
        name=("Project_Title", "Project_Name"),
        organism=("Organism_Name",),
        accession=("Project_Acc",),
    ),
    "gds": FieldMap(name=("title",), organism=("taxon",), accession=("Accession",)),
    "geoprofiles": FieldMap(name=("title",), organism=("taxon",)),
    "genome": FieldMap(
        name=("Organism_Name", "DefLine"),
        organism=("Organism_Name",),
        accession=("Project_Accession", "Assembly_Accession"),
    ),
    "proteinclusters": FieldMap(
        name=("Definition", "ACCN"),
        organism=("CommonTaxonomy",),
        accession=("ACCN",),
    ),
    "medgen": FieldMap(name=("Title",), accession=("ConceptId",), description=("Definition",)),
    "omim": FieldMap(name=("Title",), accession=("Oid",)),
    "mesh": FieldMap(name=("DS_MeshTerms", "DS_MeshTerms/string")),
    "dbvar": FieldMap(name=("ST", "SV"), accession=("ST", "SV"), organism=("Organism",)),
    "gtr": FieldMap(name=("TestName", "Title"), accession=("Accession",)),
    "nlmcatalog": FieldMap(name=("TitleMainList/Title", "Title", "TitleMainSort")),
    "pccompound": FieldMap(name=("MeSHHeadingList", "SynonymList", "IUPACName")),
    "pcsubstance": FieldMap(name=("SynonymList", "SourceNameList")),
    "pcassay": FieldMap(name=("AssayName", "Title")),
}

# Unknown databases: a title or name if the docsum has one (design: "take Title/Name").
GENERIC = FieldMap(
    name=("Title", "title", "Name", "name", "ScientificName", "Caption", "Definition"),
    organism=("Organism", "Organism/ScientificName", "Organism_Name", "OrganismName"),
    accession=("AccessionVersion", "Accession", "accession"),
)

# Document-summary fields that say a record is no longer current. Gene: Status 1 = secondary
# (merged into CurrentID), 2 = discontinued; taxonomy: Status "merged" (AkaTaxId/TaxId);
# CDD: LivePssmID; sequences: ReplacedBy; ClinVar: record_status.
_GENE_STATUS = {"1": "secondary", "2": "discontinued"}


# ----------------------------------------------------------------------------------------------
# Field lookup over flat text fields
# ----------------------------------------------------------------------------------------------


class _Fields:
    """Case-insensitive lookup of a docsum's flat fields, tolerant of how nesting was flattened."""

    __slots__ = ("_exact", "_leaf", "_lower")

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self._exact = fields
        self._lower: dict[str, Any] = {}
        self._leaf: dict[str, Any] = {}
        for key, value in fields.items():
            k = str(key)
            norm = re.sub(r"[./:]", "/", k).lower()
            self._lower.setdefault(norm, value)
            self._leaf.setdefault(norm.rsplit("/", 1)[-1], value)

    def raw(self, name: str) -> Any:
        if name in self._exact:
            return self._exact[name]
        norm = name.lower()
        if norm in self._lower:
            return self._lower[norm]
        if "/" in norm:
            # "Organism/ScientificName" given flat as "ScientificName", or the whole
            # <Organism> element given as text.
            leaf = norm.rsplit("/", 1)[-1]
            if leaf in self._lower:
                return self._lower[leaf]
            if leaf in self._leaf and leaf not in ("string", "description", "title"):
                return self._leaf[leaf]
        return None

    def first(self, names: Sequence[str]) -> str | None:
        for name in names:
            text = _clean(self.raw(name))
            if text:
                return text
        return None


def _clean(value: Any) -> str | None:
    """One line of text from a field: lists give their distinct items, whitespace collapses."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        # a nested element kept as a dict: prefer its name-like child
        for key in ("ScientificName", "Name", "Title", "description", "string"):
            if key in value:
                return _clean(value[key])
        return None
    if isinstance(value, (list, tuple)):
        items: list[str] = []
        for v in value:
            t = _clean(v)
            if t and t not in items:
                items.append(t)
        return "; ".join(items) or None
    text = " ".join(str(value).split())
    if not text:
        return None
    parts = [p.strip() for p in re.split(r"\s*[;|]\s*", text)] if ";" in text or "|" in text else []
    if len(parts) > 1 and len(set(parts)) == 1:
        text = parts[0]  # "Homo sapiens; Homo sapiens": one organism listed per chain
    return text[:_MAX_TEXT]


_YEAR = re.compile(r"(?<!\d)(1[6-9]\d\d|20\d\d|21\d\d)(?!\d)")


def _year(text: str | None) -> int | None:
    """The year of "2012 Jan", "2011 Dec 5", "2012/01/01 00:00", "Winter 1999"."""
    if not text:
        return None
    m = _YEAR.search(text)
    return int(m.group(1)) if m else None


def _whole_text(value: Any) -> str | None:
    """A field's text uncut (an escaped XML fragment must be parsed whole: SRA's ExpXml runs to
    about 3,000 characters, BioSample's SampleData to 1,300; only stored values are cut)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        value = "".join(str(v) for v in value if v is not None)
    text = str(value).strip()
    return text or None


def _embedded_xml(text: str | None) -> ET.Element | None:
    """SRA's ExpXml and BioSample's SampleData are XML fragments escaped inside a text field."""
    if not text:
        return None
    fragment = text if "<" in text else html.unescape(text)
    try:
        return ET.fromstring(f"<r>{fragment}</r>")
    except ET.ParseError:
        return None


def _special(db: str, uid: str, f: _Fields, props: dict[str, Any]) -> None:
    """Databases whose name is not a plain field."""
    if db == "snp":
        snp_id = f.first(("SNP_ID",))
        props["name"] = f"rs{snp_id or uid}"
        genes = f.first(("GENES/GENE_E/NAME", "GENE"))
        if genes and "description" not in props:
            props["description"] = genes
    elif db == "sra":
        root = _embedded_xml(_whole_text(f.raw("ExpXml")))
        if root is not None:
            title = root.findtext(".//Title")
            if title and title.strip():
                props["name"] = _clean(title)
            org = root.find(".//Organism")
            if org is not None and org.get("ScientificName"):
                props["organism"] = _clean(org.get("ScientificName"))
            exp = root.find(".//Experiment")
            if exp is not None and exp.get("acc"):
                props["accession"] = _clean(exp.get("acc"))
                props.setdefault("name", _clean(exp.get("name") or exp.get("acc")))
    elif db == "biosample" and "organism" not in props:
        root = _embedded_xml(_whole_text(f.raw("SampleData")))
        org = root.find(".//Organism") if root is not None else None
        if org is not None and org.get("taxonomy_name"):
            props["organism"] = _clean(org.get("taxonomy_name"))
    elif db == "pmc" and "accession" not in props:
        props["accession"] = f"PMC{uid}"


def _status(db: str, uid: str, f: _Fields) -> str | None:
    """"replaced by N", "discontinued", … when NCBI says the record is no longer current."""
    if db == "gene":
        code = f.first(("Status",))
        current = f.first(("CurrentID",))
        if current and current not in ("0", uid):
            return f"replaced by {current}"
        if code in _GENE_STATUS:
            return _GENE_STATUS[code]
        return None
    if db == "taxonomy":
        state = (f.first(("Status",)) or "active").lower()
        if state == "active":
            return None
        for other in (f.first(("TaxId",)), f.first(("AkaTaxId",))):
            if other and other not in ("0", uid):
                return f"replaced by {other}"
        return state
    if db == "cdd":
        live = f.first(("LivePssmID",))
        if live and live not in ("0", uid):
            return f"replaced by {live}"
        return None
    if db == "snp":
        snp_id = f.first(("SNP_ID",))
        if snp_id and snp_id.isdigit() and snp_id != uid:
            return f"replaced by {snp_id}"
        return None
    if db == "clinvar":
        state = f.first(("record_status",))
        return state.lower() if state and state.lower() not in ("current", "live") else None
    replaced = f.first(("ReplacedBy",))
    if replaced and replaced not in ("0", uid):
        return f"replaced by {replaced}"
    state = f.first(("Status",)) if db in ("nuccore", "protein", "nucest", "nucgss") else None
    if state and state.lower() not in ("live", "0", "active"):
        return state.lower()
    return None


def field_map(db: str) -> FieldMap:
    """The mapping for `db` (GENERIC for databases without one of their own)."""
    return FIELD_MAPS.get(db, GENERIC)


def properties(db: str, summary: DocSummary) -> dict[str, Any]:
    """The node properties (keys of `NODE_PROPERTIES`) one document summary gives.

    A summary NCBI answered with an error gives only `status` ("missing: <NCBI's text>").
    """
    uid = str(summary.uid)
    if summary.error:
        return {"status": f"missing: {' '.join(summary.error.split())}"[:_MAX_TEXT]}
    f = _Fields(summary.fields or {})
    fm = field_map(db)
    props: dict[str, Any] = {}
    for key in ("name", "organism", "description", "accession", "journal"):
        value = f.first(getattr(fm, key))
        if value:
            props[key] = value
    year = _year(f.first(fm.year)) if fm.year else None
    if year is not None:
        props["year"] = year
    _special(db, uid, f, props)
    if "name" not in props and fm is not GENERIC:
        fallback = f.first(GENERIC.name) or props.get("accession")
        if fallback:
            props["name"] = fallback
    status = _status(db, uid, f)
    if status:
        props["status"] = status
    return props


# ----------------------------------------------------------------------------------------------
# Journal bookkeeping
# ----------------------------------------------------------------------------------------------


def ensure_marker_table(journal: Journal) -> None:
    """Create the `summarized` marker table if this journal has none yet (idempotent)."""
    journal.execute(MARKER_DDL)


def summarized_count(journal: Journal) -> int:
    ensure_marker_table(journal)
    return journal.execute(f"SELECT count(*) FROM {MARKER_TABLE}").fetchone()[0]


def pending_counts(journal: Journal, dbs: Sequence[str] | None = None) -> dict[str, int]:
    """Records per database that have no summary yet."""
    ensure_marker_table(journal)
    rows = journal.execute(
        f"SELECT n.db, count(*) FROM nodes n WHERE NOT EXISTS (SELECT 1 FROM {MARKER_TABLE} s "
        "WHERE s.db = n.db AND s.uid = n.uid) GROUP BY n.db ORDER BY n.db"
    ).fetchall()
    wanted = set(dbs) if dbs else None
    return {db: n for db, n in rows if wanted is None or db in wanted}


def _pending_batches(journal: Journal, db: str, batch_size: int) -> Iterator[list[str]]:
    """UIDs of `db` not summarized yet, in node-id order, `batch_size` at a time (bounded memory).

    The id cursor moves forward only, so a batch in flight or deferred in this run is never
    yielded twice even though it has no marker yet.
    """
    last = 0
    while True:
        rows = journal.execute(
            f"SELECT n.id, n.uid FROM nodes n WHERE n.db = ? AND n.id > ? AND NOT EXISTS "
            f"(SELECT 1 FROM {MARKER_TABLE} s WHERE s.db = n.db AND s.uid = n.uid) "
            "ORDER BY n.id LIMIT ?",
            (db, last, batch_size * 4),
        ).fetchall()
        if not rows:
            return
        last = rows[-1][0]
        uids = [u for _, u in rows]
        for i in range(0, len(uids), batch_size):
            yield uids[i : i + batch_size]


# ----------------------------------------------------------------------------------------------
# Fetching
# ----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Batch:
    """What NCBI said about one batch of one database."""

    db: str
    uids: list[str]
    summaries: dict[str, DocSummary] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)    # refused permanently, per ID
    deferred: set[str] = field(default_factory=set)         # no answer now: ask again next run
    unsupported: str | None = None                          # the database has no ESummary
    requests: int = 0                                       # HTTP requests it took (retries too)
    asked: int = 0                                          # esummary_batch calls made


def _fetch(client: Any, db: str, uids: list[str]) -> _Batch:
    """ESummary for one batch through `client.esummary_batch`; never raises for one ID.

    The client sends the batch as one POST, retries, and isolates IDs NCBI refuses (bisection).
    A refusal of the whole database marks the batch `unsupported`; NCBI staying unreachable
    after the client's retries defers the batch to a later run.
    """
    batch = _Batch(db, uids)
    counter = getattr(client, "sent_by_this_thread", None)
    before = counter() if counter is not None else 0
    _ask(client, batch, uids)
    silent = [u for u in uids if _silent(batch, u)]
    if silent and batch.unsupported is None and len(uids) > 1:
        # NCBI left some out without a word (it does so intermittently): ask once more for
        # just those before taking the silence as an answer
        _ask(client, batch, silent)
    if batch.unsupported is None:
        batch.deferred.update(
            u for u in uids if u not in batch.summaries and u not in batch.failed
        )
    batch.requests = counter() - before if counter is not None else batch.asked
    return batch


def _ask(client: Any, batch: _Batch, uids: list[str]) -> None:
    batch.asked += 1
    try:
        answered, failed = client.esummary_batch(batch.db, uids, batch_size=len(uids))
    except PermanentError as exc:
        # the client raises only refusals of the request as a whole (e.g. a db name)
        batch.unsupported = " ".join(str(exc).split())
        return
    except TransientError as exc:
        log.warning("ESummary for %d %s records failed: %s", len(uids), batch.db, exc)
        return
    wanted = set(uids)
    for uid, summary in answered.items():
        if uid in wanted:
            batch.summaries[str(uid)] = summary
    for uid, error in failed.items():
        if uid in wanted:
            batch.failed[str(uid)] = " ".join(str(error).split())


# The client's text for a UID the answer left out (parse.parse_esummary), not NCBI's own.
_SILENT_ERRORS = ("no summary returned",)


def _silent(batch: _Batch, uid: str) -> bool:
    if uid in batch.failed:
        return False
    summary = batch.summaries.get(uid)
    return summary is None or (summary.error or "").strip() in _SILENT_ERRORS


# ----------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class DbCounts:
    records: int = 0        # nodes of this database in the journal
    summarized: int = 0     # of them, summarized (before or during this run)
    fetched: int = 0        # summaries written by this run
    named: int = 0          # records of this database with a name (from any run)
    status: int = 0         # of those, missing / replaced / withdrawn (a `status` property)
    failed: int = 0         # refused by NCBI (recorded in `failed`, step "summary")
    deferred: int = 0       # no answer this run; a later run asks again
    requests: int = 0       # ESummary batches sent (before retries and splits)


@dataclass(slots=True)
class SummaryReport:
    """What a summarize run did; `complete` when every record has a summary or a status."""

    by_db: dict[str, DbCounts] = field(default_factory=dict)
    requests: int = 0              # HTTP requests the client sent for this run (retries included)
    unsupported: dict[str, str] = field(default_factory=dict)   # db -> NCBI's refusal

    def _sum(self, attr: str) -> int:
        return sum(getattr(c, attr) for c in self.by_db.values())

    @property
    def records(self) -> int:
        return self._sum("records")

    @property
    def summarized(self) -> int:
        return self._sum("summarized")

    @property
    def fetched(self) -> int:
        return self._sum("fetched")

    @property
    def named(self) -> int:
        return self._sum("named")

    @property
    def status(self) -> int:
        return self._sum("status")

    @property
    def failed(self) -> int:
        return self._sum("failed")

    @property
    def deferred(self) -> int:
        return self._sum("deferred")

    @property
    def complete(self) -> bool:
        """Every record of a database NCBI summarizes has a summary or a status."""
        return self.deferred == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "summarized": self.summarized,
            "fetched": self.fetched,
            "named": self.named,
            "status": self.status,
            "failed": self.failed,
            "deferred": self.deferred,
            "requests": self.requests,
            "complete": self.complete,
            "unsupported": dict(self.unsupported),
            "by_db": {
                db: {k: getattr(c, k) for k in DbCounts.__slots__}
                for db, c in sorted(self.by_db.items())
            },
        }


Progress = Callable[[int, int], None]


def _write(journal: Journal, batch: _Batch, counts: DbCounts) -> int:
    """One transaction: the batch's props, its failures, and its `summarized` markers."""
    done: list[str] = []
    with journal.transaction() as con:
        for uid, summary in batch.summaries.items():
            props = properties(batch.db, summary)
            if props:
                journal.set_props(batch.db, uid, props)
            counts.status += "status" in props
            done.append(uid)
        for uid, error in batch.failed.items():
            # refused alone (an ID NCBI rejects): kept as a node, recorded, never asked again
            journal.record_failure(batch.db, uid, "summary", error)
            journal.set_props(batch.db, uid, {"status": f"missing: {error}"[:_MAX_TEXT]})
            counts.status += 1
            done.append(uid)
        con.executemany(
            f"INSERT OR IGNORE INTO {MARKER_TABLE}(db, uid) VALUES (?, ?)",
            ((batch.db, u) for u in done),
        )
        if batch.requests:  # counted with what they brought, so `status` agrees with the run
            journal.count_request("esummary", batch.requests)
    counts.fetched += len(batch.summaries)
    counts.failed += len(batch.failed)
    counts.summarized += len(done)
    return len(done)


def summarize(
    journal: Journal,
    client: Any,
    *,
    batch_size: int = DEFAULT_BATCH,
    dbs: Sequence[str] | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
) -> SummaryReport:
    """Fetch and store the summary of every journal record that has none yet.

    `client` is an `EutilsClient` (thread-safe; its limiter paces every request), `dbs` limits
    the run to some databases, `progress(done, total)` is called after each committed batch.
    Safe to interrupt at any point and to call again: committed batches are never asked twice.
    """
    if not 1 <= batch_size <= MAX_BATCH:
        raise BadInput(f"--batch-size must be between 1 and {MAX_BATCH}, not {batch_size}")
    ensure_marker_table(journal)
    report = SummaryReport()
    wanted = set(dbs) if dbs else None
    totals = journal.execute("SELECT db, count(*) FROM nodes GROUP BY db ORDER BY db").fetchall()
    done_by_db = dict(
        journal.execute(
            f"SELECT s.db, count(*) FROM {MARKER_TABLE} s JOIN nodes n "
            "ON n.db = s.db AND n.uid = s.uid GROUP BY s.db"
        ).fetchall()
    )
    for db, n in totals:
        if wanted is None or db in wanted:
            report.by_db[db] = DbCounts(records=n, summarized=done_by_db.get(db, 0))
    total = sum(c.records - c.summarized for c in report.by_db.values())
    if total == 0:
        _count_named(journal, report)
        return report

    sent_before = getattr(client, "requests_sent", 0)
    n_workers = workers or max(1, min(int(getattr(client, "concurrency", 4) or 4), 8))

    def batches() -> Iterator[tuple[str, list[str]]]:
        for db in report.by_db:
            for uids in _pending_batches(journal, db, batch_size):
                if db in report.unsupported:
                    break
                yield db, uids

    done = 0
    source = batches()
    in_flight: set[Future[_Batch]] = set()
    pool = ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="esummary")
    interrupted = True
    try:
        while True:
            while len(in_flight) < n_workers:
                nxt = next(source, None)
                if nxt is None:
                    break
                db, uids = nxt
                report.by_db[db].requests += 1
                in_flight.add(pool.submit(_fetch, client, db, uids))
            if not in_flight:
                break
            finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            for fut in finished:
                batch = fut.result()
                counts = report.by_db[batch.db]
                if batch.unsupported is not None:
                    if batch.db not in report.unsupported:
                        # said once per database, with how many records go without a summary
                        log.warning(
                            "No summaries for %d %s records: NCBI refused ESummary "
                            "for %s (%s)", counts.records - counts.summarized, batch.db,
                            batch.db, batch.unsupported,
                        )
                    report.unsupported.setdefault(batch.db, batch.unsupported)
                    if batch.requests:
                        journal.count_request("esummary", batch.requests)
                    continue
                done += _write(journal, batch, counts)
                counts.deferred += len(batch.deferred)
                if progress is not None:
                    progress(done, total)
        interrupted = False
    finally:
        # on Ctrl-C or an error, do not wait for answers that would not be written anyway
        pool.shutdown(wait=not interrupted, cancel_futures=True)
    report.requests = getattr(client, "requests_sent", 0) - sent_before
    _count_named(journal, report)
    return report


def _count_named(journal: Journal, report: SummaryReport) -> None:
    """`named` counts every record with a name, summarized by this run or an earlier one (a
    second run that fetches nothing still reports the names the journal holds)."""
    rows = journal.execute(
        "SELECT n.db, count(*) FROM nodes n JOIN props p ON p.db = n.db AND p.uid = n.uid "
        "WHERE json_extract(p.data, '$.name') IS NOT NULL GROUP BY n.db"
    ).fetchall()
    named = dict(rows)
    for db, counts in report.by_db.items():
        counts.named = named.get(db, 0)


def check_complete(report: SummaryReport) -> None:
    """Raise when records were left without a summary, saying how to finish them later."""
    if report.deferred:
        raise NCBIError(
            f"{report.deferred} records got no summary (NCBI kept failing); "
            "run `entrez-graph summarize` again to finish them"
        )
