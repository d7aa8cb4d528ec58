"""Small typed results of E-utilities calls.

Every per-record result is keyed by the ID NCBI echoed in it, never by its position in the
request: NCBI leaves LinkSets out, reorders them, and echoes invalid IDs as "0".
"""

from __future__ import annotations

from dataclasses import dataclass, field

ELINK_CMDS = (
    "neighbor",
    "neighbor_score",
    "neighbor_history",
    "acheck",
    "ncheck",
    "lcheck",
    "llinks",
    "llinkslib",
    "prlinks",
)


@dataclass(frozen=True, slots=True)
class Link:
    uid: str
    score: int | None = None


@dataclass(frozen=True, slots=True)
class LinkSetDb:
    """The links of one link name in one LinkSet (`<LinkSetDb>`)."""

    dbto: str
    linkname: str
    links: tuple[Link, ...] = ()


@dataclass(frozen=True, slots=True)
class LinkHistory:
    """`<LinkSetDbHistory>` of cmd=neighbor_history: the links are on the History server."""

    dbto: str
    linkname: str
    query_key: str


@dataclass(frozen=True, slots=True)
class LinkSet:
    """One `<LinkSet>`: one input ID (repeated id=) or several (comma-merged id=)."""

    dbfrom: str
    ids: tuple[str, ...]
    linksetdbs: tuple[LinkSetDb, ...] = ()
    webenv: str | None = None
    histories: tuple[LinkHistory, ...] = ()
    info: str | None = None  # e.g. "Empty result"
    error: str | None = None  # a permanent <ERROR> NCBI gave inside this LinkSet

    @property
    def is_empty(self) -> bool:
        return not any(db.links for db in self.linksetdbs) and not self.histories


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """One `<LinkInfo>` of cmd=acheck. LinkOut (`ExternalLink`/`LinkOut`) entries are not Entrez."""

    dbto: str
    linkname: str
    menu_tag: str | None = None
    html_tag: str | None = None
    priority: int | None = None
    url: str | None = None

    @property
    def is_entrez(self) -> bool:
        return self.linkname not in ("ExternalLink", "LinkOut") and self.dbto not in (
            "LinkOut",
            "",
        )


@dataclass(frozen=True, slots=True)
class IdLinkSet:
    """acheck's answer for one ID."""

    uid: str
    infos: tuple[LinkInfo, ...] = ()

    @property
    def entrez(self) -> tuple[LinkInfo, ...]:
        return tuple(i for i in self.infos if i.is_entrez)

    @property
    def linkout(self) -> tuple[LinkInfo, ...]:
        return tuple(i for i in self.infos if not i.is_entrez)


@dataclass(frozen=True, slots=True)
class IdCheck:
    """ncheck (`HasNeighbor`) / lcheck (`HasLinkOut`) answer for one ID; None when not reported."""

    uid: str
    has_neighbor: bool | None = None
    has_linkout: bool | None = None


@dataclass(frozen=True, slots=True)
class Provider:
    name: str | None = None
    name_abbr: str | None = None
    id: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class ObjUrl:
    """A LinkOut URL (llinks, llinkslib, prlinks)."""

    url: str | None
    icon_url: str | None = None
    link_name: str | None = None
    subject_types: tuple[str, ...] = ()
    category: str | None = None
    attributes: tuple[str, ...] = ()
    provider: Provider = field(default_factory=Provider)


@dataclass(frozen=True, slots=True)
class IdUrlSet:
    uid: str
    objurls: tuple[ObjUrl, ...] = ()
    info: str | None = None


@dataclass(frozen=True, slots=True)
class ELinkResult:
    """A parsed eLinkResult. Which tuple is filled depends on cmd."""

    cmd: str
    dbfrom: str
    linksets: tuple[LinkSet, ...] = ()  # neighbor, neighbor_score, neighbor_history
    idlinksets: tuple[IdLinkSet, ...] = ()  # acheck
    idchecks: tuple[IdCheck, ...] = ()  # ncheck, lcheck
    idurlsets: tuple[IdUrlSet, ...] = ()  # llinks, llinkslib, prlinks

    def by_source(self) -> dict[str, LinkSet]:
        """LinkSets of a per-ID (repeated id=) request keyed by the single echoed ID."""
        return {ls.ids[0]: ls for ls in self.linksets if len(ls.ids) == 1}


@dataclass(frozen=True, slots=True)
class SearchResult:
    """ESearch: matching UIDs (as strings) and what NCBI said about the term."""

    count: int
    ids: tuple[str, ...]
    query_translation: str | None = None
    errors: tuple[str, ...] = ()  # PhraseNotFound, FieldNotFound, …
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DbLink:
    """One `<Link>` of EInfo's LinkList."""

    name: str
    menu: str | None
    description: str | None
    dbto: str


@dataclass(frozen=True, slots=True)
class DbInfo:
    """EInfo for one database (EInfo with no db gives only `databases`)."""

    name: str | None
    description: str | None = None
    count: int | None = None
    links: tuple[DbLink, ...] = ()
    databases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DocSummary:
    """ESummary 2.0 DocumentSummary: flat text fields, or the error NCBI gave for this UID."""

    uid: str
    fields: dict[str, str] = field(default_factory=dict)
    error: str | None = None


@dataclass(slots=True)
class BatchOutcome:
    """Result of a batched per-ID call after splitting, isolating and re-asking.

    answered: source ID -> its LinkSet (may be empty: "no links").
    no_answer: IDs NCBI kept silent about even when asked alone.
    failed: ID -> error text for IDs NCBI refused permanently (isolated by splitting).
    requests: how many HTTP requests this outcome took.
    """

    answered: dict[str, LinkSet] = field(default_factory=dict)
    no_answer: set[str] = field(default_factory=set)
    failed: dict[str, str] = field(default_factory=dict)
    requests: int = 0
