"""`EutilsClient`: one keep-alive HTTP session to E-utilities, rate-limited, retried, parsed.

Thread-safe: callers (the engine, benchmarks) keep several requests in flight from threads; the
shared limiter (ratelimit.py) keeps the machine under NCBI's rate whoever sends. Each attempt —
retries included — takes a slot and counts in `requests_sent`. The API key travels in every request
and nowhere else: every text we raise or log passes `redact`.

Every request has an overall deadline (`timeout`, headers and body together: transport.py) and a
cap on the body (`max_response_bytes`, read as a stream and abandoned past the cap). Answers that
can never succeed — an HTML page instead of XML, a DOCTYPE declaring entities, a redirect — are
tried twice at most, then `UnusableResponse` stops the caller (like `Unreachable`).
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from ..errors import BadInput, NCBIError, PermanentError, RateLimited, TransientError
from ..names import check_linkname, check_token, check_uid, normalize_db
from . import parse
from .models import (
    ELINK_CMDS,
    BatchOutcome,
    DbInfo,
    DocSummary,
    ELinkResult,
    IdLinkSet,
    LinkSet,
    SearchResult,
)
from .ratelimit import RateLimiter, default_rps
from .redact import install as install_redaction
from .redact import redact, register_secret
from .transport import deadline, make_transport

NCBI_EUTILS = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"
POST_ABOVE_IDS = 200
POST_ABOVE_CHARS = 1800  # URLs past ~2 kB are refused by some proxies; NCBI asks for POST
MAX_BATCH = 500
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# Attempts before giving up when the very first contact fails to connect (DNS failure, connection
# refused, connect timeout): most likely no network or a wrong --eutils-url, not a passing fault.
FIRST_CONTACT_ATTEMPTS = 3
# Retries are logged at WARNING from this attempt on, at most one line per RETRY_LOG_INTERVAL s.
WARN_FROM_ATTEMPT = 2
RETRY_LOG_INTERVAL = 5.0
# The largest answer read: NCBI's biggest ELink answers (500 IDs x thousands of pubmed links)
# stay well under it; past it the body is abandoned unread (ENTREZ_GRAPH_MAX_RESPONSE_MB).
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
# Answers that can never succeed get this many attempts in all.
UNUSABLE_ATTEMPTS = 2
_DATE = re.compile(r"^\d{4}(/\d{1,2}(/\d{1,2})?)?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_QUERY = re.compile(r"(https?://[^\s?]+)\?\S*")

log = logging.getLogger("crawler.eutils")
install_redaction(log)
T = TypeVar("T")

_warned_no_key = False
_warned_no_email = False
_warn_lock = threading.Lock()


def _warn_no_email_once() -> None:
    """NCBI asks every tool to send a contact address; it writes to it before blocking a tool."""
    global _warned_no_email
    with _warn_lock:
        if _warned_no_email:
            return
        _warned_no_email = True
    log.warning(
        "No NCBI_EMAIL set: NCBI asks for a contact e-mail with every request "
        "(set NCBI_EMAIL or --email)."
    )


def _warn_no_key_once() -> None:
    global _warned_no_key
    with _warn_lock:
        if _warned_no_key:
            return
        _warned_no_key = True
    log.warning(
        "No NCBI_API_KEY set: limited to 3 requests/s; an API key would allow 10/s "
        "(https://www.ncbi.nlm.nih.gov/account/settings/)."
    )


class Unreachable(NCBIError):
    """E-utilities could not be reached at all on first contact; retrying later will not help."""


class _ConnectFailed(TransientError):
    """No connection was made (DNS, refused, connect timeout): nothing reached the server."""


class UnusableResponse(NCBIError):
    """E-utilities answered twice with something no retry can fix (HTML, entities, a redirect):
    most likely a proxy, a login page or a wrong --eutils-url. The caller stops; nothing is
    recorded as failed, so a later run asks again."""


class ResponseTooLarge(PermanentError):
    """The answer is larger than the client's cap. Batches are split (fewer IDs, smaller
    answers); a single record's answer past the cap is recorded as failed with this text."""


class _Unusable(TransientError):
    """One unusable answer (retried once, in case a proxy hiccuped)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, kind="unusable")


def _max_response_bytes(value: int | None) -> int:
    if value is not None:
        if value < 1:
            raise BadInput("max_response_bytes must be at least 1")
        return int(value)
    env = os.environ.get("ENTREZ_GRAPH_MAX_RESPONSE_MB")
    if not env:
        return DEFAULT_MAX_RESPONSE_BYTES
    try:
        mb = float(env)
    except ValueError:
        mb = -1.0
    if not (mb > 0 and math.isfinite(mb)):
        raise BadInput(f"ENTREZ_GRAPH_MAX_RESPONSE_MB must be a positive number, got {env!r}")
    return max(1, int(mb * 1024 * 1024))


_RETRY_WHAT = {
    "connection": "connection failed",
    "timeout": "timed out",
    "rate": "rate limited",
    "unusable": "unusable answer",
}


def _retry_reason(exc: BaseException) -> str | None:
    """The short phrase a visible retry line starts with; None for failures not worth one."""
    if not isinstance(exc, TransientError):
        return None
    if exc.kind == "server" and exc.status:
        return f"HTTP {exc.status}"
    return _RETRY_WHAT.get(exc.kind)


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class EutilsClient:
    """E-utilities over one httpx.Client; see docs/internals.md for the contract."""

    def __init__(
        self,
        base_url: str | None = None,
        email: str | None = None,
        api_key: str | None = None,
        tool: str = "entrez-graph",
        rps: float | None = None,
        timeout: float = 30.0,
        max_attempts: int = 10,
        concurrency: int = 8,
        *,
        rate_dir: str | os.PathLike[str] | None = None,
        transport: httpx.BaseTransport | None = None,
        backoff: float | None = None,
        max_response_bytes: int | None = None,
    ) -> None:
        base_url = base_url or os.environ.get("ENTREZ_GRAPH_EUTILS_URL") or NCBI_EUTILS
        if not base_url.endswith("/"):
            base_url += "/"
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise BadInput(f"invalid E-utilities URL {redact(base_url)!r}")
        if max_attempts < 1:
            raise BadInput("max_attempts must be at least 1")
        if not (timeout > 0 and math.isfinite(timeout)):
            raise BadInput(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.timeout = float(timeout)
        self.max_response_bytes = _max_response_bytes(max_response_bytes)
        self.base_url = base_url
        self.email = email or None
        self.api_key = api_key or None
        register_secret(self.api_key)
        self.tool = tool
        self.loopback = parsed.hostname in LOOPBACK
        if self.email is None and not self.loopback:
            _warn_no_email_once()
        if rps is not None and not (rps > 0 and math.isfinite(rps)):
            raise BadInput(f"--rps must be a positive number, got {rps!r}")
        if rps is None:
            rps = default_rps(self.api_key is not None)
            if self.api_key is None and not self.loopback:
                _warn_no_key_once()
        self.rps = float(rps)
        self.max_attempts = max_attempts
        # Small waits against a local emulator keep tests fast; NCBI gets real backoff.
        self.backoff = backoff if backoff is not None else (0.05 if self.loopback else 1.0)
        self.limiter = RateLimiter(
            self.rps,
            host=parsed.netloc,
            key=self.api_key,
            rate_dir=rate_dir,
            penalty_pause=min(1.0, self.backoff * 4),
        )
        # No cap on open connections: the callers' threads bound what is in flight and the
        # limiter bounds the rate. A capped pool would make a thread that already holds its
        # rate slot wait for a connection and then send late, crowding a later one-second
        # window (measured: 19 in one second with 40 threads, 3 s answers and a pool of 24).
        # `concurrency` is how many idle keep-alive connections are kept.
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=max(64, concurrency))
        # Our transport bounds each request by one deadline and records the send at the socket;
        # with proxies from the environment (which a given transport would disable) or a
        # caller's transport, sends are recorded just before the request instead.
        self._at_wire = False
        if transport is None and not urllib.request.getproxies():
            transport, self._at_wire = make_transport(limits)
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            limits=limits,
            headers={"User-Agent": f"{tool} (httpx)"},
            transport=transport,
        )
        self._count_lock = threading.Lock()
        self._sent = 0
        self._local = threading.local()
        # Set once any HTTP answer arrives: before that, failing to connect means unreachable.
        self._reached = False
        self.unreachable: Unreachable | None = None  # set when first contact failed
        self._last_retry_log = -math.inf

    @classmethod
    def from_env(
        cls, eutils_url: str | None = None, email: str | None = None, rps: float | None = None,
        **kwargs: object,
    ) -> EutilsClient:
        """A client configured from options with environment defaults (NCBI_API_KEY, …)."""
        return cls(
            base_url=eutils_url or os.environ.get("ENTREZ_GRAPH_EUTILS_URL") or None,
            email=email or os.environ.get("NCBI_EMAIL") or None,
            api_key=os.environ.get("NCBI_API_KEY") or None,
            rps=rps,
            **kwargs,  # type: ignore[arg-type]
        )

    # -- plumbing -----------------------------------------------------------------------------

    @property
    def requests_sent(self) -> int:
        """HTTP requests actually sent by this client (every attempt counts)."""
        with self._count_lock:
            return self._sent

    def _thread_count(self) -> int:
        return getattr(self._local, "sent", 0)

    def sent_by_this_thread(self) -> int:
        """Requests sent so far from the calling thread (attempts included): what one call of
        a batch method cost, measured around it, whatever other threads send meanwhile."""
        return self._thread_count()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EutilsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:  # never shows the key
        key = "set" if self.api_key else "none"
        return f"EutilsClient({self.base_url!r}, rps={self.rps}, key={key})"

    def _params(self, params: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        out = [(k, v) for k, v in params if v is not None and v != ""]
        out.append(("tool", self.tool))
        if self.email:
            out.append(("email", self.email))
        if self.api_key:
            out.append(("api_key", self.api_key))
        return out

    def _send_once(
        self, endpoint: str, params: list[tuple[str, str]], n_ids: int, post: bool = False
    ) -> bytes:
        """One attempt: a rate-limit slot, the HTTP exchange, status classification."""
        url = self.base_url + endpoint
        body = urllib.parse.urlencode(params)
        post = post or n_ids > POST_ABOVE_IDS or len(body) > POST_ABOVE_CHARS
        self.limiter.wait_turn()
        with self._count_lock:
            self._sent += 1
        self._local.sent = self._thread_count() + 1
        log.debug("%s %s (%d ids)", "POST" if post else "GET", endpoint, n_ids)
        if not self._at_wire:
            self.limiter.record_send()
        failure: NCBIError | None = None
        status, data, location = 0, b"", ""
        try:
            with deadline(self.timeout, self.limiter.record_send if self._at_wire else None):
                status, data, location = self._exchange(url, params, body, post)
        except _TooLarge as exc:
            failure = ResponseTooLarge(
                f"the answer of {endpoint} is larger than the {_mb(self.max_response_bytes)} cap "
                f"({exc.args[0]}): ask for fewer IDs, or raise ENTREZ_GRAPH_MAX_RESPONSE_MB"
            )
        except httpx.ConnectTimeout as exc:
            failure = _ConnectFailed(
                redact(f"timeout connecting for {endpoint}: {exc}"), kind="timeout"
            )
        except httpx.TimeoutException as exc:
            failure = TransientError(
                redact(f"timeout talking to {endpoint}: no complete answer within "
                       f"{self.timeout:g} s ({exc})"), kind="timeout"
            )
        except httpx.ConnectError as exc:  # DNS failure, connection refused, no route
            failure = _ConnectFailed(
                redact(f"cannot connect for {endpoint}: {exc}"), kind="connection"
            )
        except httpx.HTTPError as exc:  # dropped connection, protocol error, refused, …
            failure = TransientError(
                redact(f"connection trouble with {endpoint}: {type(exc).__name__}: {exc}"),
                kind="connection",
            )
        if failure is not None:
            # raised outside the handler: httpx's exception (its text holds the URL and the
            # key) must not survive as __context__ either
            raise failure
        self._reached = True
        if status == 429:
            self.limiter.penalize()
            raise RateLimited(redact(parse.error_text(data) or "API rate limit exceeded"))
        if status >= 500:
            raise TransientError(
                redact(f"HTTP {status} from {endpoint}: {parse.error_text(data)}"), status=status
            )
        if status >= 400:
            exc = parse.classify_error(redact(f"HTTP {status}: {parse.error_text(data)}"), status)
            raise exc
        if 300 <= status < 400:
            target = _QUERY.sub(r"\1", redact(location)) or "nowhere"
            raise _Unusable(
                f"HTTP {status} from {endpoint}: E-utilities redirect to {target}; "
                "give the final address as --eutils-url (ENTREZ_GRAPH_EUTILS_URL)"
            )
        if status != 200:
            raise TransientError(redact(f"unexpected HTTP {status} from {endpoint}"), status=status)
        problem = parse.unusable_body(data)
        if problem:
            raise _Unusable(f"{endpoint} answered {problem}")
        return data

    def _exchange(
        self, url: str, params: list[tuple[str, str]], body: str, post: bool
    ) -> tuple[int, bytes, str]:
        """The HTTP exchange, its body read as a stream and abandoned past the size cap."""
        if post:
            request = self._http.build_request(
                "POST", url, content=body.encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        else:
            request = self._http.build_request("GET", url, params=params)
        cap = self.max_response_bytes
        started = time.monotonic()
        response = self._http.send(request, stream=True)
        try:
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > cap:
                raise _TooLarge(f"Content-Length {int(length):,} bytes")
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > cap:
                    raise _TooLarge(f"more than {len(data):,} bytes")
                if not self._at_wire and time.monotonic() - started > self.timeout:
                    raise httpx.ReadTimeout("the request's overall deadline passed",
                                            request=request)
            return response.status_code, bytes(data), response.headers.get("Location", "")
        finally:
            response.close()  # a body left unread closes its connection instead of reusing it

    def _call(
        self,
        endpoint: str,
        params: Sequence[tuple[str, str]],
        parser: Callable[[bytes], T],
        n_ids: int = 0,
        post: bool = False,
    ) -> T:
        """Send and parse with bounded retries of transient failures (parse failures included)."""
        if self.unreachable is not None and not self._reached:
            raise Unreachable(str(self.unreachable))  # known dead: do not wait for it again
        full = self._params(params)

        def attempt() -> T:
            data = self._send_once(endpoint, full, n_ids, post)
            try:
                result = parser(data)
            except (TransientError, PermanentError) as exc:
                if isinstance(exc, RateLimited):
                    self.limiter.penalize()
                exc.args = (redact(str(exc)),)
                raise
            self.limiter.success()
            return result

        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts) | self._first_contact_failed
            | _unusable_twice,
            wait=wait_exponential(multiplier=self.backoff, max=self.backoff * 30)
            + wait_random(0, self.backoff),
            retry=retry_if_exception_type(TransientError),
            reraise=True,
            before_sleep=lambda rs: self._log_retry(endpoint, rs),
        )
        unusable = ""
        try:
            return retrying(attempt)
        except _Unusable as exc:
            unusable = str(exc)
        except _ConnectFailed as exc:
            if self._reached:
                raise
            cause = _short(_cause(exc))
        if unusable:
            raise UnusableResponse(redact(unusable))
        # raised outside the handler, so no exception chain holds the request's URL
        self.unreachable = Unreachable(
            redact(
                f"cannot reach E-utilities at {self.base_url}: {cause}; "
                "check the network or --eutils-url"
            )
        )
        raise Unreachable(str(self.unreachable))

    def _first_contact_failed(self, state: RetryCallState) -> bool:
        """Stop early while no answer has ever come and connecting itself keeps failing."""
        exc = state.outcome.exception() if state.outcome else None
        return (
            isinstance(exc, _ConnectFailed)
            and not self._reached
            and state.attempt_number >= FIRST_CONTACT_ATTEMPTS
        )

    def _log_retry(self, endpoint: str, state: RetryCallState) -> None:
        """One short WARNING line per few seconds while requests are being retried."""
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        reason = _retry_reason(exc) if exc is not None else None
        text = redact(str(exc)) if exc is not None else ""
        if reason is None or state.attempt_number < WARN_FROM_ATTEMPT:
            log.debug("retrying %s after %s", endpoint, text)
            return
        now = time.monotonic()
        with self._count_lock:
            quiet = now - self._last_retry_log < RETRY_LOG_INTERVAL
            if not quiet:
                self._last_retry_log = now
        if quiet:
            log.debug("retrying %s after %s", endpoint, text)
            return
        limit = self.max_attempts
        if isinstance(exc, _ConnectFailed) and not self._reached:
            limit = min(limit, FIRST_CONTACT_ATTEMPTS)
        log.warning(
            "E-utilities: %s (%s); retry %d/%d in %.1f s",
            reason, _short(_cause(exc)), state.attempt_number + 1, limit, wait,
        )

    # -- validation ---------------------------------------------------------------------------

    @staticmethod
    def _ids(ids: Iterable[str] | str, accessions: bool = False) -> list[str]:
        if isinstance(ids, (str, int)):
            ids = [str(ids)]
        checked = [check_token(str(i)) if accessions else check_uid(str(i)) for i in ids]
        if not checked:
            raise BadInput("no IDs given")
        return checked

    @staticmethod
    def _free_text(value: str | None, what: str) -> str | None:
        if value is None:
            return None
        value = str(value)
        if not value.strip() or _CONTROL.search(value):
            raise BadInput(f"invalid {what} {value!r}: empty or contains control characters")
        return value

    # -- ELink --------------------------------------------------------------------------------

    def elink(
        self,
        dbfrom: str,
        ids: Iterable[str] | str,
        *,
        cmd: str = "neighbor",
        db: str | None = None,
        linkname: str | None = None,
        merge: bool = False,
        term: str | None = None,
        mindate: str | None = None,
        maxdate: str | None = None,
        datetype: str | None = None,
        reldate: int | str | None = None,
        idtype: str | None = None,
    ) -> ELinkResult:
        """One ELink request: per-ID (repeated id=, one LinkSet each) or merged (comma list)."""
        if cmd not in ELINK_CMDS:
            raise BadInput(f"unknown ELink cmd {cmd!r}; choose from {', '.join(ELINK_CMDS)}")
        dbfrom = normalize_db(dbfrom)
        if db is not None and db != "all":
            db = normalize_db(db)
        if linkname is not None:
            check_linkname(linkname)
            if cmd not in ("neighbor", "neighbor_history"):
                raise BadInput("--linkname works only with cmd neighbor or neighbor_history")
        if idtype is not None:
            check_token(idtype, "idtype")
        id_list = self._ids(ids, accessions=idtype is not None)
        for value, what in ((mindate, "mindate"), (maxdate, "maxdate")):
            if value is not None and not _DATE.match(str(value)):
                raise BadInput(f"invalid {what} {value!r}: use YYYY, YYYY/MM or YYYY/MM/DD")
        if datetype is not None:
            check_identifier_like(datetype, "datetype")
        if reldate is not None and not str(reldate).isdigit():
            raise BadInput(f"invalid reldate {reldate!r}: a number of days")
        term = self._free_text(term, "term")
        params: list[tuple[str, str]] = [("dbfrom", dbfrom), ("cmd", cmd)]
        if db is not None:
            params.append(("db", db))
        elif linkname is not None:
            # db defaults to pubmed: always send the target the link name implies
            raise BadInput("--linkname needs --db (ELink's db defaults to pubmed)")
        if linkname is not None:
            params.append(("linkname", linkname))
        for key, value in (
            ("term", term),
            ("mindate", mindate),
            ("maxdate", maxdate),
            ("datetype", datetype),
            ("reldate", None if reldate is None else str(reldate)),
            ("idtype", idtype),
        ):
            if value is not None:
                params.append((key, str(value)))
        if merge:
            params.append(("id", ",".join(id_list)))
        else:
            params.extend(("id", i) for i in id_list)
        return self._call(
            "elink.fcgi", params, lambda data: parse.parse_elink(data, cmd), n_ids=len(id_list)
        )

    def elink_batch(
        self,
        dbfrom: str,
        ids: Iterable[str],
        *,
        cmd: str = "neighbor",
        db: str | None = None,
        linkname: str | None = None,
    ) -> BatchOutcome:
        """Per-ID ELink over many IDs: never raises for one bad ID.

        Permanently refused batches are bisected until the bad IDs are isolated (`failed`);
        batches failing with 502/timeout after their retries are halved; LinkSets NCBI silently
        left out are re-asked alone and, if still missing, reported in `no_answer`.
        """
        if cmd not in ("neighbor", "neighbor_score", "neighbor_history"):
            raise BadInput("elink_batch handles cmd neighbor, neighbor_score, neighbor_history")
        dbfrom = normalize_db(dbfrom)
        id_list = list(dict.fromkeys(self._ids(ids)))
        outcome = BatchOutcome()
        start = self._thread_count()

        def ask(chunk: list[str]) -> tuple[dict[str, LinkSet], dict[str, str]]:
            result = self.elink(dbfrom, chunk, cmd=cmd, db=db, linkname=linkname)
            wanted = set(chunk)
            got: dict[str, LinkSet] = {}
            bad: dict[str, str] = {}
            for ls in result.linksets:
                if len(ls.ids) != 1 or ls.ids[0] not in wanted:
                    continue  # "0" echoes, merged sets: never key by position
                if ls.error:
                    bad[ls.ids[0]] = ls.error
                else:
                    got[ls.ids[0]] = ls
            return got, bad

        answered, failed, missing = self._isolate(id_list, ask)
        outcome.answered.update(answered)
        outcome.failed.update(failed)
        outcome.no_answer.update(missing)
        outcome.requests = self._thread_count() - start
        return outcome

    def neighbor_all_batch(self, dbfrom: str, ids: Iterable[str]) -> BatchOutcome:
        """`cmd=neighbor&db=all` over many IDs (repeated id=): every link name of every record.

        One LinkSet per ID with one LinkSetDb per link name of `dbfrom` (`<Info>Empty result
        </Info>`, no links, for empty ones; scores on computed neighbours), as `elink_batch`
        gives them: bad IDs isolated, silent ones re-asked alone."""
        return self.elink_batch(dbfrom, ids, cmd="neighbor", db="all")

    def acheck_batch(
        self, dbfrom: str, ids: Iterable[str]
    ) -> tuple[dict[str, IdLinkSet], dict[str, str]]:
        """acheck over many IDs (comma-joined: one IdLinkSet per record), bad IDs isolated."""
        dbfrom = normalize_db(dbfrom)
        id_list = list(dict.fromkeys(self._ids(ids)))

        def ask(chunk: list[str]) -> tuple[dict[str, IdLinkSet], dict[str, str]]:
            result = self.elink(dbfrom, chunk, cmd="acheck", merge=True)
            wanted = set(chunk)
            got = {s.uid: s for s in result.idlinksets if s.uid in wanted}
            bad = {
                i: ls.error
                for ls in result.linksets
                if ls.error
                for i in ls.ids
                if i in wanted and i not in got
            }
            return got, bad

        answered, failed, missing = self._isolate(id_list, ask)
        for uid in missing:
            failed[uid] = "no answer: NCBI returned no IdLinkSet for this ID, even asked alone"
        return answered, failed

    def _isolate(
        self,
        ids: list[str],
        ask: Callable[[list[str]], tuple[dict[str, T], dict[str, str]]],
        max_batch: int = MAX_BATCH,
    ) -> tuple[dict[str, T], dict[str, str], set[str]]:
        """Answers for every ID that has one, bad IDs isolated by bisection, silent ones re-asked.

        Returns (answered, failed, missing). Raises TransientError only when a single ID keeps
        failing for reasons that are not its own (NCBI unreachable, rate limit): the caller
        should stop and resume later rather than record every ID as failed.
        """
        answered: dict[str, T] = {}
        failed: dict[str, str] = {}
        missing: set[str] = set()

        def run(chunk: list[str], alone_retry: bool) -> None:
            try:
                got, bad = ask(chunk)
            except PermanentError as exc:
                if _systemic(str(exc)):
                    raise  # a bad db name or cmd: every ID would fail the same way
                if len(chunk) == 1:
                    failed[chunk[0]] = str(exc)
                    return
                half = len(chunk) // 2
                run(chunk[:half], False)
                run(chunk[half:], False)
                return
            except TransientError as exc:
                if len(chunk) > 1:
                    half = len(chunk) // 2
                    run(chunk[:half], False)
                    run(chunk[half:], False)
                    return
                if not alone_retry:
                    run(chunk, True)  # one more full round of retries for this ID alone
                    return
                if exc.halves_batch:
                    failed[chunk[0]] = str(exc)  # this record times out (or 502s) on its own
                    return
                raise
            answered.update(got)
            failed.update(bad)
            silent = [i for i in chunk if i not in got and i not in bad]
            if len(chunk) == 1:
                if silent and not alone_retry:
                    run(chunk, True)  # NCBI's silences are intermittent: ask once more
                    return
                missing.update(silent)
                return
            for uid in silent:  # NCBI left them out: ask each alone
                run([uid], False)

        for start in range(0, len(ids), max_batch):
            run(ids[start : start + max_batch], False)
        return answered, failed, missing

    # -- ESearch, EInfo, ESummary -------------------------------------------------------------

    def esearch(self, db: str, term: str, retmax: int = 20) -> SearchResult:
        """ESearch, e.g. `NM_007294[accn]` to resolve an accession to its UID."""
        db = normalize_db(db)
        term = self._free_text(term, "search term") or ""
        if int(retmax) < 0:
            raise BadInput("retmax must be >= 0")
        params = [("db", db), ("term", term), ("retmax", str(int(retmax)))]
        return self._call("esearch.fcgi", params, parse.parse_esearch)

    def einfo(self, db: str | None = None) -> DbInfo:
        """EInfo: the database list, or one database's LinkList."""
        params: list[tuple[str, str]] = []
        if db is not None:
            params.append(("db", normalize_db(db)))
        return self._call("einfo.fcgi", params, parse.parse_einfo)

    def esummary(
        self, db: str, ids: Iterable[str] | str, *, post: bool = False
    ) -> list[DocSummary]:
        """ESummary version 2.0; one DocSummary per UID, `error` set for UIDs NCBI lacks."""
        db = normalize_db(db)
        id_list = list(dict.fromkeys(self._ids(ids)))
        params = [("db", db), ("version", "2.0"), ("id", ",".join(id_list))]
        return self._call(
            "esummary.fcgi",
            params,
            lambda data: parse.parse_esummary(data, asked=id_list),
            n_ids=len(id_list),
            post=post,
        )

    def esummary_batch(
        self, db: str, ids: Iterable[str], batch_size: int = MAX_BATCH
    ) -> tuple[dict[str, DocSummary], dict[str, str]]:
        """ESummary over many IDs (POST, <= 500 per request), retried, bad IDs isolated.

        Returns (summaries by UID — with `error` for UIDs NCBI reports missing —, failed:
        UID -> error text for UIDs NCBI refused outright).
        """
        id_list = list(dict.fromkeys(self._ids(ids)))

        def ask(chunk: list[str]) -> tuple[dict[str, DocSummary], dict[str, str]]:
            wanted = set(chunk)
            summaries = self.esummary(db, chunk, post=True)
            return {s.uid: s for s in summaries if s.uid in wanted}, {}

        answered, failed, missing = self._isolate(
            id_list, ask, max_batch=max(1, min(batch_size, MAX_BATCH))
        )
        for uid in missing:
            answered[uid] = DocSummary(uid=uid, error="no summary returned")
        return answered, failed


class _TooLarge(Exception):
    """The body passed the size cap (internal; becomes ResponseTooLarge)."""


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:g} MB"


def _unusable_twice(state: RetryCallState) -> bool:
    """Stop once an answer no retry can fix came UNUSABLE_ATTEMPTS times."""
    exc = state.outcome.exception() if state.outcome else None
    return isinstance(exc, _Unusable) and state.attempt_number >= UNUSABLE_ATTEMPTS


def _cause(exc: BaseException) -> str:
    """The error text without our own "… with elink.fcgi:" prefix (short enough for one line)."""
    text = _QUERY.sub(r"\1", redact(str(exc)))  # a URL's parameters are noise on one line
    for prefix in ("connection trouble with ", "cannot connect for ", "timeout connecting for ",
                   "timeout talking to "):
        if text.startswith(prefix):
            _, _, rest = text.partition(": ")
            return rest or text
    return text


def _systemic(text: str) -> bool:
    """A permanent error about the request as a whole rather than one of its IDs."""
    low = text.lower()
    return "db name" in low or "command not supported" in low


def check_identifier_like(value: str, what: str) -> str:
    """A short lowercase token such as a datetype (pdat, edat, mdat)."""
    if not re.match(r"^[a-z][a-z0-9_]*$", str(value)):
        raise BadInput(f"invalid {what} {value!r}")
    return value


@contextmanager
def client_for(
    client: EutilsClient | None,
    eutils_url: str | None = None,
    email: str | None = None,
    rps: float | None = None,
) -> Iterator[EutilsClient]:
    """The caller's client as is (left open), or one built from options and environment, closed
    after: so API functions take either a shared client or the CLI's options."""
    if client is not None:
        yield client
        return
    with EutilsClient.from_env(eutils_url=eutils_url, email=email, rps=rps) as own:
        yield own
