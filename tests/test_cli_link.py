"""`entrez-graph link` and `links` through the real CLI against the emulator: every cmd."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawler.cli import main
from crawler.emulator import Emulator, World

FAKE_KEY = "cli-fake-key-5f0e1d2c3b4a"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rates"))
    monkeypatch.setenv("NCBI_API_KEY", FAKE_KEY)
    monkeypatch.delenv("ENTREZ_GRAPH_EUTILS_URL", raising=False)
    return {"ENTREZ_GRAPH_RATE_DIR": str(tmp_path / "rates"), "NCBI_API_KEY": FAKE_KEY}


def run(emu: Emulator, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [*args, "--eutils-url", emu.url, "--rps", "1000"])
    assert FAKE_KEY not in result.output and FAKE_KEY not in (result.stderr or "")
    return result.exit_code, result.stdout, result.stderr


def targets(world: World, db: str, uid: str, linkname: str) -> dict[str, int | None]:
    return {x.target: x.score for x in world.links_from(db, uid) if x.linkname == linkname}


def test_neighbor_json_per_id(world: World, emulator: Emulator, env: dict[str, str]) -> None:
    code, out, _ = run(
        emulator, "link", "--dbfrom", "gene", "--db", "protein", "--id", "672", "--id", "675",
        "--linkname", "gene_protein_refseq", "--format", "json",
    )
    assert code == 0
    rows = json.loads(out)
    for uid in ("672", "675"):
        mine = {r["target"] for r in rows if r["source"] == uid}
        assert mine == set(targets(world, "gene", uid, "gene_protein_refseq"))
    assert {r["linkname"] for r in rows} == {"gene_protein_refseq"}
    assert {r["dbto"] for r in rows} == {"protein"}
    params = emulator.log[-1]["params"]
    assert params.get("api_key") == "<redacted>"


def test_neighbor_merged_table(world: World, emulator: Emulator, env: dict[str, str]) -> None:
    code, out, _ = run(
        emulator, "link", "--dbfrom", "gene", "--db", "protein", "--id", "672", "--id", "675",
        "--merge", "--linkname", "gene_protein",
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["source", "dbfrom", "linkname", "dbto", "target", "score"]
    want = set(targets(world, "gene", "672", "gene_protein")) | set(
        targets(world, "gene", "675", "gene_protein")
    )
    got = {line.split()[4] for line in lines[2:]}
    assert got == want
    assert all(line.split()[0] == "672,675" for line in lines[2:])
    assert emulator.log[-1]["params"]["id"] in ("672,675", ["672,675"])


def test_neighbor_score_tsv(world: World, emulator: Emulator, env: dict[str, str]) -> None:
    protein = next(
        u for u in world.uids("protein")
        if targets(world, "protein", u, "protein_protein")
    )
    code, out, _ = run(
        emulator, "link", "--dbfrom", "protein", "--db", "protein", "--id", protein,
        "--cmd", "neighbor_score", "--format", "tsv",
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "source\tdbfrom\tlinkname\tdbto\ttarget\tscore"
    got = {
        (c[4]): int(c[5])
        for c in (line.split("\t") for line in lines[1:])
        if c[2] == "protein_protein"
    }
    assert got == targets(world, "protein", protein, "protein_protein")


def test_neighbor_history(emulator: Emulator, env: dict[str, str]) -> None:
    code, out, _ = run(
        emulator, "link", "--dbfrom", "gene", "--db", "protein", "--id", "672",
        "--cmd", "neighbor_history", "--linkname", "gene_protein", "--format", "json",
    )
    assert code == 0
    (row,) = json.loads(out)
    assert row["source"] == "672" and row["linkname"] == "gene_protein"
    assert row["webenv"] and row["query_key"] == "1"


def test_acheck_ncheck_lcheck(world: World, emulator: Emulator, env: dict[str, str]) -> None:
    code, out, _ = run(
        emulator, "link", "--dbfrom", "gene", "--id", "672", "--cmd", "acheck", "--format", "json"
    )
    assert code == 0
    rows = json.loads(out)
    entrez = {r["linkname"] for r in rows if r["kind"] == "entrez"}
    assert entrez == {x.linkname for x in world.links_from("gene", "672")}
    assert {r["linkname"] for r in rows if r["kind"] == "linkout"} == {"ExternalLink"}
    code, out, _ = run(
        emulator, "link", "--dbfrom", "gene", "--id", "672", "--cmd", "ncheck", "--format", "json"
    )
    assert code == 0 and json.loads(out) == [{"source": "672", "has_neighbor": False}]
    code, out, _ = run(
        emulator, "link", "--dbfrom", "gene", "--id", "672", "--cmd", "lcheck", "--format", "json"
    )
    assert code == 0 and json.loads(out) == [{"source": "672", "has_linkout": True}]
    pubmed = next(iter(world.uids("pubmed")))
    code, out, _ = run(
        emulator, "link", "--dbfrom", "pubmed", "--id", pubmed, "--cmd", "ncheck",
        "--format", "json",
    )
    has = any(x.dbto == "pubmed" for x in world.links_from("pubmed", pubmed))
    assert code == 0 and json.loads(out) == [{"source": pubmed, "has_neighbor": has}]


@pytest.mark.parametrize("cmd", ["llinks", "llinkslib", "prlinks"])
def test_linkout_urls(world: World, emulator: Emulator, env: dict[str, str], cmd: str) -> None:
    code, out, _ = run(
        emulator, "link", "--dbfrom", "gene", "--id", "672", "--cmd", cmd, "--format", "json"
    )
    assert code == 0
    rows = json.loads(out)
    linkouts = world.linkouts("gene", "672")
    if cmd == "llinks":
        linkouts = [lo for lo in linkouts if not lo.library]
    elif cmd == "prlinks":  # the primary full-text provider only
        linkouts = [lo for lo in linkouts if not lo.library][:1]
    assert linkouts, "gene 672 has LinkOut entries in the emulator"
    assert [(r["url"], r["provider"], r["category"]) for r in rows] == [
        (lo.url, lo.provider, lo.category) for lo in linkouts
    ]
    assert all(r["source"] == "672" for r in rows)


def test_term_and_dates_are_sent(emulator: Emulator, env: dict[str, str]) -> None:
    code, _, _ = run(
        emulator, "link", "--dbfrom", "pubmed", "--db", "pubmed", "--id", "1",
        "--term", "medline[sb]", "--mindate", "1995", "--maxdate", "2020/12/31",
        "--datetype", "pdat", "--reldate", "30", "--idtype", "acc",
    )
    assert code == 0
    params = emulator.log[-1]["params"]
    assert params["term"] == "medline[sb]" and params["mindate"] == "1995"
    assert params["maxdate"] == "2020/12/31" and params["datetype"] == "pdat"
    assert params["reldate"] == "30" and params["idtype"] == "acc"


def test_links_command_shows_entrez_and_linkout_apart(
    world: World, emulator: Emulator, env: dict[str, str]
) -> None:
    code, out, _ = run(emulator, "links", "gene", "672", "675")
    assert code == 0
    entrez_part, linkout_part = out.split("LinkOut:")
    assert entrez_part.startswith("Entrez links:")
    assert "gene_protein_refseq" in entrez_part and "ExternalLink" not in entrez_part
    assert "ExternalLink" in linkout_part and "gene_protein" not in linkout_part
    code, out, _ = run(emulator, "links", "gene", "672", "675", "--format", "json")
    rows = json.loads(out)
    for uid in ("672", "675"):
        names = {r["linkname"] for r in rows if r["source"] == uid and r["kind"] == "entrez"}
        assert names == {x.linkname for x in world.links_from("gene", uid)}
    assert len(emulator.log) == 2  # one acheck request each time, comma-joined


@pytest.mark.parametrize(
    "args",
    [
        ["link", "--dbfrom", "gene", "--id", "672", "--cmd", "explode"],
        ["link", "--dbfrom", "Gene X", "--id", "672"],
        ["link", "--dbfrom", "gene", "--db", "pro;tein", "--id", "672"],
        ["link", "--dbfrom", "gene", "--id", ""],
        ["link", "--dbfrom", "gene", "--id", "67 2"],
        ["link", "--dbfrom", "gene", "--id", "672,675"],
        ["link", "--dbfrom", "gene", "--id", "672\x07"],
        ["link", "--dbfrom", "gene"],
        ["link", "--dbfrom", "gene", "--id", "672", "--linkname", "gene_protein"],
        ["link", "--dbfrom", "gene", "--db", "protein", "--id", "672", "--linkname", "Bad-Name"],
        ["link", "--dbfrom", "gene", "--id", "672", "--mindate", "last year"],
        ["links", "gene"],
        ["links", "gene", "672", "abc"],
        ["links", "gene", "6\t72"],
        ["links", "gene db", "672"],
    ],
)
def test_bad_input_exits_2_on_one_line_before_any_request(
    emulator: Emulator, env: dict[str, str], args: list[str]
) -> None:
    code, out, err = run(emulator, *args)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    assert "Traceback" not in out + err
    assert emulator.log == []


def test_permanent_ncbi_error_is_one_line_without_key(world: World, env: dict[str, str]) -> None:
    with Emulator(world, poison=("672",)) as emu:
        code, _, err = run(emu, "link", "--dbfrom", "gene", "--db", "protein", "--id", "672")
        assert len(emu.log) == 1  # permanent: not retried
        assert code == 1
        assert err.strip().splitlines() == [err.strip()] and "Invalid uid 672" in err
        # an unknown database is refused before asking NCBI
        code, _, err = run(emu, "link", "--dbfrom", "gene", "--id", "675", "--db", "nosuchdb")
        assert code == 2 and len(emu.log) == 1
        assert err.strip().startswith("Error: unknown --db database 'nosuchdb'")


def test_subprocess_key_never_printed_nor_logged(world: World, tmp_path: Path) -> None:
    log_path = tmp_path / "emu.jsonl"
    with Emulator(world, log_path=log_path) as emu:
        env = {
            "PATH": "/usr/bin:/bin",
            "NCBI_API_KEY": FAKE_KEY,
            "NCBI_EMAIL": "me@example.org",
            "ENTREZ_GRAPH_RATE_DIR": str(tmp_path / "rates"),
            "ENTREZ_GRAPH_EUTILS_URL": emu.url,
            "HOME": str(tmp_path),
        }
        proc = subprocess.run(
            [sys.executable, "-m", "crawler", "link", "--dbfrom", "gene", "--db", "protein",
             "--id", "672", "--linkname", "gene_protein"],
            env=env, capture_output=True, text=True, timeout=60,
        )
    assert proc.returncode == 0, proc.stderr
    assert "gene_protein" in proc.stdout
    for text in (proc.stdout, proc.stderr, log_path.read_text()):
        assert FAKE_KEY not in text
    for path in (tmp_path / "rates").iterdir():
        assert FAKE_KEY not in path.name and FAKE_KEY.encode() not in path.read_bytes()
    logged = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert logged[-1]["params"]["email"] == "me@example.org"
    assert logged[-1]["params"]["tool"] == "entrez-graph"
