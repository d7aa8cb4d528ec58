"""`entrez-graph status`: what a store's journal holds, and how far each sink is behind it.

A thin layer over `crawler.reporting.status`, which returns the report `--format json` prints.
"""

from __future__ import annotations

import json
from typing import Any

import click

from ..output import render
from .options import REPORT_FORMATS, format_option, neo4j_config, neo4j_options, store_option


def _sink_line(name: str, info: dict[str, Any]) -> dict[str, Any]:
    if "error" in info:
        return {"sink": name, "behind": "?", "note": info["error"]}
    differences = info.get("differences") or []
    if differences:  # real counts differ: not in step whatever the cursor says
        shown = "; ".join(differences[:3]) + (
            f"; and {len(differences) - 3} more" if len(differences) > 3 else ""
        )
        repair = "--embedded" if name == "embedded" else "--neo4j URI"
        note = f"diverged: {shown} (`entrez-graph sync {repair}` repairs it)"
    elif info["total"] == 0:
        note = "in step"
    else:
        note = (
            f"{info['nodes']} records, {info['edges']} edges, {info['props']} property rows "
            "to load"
        ) + (f", {info['changes']} removals or updates to apply" if info.get("changes") else "")
    if name.startswith("neo4j:") and "real" not in info and info["total"] == 0:
        note = "in step by its cursor (with --neo4j URI, status counts what it holds)"
    return {"sink": name, "behind": info["total"], "note": note}


def _held(report: dict[str, Any], kind: str) -> dict[str, int] | None:
    """The embedded store's real counts per database or link name, when it was readable."""
    info = report["sinks"].get("embedded") or {}
    held = info.get("held")
    return held.get(kind, {}) if held is not None else None


def format_table(report: dict[str, Any]) -> str:
    """The report for a terminal: a summary, then one small table per breakdown."""
    state = "complete" if report["complete"] else (
        "empty" if report["nodes"] == 0 else f"unfinished ({report['pending']} records to expand)"
    )
    requests = ", ".join(f"{k} {v}" for k, v in report["requests"].items()) or "none"
    lines = [
        f"Store:     {report['store']}",
        f"Crawl:     {state}",
        f"Records:   {report['nodes']}  (pending {report['pending']}, failed {report['failed']}, "
        f"no answer {report['no_answer']}, named {report['named']})",
        f"Edges:     {report['edges']}",
        f"Requests:  {report['requests_sent']} ({requests})",
    ]
    if report.get("growing"):
        growing = report["growing"]
        lines.append(f"Growing:   {growing['what']} (unfinished since {growing['since']}: "
                     "run the same crawl again to finish it)")
    lines += [
        "",
        _breakdown(report["by_db"], _held(report, "nodes"), "database", "records"),
        "",
        _breakdown(report["by_link"], _held(report, "edges"), "link name", "edges"),
    ]
    if report.get("history"):
        lines += ["", _history(report["history"])]
    if report["sinks"]:
        lines += [
            "",
            render(
                [_sink_line(name, info) for name, info in report["sinks"].items()],
                ["sink", "behind", "note"],
            ),
        ]
    return "\n".join(lines)


def _setting_text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    return "-" if value is None else str(value)


def _history(runs: list[dict[str, Any]]) -> str:
    """The crawl's runs: kind, times, requests, outcome, and what each changed in the settings."""
    rows = []
    for run in runs:
        if run["run"] == runs[0]["run"]:
            # a store crawled before the history was kept starts it with a resume
            changed = "first run" if run["kind"] == "crawl" else "first recorded"
        else:
            changed = "; ".join(
                f"{key} {_setting_text(d['from'])} -> {_setting_text(d['to'])}"
                for key, d in run["changed"].items()
            ) or "same"
        rows.append({
            "run": run["run"], "kind": run["kind"], "started": run["started"],
            "ended": run["ended"] or "-", "requests": run["requests"],
            "outcome": run["outcome"], "settings": changed,
        })
    return render(rows, ["run", "kind", "started", "ended", "requests", "outcome", "settings"])


def _breakdown(
    journal: dict[str, int], held: dict[str, int] | None, key: str, what: str
) -> str:
    """Journal counts per name, with the embedded store's real count beside them."""
    names = sorted(set(journal) | set(held or {}))
    columns = [key, what] + (["embedded"] if held is not None else [])
    rows = [
        {key: n, what: journal.get(n, 0), "embedded": (held or {}).get(n, 0)} for n in names
    ]
    return render(rows, columns)


@click.command("status")
@store_option
@neo4j_options
@format_option(*REPORT_FORMATS)
def command(
    store: str, neo4j_uri: str | None, neo4j_user: str | None, neo4j_password: str | None,
    neo4j_database: str | None, fmt: str,
) -> None:
    """Show what the journal holds: records and edges by database and link name, pending, failed.

    Also the crawl's history: each run's kind, start and end, requests, outcome and the settings
    it changed. With --neo4j, that database's real counts are compared with the journal's.

    \b
    Examples:
      entrez-graph status --store brca1
      entrez-graph status --store brca1 --format json
      entrez-graph status --store brca1 --neo4j bolt://localhost:7687
    """
    from ..reporting import status

    report = status(
        store, neo4j=neo4j_config(neo4j_uri, neo4j_user, neo4j_password, neo4j_database)
    )
    if fmt == "json":
        click.echo(json.dumps(report, indent=2, sort_keys=True))
    else:
        click.echo(format_table(report))
