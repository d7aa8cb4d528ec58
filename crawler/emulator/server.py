"""The HTTP side of the emulator: E-utilities endpoints, rate limit, faults, poison IDs, log.

`Emulator(world, ...)` runs a keep-alive HTTP/1.1 server on 127.0.0.1 in a background thread.
Requests are answered from a `World` in NCBI's XML shapes (`render.py`). The server enforces a
per-key (or per-IP) sliding one-second rate limit with NCBI's 429 JSON body, injects faults from
a seeded plan, refuses poisoned IDs with HTTP 400, and logs every request (the API key redacted).

Arrival times are the kernel's: each connection's bytes are read with their receive timestamp
(SO_TIMESTAMPNS), so a request is counted when it reached the host, as a front end counts it,
not when a handler thread got the GIL to look at it (that lag, up to hundreds of ms while
other threads render big answers, would make requests sent 100 ms apart look 20 ms apart).
The window is strict whatever order the threads decide in: a request is refused if any
one-second window holding its arrival would hold more than the limit of answered ones.
"""

from __future__ import annotations

import bisect
import contextlib
import io
import json
import re
import socket
import struct
import sys
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..errors import BadInput
from . import render
from .faults import TRANSIENT_ERRORS, FaultPlan
from .world import CATALOG, DB_TITLES, World, _norm_db

ENDPOINTS = ("elink.fcgi", "esearch.fcgi", "einfo.fcgi", "esummary.fcgi")
_ROOTS = {"elink.fcgi": "eLinkResult", "esearch.fcgi": "eSearchResult",
          "einfo.fcgi": "eInfoResult", "esummary.fcgi": "eSummaryResult"}
NEIGHBOR_CMDS = ("neighbor", "neighbor_score", "neighbor_history")
ELINK_CMDS = (*NEIGHBOR_CMDS, "acheck", "ncheck", "lcheck", "llinks", "llinkslib", "prlinks")
_XML = "text/xml; charset=UTF-8"
_CLAUSE = re.compile(r"^\s*(.+?)\s*\[([^\]]+)\]\s*$")
_HTML_5XX = {
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout",
}
_BUILD = "Build251124-2305m.1"
# Linux's SO_TIMESTAMPNS (not exported by every Python build); elsewhere arrivals are stamped
# when read.
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35 if sys.platform.startswith("linux") else 0)
_TIMESPEC = struct.Struct("@qq")
# Answered arrivals kept per key: enough for any window a late decision can still touch.
_KEEP_S = 30.0


class Params:
    """Query and form parameters, keeping repeated keys (`id=1&id=2`) in order."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.multi: dict[str, list[str]] = defaultdict(list)
        for k, v in pairs:
            self.multi[k.strip()].append(v)

    def get(self, key: str, default: str | None = None) -> str | None:
        values = self.multi.get(key)
        return values[0] if values else default

    def all(self, key: str) -> list[str]:
        return list(self.multi.get(key, ()))

    def for_log(self) -> dict[str, Any]:
        """The parameters as logged: one value or a list; the API key never in clear."""
        out: dict[str, Any] = {}
        for k, values in self.multi.items():
            if k.lower() == "api_key":
                out[k] = "<redacted>"
            else:
                out[k] = values[0] if len(values) == 1 else list(values)
        return out


class Reply:
    """An answer under construction: status, headers, body, and how it was altered."""

    def __init__(self, status: int, body: bytes, content_type: str = _XML) -> None:
        self.status = status
        self.body = body
        self.headers: dict[str, str] = {"Content-Type": content_type}
        self.fault: str | None = None
        self.drop = False
        self.content_length: int | None = None


def _id_groups(params: Params) -> list[list[str]]:
    """One group per `id=` parameter; comma-joined IDs share a group (one merged LinkSet)."""
    groups = []
    for raw in params.all("id"):
        ids = [i.strip() for i in raw.split(",") if i.strip()]
        if ids:
            groups.append(ids)
    return groups


def _echo(uid: str) -> str:
    """NCBI echoes a malformed ID as 0."""
    return uid if uid.isdigit() else "0"


class _Server(ThreadingHTTPServer):
    """A client that drops its connection (a crawl killed mid-request, a timeout) is normal
    traffic for an E-utilities server: no traceback on the emulator's stderr for it."""

    def handle_error(self, request, client_address) -> None:  # type: ignore[override]
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class Emulator:
    """A local E-utilities server over a World; a context manager running in a thread."""

    def __init__(self, world: World, rate_limit: int = 0, latency_ms: float = 0,
                 faults: str | dict[str, float] | None = "", poison: Iterable[str] = (),
                 log_path: str | Path | None = None, port: int = 0, fault_seed: int = 0,
                 host: str = "127.0.0.1") -> None:
        if rate_limit < 0 or latency_ms < 0:
            raise BadInput("rate limit and latency must not be negative")
        self.world = world
        self.rate_limit = int(rate_limit)
        self.latency_ms = float(latency_ms)
        self.faults = FaultPlan(faults, fault_seed)
        self.poison = frozenset(str(p).strip() for p in poison if str(p).strip())
        self.log_path = Path(log_path) if log_path else None
        self.log: list[dict[str, Any]] = []
        self._host = host
        self._want_port = int(port)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._log_lock = threading.Lock()
        self._log_file: Any = None
        self._rate_lock = threading.Lock()
        self._windows: dict[str, list[float]] = defaultdict(list)  # answered arrivals, sorted
        self._rejected: dict[str, deque[float]] = defaultdict(deque)
        self._history_lock = threading.Lock()
        self._history: dict[str, list[tuple[str, list[str]]]] = {}
        self._conns_lock = threading.Lock()
        self._conns: set[socket.socket] = set()

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Emulator:
        if self._server is not None:
            return self
        if self.log_path is not None:
            try:
                self._log_file = self.log_path.open("a", encoding="utf-8")
            except OSError as exc:
                raise BadInput(
                    f"cannot write the request log {str(self.log_path)!r}: "
                    f"{exc.strerror or exc}"
                ) from None
        server = _Server((self._host, self._want_port), _Handler)
        server.daemon_threads = True
        server.emulator = self  # type: ignore[attr-defined]
        self._server = server
        self._want_port = int(server.server_address[1])  # a restart keeps the same URL
        self._thread = threading.Thread(target=server.serve_forever, name="eutils-emulator",
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and close every open keep-alive connection (clients see it go)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._conns_lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._log_lock:
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Block until interrupted (Ctrl-C), for the `emulate` command."""
        self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            return self._want_port
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}/entrez/eutils/"

    # --- bookkeeping --------------------------------------------------------------------------

    def _record(self, entry: dict[str, Any]) -> None:
        with self._log_lock:
            self.log.append(entry)
            if self._log_file is not None:
                self._log_file.write(json.dumps(entry, separators=(",", ":")) + "\n")
                self._log_file.flush()

    def _rate_check(self, bucket: str, arrival: float) -> Reply | None:
        """NCBI's limit: at most `rate_limit` answered requests in any one second per key.

        `arrival` is when the request reached the host. Threads may decide out of order (one
        request waited for the GIL while a later one was decided), so the check is not "how
        many in the last second" but: would any one-second window [s, s + 1) that holds
        `arrival` hold more than the limit of answered arrivals, this one included? Then 429.
        """
        if self.rate_limit <= 0:
            return None
        n = self.rate_limit
        with self._rate_lock:
            window, rejected = self._windows[bucket], self._rejected[bucket]
            newest = max(arrival, window[-1] if window else arrival)
            while window and window[0] < newest - _KEEP_S:
                del window[0]
            while rejected and rejected[0] <= arrival - 1.0:
                rejected.popleft()
            i = bisect.bisect_left(window, arrival)
            near = [*window[max(0, i - n):i], arrival, *window[i:i + n]]
            k = min(i, n)  # where this arrival is in `near`
            # n + 1 answered arrivals within less than a second, this one among them?
            crowded = any(near[j + n] - near[j] < 1.0
                          for j in range(max(0, k - n), min(k, len(near) - 1 - n) + 1))
            if not crowded:
                window.insert(i, arrival)
                return None
            rejected.append(arrival)
            count = sum(1 for t in window if arrival - 1.0 < t <= arrival) + len(rejected)
        body = json.dumps({"error": "API rate limit exceeded", "api-key": bucket,
                           "count": str(count), "limit": str(self.rate_limit)},
                          separators=(",", ":")).encode()
        reply = Reply(429, body, "application/json")
        reply.headers.update({"Retry-After": "1", "X-RateLimit-Limit": str(self.rate_limit),
                              "X-RateLimit-Remaining": "0"})
        return reply

    def _remember(self, webenv: str | None, results: Sequence[tuple[str, list[str]]]
                  ) -> tuple[str, list[str]]:
        """Store (db, uids) sets on the 'History server'; returns the WebEnv and query keys."""
        with self._history_lock:
            if not webenv or webenv not in self._history:
                webenv = f"MCID_{uuid.uuid4().hex[:24]}"
                self._history[webenv] = []
            store = self._history[webenv]
            keys = []
            for item in results:
                store.append(item)
                keys.append(str(len(store)))
        return webenv, keys

    def _recall(self, webenv: str | None, key: str | None) -> tuple[str, list[str]] | None:
        with self._history_lock:
            store = self._history.get(webenv or "")
            if store is None or not key or not key.isdigit() or not 1 <= int(key) <= len(store):
                return None
            return store[int(key) - 1]

    # --- one request --------------------------------------------------------------------------

    def handle(self, method: str, path: str, params: Params, client: str,
               arrival: float | None = None) -> Reply:
        """Everything except the socket: rate limit, latency, faults, poison, the answer.

        `arrival`: when the request reached the host (epoch seconds; default now). The latency
        runs from then, as NCBI's does, not from when a thread got to the request."""
        if arrival is None:
            arrival = time.time()
        endpoint = path.rstrip("/").rsplit("/", 1)[-1]
        if endpoint not in ENDPOINTS:
            return Reply(404, b"<html><body><h1>404 Not Found</h1></body></html>\n",
                         "text/html; charset=UTF-8")
        bucket = params.get("api_key") or client
        limited = self._rate_check(bucket, arrival)
        if limited is not None:
            return limited
        if self.latency_ms:
            time.sleep(max(0.0, arrival + self.latency_ms / 1000.0 - time.time()))
        fault, detail = self.faults.draw() if self.faults else (None, 0.0)
        if fault == "drop":
            reply = Reply(0, b"")
            reply.drop, reply.fault = True, fault
            return reply
        if fault == "429":
            reply = self._fake_429(bucket)
            reply.fault = fault
            return reply
        if fault in ("5xx", "500", "502", "503", "504"):
            status = (500, 502, 503)[int(detail * 3)] if fault == "5xx" else int(fault)
            text = _HTML_5XX[status]
            body = (f"<html><head><title>{status} {text}</title></head><body><h1>{text}</h1>"
                    f"</body></html>\n").encode()
            reply = Reply(status, body, "text/html; charset=UTF-8")
            reply.fault = fault
            return reply
        if fault == "error":
            message = TRANSIENT_ERRORS[int(detail * len(TRANSIENT_ERRORS))]
            reply = Reply(200, self._error_body(endpoint, params, message))
            reply.fault = fault
            return reply
        poisoned = self._poisoned(params)
        if poisoned is not None:
            uid, pos = poisoned
            return Reply(400, self._error_body(
                endpoint, params, f"Invalid uid {uid} at position={pos}"))
        try:
            reply = self._answer(endpoint, params, partial=detail if fault == "partial" else None)
        except _Refused as exc:
            reply = Reply(200, self._error_body(endpoint, params, str(exc)))
        if fault == "partial" and reply.fault is None:
            fault = None  # nothing to leave out in this answer
        if fault == "truncate" and len(reply.body) > 1:
            cut = max(1, min(len(reply.body) - 1, int(len(reply.body) * (0.2 + 0.6 * detail))))
            reply.body = reply.body[:cut]
            reply.fault = fault
        if self.rate_limit > 0:
            reply.headers["X-RateLimit-Limit"] = str(self.rate_limit)
        return reply

    def _fake_429(self, bucket: str) -> Reply:
        limit = self.rate_limit or 3
        body = json.dumps({"error": "API rate limit exceeded", "api-key": bucket,
                           "count": str(limit + 1), "limit": str(limit)},
                          separators=(",", ":")).encode()
        reply = Reply(429, body, "application/json")
        reply.headers.update({"Retry-After": "1", "X-RateLimit-Limit": str(limit),
                              "X-RateLimit-Remaining": "0"})
        return reply

    def _poisoned(self, params: Params) -> tuple[str, int] | None:
        if not self.poison:
            return None
        pos = 0
        for group in _id_groups(params):
            for uid in group:
                if uid in self.poison:
                    return uid, pos
                pos += 1
        return None

    def _error_body(self, endpoint: str, params: Params, message: str) -> bytes:
        if endpoint == "esearch.fcgi":
            return render.esearch_error(message)
        if endpoint == "einfo.fcgi":
            return render.einfo_error(message)
        if endpoint == "esummary.fcgi":
            if (params.get("version") or "").strip() != "2.0":
                return render.esummary_v1_error(message)
            return render.esummary_error(_norm_db(params.get("db") or "pubmed"), message)
        return render.elink_error(message)

    def _answer(self, endpoint: str, params: Params, partial: float | None) -> Reply:
        if endpoint == "elink.fcgi":
            return self._elink(params, partial)
        if endpoint == "esearch.fcgi":
            return Reply(200, self._esearch(params))
        if endpoint == "einfo.fcgi":
            return Reply(200, self._einfo(params))
        return Reply(200, self._esummary(params))

    def _check_db(self, db: str) -> str:
        norm = _norm_db(db)
        if not self.world.has_db(norm):
            raise _Refused(f"Invalid db name specified: {db}")
        return norm

    # --- elink --------------------------------------------------------------------------------

    def _elink(self, params: Params, partial: float | None) -> Reply:
        cmd = (params.get("cmd") or "neighbor").strip().lower()
        if cmd not in ELINK_CMDS:
            raise _Refused(f"{cmd} command not supported")
        dbfrom = self._check_db(params.get("dbfrom") or "pubmed")
        db_raw = (params.get("db") or "").strip()
        db = "all" if db_raw.lower() == "all" else (self._check_db(db_raw) if db_raw else "")
        linkname = (params.get("linkname") or "").strip()
        groups = _id_groups(params)
        if not groups:
            recalled = self._recall(params.get("WebEnv") or params.get("webenv"),
                                    params.get("query_key"))
            if recalled is not None and recalled[1]:
                groups = [recalled[1]]
        if not groups:
            raise _Refused("Empty id list - nothing todo")

        if cmd in NEIGHBOR_CMDS:
            target_db = db or "pubmed"
            # db=all without a link name answers every link name of the database, as NCBI does:
            # empty ones as <Info>Empty result</Info>, computed neighbours with their scores
            every = cmd == "neighbor" and target_db == "all" and not linkname
            linksets = [([_echo(u) for u in group],
                         self._neighbors(dbfrom, group, target_db, linkname, cmd, every=every))
                        for group in groups]
            reply_fault = None
            if partial is not None and len(linksets) >= 2:
                del linksets[int(partial * len(linksets))]
                reply_fault = "partial"
            if cmd == "neighbor_history":
                results = [(dbto, [t for t, _ in targets]) for _, sets in linksets
                           for dbto, _, targets in sets]
                webenv, keys = self._remember(params.get("WebEnv") or params.get("webenv"),
                                              results)
                it = iter(keys)
                hist = [(ids, [(dbto, name, next(it)) for dbto, name, _ in sets])
                        for ids, sets in linksets]
                body = render.elink_history(dbfrom, hist, webenv)
            else:
                body = render.elink_neighbor(dbfrom, linksets,
                                             scores=cmd == "neighbor_score" or every)
            reply = Reply(200, body)
            reply.fault = reply_fault
            return reply
        if cmd == "acheck":
            acheck = [[(_echo(u), self._linkinfos(dbfrom, u, db)) for u in group]
                      for group in groups]
            return Reply(200, render.elink_acheck(dbfrom, acheck))
        if cmd == "ncheck":
            to = db if db and db != "all" else dbfrom
            checks = [[(_echo(u), any(lk.dbto == to for lk in self.world.links_from(dbfrom, u)))
                       for u in group] for group in groups]
            return Reply(200, render.elink_idcheck(dbfrom, checks, "HasNeighbor"))
        if cmd == "lcheck":
            checks = [[(_echo(u), bool(self.world.linkouts(dbfrom, u))) for u in group]
                      for group in groups]
            return Reply(200, render.elink_idcheck(dbfrom, checks, "HasLinkOut"))
        urlsets = []
        for group in groups:
            sets = []
            for u in group:
                los = self.world.linkouts(dbfrom, u)
                if cmd == "llinks":
                    los = [lo for lo in los if not lo.library]
                elif cmd == "prlinks":
                    los = [lo for lo in los if not lo.library][:1]
                sets.append((_echo(u), los))
            urlsets.append(sets)
        return Reply(200, render.elink_urls(dbfrom, urlsets))

    def _neighbors(self, dbfrom: str, group: Sequence[str], db: str, linkname: str, cmd: str,
                   *, every: bool = False) -> list[tuple[str, str, list[tuple[str, int | None]]]]:
        """[(dbto, linkname, [(target, score)])] for one LinkSet, merging comma-joined IDs.

        `every` (db=all): also the database's link names without links (empty target lists),
        in NCBI's order for db=all, by target database and then link name."""
        merged: dict[tuple[str, str], dict[str, int | None]] = {}
        if every:
            for spec in CATALOG.get(dbfrom, ()):
                merged.setdefault((spec.dbto, spec.linkname), {})
        for uid in group:
            for lk in self.world.links_from(dbfrom, uid):
                if linkname and lk.linkname != linkname:
                    continue
                if db != "all" and lk.dbto != db:
                    continue
                targets = merged.setdefault((lk.dbto, lk.linkname), {})
                old = targets.get(lk.target)
                if lk.target not in targets or (lk.score or 0) > (old or 0):
                    targets[lk.target] = lk.score
        order = {} if every else _linkname_order(dbfrom)
        out = []
        for (dbto, name), targets in sorted(merged.items(),
                                            key=lambda kv: (order.get(kv[0][1], 999), kv[0])):
            items = list(targets.items())
            if len(group) > 1:  # a merged set is ordered as one: by score, else by UID
                if any(s is not None for _, s in items):
                    items.sort(key=lambda p: -(p[1] or 0))
                else:
                    items.sort(key=lambda p: -int(p[0]))
            out.append((dbto, name, items))
        return out

    def _linkinfos(self, dbfrom: str, uid: str, db: str) -> list[render.LinkInfoRow]:
        names: dict[str, str] = {}
        for lk in self.world.links_from(dbfrom, uid):
            if not db or db == "all" or lk.dbto == db:
                names.setdefault(lk.linkname, lk.dbto)
        specs = {s.linkname: s for s in CATALOG.get(dbfrom, ())}
        rows = []
        for name, dbto in sorted(names.items(), key=lambda kv: (kv[1], kv[0])):
            menu, _ = _menu(name, dbto, specs.get(name))
            spec = specs.get(name)
            rows.append((dbto, name, menu, menu.removesuffix(" Links"),
                         spec.priority if spec else 128))
        if (not db or db == "all") and any(not lo.library
                                           for lo in self.world.linkouts(dbfrom, uid)):
            rows.append(("LinkOut", "ExternalLink", "LinkOut", "LinkOut", 255))
        return rows

    # --- esearch ------------------------------------------------------------------------------

    def _esearch(self, params: Params) -> bytes:
        db = self._check_db(params.get("db") or "pubmed")
        term = (params.get("term") or "").strip()
        if not term:
            raise _Refused("Empty term and query_key - nothing todo")
        try:
            retmax = int(params.get("retmax") or 20)
            retstart = int(params.get("retstart") or 0)
        except ValueError:
            raise _Refused("Invalid retmax or retstart") from None
        hits: list[str] | None = None
        not_found: list[str] = []
        for clause in re.split(r"\s+AND\s+", term, flags=re.IGNORECASE):
            clause = clause.strip().strip("()")
            m = _CLAUSE.match(clause)
            value, field = (m.group(1), m.group(2)) if m else (clause, "all fields")
            found = self.world.lookup(db, field, value)
            if found is None:
                found = self.world.lookup(db, "all fields", value) or []
            if not found:
                not_found.append(value)
            hits = found if hits is None else [h for h in hits if h in set(found)]
        hits = list(dict.fromkeys(hits or []))
        page = hits[retstart:retstart + max(0, retmax)]
        webenv = query_key = None
        if (params.get("usehistory") or "").lower() == "y":
            webenv, keys = self._remember(params.get("WebEnv"), [(db, hits)])
            query_key = keys[0]
        return render.esearch(len(hits), page, retstart, term, not_found if not hits else (),
                              webenv, query_key)

    # --- einfo --------------------------------------------------------------------------------

    def _einfo(self, params: Params) -> bytes:
        db_raw = (params.get("db") or "").strip()
        if not db_raw:
            return render.einfo_dblist(self.world.databases())
        db = self._check_db(db_raw)
        menu, description = DB_TITLES.get(db, (db, f"{db} database"))
        specs = {s.linkname: s for s in CATALOG.get(db, ())}
        links = []
        for name, dbto in self.world.linknames(db):
            m, d = _menu(name, dbto, specs.get(name))
            links.append((name, m, d, dbto))
        return render.einfo_db(db, menu, description, self.world.count(db), _BUILD,
                               "2025/11/24 23:05", links)

    # --- esummary -----------------------------------------------------------------------------

    def _esummary(self, params: Params) -> bytes:
        db = self._check_db(params.get("db") or "pubmed")
        ids = [u for group in _id_groups(params) for u in group]
        if not ids:
            recalled = self._recall(params.get("WebEnv"), params.get("query_key"))
            if recalled is not None:
                ids = recalled[1][:int(params.get("retmax") or 10000)]
        if not ids:
            raise _Refused("Empty id list - nothing todo")
        docs = [(u, self.world.summary(db, u) if u.isdigit() else None)
                for u in dict.fromkeys(ids)]
        if (params.get("version") or "").strip() != "2.0":
            return render.esummary_v1(db, docs)
        return render.esummary(db, _BUILD, docs)


class _Refused(Exception):
    """An <ERROR> NCBI would answer inside an HTTP 200 (bad parameter)."""


def _linkname_order(dbfrom: str) -> dict[str, int]:
    return {s.linkname: n for n, s in enumerate(CATALOG.get(dbfrom, ()))}


def _menu(name: str, dbto: str, spec: Any) -> tuple[str, str]:
    """(Menu tag, description) of a link name as acheck/einfo show them."""
    title = DB_TITLES.get(dbto, (dbto.capitalize(), ""))[0]
    menu = spec.menu if spec is not None and spec.menu else f"{title} Links"
    return menu, f"{title} records linked from this record ({name})"


class _StampedReader(io.RawIOBase):
    """A connection's bytes with the kernel's receive time of each read (SO_TIMESTAMPNS).

    The kernel stamps a segment when it reaches the host; a read reports the stamp of the last
    segment it took (segments queued together share the latest one). A client that sends a
    request in one write (ours does) gets its request stamped when it arrived, however long
    the handler thread took to read it. Without kernel stamps, a read is stamped when it
    returns."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.kernel = False
        if _SO_TIMESTAMPNS:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
                self.kernel = True
        self._ancillary = socket.CMSG_SPACE(_TIMESPEC.size) if self.kernel else 0
        self.first: float | None = None  # the first read since `mark`
        self.last: float | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        stamp = None
        if self.kernel:
            n, ancillary, _, _ = self.sock.recvmsg_into([buffer], self._ancillary)
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
                    sec, nsec = _TIMESPEC.unpack_from(data)
                    stamp = sec + nsec / 1e9
        else:
            n = self.sock.recv_into(buffer)
        if n:
            self.last = stamp if stamp is not None else time.time()
            if self.first is None:
                self.first = self.last
        return n

    def mark(self) -> None:
        """A new request starts: its arrival is the next read's stamp."""
        self.first = None

    def arrival(self) -> float:
        """When the current request reached the host (if already buffered: the read that
        brought it)."""
        if self.first is not None:
            return self.first
        return self.last if self.last is not None else time.time()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "entrez-graph-emulator"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.arrivals = _StampedReader(self.connection)
        self.rfile = io.BufferedReader(self.arrivals)
        # Headers and body leave in one write, and without Nagle's delay: otherwise every
        # keep-alive answer waits ~40 ms for the client's delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        emu: Emulator = self.server.emulator  # type: ignore[attr-defined]
        with emu._conns_lock:
            emu._conns.add(self.connection)

    def finish(self) -> None:
        emu: Emulator = self.server.emulator  # type: ignore[attr-defined]
        with emu._conns_lock:
            emu._conns.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence http.server's stderr lines; the emulator keeps its own log."""

    def handle_one_request(self) -> None:
        self.arrivals.mark()
        super().handle_one_request()

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        emu: Emulator = self.server.emulator  # type: ignore[attr-defined]
        started = self.arrivals.arrival()
        seen = time.time()  # when this thread got to it: the lag is logged
        parts = urlsplit(self.path)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if method == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length > 0 else b""
            pairs += parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
        params = Params(pairs)
        try:
            reply = emu.handle(method, parts.path, params, self.client_address[0], started)
        except _Refused as exc:  # a bad parameter outside any endpoint logic
            reply = Reply(200, render.elink_error(str(exc)))
        except Exception as exc:  # never kill a connection thread silently
            reply = Reply(500, f"internal emulator error: {type(exc).__name__}\n".encode(),
                          "text/plain; charset=UTF-8")
        entry: dict[str, Any] = {
            "time": round(started, 6), "path": parts.path, "method": method,
            "params": params.for_log(), "status": reply.status,
            "bytes": 0 if reply.drop else len(reply.body),
            "lag": round(max(0.0, seen - started), 6),
        }
        if reply.fault:
            entry["fault"] = reply.fault
        # Logged before the answer leaves, so a client that got it also finds it in the log.
        emu._record(entry)
        if reply.drop:
            self.close_connection = True
            return
        try:
            self.send_response_only(reply.status)
            self.send_header("Server", self.version_string())
            self.send_header("Date", self.date_time_string())
            for k, v in reply.headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(reply.body)))
            self._headers_buffer.append(b"\r\n")
            self.wfile.write(b"".join(self._headers_buffer) + reply.body)
            self._headers_buffer = []
            self.wfile.flush()
        except OSError:
            self.close_connection = True

