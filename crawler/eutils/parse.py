"""E-utilities response bytes -> typed results (models.py), and the classification of failures.

ELink answers of neighbor, neighbor_score, neighbor_history, acheck, ncheck and lcheck are read by a
fast C-backed reader (fastlink.py) into the same typed results. `Bio.Entrez` reads the other ELink
commands (LinkOut URL lists), ESearch and EInfo. It refuses some real shapes (an `http://` DOCTYPE,
a body with no XML declaration or DOCTYPE, an older DTD it does not ship — it would download
that one, and no test may reach the internet), so every body is normalised first: https DOCTYPE,
today's DTD for the root element when the named one is not shipped, an XML declaration. Where
Bio.Entrez still cannot build its structure (an element its DTD does not place there, e.g. a
LinkSet-level `<Info>`), and for ESummary 2.0 (per-database DTDs Biopython does not ship), the
same result is built from `xml.etree.ElementTree`.

Failures: the 429 JSON body is `RateLimited`, never a parse error; `<ERROR>` texts are classified
by their words (NCBI has sent timeouts as HTTP 400), malformed or truncated XML is transient.
"""

from __future__ import annotations

import io
import json
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Any

from Bio import Entrez
from Bio.Entrez.Parser import DataHandler

from ..errors import NCBIError, PermanentError, RateLimited, TransientError
from .fastlink import FAST_CMDS, NotFast, read_elink
from .models import (
    DbInfo,
    DbLink,
    DocSummary,
    ELinkResult,
    IdCheck,
    IdLinkSet,
    IdUrlSet,
    Link,
    LinkHistory,
    LinkInfo,
    LinkSet,
    LinkSetDb,
    ObjUrl,
    Provider,
    SearchResult,
)

# Today's DOCTYPE per root element (as NCBI sends them now); used when a body names a DTD that
# Biopython does not ship, or names none.
CURRENT_DOCTYPES: dict[str, tuple[str, str]] = {
    "eLinkResult": (
        "-//NLM//DTD elink 20101123//EN",
        "https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20101123/elink.dtd",
    ),
    "eSearchResult": (
        "-//NLM//DTD esearch 20060628//EN",
        "https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd",
    ),
    "eInfoResult": (
        "-//NLM//DTD einfo 20190110//EN",
        "https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20190110/einfo.dtd",
    ),
    "ePostResult": (
        "-//NLM//DTD epost 20090526//EN",
        "https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20090526/epost.dtd",
    ),
}

_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*\?>", re.S)
_DOCTYPE = re.compile(rb"<!DOCTYPE\s+([\w.:-]+)\s+PUBLIC\s+\"([^\"]*)\"\s+\"([^\"]*)\"\s*>", re.S)
_ROOT = re.compile(rb"<([A-Za-z_][\w.:-]*)[\s/>]")

# Words of <ERROR> texts that mean "ask again later" (NCBI's backends, not the request).
_TRANSIENT_WORDS = (
    "search backend failed",
    "couldn't resolve",
    "could not resolve",
    "address table is empty",
    "timeout",
    "timed out",
    "unable to open connection",
    "temporarily unavailable",
    "service unavailable",
    "try again",
    "internal server error",
    "backend",
    "connection",
)
# Words of texts that name a bad request: retrying cannot help.
_PERMANENT_WORDS = (
    "invalid",
    "not supported",
    "unknown",
    "unrecognized",
    "illegal",
    "must be",
    "is required",
    "empty id list",
    "bad ",
    "wrong",
    "cannot get document summary",
)


def classify_error(text: str, status: int | None = None) -> NCBIError:
    """The exception an NCBI error text stands for: by its words first, then by the HTTP status."""
    low = text.lower()
    if any(w in low for w in _TRANSIENT_WORDS):
        kind = "timeout" if ("timeout" in low or "timed out" in low) else "error"
        return TransientError(text, status=status, kind=kind)
    if any(w in low for w in _PERMANENT_WORDS):
        return PermanentError(text)
    if status is not None and 400 <= status < 500:
        return PermanentError(text)
    return TransientError(text, status=status, kind="error")


def error_text(data: bytes, limit: int = 300) -> str:
    """A short readable text of an error body: NCBI's <ERROR>s, the JSON `error`, or the text."""
    stripped = data.strip()
    if stripped.startswith(b"{"):
        try:
            obj = json.loads(stripped)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and obj.get("error"):
            return str(obj["error"])[:limit]
    try:
        root = ET.fromstring(stripped)
    except ET.ParseError:
        root = None
    if root is not None:
        texts = [t.strip() for t in (e.text for e in root.iter("ERROR")) if t and t.strip()]
        if texts:
            return "; ".join(texts)[:limit]
    text = re.sub(r"<[^>]+>", " ", stripped.decode("utf-8", "replace"))
    return " ".join(text.split())[:limit] or "(empty body)"


_HTML = re.compile(rb"(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>])", re.I | re.S)
_INTERNAL_SUBSET = re.compile(rb"<!DOCTYPE[^>\[]*\[", re.I)
_PROLOG_LIMIT = 65536


def unusable_body(data: bytes) -> str | None:
    """Why a 200 body can never be read, however often it is asked for; None when it may be.

    An HTML page (a proxy's, a login or error page) is not an E-utilities answer; a DOCTYPE
    with an internal subset declares entities, which NCBI never does (an entity bomb). A
    truncated or garbled XML body is not unusable: asking again may well bring it whole.
    """
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if _HTML.match(head):
        return "an HTML page instead of XML (a proxy, login or error page?)"
    if _INTERNAL_SUBSET.search(data, 0, _PROLOG_LIMIT) or b"<!ENTITY" in data[:_PROLOG_LIMIT]:
        return "XML that declares its own entities (NCBI never does: an entity bomb?)"
    return None


def check_json(data: bytes) -> None:
    """NCBI answers JSON on XML endpoints only with errors; 429's body means "rate limited"."""
    stripped = data.lstrip()
    if not stripped.startswith(b"{"):
        return
    try:
        obj = json.loads(stripped)
    except ValueError as exc:
        raise TransientError("truncated JSON body", kind="parse") from exc
    message = str(obj.get("error", obj)) if isinstance(obj, dict) else str(obj)
    if "rate limit" in message.lower():
        raise RateLimited(message)
    raise classify_error(message)


def dtd_available(filename: str) -> bool:
    """Whether Bio.Entrez finds this DTD locally (otherwise it would download it)."""
    dirs = [DataHandler.local_dtd_dir, DataHandler.global_dtd_dir]
    return any(d and os.path.isfile(os.path.join(d, filename)) for d in dirs)


def normalize_xml(data: bytes) -> bytes | None:
    """Body that Bio.Entrez accepts without any download, or None when no shipped DTD fits."""
    body = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    decl = _XML_DECL.match(body)
    rest = body[decl.end() :] if decl else body
    head = decl.group(0).strip() if decl else b'<?xml version="1.0" encoding="UTF-8" ?>'
    doctype = _DOCTYPE.search(rest, 0, 2000)
    if doctype:
        root_name = doctype.group(1).decode()
        after = rest[doctype.end() :]
        filename = doctype.group(3).decode().rsplit("/", 1)[-1]
        if dtd_available(filename):
            system = doctype.group(3).replace(b"http://", b"https://", 1)
            return b"%s\n<!DOCTYPE %s PUBLIC \"%s\" \"%s\">%s" % (
                head, doctype.group(1), doctype.group(2), system, after)
    else:
        root = _ROOT.search(re.sub(rb"<!--.*?-->", b"", rest[:2000], flags=re.S))
        if not root:
            return None
        root_name = root.group(1).decode()
        after = rest
    current = CURRENT_DOCTYPES.get(root_name)
    if current is None:
        return None
    return b'%s\n<!DOCTYPE %s PUBLIC "%s" "%s">%s' % (
        head, root_name.encode(), current[0].encode(), current[1].encode(), after)


def _tree(data: bytes) -> ET.Element:
    """Well-formed XML root, or TransientError: a truncated or garbled body is worth re-asking."""
    check_json(data)
    if not data.strip():
        raise TransientError("empty response body", kind="parse")
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise TransientError(f"malformed or truncated XML: {exc}", kind="parse") from None


def _raise_for_errors(root: ET.Element) -> list[str]:
    """Raise for a transient <ERROR> anywhere or a permanent top-level one; return nested texts."""
    top = [e.text.strip() for e in root.findall("ERROR") if e.text and e.text.strip()]
    nested = [
        e.text.strip()
        for e in root.iter("ERROR")
        if e.text and e.text.strip() and e.text.strip() not in top
    ]
    return _raise_for_texts(top, nested)


def _raise_for_texts(top: list[str], nested: list[str]) -> list[str]:
    """Raise for a transient text anywhere or for permanent top-level ones; return nested."""
    for text in top + nested:
        exc = classify_error(text)
        if isinstance(exc, TransientError):
            raise exc
    if top:
        raise classify_error("; ".join(top))
    return nested


def _entrez(data: bytes) -> Any | None:
    """Bio.Entrez's structure for the body, or None where Bio.Entrez cannot read it."""
    normalized = normalize_xml(data)
    if normalized is None:
        return None
    try:
        return Entrez.read(io.BytesIO(normalized), validate=False, ignore_errors=True)
    except Exception:  # any Bio.Entrez refusal falls back to ElementTree
        return None


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return _str(value[0]) if value else None
    text = str(value).strip()
    return text or None


def _yn(value: Any) -> bool | None:
    if value is None:
        return None
    return str(value).strip().upper() == "Y"


def _text(elem: ET.Element | None, tag: str) -> str | None:
    if elem is None:
        return None
    return _str(elem.findtext(tag))


# ---------------------------------------------------------------------------------------- ELink


def parse_elink(data: bytes, cmd: str = "neighbor") -> ELinkResult:
    """An eLinkResult of any cmd; raises RateLimited / TransientError / PermanentError.

    neighbor, neighbor_score, neighbor_history and the check commands are read by the fast C
    reader (fastlink.py); LinkOut URL lists (llinks, llinkslib, prlinks) by Bio.Entrez
    (`parse_elink_entrez`). Both give the same typed results and classify errors alike.
    """
    if cmd not in FAST_CMDS:
        return parse_elink_entrez(data, cmd)
    check_json(data)
    if not data.strip():
        raise TransientError("empty response body", kind="parse")
    try:
        result, root, top, nested = read_elink(data, cmd)
    except NotFast:
        return parse_elink_entrez(data, cmd)
    _raise_for_texts(top, nested)
    if root != "eLinkResult":
        raise TransientError(f"unexpected response root <{root}>", kind="parse")
    return result


def parse_elink_entrez(data: bytes, cmd: str = "neighbor") -> ELinkResult:
    """An eLinkResult read by Bio.Entrez (ElementTree where Bio.Entrez cannot read it).

    A body without `<ERROR>` is read once, by Bio.Entrez (reading it twice made parsing the
    crawl's main CPU cost, measured 1.75x slower end to end); anything Bio.Entrez refuses, and
    every body with an `<ERROR>`, goes through ElementTree, which classifies errors and truncation.
    """
    check_json(data)
    if b"<ERROR>" not in data:
        record = _entrez(data)
        if isinstance(record, list) and getattr(record, "tag", None) == "eLinkResult":
            return _elink_from_entrez(record, cmd)
    root = _tree(data)
    _raise_for_errors(root)
    if root.tag != "eLinkResult":
        raise TransientError(f"unexpected response root <{root.tag}>", kind="parse")
    record = _entrez(data)
    if isinstance(record, list):
        return _elink_from_entrez(record, cmd)
    return _elink_from_tree(root, cmd)


def _elink_from_entrez(record: list[Any], cmd: str) -> ELinkResult:
    linksets: list[LinkSet] = []
    idlinksets: list[IdLinkSet] = []
    idchecks: list[IdCheck] = []
    idurlsets: list[IdUrlSet] = []
    dbfrom = ""
    for ls in record:
        dbfrom = _str(ls.get("DbFrom")) or dbfrom
        checklist = ls.get("IdCheckList")
        urllist = ls.get("IdUrlList")
        if checklist is not None:
            for i in checklist.get("Id", []):
                attrs = getattr(i, "attributes", {}) or {}
                idchecks.append(
                    IdCheck(
                        uid=str(i).strip(),
                        has_neighbor=_yn(attrs.get("HasNeighbor")),
                        has_linkout=_yn(attrs.get("HasLinkOut")),
                    )
                )
            for s in checklist.get("IdLinkSet", []):
                infos = tuple(
                    LinkInfo(
                        dbto=_str(li.get("DbTo")) or "",
                        linkname=_str(li.get("LinkName")) or "",
                        menu_tag=_str(li.get("MenuTag")),
                        html_tag=_str(li.get("HtmlTag")),
                        priority=_int(li.get("Priority")),
                        url=_str(li.get("Url")),
                    )
                    for li in s.get("LinkInfo", [])
                )
                idlinksets.append(IdLinkSet(uid=str(s.get("Id")).strip(), infos=infos))
            continue
        if urllist is not None:
            for s in urllist.get("IdUrlSet", []):
                idurlsets.append(
                    IdUrlSet(
                        uid=str(s.get("Id")).strip(),
                        objurls=tuple(_objurl_from_entrez(o) for o in s.get("ObjUrl", [])),
                        info=_str(s.get("Info")),
                    )
                )
            continue
        errors = [str(e).strip() for e in ls.get("ERROR", []) if str(e).strip()]
        linksets.append(
            LinkSet(
                dbfrom=_str(ls.get("DbFrom")) or "",
                ids=tuple(str(i).strip() for i in ls.get("IdList", [])),
                linksetdbs=tuple(
                    LinkSetDb(
                        dbto=_str(d.get("DbTo")) or "",
                        linkname=_str(d.get("LinkName")) or "",
                        links=tuple(
                            Link(uid=str(link["Id"]).strip(), score=_int(link.get("Score")))
                            for link in d.get("Link", [])
                        ),
                    )
                    for d in ls.get("LinkSetDb", [])
                ),
                webenv=_str(ls.get("WebEnv")),
                histories=tuple(
                    LinkHistory(
                        dbto=_str(h.get("DbTo")) or "",
                        linkname=_str(h.get("LinkName")) or "",
                        query_key=_str(h.get("QueryKey")) or "",
                    )
                    for h in ls.get("LinkSetDbHistory", [])
                    if _str(h.get("QueryKey"))
                ),
                info=_str(ls.get("Info")),
                error="; ".join(errors) or None,
            )
        )
    return ELinkResult(
        cmd=cmd,
        dbfrom=dbfrom,
        linksets=tuple(linksets),
        idlinksets=tuple(idlinksets),
        idchecks=tuple(idchecks),
        idurlsets=tuple(idurlsets),
    )


def _objurl_from_entrez(o: Any) -> ObjUrl:
    p = o.get("Provider") or {}
    return ObjUrl(
        url=_str(o.get("Url")),
        icon_url=_str(o.get("IconUrl")),
        link_name=_str(o.get("LinkName")),
        subject_types=tuple(str(x).strip() for x in o.get("SubjectType", []) or []),
        category=_str(o.get("Category")),
        attributes=tuple(str(x).strip() for x in o.get("Attribute", []) or []),
        provider=Provider(
            name=_str(p.get("Name")),
            name_abbr=_str(p.get("NameAbbr")),
            id=_str(p.get("Id")),
            url=_str(p.get("Url")),
        ),
    )


def _elink_from_tree(root: ET.Element, cmd: str) -> ELinkResult:
    linksets: list[LinkSet] = []
    idlinksets: list[IdLinkSet] = []
    idchecks: list[IdCheck] = []
    idurlsets: list[IdUrlSet] = []
    dbfrom = ""
    for ls in root.findall("LinkSet"):
        dbfrom = _text(ls, "DbFrom") or dbfrom
        checklist = ls.find("IdCheckList")
        urllist = ls.find("IdUrlList")
        if checklist is not None:
            for i in checklist.findall("Id"):
                idchecks.append(
                    IdCheck(
                        uid=(i.text or "").strip(),
                        has_neighbor=_yn(i.get("HasNeighbor")),
                        has_linkout=_yn(i.get("HasLinkOut")),
                    )
                )
            for s in checklist.findall("IdLinkSet"):
                infos = tuple(
                    LinkInfo(
                        dbto=_text(li, "DbTo") or "",
                        linkname=_text(li, "LinkName") or "",
                        menu_tag=_text(li, "MenuTag"),
                        html_tag=_text(li, "HtmlTag"),
                        priority=_int(li.findtext("Priority")),
                        url=_text(li, "Url"),
                    )
                    for li in s.findall("LinkInfo")
                )
                idlinksets.append(IdLinkSet(uid=_text(s, "Id") or "", infos=infos))
            continue
        if urllist is not None:
            for s in urllist.findall("IdUrlSet"):
                idurlsets.append(
                    IdUrlSet(
                        uid=_text(s, "Id") or "",
                        objurls=tuple(_objurl_from_tree(o) for o in s.findall("ObjUrl")),
                        info=_text(s, "Info"),
                    )
                )
            continue
        errors = [e.text.strip() for e in ls.findall("ERROR") if e.text and e.text.strip()]
        linksets.append(
            LinkSet(
                dbfrom=_text(ls, "DbFrom") or "",
                ids=tuple((i.text or "").strip() for i in ls.findall("IdList/Id")),
                linksetdbs=tuple(
                    LinkSetDb(
                        dbto=_text(d, "DbTo") or "",
                        linkname=_text(d, "LinkName") or "",
                        links=tuple(
                            Link(uid=_text(link, "Id") or "", score=_int(link.findtext("Score")))
                            for link in d.findall("Link")
                        ),
                    )
                    for d in ls.findall("LinkSetDb")
                ),
                webenv=_text(ls, "WebEnv"),
                histories=tuple(
                    LinkHistory(
                        dbto=_text(h, "DbTo") or "",
                        linkname=_text(h, "LinkName") or "",
                        query_key=_text(h, "QueryKey") or "",
                    )
                    for h in ls.findall("LinkSetDbHistory")
                    if _text(h, "QueryKey")
                ),
                info=_text(ls, "Info"),
                error="; ".join(errors) or None,
            )
        )
    return ELinkResult(
        cmd=cmd,
        dbfrom=dbfrom,
        linksets=tuple(linksets),
        idlinksets=tuple(idlinksets),
        idchecks=tuple(idchecks),
        idurlsets=tuple(idurlsets),
    )


def _objurl_from_tree(o: ET.Element) -> ObjUrl:
    p = o.find("Provider")
    return ObjUrl(
        url=_text(o, "Url"),
        icon_url=_text(o, "IconUrl"),
        link_name=_text(o, "LinkName"),
        subject_types=tuple((x.text or "").strip() for x in o.findall("SubjectType")),
        category=_text(o, "Category"),
        attributes=tuple((x.text or "").strip() for x in o.findall("Attribute")),
        provider=Provider(
            name=_text(p, "Name"),
            name_abbr=_text(p, "NameAbbr"),
            id=_text(p, "Id"),
            url=_text(p, "Url"),
        ),
    )


# ------------------------------------------------------------------------------ ESearch, EInfo


def _messages(block: Any) -> tuple[str, ...]:
    """Flat 'Kind: text' list of an ESearch ErrorList/WarningList."""
    out: list[str] = []
    if isinstance(block, dict):
        for kind, values in block.items():
            for v in values if isinstance(values, list) else [values]:
                if str(v).strip():
                    out.append(f"{kind}: {str(v).strip()}")
    return tuple(out)


def parse_esearch(data: bytes) -> SearchResult:
    """An eSearchResult: count, UIDs, translation, PhraseNotFound-style errors and warnings."""
    root = _tree(data)
    _raise_for_errors(root)
    if root.tag != "eSearchResult":
        raise TransientError(f"unexpected response root <{root.tag}>", kind="parse")
    record = _entrez(data)
    if isinstance(record, dict):
        return SearchResult(
            count=_int(record.get("Count")) or 0,
            ids=tuple(str(i).strip() for i in record.get("IdList", [])),
            query_translation=_str(record.get("QueryTranslation")),
            errors=_messages(record.get("ErrorList")),
            warnings=_messages(record.get("WarningList")),
        )

    def block(tag: str) -> tuple[str, ...]:
        elem = root.find(tag)
        if elem is None:
            return ()
        return tuple(f"{c.tag}: {c.text.strip()}" for c in elem if c.text and c.text.strip())

    return SearchResult(
        count=_int(root.findtext("Count")) or 0,
        ids=tuple((i.text or "").strip() for i in root.findall("IdList/Id")),
        query_translation=_text(root, "QueryTranslation"),
        errors=block("ErrorList"),
        warnings=block("WarningList"),
    )


def parse_einfo(data: bytes) -> DbInfo:
    """An eInfoResult: the database list (no db) or one database's LinkList."""
    root = _tree(data)
    _raise_for_errors(root)
    if root.tag != "eInfoResult":
        raise TransientError(f"unexpected response root <{root.tag}>", kind="parse")
    record = _entrez(data)
    if isinstance(record, dict) and ("DbList" in record or "DbInfo" in record):
        if "DbList" in record:
            return DbInfo(name=None, databases=tuple(str(d) for d in record["DbList"]))
        info = record["DbInfo"]
        if isinstance(info, list):  # the DTD allows (DbInfo|ERROR)+
            info = info[0] if info else {}
        return DbInfo(
            name=_str(info.get("DbName")),
            description=_str(info.get("Description")),
            count=_int(info.get("Count")),
            links=tuple(
                DbLink(
                    name=_str(link.get("Name")) or "",
                    menu=_str(link.get("Menu")),
                    description=_str(link.get("Description")),
                    dbto=_str(link.get("DbTo")) or "",
                )
                for link in info.get("LinkList", [])
            ),
        )
    if root.find("DbList") is not None:
        return DbInfo(
            name=None, databases=tuple((d.text or "").strip() for d in root.iter("DbName"))
        )
    info_elem = root.find("DbInfo")
    return DbInfo(
        name=_text(info_elem, "DbName"),
        description=_text(info_elem, "Description"),
        count=_int(info_elem.findtext("Count")) if info_elem is not None else None,
        links=tuple(
            DbLink(
                name=_text(link, "Name") or "",
                menu=_text(link, "Menu"),
                description=_text(link, "Description"),
                dbto=_text(link, "DbTo") or "",
            )
            for link in (info_elem.findall("LinkList/Link") if info_elem is not None else [])
        ),
    )


# ------------------------------------------------------------------------------------- ESummary


def _flatten(elem: ET.Element, prefix: str, out: dict[str, str]) -> None:
    """Child texts as flat fields; nested ones as 'Parent/Child'; the first of repeats wins."""
    for child in elem:
        key = f"{prefix}{child.tag}"
        if len(child):
            _flatten(child, key + "/", out)
        else:
            text = (child.text or "").strip()
            if text and key not in out:
                out[key] = text


def parse_esummary(data: bytes, asked: Iterable[str] = ()) -> list[DocSummary]:
    """ESummary 2.0 (`DocumentSummarySet`): one DocSummary per UID; `error` for missing UIDs.

    UIDs that were asked for but are not in the answer get an error too, so callers never
    lose track of a record (NCBI may leave the uid attribute off an error summary).
    """
    root = _tree(data)
    top = [e.text.strip() for e in root.findall("ERROR") if e.text and e.text.strip()]
    for text in top:
        exc = classify_error(text)
        if isinstance(exc, TransientError):
            raise exc
    summaries: dict[str, DocSummary] = {}
    anonymous_errors: list[str] = []
    for doc in root.iter("DocumentSummary"):
        uid = (doc.get("uid") or doc.findtext("Id") or "").strip()
        err = doc.findtext("error")
        if err is not None and err.strip():
            if not uid:
                anonymous_errors.append(err.strip())
                continue
            summaries[uid] = DocSummary(uid=uid, error=err.strip())
            continue
        if not uid:
            continue
        fields: dict[str, str] = {}
        _flatten(doc, "", fields)
        summaries[uid] = DocSummary(uid=uid, fields=fields)
    if top and not summaries:
        raise classify_error("; ".join(top))
    message = "; ".join(top + anonymous_errors) or "no summary returned"
    for uid in asked:
        if uid not in summaries:
            summaries[uid] = DocSummary(uid=uid, error=message)
    return list(summaries.values())
