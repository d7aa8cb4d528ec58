"""The level loop: the scheduler says what to ask, the pipeline asks, the committer writes.

Levels run in BFS order; a level's transient failures are asked again a few rounds before the
crawl stops (everything answered is in the journal). Sinks sync after each level.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import NCBIError, TransientError
from ..progress import NullProgress, Progress
from .committer import Committer
from .pipeline import Client, Pipeline
from .scheduler import LevelWork, Scheduler
from .settings import DEFAULT_BATCH, DEFAULT_WORKERS, CrawlSettings
from .tasks import CheckTask

if TYPE_CHECKING:
    from ..journal import Journal
    from ..sinks import Sink, SyncReport

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
        workers: int = DEFAULT_WORKERS,
        progress: Progress | None = None,
        sinks: Sequence[Sink] = (),
    ) -> None:
        self.journal = journal
        self.client = client
        self.settings = settings
        self.batch_size = batch_size
        self.workers = max(1, workers)
        self.progress = progress or NullProgress()
        self.sinks = list(sinks)
        self.scheduler = Scheduler(journal, batch_size, settings.scores)
        self.committer = Committer(journal, settings)
        self.levels_run = 0
        self._warned: set[str] = set()
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
        """One pass over the level's remaining work; returns the transient errors met."""
        work = self.scheduler.level_work(level)
        if work is None:
            return []
        self.committer.left = work.size
        self.progress.update(level=level, frontier=work.size, force=True)
        errors: list[str] = []
        pipe = Pipeline(self.client, self.workers)
        finished = False
        try:
            while True:
                self._fill(work, pipe)
                if not len(pipe):
                    if work.flush():  # every check is in: send the partly filled batches
                        continue
                    break
                answered = pipe.wait()
                self._fill(work, pipe)  # the workers get more to do before this thread writes
                for fut, task in answered:  # one transaction per batch
                    try:
                        result = fut.result()
                    except TransientError as exc:
                        errors.append(str(exc))
                        continue
                    if isinstance(task, CheckTask):
                        for uid, links in self.committer.check(task, result, level):
                            work.buffer(task.db, uid, links)
                    else:
                        self.committer.fetch(task, result, level)
                    self._show()
            finished = True
        finally:
            pipe.close(wait=finished)
        return errors

    def _fill(self, work: LevelWork, pipe: Pipeline) -> None:
        # Full fetch batches first, so the frontier held in memory stays small.
        while pipe.has_room() and work.has_tasks():
            if work.fetches:
                pipe.submit(work.fetches.popleft())
            elif self.settings.filter.named:
                # --link: the link names are known; no request to learn them.
                task = work.checks.popleft()
                for uid, links in self.committer.named_check(task):
                    work.buffer(task.db, uid, links)
                self._show()
            else:
                pipe.submit(work.checks.popleft())

    # .. sinks and progress .......................................................................

    def sync_sinks(self) -> None:
        """Push the journal into every sink; an unreachable one is reported once, not fatal."""
        for sink in self.sinks:
            self.progress.update(phase=f"syncing {sink.name}", force=True)
            report = sink.sync(self.journal)
            earlier = self.last_reports.get(sink.name)
            if earlier is not None:
                report.repaired += earlier.repaired  # the summary counts every repair of the run
            self.last_reports[sink.name] = report
            if report.error and sink.name not in self._warned:
                self._warned.add(sink.name)
                self.progress.note(
                    f"{_sink_label(sink.name)} unavailable: {report.error}; the journal keeps "
                    "everything; run `entrez-graph sync` later"
                )
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


def _sink_label(name: str) -> str:
    return "Neo4j" if name.lower().startswith("neo4j") else f"store {name!r}"
