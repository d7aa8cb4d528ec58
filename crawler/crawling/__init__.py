"""The breadth-first crawl: seeds -> ELink (through the client) -> the journal -> sinks.

Level by level (design.md, "Crawl"): the records of one depth are checked (`acheck` in batches,
or the named link names when `--link` is given), then every (record, link name) pair is fetched
with one `neighbor` request per link name per batch (`neighbor_score` for computed neighbours with
`--scores`). Only the main thread writes the journal, and each batch outcome commits in one
transaction together with the frontier change it causes, so a crawl killed at any moment and run
again ends with exactly the graph an uninterrupted crawl makes:

- node states: `new` (to check) -> `checked` (its link names are in `pending_links`) -> `done`;
  `terminal` (recorded, not expanded: at --depth or a hub database), `failed` / `no_answer`
  (acheck refused it / stayed silent). A pending link is `pending` -> `done` | `no_answer` |
  `failed`. Work left is exactly the `new` nodes and `pending` links, re-asked on resume.
- a level is finished before the next starts, so a record's depth is its smallest BFS depth, and
  the graph does not depend on the order in which batches come back.
- with `--max-nodes`, the links found at a level wait in `candidates` until the level is complete;
  the new records are then admitted in one transaction in a fixed order (by source record, link
  name and rank) until the cap, so the capped graph is the same with or without interruptions.

The parts, each readable alone (Scrapy's split):

| module | job |
|---|---|
| `settings` | what decides the graph (`CrawlSettings`), validated; stored in the journal |
| `plan` | `--dry-run`: the crawl that would run and its estimated cost |
| `scheduler` | what to ask next, read from the journal: the level, its batches |
| `pipeline` | requests in flight: client calls on worker threads (no journal access) |
| `committer` | answers -> journal, one transaction per batch outcome and its frontier change |
| `crawler` | the level loop tying the three together; sinks after each level; progress |
| `report` | the end-of-crawl summary |
| `lock` | one crawl writes a store at a time |
| `api` | `crawl(...)`, the function behind `entrez-graph crawl` |

The package is `crawling`, not `crawl`: importing a submodule `crawler.crawl` would shadow the
public function `crawler.crawl`.
"""
