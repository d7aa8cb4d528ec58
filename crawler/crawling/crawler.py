"""The level loop: the scheduler says what to ask, the pipeline asks, the committer writes.

Levels run in BFS order; a level's transient failures are asked again a few rounds before the
crawl stops (everything answered is in the journal). Sinks sync after each level, from their own
thread (syncer.py), while the next level's requests go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import BadInput, NCBIError, TransientError
from ..progress import NullProgress, Progress
from .answers import AnswerCache
from .committer import Committer
from .pipeline import Answer, Client, Pipeline
from .scheduler import LevelWork, Scheduler
from .settings import DEFAULT_BATCH, CrawlSettings
from .syncer import BackgroundSync
from .tasks import CheckTask, Task

if TYPE_CHECKING:
    from ..journal import Journal
    from ..sinks import SyncReport

# Within a level, the stores are asked to sync again after this many new edges, so that their
# load overlaps the crawl instead of waiting for the level's end.
SYNC_EVERY_EDGES = 100_000
# Answers back at the same time commit in one journal transaction (each with the frontier
# change it causes, so a crash still loses or keeps whole answers), at most this many.
GROUP_COMMIT = 16
# How records learn their link names: acheck then one neighbor request per link name and
# batch (the default), or one cmd=neighbor&db=all request per batch.
DISCOVERY = ("acheck", "all")
# Rounds of re-asking the batches of one level that failed transiently (after the client's own
# retries) before the crawl stops with "run the same command again to resume".
TRANSIENT_ROUNDS = 3


class Crawler:
    """Runs the BFS of one stored crawl; the main thread alone writes the journal."""

    def __init__(
        self,
        journal: Journal,
        client: Client,
        settings: CrawlSettings,
        *,
        batch_size: int = DEFAULT_BATCH,
        workers: int | None = None,
        discovery: str = "acheck",
        progress: Progress | None = None,
        syncer: BackgroundSync | None = None,
        cache: AnswerCache | None = None,
    ) -> None:
        self.journal = journal
        self.client = client
        self.settings = settings
        self.batch_size = batch_size
        self.progress = progress or NullProgress()
        self.syncer = syncer  # the sinks, synced from their own thread (started by the caller)
        if discovery not in DISCOVERY:
            raise BadInput(f"invalid --discovery {discovery!r}: expected acheck or all")
        self.discovery = discovery
        checks = "named" if settings.filter.named and discovery == "acheck" else discovery
        self.scheduler = Scheduler(journal, batch_size, settings.scores, checks)
        self.committer = Committer(journal, settings)
        self._asked_at = self.committer.n_edges  # edges in the journal at the last sync request
        # growing a stored crawl: what it knows is answered from it (grow.py)
        self.pipe = Pipeline(client, workers, cache=cache, select=settings.filter.select)
        self._ahead: LevelWork | None = None
        self.levels_run = 0
        self.last_reports: dict[str, SyncReport] = {}
        self._requests_at_start = client.requests_sent
        self.requests_before = 0  # sent by this run before the crawler started (seed lookups)

    def add_seeds(self, seeds: Sequence[tuple[str, str]]) -> None:
        self.committer.add_seeds(seeds)

    def retry_failed(self) -> int:
        return self.committer.retry_failed()

    # .. the level loop ...........................................................................

    def run(self) -> None:
        """Crawl until no work is left; sinks sync after each level."""
        finished = False
        try:
            self._levels()
            finished = True
        finally:
            self.pipe.close(wait=finished)

    def _levels(self) -> None:
        staged = self.committer.staged
        while True:
            level = self.scheduler.frontier_level()
            staged_level = self.scheduler.candidates_level()
            if staged_level is not None and (level is None or staged_level < level):
                self.committer.promote(staged_level)  # a level finished before an interruption
                self.sync_sinks()
                continue
            if level is None:
                return
            self._run_level(level)
            self.committer.finish_level(level)
            if staged:
                self.committer.promote(level)
            self.levels_run += 1
            self.sync_sinks()

    def _run_level(self, level: int) -> None:
        for round_no in range(TRANSIENT_ROUNDS + 1):
            errors = self._level_round(level)
            if not errors:
                return
            if round_no == TRANSIENT_ROUNDS:
                raise NCBIError(
                    f"E-utilities kept failing at level {level} ({errors[-1]}); everything "
                    "answered so far is in the journal: run the same command again to resume"
                )
            self.progress.note(
                f"level {level}: {len(errors)} batch(es) failed ({errors[-1]}); asking again"
            )

    def _level_round(self, level: int) -> list[str]:
        """One pass over the level's remaining work; returns the transient errors met.

        While it runs, the next level is worked on ahead wherever that cannot change the graph
        (never with --max-nodes, whose admission waits for the whole level): its records are
        checked as soon as they are committed (a check only concerns the record itself), and
        its fetches are sent, but their answers are held and committed only once this level
        is complete, so that every record gets its smallest depth.
        """
        work = self._ahead if self._ahead is not None and self._ahead.level == level else None
        if work is None:
            work = self.scheduler.level_work(level)
            self.committer.left = work.size
        else:  # the next level, started ahead: it is complete above, so sealed now
            self._ahead = None
            work.seal()
            for task, result in work.held:
                self._commit(work, task, result)
            work.held.clear()
        if work.done() and not work.errors:
            return []
        self.progress.update(level=level, frontier=max(self.committer.left, 0), force=True)
        ahead = self._ahead
        if ahead is None and self._may_look_ahead(level):
            ahead = self._ahead = self.scheduler.level_work(level + 1, sealed=False)
        while True:
            self._fill(work, ahead)
            if work.done():
                break
            first = self.pipe.get()
            assert first is not None
            answers = [first]  # and every other answer already back: one transaction for all
            while len(answers) < GROUP_COMMIT and (more := self.pipe.get(timeout=0)):
                answers.append(more)
            for answer in answers:
                answer.owner.answered(answer.task)
            self._fill(work, ahead)  # the workers get more to do before this thread writes
            with self.journal.transaction():
                for answer in answers:
                    self._take(answer, work, ahead)
        errors, work.errors = work.errors, []
        return errors

    def _take(self, answer: Answer, work: LevelWork, ahead: LevelWork | None) -> None:
        """One answer: committed (into the caller's transaction), held, or counted as failed."""
        owner: LevelWork = answer.owner
        if answer.error is not None:
            if not isinstance(answer.error, TransientError):
                raise answer.error
            owner.errors.append(str(answer.error))
        elif owner is work:
            fresh = self._commit(work, answer.task, answer.result)
            if fresh and ahead is not None:
                for db, uids in _by_db(fresh):
                    ahead.add_records(db, uids)
                self.committer.left += len(fresh)
        elif owner is ahead:
            if _concerns_record_alone(answer.task):  # commit now
                self._commit(ahead, answer.task, answer.result)
            else:
                ahead.held.append((answer.task, answer.result))
        # else: an answer for work given up after an error: asked again on resume

    def _may_look_ahead(self, level: int) -> bool:
        """Records of level + 1 are expanded, and their depth cannot change once recorded."""
        return not self.committer.staged and level + 1 < self.settings.depth

    def _commit(self, work: LevelWork, task: Task, result: object) -> list[tuple[str, str]]:
        """One answer into the journal; returns the new records it added (fetches only)."""
        fresh: list[tuple[str, str]] = []
        if isinstance(task, CheckTask) and task.discovery == "all":
            fresh = self.committer.discover(task, result, work.level)  # type: ignore[arg-type]
        elif isinstance(task, CheckTask):
            for uid, links in self.committer.check(task, result, work.level):  # type: ignore[arg-type]
                work.buffer(task.db, uid, links)
        else:
            fresh = self.committer.fetch(task, result, work.level)  # type: ignore[arg-type]
        self._show()
        if self.committer.n_edges - self._asked_at >= SYNC_EVERY_EDGES:
            self.sync_sinks()  # a long level: let the stores keep up while it runs
        return fresh

    def _fill(self, work: LevelWork, ahead: LevelWork | None) -> None:
        """Hand the pipeline what it has room for: this level first, then the next one's."""
        room = self.pipe.room()
        for source, priority in ((work, 0), (ahead, 1)):
            while room > 0 and source is not None:
                # answers held for the next level stay few: they wait in memory
                held = len(source.held) + source.in_flight_fetches
                if source.discovery == "all":
                    held += source.in_flight_checks
                may_hold = source is work or held < self.pipe.target
                if source.discovery == "all" and not may_hold:
                    break
                task = source.next_task(fetches=may_hold)
                if task is None:
                    break
                if isinstance(task, CheckTask) and task.discovery == "named":
                    # --link: the link names are known; no request to learn them.
                    source.answered(task)
                    for uid, links in self.committer.named_check(task):
                        source.buffer(task.db, uid, links)
                    self._show()
                    continue
                self.pipe.submit(task, source, priority)
                room -= 1

    # .. sinks and progress .......................................................................

    def sync_sinks(self) -> None:
        """Ask the sinks' thread to sync what is committed; the crawl goes on meanwhile."""
        self._asked_at = self.committer.n_edges
        if self.syncer is not None:
            self.syncer.raise_if_failed()
            self.syncer.request()

    def finish_sinks(self) -> None:
        """Wait until every sink holds what the journal holds now (the crawl's end)."""
        if self.syncer is None:
            return
        self.progress.update(phase="syncing stores", force=True)
        try:
            self.last_reports = self.syncer.finish()
        finally:
            self.progress.fields.pop("phase", None)

    @property
    def requests(self) -> int:
        return self.client.requests_sent - self._requests_at_start + self.requests_before

    def _show(self) -> None:
        c = self.committer
        self.progress.update(
            requests=self.requests, records=c.n_nodes, edges=c.n_edges,
            frontier=max(c.left, 0), failed=c.n_failed,
        )


def _by_db(records: list[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """(db, [uid, …]) groups, in the order each database first appears."""
    groups: dict[str, list[str]] = {}
    for db, uid in records:
        groups.setdefault(db, []).append(uid)
    return list(groups.items())


def _concerns_record_alone(task: Task) -> bool:
    """An acheck answer only lists a record's link names: safe to commit a level early. A
    fetch or a db=all answer adds records of the level below: held until the level is done."""
    return isinstance(task, CheckTask) and task.discovery != "all"
