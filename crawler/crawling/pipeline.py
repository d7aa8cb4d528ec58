"""Requests in flight: batches sent through the client on worker threads, answers collected.

Worker threads only talk to the client (whose limiter keeps the rate); they never touch the
journal. What a batch's requests found comes back as a result for the committer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Protocol

from ..errors import BadInput, PermanentError
from ..eutils.models import BatchOutcome, IdLinkSet, SearchResult
from ..names import normalize_db
from .tasks import CheckResult, CheckTask, FetchResult, FetchTask, Task


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

    def esearch(self, db: str, term: str, retmax: int = 20) -> SearchResult: ...


class Pipeline:
    """A bounded set of requests in flight on a thread pool."""

    def __init__(self, client: Client, workers: int) -> None:
        self.client = client
        self.workers = max(1, workers)
        self.limit = self.workers * 2
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="elink")
        self._in_flight: dict[Future, Task] = {}

    def __len__(self) -> int:
        return len(self._in_flight)

    def has_room(self) -> bool:
        return len(self._in_flight) < self.limit

    def submit(self, task: Task) -> None:
        run = self.check if isinstance(task, CheckTask) else self.fetch
        self._in_flight[self._pool.submit(run, task)] = task

    def wait(self) -> list[tuple[Future, Task]]:
        """Block until at least one request is answered; the answered ones, out of flight."""
        done, _ = wait(self._in_flight, return_when=FIRST_COMPLETED)
        return [(fut, self._in_flight.pop(fut)) for fut in done]

    def close(self, *, wait: bool) -> None:
        """On an error or interrupt (wait=False), do not wait for requests in flight: their rows
        stay pending in the journal and are asked again on resume."""
        self._pool.shutdown(wait=wait, cancel_futures=True)

    # .. the requests (worker threads) ............................................................

    def check(self, task: CheckTask) -> CheckResult:
        try:
            answers, failed = self.client.acheck_batch(task.db, task.uids)
        except PermanentError as exc:
            return {}, {uid: str(exc) for uid in task.uids}, 1
        return answers, failed, 1

    def fetch(self, task: FetchTask) -> FetchResult:
        result = FetchResult()
        if task.linkname is None:
            self._fetch_scored(task, result)
        else:
            self._fetch_plain(
                task.db, task.linkname, task.dbto,
                [(uid, any(listed for _, _, listed in links)) for uid, links in task.items],
                result,
            )
        return result

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
