"""The shared rate limiter: no one-second window over the limit, across threads and processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from bisect import bisect_right
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import pytest

from crawler.errors import BadInput
from crawler.eutils.ratelimit import (
    DEFAULT_MARGIN,
    RateLimiter,
    default_rate_dir,
    default_rps,
    spacing_for,
)


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
    assert lim.spacing() == pytest.approx((1 + DEFAULT_MARGIN) / 10)
    # exactly one spacing apart: any 11 consecutive sends span 1 s + the margin, and 50 sends
    # take 49 spacings (98 % of the limit), neither more nor less
    assert all(b - a == pytest.approx(lim.spacing()) for a, b in pairwise(slots))
    span = 1.0 + DEFAULT_MARGIN - 1e-9
    assert all(b - a >= span for a, b in zip(slots, slots[10:], strict=False))
    assert max_per_window(slots) <= 10
    assert max_per_window(slots, 1.0 + DEFAULT_MARGIN - 1e-6) <= 10  # even the wider window
    assert slots[-1] - slots[0] == pytest.approx(49 * (1 + DEFAULT_MARGIN) / 10)


def test_fractional_rps_without_key(tmp_path: Path) -> None:
    clock = FakeClock()
    lim = RateLimiter(3, host="h", rate_dir=tmp_path, clock=clock, sleep=clock.sleep)
    slots = [lim.reserve() for _ in range(30)]
    assert max_per_window(slots) <= 3
    assert default_rps(False) == 3 and default_rps(True) == 10
    # 2.5/s: at most 2 in any second (floor), below 1/s: one per 1/rps (plus the margin)
    assert spacing_for(2.5, 0.05) == pytest.approx(1.05 / 2)
    assert spacing_for(0.5, 0.05) == pytest.approx(2.1)
    half = RateLimiter(2.5, host="h2", rate_dir=tmp_path, clock=clock, sleep=clock.sleep)
    assert max_per_window([half.reserve() for _ in range(20)]) <= 2


def test_idle_limiter_sends_at_once(tmp_path: Path) -> None:
    clock = FakeClock()
    lim = RateLimiter(10, host="h", rate_dir=tmp_path, clock=clock, sleep=clock.sleep)
    assert lim.reserve() == clock.now
    clock.now += 5.0
    assert lim.reserve() == clock.now  # long after the last send: no wait


def test_acquire_sleeps_until_slot(tmp_path: Path) -> None:
    clock = FakeClock()
    lim = RateLimiter(2, host="h", rate_dir=tmp_path, clock=clock, sleep=clock.sleep)
    start = clock.now
    slots = [lim.acquire() for _ in range(4)]
    assert slots[0] == start
    assert all(b - a == pytest.approx((1 + DEFAULT_MARGIN) / 2) for a, b in pairwise(slots))
    assert clock.now == pytest.approx(slots[-1])  # it slept until its slot


def test_penalty_is_shared_and_decays(tmp_path: Path) -> None:
    clock = FakeClock()
    a = RateLimiter(10, host="h", key="k", rate_dir=tmp_path, clock=clock, sleep=clock.sleep,
                    penalty_pause=2.0)
    b = RateLimiter(10, host="h", key="k", rate_dir=tmp_path, clock=clock, sleep=clock.sleep)
    a.penalize()
    t = b.reserve()  # another caller (same key and host) pauses and slows down too
    assert t >= clock.now + 2.0
    assert b.slowdown > 1.0
    assert a.state()["factor"] == pytest.approx(1.5)
    widened = 2 * DEFAULT_MARGIN  # and the margin is twice as wide for every caller
    assert a.state()["margin"] == pytest.approx(widened) and b.margin_now == pytest.approx(widened)
    # slowed down: 10 / 1.5 = 6.67/s, so 6 per 1 s + margin
    assert b.reserve() - t == pytest.approx((1 + widened) / 6)
    for _ in range(5):
        b.success()
    assert a.state()["factor"] == 1.0  # the slow-down is gone after a few successes …
    b.reserve()
    assert b.slowdown == 1.0
    assert DEFAULT_MARGIN < a.state()["margin"] < widened  # … the wider margin only slowly
    for _ in range(2000):
        b.success()
    assert a.state()["margin"] == DEFAULT_MARGIN and b.margin_now == DEFAULT_MARGIN


def test_429s_widen_the_margin_and_the_window_follows_it(tmp_path: Path) -> None:
    """After 429s every caller keeps n + 1 sends at least 1 s + the widened margin apart (at
    most MAX_MARGIN), and a caller with a wider margin of its own keeps its own."""
    from crawler.eutils.ratelimit import MAX_MARGIN

    clock = FakeClock()
    lim = RateLimiter(10, host="h", rate_dir=tmp_path, clock=clock, sleep=clock.sleep,
                      penalty_pause=0.0)
    for _ in range(3):
        lim.penalize()
    margin = lim.state()["margin"]
    assert margin == pytest.approx(8 * DEFAULT_MARGIN)
    for _ in range(20):
        lim.penalize()
    assert lim.state()["margin"] == MAX_MARGIN
    for _ in range(6):  # the slow-down is gone after a few successes, the margin stays wide
        lim.success()
    state = lim.state()
    wide = state["margin"]
    assert state["factor"] == 1.0 and MAX_MARGIN - 0.01 < wide < MAX_MARGIN
    sent = [lim.acquire() for _ in range(40)]  # full speed (10 per window), wider margin
    assert all(b - a >= 1.0 + wide - 1e-9 for a, b in zip(sent, sent[10:], strict=False))
    assert sent[-1] - sent[0] == pytest.approx(39 * (1 + wide) / 10)
    careful = RateLimiter(10, host="h2", rate_dir=tmp_path, clock=clock, sleep=clock.sleep,
                          margin=0.1)
    careful.penalize()
    assert careful.state()["margin"] == pytest.approx(0.2)
    for _ in range(3000):
        careful.success()
    assert careful.state()["margin"] == 0.1  # back to its own, never below


def test_state_file_per_host_and_key_never_names_the_key(tmp_path: Path) -> None:
    key = "secret-key-0123456789abcdef"
    a = RateLimiter(10, host="eutils.ncbi.nlm.nih.gov", key=key, rate_dir=tmp_path)
    b = RateLimiter(10, host="eutils.ncbi.nlm.nih.gov", key="other", rate_dir=tmp_path)
    c = RateLimiter(10, host="127.0.0.1:9", key=key, rate_dir=tmp_path)
    assert len({a.path, b.path, c.path}) == 3
    a.reserve()
    a.penalize()
    for p in tmp_path.iterdir():
        assert key not in p.name and key.encode() not in p.read_bytes()


def test_rate_dir_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ENTREZ_GRAPH_RATE_DIR", str(tmp_path / "rates"))
    assert default_rate_dir() == tmp_path / "rates"
    lim = RateLimiter(5, host="x")
    assert lim.path.parent == tmp_path / "rates"


def test_torn_state_file_is_survived(tmp_path: Path) -> None:
    lim = RateLimiter(10, host="h", rate_dir=tmp_path)
    lim.path.write_bytes(b'{"slots": [1, 2')  # an older format, or a torn file
    assert lim.reserve() > 0
    lim.path.write_bytes(b"EGRATE02" + b"\xff" * 56)  # NaN garbage behind the right magic
    other = RateLimiter(10, host="h", rate_dir=tmp_path)
    t = other.reserve()
    assert 0 < t <= time.time() + 1 and other.state()["factor"] == 1.0


def test_reservation_costs_no_file_read_or_write(tmp_path: Path) -> None:
    """The shared page is mapped once; a reservation only locks it (no open, read, write)."""
    lim = RateLimiter(1000, host="h", rate_dir=tmp_path)
    lim.reserve()
    calls: list[str] = []
    real_open, real_read, real_write = os.open, os.read, os.write
    try:
        os.open = lambda *a, **k: calls.append("open") or real_open(*a, **k)  # type: ignore
        os.read = lambda *a, **k: calls.append("read") or real_read(*a, **k)  # type: ignore
        os.write = lambda *a, **k: calls.append("write") or real_write(*a, **k)  # type: ignore
        for _ in range(100):
            lim.acquire()
    finally:
        os.open, os.read, os.write = real_open, real_read, real_write
    assert calls == []
    assert lim.path.stat().st_size == 1024


WORKER = textwrap.dedent(
    """
    import json, sys, threading, time
    from crawler.eutils.ratelimit import RateLimiter
    rate_dir, n_threads, per_thread = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    lim = RateLimiter(10, host="127.0.0.1:1", key="k", rate_dir=rate_dir)
    sends, lock = [], threading.Lock()
    def work():
        for _ in range(per_thread):
            lim.wait_turn()
            left = []
            recorded = lim.record_send(lambda: left.append(time.time()))  # "send" under the lock
            with lock:
                sends.append((left[0], recorded))
    threads = [threading.Thread(target=work) for _ in range(n_threads)]
    for t in threads: t.start()
    for t in threads: t.join()
    print(json.dumps(sends))
    """
)


def test_two_processes_sixteen_threads_each_share_one_limit(tmp_path: Path) -> None:
    cmd = [sys.executable, "-c", WORKER, str(tmp_path), "16", "3"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    sends: list[tuple[float, float]] = []
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        sends += [tuple(x) for x in json.loads(out)]
    assert len(sends) == 96
    left = sorted(t for t, _ in sends)
    # whatever the timing, the 96 sends of both processes are one sequence decided under the
    # lock: any 11 of them left at least 1 s + the margin apart, so never 11 in a second
    span = 1.0 + DEFAULT_MARGIN - 1e-6
    assert all(b - a >= span for a, b in zip(left, left[10:], strict=False))
    assert max_per_window(left) <= 10
    assert all(recorded >= t for t, recorded in sends)  # recorded once the send returned


def test_late_waker_sends_at_once_without_crowding_a_window(tmp_path: Path) -> None:
    clock = FakeClock()
    oversleep = [0.5]  # the first sleep overshoots by half a second (a busy machine)

    def sleep(seconds: float) -> None:
        clock.now += seconds + (oversleep.pop() if oversleep else 0.0)

    lim = RateLimiter(10, host="h", rate_dir=tmp_path, clock=clock, sleep=sleep)
    slot = lim.reserve() + lim.spacing()  # someone else holds the current slot
    sent = [lim.acquire()]
    assert sent[0] == pytest.approx(slot + 0.5)  # late, but sent at once: the window allows it
    for _ in range(30):
        sent.append(lim.acquire())
    assert sent == sorted(sent) and sent[-1] == pytest.approx(clock.now)
    assert max_per_window(sent) <= 10
    span = 1.0 + DEFAULT_MARGIN - 1e-9
    assert all(b - a >= span for a, b in zip(sent, sent[10:], strict=False))


def test_recorded_sends_keep_the_window_whatever_the_slots(tmp_path: Path) -> None:
    """A burst of late wakers (slots long past) is spread so that no window overflows."""
    clock = FakeClock()
    lim = RateLimiter(10, host="h", rate_dir=tmp_path, clock=clock, sleep=clock.sleep)
    for _ in range(25):
        lim.reserve()  # 25 slots over the next 2.5 s, which all their callers oversleep
    clock.now += 5.0
    sent = [lim.record_send() for _ in range(25)]  # they all wake at once
    assert max_per_window(sent) <= 10
    span = 1.0 + DEFAULT_MARGIN - 1e-9
    assert all(b - a >= span for a, b in zip(sent, sent[10:], strict=False))
    state = lim.state()
    assert state["sends"] == 25 and state["sent"][-1] == sent[-1]


def test_sends_that_stall_before_or_after_leaving_never_crowd_a_window(tmp_path: Path) -> None:
    """The send runs under the lock and is recorded when it returned: a sender stalled before
    its bytes leave (the GIL, a busy CPU) or after (taking the GIL back) never lets 11 leave
    within 1 s + margin."""
    clock = FakeClock()
    lim = RateLimiter(10, host="h", rate_dir=tmp_path, clock=clock, sleep=clock.sleep)
    left: list[float] = []  # when the bytes really left
    stalls = [(0.3, 0.0), (0.0, 0.4), (0.0, 0.0), (0.2, 0.2)] * 10

    def sender(before: float, after: float) -> Callable[[], None]:
        def send() -> None:
            clock.now += before
            left.append(clock.now)
            clock.now += after
        return send

    recorded = [lim.record_send(sender(*st)) for st in stalls]
    assert recorded == sorted(recorded)
    assert all(r >= t for r, t in zip(recorded, left, strict=True))
    span = 1.0 + DEFAULT_MARGIN - 1e-9
    assert all(b - a >= span for a, b in zip(left, left[10:], strict=False))
    assert max_per_window(left) <= 10


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


# ------------------------------------------------------------------ the emulator's window (NCBI's)


def test_emulator_window_is_strict_whatever_order_arrivals_are_decided_in() -> None:
    """The emulator counts arrivals (when requests reached the host), and its threads may decide
    them out of order: a request is refused if any one-second window holding its arrival would
    hold more than the limit of answered ones, earlier or later ones alike."""
    from crawler.emulator import Emulator, World

    emu = Emulator(World.generate(seed=1, size=200), rate_limit=2)
    ok = lambda t: emu._rate_check("k", 1000.0 + t) is None  # noqa: E731
    assert ok(0.0) and ok(0.5)
    assert not ok(0.9)  # [0.0, 1.0) would hold 3
    assert ok(1.6)  # refused ones do not count: [0.9, 1.9) holds 1.6 alone
    assert ok(1.2)  # decided after 1.6, arrived before it: [0.5, 1.5) and [1.2, 2.2) hold 2 each
    assert not ok(1.3)  # [0.31, 1.31) would hold 0.5, 1.2, 1.3
    assert not ok(1.0)  # late, but [0.5, 1.5) would hold 0.5, 1.0, 1.2
    assert not ok(2.1)  # [1.2, 2.2) would hold 1.2, 1.6, 2.1
    assert ok(2.6) and ok(2.2)  # [1.6, 2.6) holds 1.6, 2.2; [2.2, 3.2) holds 2.2, 2.6
    assert emu._rate_check("other", 1000.0 + 0.95) is None  # another key: its own window
    answered = sorted(emu._windows["k"])
    # any 3 answered span at least 1 s: never 3 in a half-open window [s, s + 1)
    assert all(c - a >= 1.0 - 1e-9 for a, c in zip(answered, answered[2:], strict=False))
    assert [round(t - 1000.0, 3) for t in answered] == [0.0, 0.5, 1.2, 1.6, 2.2, 2.6]


def test_emulator_stamps_requests_when_they_arrive_not_when_read() -> None:
    """A request that waits in the socket while the connection's thread is busy (here with the
    previous request's 1 s latency) is counted and logged at its arrival, the kernel's receive
    time on Linux, not when the thread read it."""
    import socket as socketlib

    from crawler.emulator import Emulator, World

    if not sys.platform.startswith("linux"):
        pytest.skip("kernel receive timestamps are Linux's")
    request = b"GET /entrez/eutils/einfo.fcgi?i=%d HTTP/1.1\r\nHost: x\r\n\r\n"
    with Emulator(World.generate(seed=1, size=200), rate_limit=5, latency_ms=1000) as emu:
        with socketlib.create_connection(("127.0.0.1", emu.port)) as sock:
            sock.sendall(request % 1)
            time.sleep(0.02)
            sock.sendall(request % 2)  # pipelined: read once the first one is answered
            reply = b""
            while reply.count(b"</eInfoResult>") < 2:
                chunk = sock.recv(65536)
                assert chunk
                reply += chunk
        first, second = sorted(emu.log, key=lambda e: e["params"]["i"])
    assert first["status"] == second["status"] == 200
    # the second was read after the first's 1 s latency, but stamped when it arrived
    assert second["time"] < first["time"] + 1.0 <= second["time"] + second["lag"]


def test_a_post_leaves_in_one_write_through_the_limiter() -> None:
    """httpcore writes a POST's head and body apart; the transport holds the head until the
    body is there, so the limiter lets the whole request leave at once (a server that counts
    a request once it arrived sees it no later than the limiter recorded it)."""
    from crawler.eutils import transport

    class Inner:
        def __init__(self) -> None:
            self.writes: list[bytes] = []

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            self.writes.append(bytes(buffer))

        def get_extra_info(self, info: str) -> None:
            return None

    inner = Inner()
    stream = transport._Stream(inner)  # type: ignore[arg-type]
    through: list[int] = []

    def hook(write: Callable[[], object]) -> None:
        through.append(len(inner.writes))
        write()
        through.append(len(inner.writes))

    head = (b"POST /entrez/eutils/elink.fcgi HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 11\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n")
    with transport.deadline(5.0, hook):
        stream.write(head)
        assert inner.writes == [] and through == []  # held
        stream.write(b"id=1&")
        stream.write(b"id=22")
        assert inner.writes == [] and through == []
        stream.write(b"&")  # the body is complete: one write, through the hook
        assert through == [0, 1] and inner.writes == [head + b"id=1&id=22&"]
        stream.write(b"")  # (httpcore's end of message)
        stream.write(b"later")  # anything after goes straight on
    assert inner.writes[1:] == [b"", b"later"] and through == [0, 1]
    get = b"GET /x?id=1 HTTP/1.1\r\nHost: x\r\n\r\n"
    with transport.deadline(5.0, hook):
        stream.write(get)  # no body: through the hook at once
    assert inner.writes[-1] == get and through == [0, 1, 3, 4]
