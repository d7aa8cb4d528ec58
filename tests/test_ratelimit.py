"""The shared rate limiter: no one-second window over the limit, across threads and processes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from bisect import bisect_right
from itertools import pairwise
from pathlib import Path

import pytest

from crawler.errors import BadInput
from crawler.eutils.ratelimit import RateLimiter, default_rate_dir, default_rps


def max_per_window(times: list[float], window: float = 1.0) -> int:
    """Most events in any closed interval [t, t + window] (start at each event)."""
    times = sorted(times)
    return max((bisect_right(times, t + window) - i for i, t in enumerate(times)), default=0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_reservations_respect_spacing_and_window(tmp_path: Path) -> None:
    clock = FakeClock()
    lim = RateLimiter(10, host="h", key="k", rate_dir=tmp_path, clock=clock, sleep=clock.sleep)
    slots = [lim.reserve() for _ in range(50)]  # 50 callers at the same instant
    assert slots == sorted(slots)
    assert all(b - a >= 0.1 for a, b in pairwise(slots))
    assert max_per_window(slots) <= 10
    # close to the limit, not far below it: 50 sends take about 5 s (5 % margin)
    assert slots[-1] - slots[0] < 5.5


def test_fractional_rps_without_key(tmp_path: Path) -> None:
    clock = FakeClock()
    lim = RateLimiter(3, host="h", rate_dir=tmp_path, clock=clock, sleep=clock.sleep)
    slots = [lim.reserve() for _ in range(30)]
    assert max_per_window(slots) <= 3
    assert default_rps(False) == 3 and default_rps(True) == 10


def test_acquire_sleeps_until_slot(tmp_path: Path) -> None:
    clock = FakeClock()
    lim = RateLimiter(2, host="h", rate_dir=tmp_path, clock=clock, sleep=clock.sleep)
    waits = [lim.acquire() for _ in range(4)]
    assert waits[0] == 0
    assert all(w > 0 for w in waits[1:])


def test_penalty_is_shared_and_decays(tmp_path: Path) -> None:
    clock = FakeClock()
    a = RateLimiter(10, host="h", key="k", rate_dir=tmp_path, clock=clock, sleep=clock.sleep,
                    penalty_pause=2.0)
    b = RateLimiter(10, host="h", key="k", rate_dir=tmp_path, clock=clock, sleep=clock.sleep)
    a.penalize()
    t = b.reserve()  # another caller (same key and host) pauses and slows down too
    assert t >= clock.now + 2.0
    assert b.slowdown > 1.0
    state = json.loads(a.path.read_text())
    assert state["factor"] == pytest.approx(1.5)
    for _ in range(5):
        b.success()
    assert json.loads(a.path.read_text())["factor"] == 1.0
    b.reserve()
    assert b.slowdown == 1.0


def test_state_file_per_host_and_key_never_names_the_key(tmp_path: Path) -> None:
    key = "secret-key-0123456789abcdef"
    a = RateLimiter(10, host="eutils.ncbi.nlm.nih.gov", key=key, rate_dir=tmp_path)
    b = RateLimiter(10, host="eutils.ncbi.nlm.nih.gov", key="other", rate_dir=tmp_path)
    c = RateLimiter(10, host="127.0.0.1:9", key=key, rate_dir=tmp_path)
    assert len({a.path, b.path, c.path}) == 3
    a.reserve()
    a.penalize()
    for p in tmp_path.iterdir():
        assert key not in p.name and key not in p.read_text()


def test_rate_dir_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rates"))
    assert default_rate_dir() == tmp_path / "rates"
    lim = RateLimiter(5, host="x")
    assert lim.path.parent == tmp_path / "rates"


def test_torn_state_file_is_survived(tmp_path: Path) -> None:
    lim = RateLimiter(10, host="h", rate_dir=tmp_path)
    lim.path.write_text('{"slots": [1, 2')
    assert lim.reserve() > 0


WORKER = textwrap.dedent(
    """
    import json, sys, threading, time
    from crawler.eutils.ratelimit import RateLimiter
    rate_dir, n_threads, per_thread = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    lim = RateLimiter(10, host="127.0.0.1:1", key="k", rate_dir=rate_dir)
    times, lock = [], threading.Lock()
    def work():
        for _ in range(per_thread):
            lim.acquire()
            t = time.time()
            with lock:
                times.append(t)
    threads = [threading.Thread(target=work) for _ in range(n_threads)]
    for t in threads: t.start()
    for t in threads: t.join()
    print(json.dumps(times))
    """
)


def test_two_processes_sixteen_threads_each_share_one_limit(tmp_path: Path) -> None:
    cmd = [sys.executable, "-c", WORKER, str(tmp_path), "16", "2"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    times: list[float] = []
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        times += json.loads(out)
    assert len(times) == 64
    assert max_per_window(times) <= 10


def test_overslept_slot_is_replaced_not_used_late(tmp_path: Path) -> None:
    clock = FakeClock()
    oversleep = [0.5]  # the first sleep overshoots by half a second (a busy machine)

    def sleep(seconds: float) -> None:
        clock.now += seconds + (oversleep.pop() if oversleep else 0.0)

    lim = RateLimiter(10, host="h", rate_dir=tmp_path, clock=clock, sleep=sleep)
    lim.reserve()  # someone else holds the current slot
    sent: list[float] = []
    for _ in range(12):
        lim.acquire()
        sent.append(clock.now)
    state = json.loads(lim.path.read_text())
    # the late wake-up took a fresh slot: every send happened at a recorded slot time
    assert all(any(abs(t - s) < 1e-9 for s in state["slots"]) for t in sent[-10:])
    assert max_per_window(sent) <= 10


def test_unwritable_rate_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(BadInput, match="rate-limit directory"):
        RateLimiter(3, host="h", rate_dir=blocker / "sub")
    # no usable home and no explicit directory: fall back to the temp dir, still shared
    monkeypatch.delenv("ENTREZ_GRAPH_RATE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    lim = RateLimiter(3, host="h")
    assert lim.path.parent.name.startswith("entrez-graph-")
    assert lim.reserve() > 0
