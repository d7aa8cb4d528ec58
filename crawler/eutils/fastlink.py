"""A fast reader of ELink answers (neighbor, neighbor_score, neighbor_history, acheck, ncheck,
lcheck) straight into the typed results, without Bio.Entrez's Python objects.

Bio.Entrez builds a tree of Python objects (dict and list subclasses, with attributes) for the
whole answer and then we copy it into models, which made parsing the crawl's largest CPU cost
(31 % of samples; a `pubmed_pubmed` crawl receives hundreds of thousands of links a second at
NCBI's rate). Here the stdlib's expat (C, no dependency) streams the body through two small
callbacks that build the models directly; text goes to a list's own `append` (no Python frame
per text). Nothing but the results is kept, so memory is that of the results however large the
answer. External DTDs are never loaded, whatever the DOCTYPE says (old 2002 DTDs, http URLs,
none at all), and entity declarations are refused earlier (parse.unusable_body) on top of
expat's own amplification limit. The results are exactly those of the Bio.Entrez path
(tests/test_parse.py proves it on every real sample and on error and DOCTYPE variants); errors
are classified the same way, by the caller. `benchmarks/parse.py` measures both.
"""

from __future__ import annotations

from xml.parsers import expat

from ..errors import TransientError
from .models import ELinkResult, IdCheck, IdLinkSet, Link, LinkHistory, LinkInfo, LinkSet, LinkSetDb

FAST_CMDS = frozenset({"neighbor", "neighbor_score", "neighbor_history", "acheck", "ncheck",
                       "lcheck"})


class NotFast(Exception):
    """A shape this reader leaves to Bio.Entrez (LinkOut URL lists)."""


def _s(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip()
    return text or None


def _i(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def _yn(value: str | None) -> bool | None:
    return None if value is None else value.strip().upper() == "Y"


class _Reader:
    """expat callbacks that build the typed results of one eLinkResult as it streams past.

    Each element's text is collected only until it ends; a value is taken from the first of
    repeated elements (as ElementTree's findtext does), so the results equal the other paths'.
    """

    def __init__(self, cmd: str) -> None:
        self.cmd = cmd
        self.dbfrom = ""
        self.root: str | None = None
        self.linksets: list[LinkSet] = []
        self.idlinksets: list[IdLinkSet] = []
        self.idchecks: list[IdCheck] = []
        self.top_errors: list[str] = []
        self.nested_errors: list[str] = []
        self.stack: list[str] = []
        self.buf: list[str] = []
        self.ls: dict[str, object] = {}
        self.db: dict[str, object] = {}
        self.links: list[Link] = []
        self.fields: dict[str, str] = {}
        self.infos: list[LinkInfo] = []
        self.idlinkset_uid: str | None = None

    def handlers(self) -> tuple[object, object]:
        """The start and end callbacks. The hot ones (Link, Id, Score: a hundred thousand per
        big answer) come first and touch only locals of this closure."""
        stack = self.stack
        push, pop = stack.append, stack.pop
        buf = self.buf
        clear, join = buf.clear, "".join
        links = self.links
        add_link = links.append
        uid: str | None = None
        score: str | None = None
        slow_start, slow_end = self.start, self.end

        def start(name: str, attrs: dict[str, str]) -> None:
            nonlocal uid, score, links, add_link
            push(name)
            clear()
            if name == "Id":
                if stack[-2] == "IdCheckList":
                    self.fields = dict(attrs)
            elif name == "Link":
                uid = score = None
            else:
                slow_start(name, attrs)
                if self.links is not links:
                    links = self.links
                    add_link = links.append

        def end(name: str) -> None:
            nonlocal uid, score
            parent = stack[-2] if len(stack) > 1 else ""
            if name == "Id" and parent == "Link":
                pop()
                if uid is None:
                    uid = join(buf)
            elif name == "Link" and parent == "LinkSetDb":
                pop()
                add_link(Link(uid=uid.strip() if uid is not None else "",
                              score=None if score is None else _i(score)))
            elif name == "Score" and parent == "Link":
                pop()
                if score is None:
                    score = join(buf)
            else:
                slow_end(name)

        return start, end

    def start(self, name: str, attrs: dict[str, str]) -> None:
        """Every element but Id and Link (already pushed on the stack)."""
        stack = self.stack
        if name == "LinkSetDb" or name == "LinkSetDbHistory" or name == "LinkInfo":
            self.fields = {}
            self.links = []
        elif name == "LinkSet" and len(stack) == 2:
            self.ls = {"ids": [], "dbs": [], "hists": [], "errors": [], "check": False}
        elif name == "IdLinkSet":
            self.idlinkset_uid = None
            self.infos = []
        elif name == "IdUrlList":
            raise NotFast
        if self.root is None:
            self.root = name

    def end(self, name: str) -> None:
        """Every end but that of a Link's Id or Score and of a LinkSetDb's Link."""
        stack = self.stack
        parent = stack[-2] if len(stack) > 1 else ""
        stack.pop()
        if name == "Id":
            text = "".join(self.buf)
            if parent == "IdList":
                if len(stack) > 1 and stack[-2] == "LinkSet":
                    self.ls["ids"].append(text.strip())  # type: ignore[attr-defined]
            elif parent == "IdCheckList":
                self.idchecks.append(IdCheck(uid=text.strip(),
                                             has_neighbor=_yn(self.fields.get("HasNeighbor")),
                                             has_linkout=_yn(self.fields.get("HasLinkOut"))))
            elif parent == "IdLinkSet" and self.idlinkset_uid is None:
                self.idlinkset_uid = text
        elif name == "LinkSetDb":
            if parent == "LinkSet":
                f = self.fields
                self.ls["dbs"].append(LinkSetDb(  # type: ignore[attr-defined]
                    dbto=_s(f.get("DbTo")) or "", linkname=_s(f.get("LinkName")) or "",
                    links=tuple(self.links)))
        elif name == "LinkSetDbHistory":
            if parent == "LinkSet":
                f = self.fields
                key = _s(f.get("QueryKey"))
                if key:
                    self.ls["hists"].append(LinkHistory(  # type: ignore[attr-defined]
                        dbto=_s(f.get("DbTo")) or "", linkname=_s(f.get("LinkName")) or "",
                        query_key=key))
        elif name == "LinkInfo":
            if parent == "IdLinkSet":
                f = self.fields
                self.infos.append(LinkInfo(
                    dbto=_s(f.get("DbTo")) or "", linkname=_s(f.get("LinkName")) or "",
                    menu_tag=_s(f.get("MenuTag")), html_tag=_s(f.get("HtmlTag")),
                    priority=_i(f.get("Priority")), url=_s(f.get("Url"))))
        elif name == "IdLinkSet":
            if parent == "IdCheckList":
                self.idlinksets.append(IdLinkSet(uid=str(self.idlinkset_uid).strip(),
                                                 infos=tuple(self.infos)))
        elif name == "IdCheckList":
            if parent == "LinkSet":
                self.ls["check"] = True
        elif name == "ERROR":
            text = _s("".join(self.buf))
            if text:
                if len(stack) == 1:
                    self.top_errors.append(text)
                else:
                    self.nested_errors.append(text)
                    if parent == "LinkSet":
                        self.ls["errors"].append(text)  # type: ignore[attr-defined]
        elif name == "LinkSet" and not stack[1:]:
            self._linkset_end()
        elif parent == "LinkSet":
            if name in ("DbFrom", "WebEnv", "Info"):
                self.ls.setdefault(name, "".join(self.buf))
        elif parent in ("LinkSetDb", "LinkSetDbHistory", "LinkInfo"):
            self.fields.setdefault(name, "".join(self.buf))

    def _linkset_end(self) -> None:
        ls = self.ls
        dbfrom = _s(ls.get("DbFrom"))  # type: ignore[arg-type]
        self.dbfrom = dbfrom or self.dbfrom
        if ls["check"]:
            return
        errors: list[str] = ls["errors"]  # type: ignore[assignment]
        self.linksets.append(LinkSet(
            dbfrom=dbfrom or "",
            ids=tuple(ls["ids"]),  # type: ignore[arg-type]
            linksetdbs=tuple(ls["dbs"]),  # type: ignore[arg-type]
            webenv=_s(ls.get("WebEnv")),  # type: ignore[arg-type]
            histories=tuple(ls["hists"]),  # type: ignore[arg-type]
            info=_s(ls.get("Info")),  # type: ignore[arg-type]
            error="; ".join(errors) or None,
        ))

    def result(self) -> ELinkResult:
        return ELinkResult(cmd=self.cmd, dbfrom=self.dbfrom, linksets=tuple(self.linksets),
                           idlinksets=tuple(self.idlinksets), idchecks=tuple(self.idchecks))


def read_elink(data: bytes, cmd: str) -> tuple[ELinkResult, str, list[str], list[str]]:
    """(result, root tag, top-level <ERROR> texts, nested <ERROR> texts) of an ELink body.

    Raises TransientError for a malformed or truncated body, NotFast for LinkOut URL lists.
    The caller classifies the errors and checks the root, as for every other body.
    """
    reader = _Reader(cmd)
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.buffer_size = 1 << 16
    parser.StartElementHandler, parser.EndElementHandler = reader.handlers()
    parser.CharacterDataHandler = reader.buf.append  # no Python frame per text
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise TransientError(f"malformed or truncated XML: {exc}", kind="parse") from None
    if reader.root is None:
        raise TransientError("empty response body", kind="parse")
    top = reader.top_errors
    nested = [t for t in reader.nested_errors if t not in top]
    return reader.result(), reader.root, top, nested
