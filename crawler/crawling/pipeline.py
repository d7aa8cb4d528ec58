"""Requests in flight: batches sent through the client on worker threads, answers collected.

How many requests are in flight follows Little's law: to keep the allowed rate full while each
request takes `latency` seconds, about `rate × latency` must be out at once. The pipeline
measures the latency of its own requests (from the moment the client's limiter grants a send
slot to the answer, so time spent waiting for a slot does not inflate it), keeps
`rate × latency × HEADROOM` workers busy (at least MIN_IN_FLIGHT, at most MAX_IN_FLIGHT, or
MAX_IN_FLIGHT_LOCAL when the rate is no real limit), and a
few more tasks queued so that a worker that finishes takes its next batch at once, without
waiting for the main thread, which may be committing a large answer.

Worker threads only talk to the client (whose limiter keeps the rate); they never touch the
journal. What a batch's requests found comes back, with the task, for the committer.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import BadInput, PermanentError
from ..eutils.models import BatchOutcome, IdLinkSet, LinkInfo, SearchResult
from ..names import normalize_db
from .answers import AnswerCache
from .tasks import CheckResult, CheckTask, DiscoverResult, FetchResult, FetchTask, Task

Select = Any  # LinkFilter.select: offered (linkname, dbto) pairs -> the ones the crawl follows

# Requests in flight = rate × latency × HEADROOM (+1), bounded. The headroom covers latency
# that varies from batch to batch and tasks that take several requests (split, re-asked).
HEADROOM = 1.5
MIN_IN_FLIGHT = 2
MAX_IN_FLIGHT = 64
# Above this rate the server is not NCBI (an emulator, a local mirror) and the answers come
# faster than they are parsed and committed: the local CPU, not the latency, bounds what more
# requests in flight can give, while each holds an answer in memory.
LOCAL_RATE = 100.0
MAX_IN_FLIGHT_LOCAL = 12
# Before the first answer: a guess on the high side (a request in flight too many only waits
# for its slot; one too few leaves the rate unused).
INITIAL_LATENCY = 2.0
LATENCY_WEIGHT = 0.2  # of each new sample in the moving average
DEFAULT_RATE = 10.0  # a client that does not say its rate (a stand-in)


class Client(Protocol):
    """The part of `EutilsClient` the engine uses (a stand-in in unit tests)."""

    @property
    def requests_sent(self) -> int: ...

    def elink_batch(
        self, dbfrom: str, ids: Iterable[str], *, cmd: str = ..., db: str | None = ...,
        linkname: str | None = ...,
    ) -> BatchOutcome: ...

    def acheck_batch(
        self, dbfrom: str, ids: Iterable[str]
    ) -> tuple[dict[str, IdLinkSet], dict[str, str]]: ...

    def neighbor_all_batch(self, dbfrom: str, ids: Iterable[str]) -> BatchOutcome: ...

    def esearch(self, db: str, term: str, retmax: int = 20) -> SearchResult: ...


@dataclass(slots=True)
class Answer:
    """A task back from a worker: its result, or the exception its requests raised."""

    task: Task
    owner: Any
    result: Any = None
    error: BaseException | None = None


class _SlotClock:
    """Wraps the client's limiter to note, per thread, when the last send was recorded."""

    def __init__(self, limiter: Any) -> None:
        self.inner = limiter
        self._local = threading.local()

    def record_send(self, *args: Any, **kwargs: Any) -> Any:
        """The limiter records a send (the client calls it as the request leaves)."""
        value = self.inner.record_send(*args, **kwargs)
        self._local.granted = time.monotonic()
        return value

    def acquire(self, *args: Any, **kwargs: Any) -> Any:
        value = self.inner.acquire(*args, **kwargs)
        self._local.granted = time.monotonic()
        return value

    def granted(self) -> float | None:
        return getattr(self._local, "granted", None)

    def forget(self) -> None:
        self._local.granted = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Pipeline:
    """Worker threads taking tasks by priority (lowest first), answers in completion order."""

    def __init__(
        self, client: Client, workers: int | None = None, *, cache: AnswerCache | None = None,
        select: Select | None = None,
    ) -> None:
        self.client = client
        # a grown or refreshed crawl: answers the stored crawl holds are taken from it, and
        # only the rest is asked (`select` says which link names --discovery all needs)
        self.cache = cache
        self.select = select
        self.fixed = max(1, workers) if workers else None
        self.rate = float(getattr(client, "rps", 0) or DEFAULT_RATE)
        self.latency = INITIAL_LATENCY
        self._tasks: queue.PriorityQueue[tuple[int, int, Answer | None]] = queue.PriorityQueue()
        self._answers: queue.SimpleQueue[Answer] = queue.SimpleQueue()
        self._order = itertools.count()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0
        self._closed = False
        self.outstanding = 0  # submitted, not yet taken back by `get`
        self._clock: _SlotClock | None = None
        limiter = getattr(client, "limiter", None)
        if limiter is not None and hasattr(limiter, "acquire"):
            if isinstance(limiter, _SlotClock):
                self._clock = limiter
            else:
                self._clock = _SlotClock(limiter)
                client.limiter = self._clock  # type: ignore[attr-defined]

    # .. sizing ...................................................................................

    @property
    def target(self) -> int:
        """Requests to keep in flight (workers busy)."""
        if self.fixed:
            return self.fixed
        want = math.ceil(self.rate * self.latency * HEADROOM) + 1
        most = MAX_IN_FLIGHT if self.rate <= LOCAL_RATE else MAX_IN_FLIGHT_LOCAL
        return max(MIN_IN_FLIGHT, min(most, want))

    def room(self) -> int:
        """How many more tasks to hand over now: enough to keep every worker busy, plus a few
        queued so that a worker never waits for the main thread."""
        target = self.target
        ahead = max(2, target // 4)
        return max(0, target + ahead - self.outstanding)

    def _observe(self, seconds: float) -> None:
        with self._lock:
            self.latency += LATENCY_WEIGHT * (seconds - self.latency)

    # .. tasks in, answers out ....................................................................

    def submit(self, task: Task, owner: Any, priority: int = 0) -> None:
        """Queue `task` (lower priority runs first); its answer comes back with `owner`."""
        self.outstanding += 1
        self._tasks.put((priority, next(self._order), Answer(task, owner)))
        with self._lock:
            spawn = self._tasks.qsize() > self._idle and self._threads < self.target
            if spawn:
                self._threads += 1
                self._idle += 1  # until it takes its first task
        if spawn:
            threading.Thread(target=self._work, name="elink", daemon=True).start()

    def get(self, timeout: float | None = None) -> Answer | None:
        """The next answer (None after `timeout` seconds without one)."""
        try:
            answer = self._answers.get(timeout=timeout)
        except queue.Empty:
            return None
        self.outstanding -= 1
        return answer

    def close(self, *, wait: bool) -> None:
        """Stop the workers. On an error or interrupt (wait=False), requests in flight are not
        waited for: their rows stay pending in the journal and are asked again on resume."""
        with self._lock:
            self._closed = True
            n = self._threads
        if not wait:  # drop what no worker took yet
            with contextlib.suppress(queue.Empty):
                while True:
                    self._tasks.get_nowait()
        for _ in range(n):
            self._tasks.put((2**62, next(self._order), None))
        if self._clock is not None and getattr(self.client, "limiter", None) is self._clock:
            self.client.limiter = self._clock.inner  # type: ignore[attr-defined]

    def _work(self) -> None:
        while True:
            _, _, answer = self._tasks.get()
            with self._lock:
                self._idle -= 1
                if answer is None or self._closed:
                    self._threads -= 1
                    return
            self._run(answer)
            self._answers.put(answer)
            with self._lock:
                if self._threads > self.target:  # the target went down: this worker retires
                    self._threads -= 1
                    return
                self._idle += 1

    def _run(self, answer: Answer) -> None:
        clock = self._clock
        if clock is not None:
            clock.forget()
        try:
            task = answer.task
            if not isinstance(task, CheckTask):
                answer.result = self.fetch(task)
            elif task.discovery == "all":
                answer.result = self.discover(task)
            else:
                answer.result = self.check(task)
        except BaseException as exc:  # handed to the main thread, which decides
            answer.error = exc
        granted = clock.granted() if clock is not None else None
        if granted is not None and answer.error is None:
            self._observe(time.monotonic() - granted)

    # .. the requests (worker threads) ............................................................

    def check(self, task: CheckTask) -> CheckResult:
        known: dict[str, IdLinkSet] = {}
        fetched: dict[str, str] = {}
        ask = task.uids
        if self.cache is not None:
            ask = []
            for uid in task.uids:
                offered = self.cache.offers(task.db, uid)
                if offered is None:
                    ask.append(uid)
                else:
                    pairs, fetched[uid] = offered
                    known[uid] = IdLinkSet(uid, tuple(LinkInfo(to, ln) for ln, to in pairs))
        if not ask:
            return CheckResult(known, {}, 0, fetched)
        try:
            answers, failed = self.client.acheck_batch(task.db, ask)
        except PermanentError as exc:
            return CheckResult(known, {uid: str(exc) for uid in ask}, 1, fetched)
        return CheckResult({**known, **answers}, failed, 1, fetched)

    def discover(self, task: CheckTask) -> DiscoverResult:
        """--discovery all: every link name of every record in one db=all request."""
        result = DiscoverResult(BatchOutcome())
        ask = task.uids
        if self.cache is not None and self.select is not None:
            ask = [uid for uid in task.uids if not self._discover_known(task.db, uid, result)]
        if not ask:
            return result
        try:
            result.outcome = self.client.neighbor_all_batch(task.db, ask)
        except PermanentError as exc:
            result.outcome = BatchOutcome(failed={uid: str(exc) for uid in ask}, requests=1)
        return result

    def _discover_known(self, db: str, uid: str, result: DiscoverResult) -> bool:
        """A record whose link names and every followed link name's links are known."""
        assert self.cache is not None and self.select is not None
        offered = self.cache.offers(db, uid)
        if offered is None:
            return False
        pairs, when = offered
        links = {}
        for ln, _ in self.select(pairs):
            known = self.cache.links(db, uid, ln)
            if known is None:
                return False
            links[(uid, ln)] = known
        result.offers[uid] = pairs
        result.fetched[uid] = when
        for key, (found, at) in links.items():
            result.links[key] = found
            result.links_fetched[key] = at
        return True

    def fetch(self, task: FetchTask) -> FetchResult:
        result = FetchResult()
        if self.cache is not None:
            task = self._fetch_known(task, result)
            if not task.items:
                return result
        if task.linkname is None:
            self._fetch_scored(task, result)
        else:
            self._fetch_plain(
                task.db, task.linkname, task.dbto,
                [(uid, any(listed for _, _, listed in links)) for uid, links in task.items],
                result,
            )
        return result

    def _fetch_known(self, task: FetchTask, result: FetchResult) -> FetchTask:
        """Answer what the stored crawl knows; returns the task of the rest."""
        assert self.cache is not None
        rest = []
        for uid, links in task.items:
            unknown = []
            for want in links:
                known = self.cache.links(task.db, uid, want[0])
                if known is None:
                    unknown.append(want)
                else:
                    result.links[(uid, want[0])], result.fetched[(uid, want[0])] = known
            if unknown:
                rest.append((uid, unknown))
        return FetchTask(task.db, task.linkname, task.dbto, rest)

    def _ask(self, dbfrom: str, uids: list[str], result: FetchResult, **kw: Any) -> BatchOutcome:
        try:
            outcome = self.client.elink_batch(dbfrom, uids, **kw)
        except PermanentError as exc:
            outcome = BatchOutcome(failed={uid: str(exc) for uid in uids}, requests=1)
        result.requests += outcome.requests
        return outcome

    def _fetch_plain(
        self, db: str, linkname: str, dbto: str, uids: list[tuple[str, bool]],
        result: FetchResult,
    ) -> None:
        """`neighbor` for one link name; empty where acheck listed the name: re-asked once."""
        listed = {uid for uid, was_listed in uids if was_listed}
        ask = [uid for uid, _ in uids]
        for attempt in range(2):
            outcome = self._ask(db, ask, result, cmd="neighbor", db=dbto, linkname=linkname)
            again: list[str] = []
            for uid in ask:
                key = (uid, linkname)
                if uid in outcome.failed:
                    result.failed[key] = outcome.failed[uid]
                elif uid in outcome.answered:
                    links = links_of(outcome.answered[uid], linkname, dbto)
                    if not links and uid in listed and attempt == 0:
                        again.append(uid)  # NCBI sometimes answers "nothing" intermittently
                    elif not links and uid in listed:
                        result.no_answer.add(key)
                    else:
                        result.links[key] = links
                else:
                    result.no_answer.add(key)
            if not again:
                return
            ask = again

    def _fetch_scored(self, task: FetchTask, result: FetchResult) -> None:
        """`neighbor_score` (db = dbfrom) answers every scored link name of a record at once."""
        uids = [uid for uid, _ in task.items]
        outcome = self._ask(task.db, uids, result, cmd="neighbor_score", db=task.db)
        fallback: dict[tuple[str, str], list[tuple[str, bool]]] = defaultdict(list)
        for uid, links in task.items:
            if uid in outcome.failed:
                for ln, _, _ in links:
                    result.failed[(uid, ln)] = outcome.failed[uid]
                continue
            linkset = outcome.answered.get(uid)
            if linkset is None:
                for ln, _, _ in links:
                    result.no_answer.add((uid, ln))
                continue
            present = {lsdb.linkname for lsdb in linkset.linksetdbs}
            for ln, dbto, listed in links:
                found = links_of(linkset, ln, dbto)
                if found or (not listed and ln not in present):
                    result.links[(uid, ln)] = found  # absent and never listed: no such links
                else:  # acheck listed it, the scored answer has nothing: ask for it by name
                    fallback[(ln, dbto)].append((uid, listed))
        for (ln, dbto), items in sorted(fallback.items()):
            self._fetch_plain(task.db, ln, dbto, items, result)


def links_of(linkset: Any, linkname: str, dbto: str) -> list[tuple[str, str, int | None]]:
    """(dbto, uid, score) of one link name in a LinkSet; the target db comes from DbTo."""
    out: dict[tuple[str, str], int | None] = {}
    for lsdb in linkset.linksetdbs:
        if lsdb.linkname != linkname:
            continue
        try:
            target_db = normalize_db(lsdb.dbto) if lsdb.dbto else dbto
        except BadInput:
            continue  # a DbTo that could never be a label
        for link in lsdb.links:
            uid = str(link.uid)
            if not uid.isdigit() or uid == "0":
                continue
            key = (target_db, uid)
            if key not in out or (link.score or 0) > (out[key] or 0):
                out[key] = link.score
    return [(d, u, s) for (d, u), s in out.items()]
