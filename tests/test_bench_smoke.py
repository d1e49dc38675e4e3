"""The load kit keeps working: bench.load for ~2 s against a node it starts, numbers consistent;
bench.ceiling's baselines (echo, bare relay, python-socketio) and chatd for a fraction of a
second each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.ceiling import SERVERS, Run, measure, report, side_by_side, verdicts
from bench.engine import Plan
from bench.harness import ServerProc, chatd_server
from bench.load import run_load


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    srv = chatd_server(Path(tmp_path_factory.mktemp("bench")) / "data", None)
    try:
        yield srv
    finally:
        srv.stop()


def test_one_to_one_every_message_delivered(node: ServerProc) -> None:
    # Registers through the protocol (sms.send + register), matches, chats 1:1.
    s = run_load(Plan(urls=[node.url], conns=6, offset=0, duration=2.0, window=2), quiet=True)
    assert s["errors"] == {}
    assert s["held"] == s["conns"] == 6
    assert s["matched"] == 6
    assert s["sent"] == s["acked"] > 0
    assert s["delivered"] == s["expected"] == s["acked"]
    assert 0 < s["latency_ms"]["p50"] <= s["latency_ms"]["p99"] <= s["latency_ms"]["max"]
    assert len(s["accounts"]) == 6


def test_groups_deliver_to_every_other_member(node: ServerProc) -> None:
    s = run_load(Plan(urls=[node.url], conns=6, offset=100, duration=1.5, window=1,
                      group_share=1.0, group_size=3), quiet=True)
    assert s["errors"] == {}
    assert s["sent"] == s["acked"] > 0
    # Each group message reaches the two other members of its group of three.
    assert s["delivered"] == s["expected"] == 2 * s["acked"]


def test_steady_match_arrivals_each_timed_from_its_own_start(node: ServerProc) -> None:
    # bench.matching's steady run in small: match.start spread over 0.5 s, one tag for all.
    s = run_load(Plan(urls=[node.url], conns=10, offset=200, duration=0.1, window=0,
                      match_rate=20.0, zipf_tags=1, match_timeout=5.0), quiet=True)
    assert s["errors"] == {}
    assert s["matched"] == 10 and s["unmatched"] == 0
    assert len(s["match_s"]) == 10 and all(w >= 0 for w in s["match_s"])
    assert {tuple(a["interests"]) for a in s["accounts"]} == {(s["accounts"][0]["interests"][0],)}


@pytest.fixture(scope="module")
def ceiling_runs() -> dict[str, Run]:
    """bench.ceiling's five servers in small: 4 conns in 2 pairs, 0.3 s of load each."""
    plan = Plan(urls=[], conns=4, offset=0, duration=0.3, window=2)
    return {name: measure(name, plan, None, quiet=True) for name in SERVERS}


@pytest.mark.parametrize("name", SERVERS)
def test_ceiling_server_routes_every_message(ceiling_runs: dict[str, Run], name: str) -> None:
    run = ceiling_runs[name]
    s = run.summary
    assert s["errors"] == {}
    assert s["held"] == s["conns"] == 4
    assert s["sent"] == s["acked"] == run.routed > 0  # a server that routes nothing fails
    assert s["delivered"] == s["expected"] == s["acked"]
    assert run.meter.cpu_s > 0 and run.cpu_us_per_msg > 0


def test_ceiling_prints_each_ratio_and_cpu_per_message(ceiling_runs: dict[str, Run]) -> None:
    assert "µs per routed message" in report(ceiling_runs["socketio"])
    rows = side_by_side(ceiling_runs).splitlines()
    assert [r.split()[0] for r in rows[2:]] == ["echo", "bare", "python-socketio", "chatd",
                                                "chatd-process"]
    lines = verdicts(ceiling_runs)
    assert len(lines) == 10  # five for each chatd
    for name, five in (("chatd", lines[:5]), ("chatd-process", lines[5:])):
        assert five[0].startswith(f"{name} routed msg/s vs python-socketio")
        assert "150%" in five[0]
        assert "bare relay" in five[1] and "echo" in five[2]
        assert five[3].startswith(f"{name} server CPU per routed message: ")
        assert "45 µs" in five[3]
        assert five[4].startswith(f"{name} event-loop thread CPU per routed message: ")
    # chatd's CPU by thread: the event loop, and the SQLite writer among the others; with
    # the store in its own process, that process apart.
    chat = ceiling_runs["chatd"]
    threads = chat.meter.thread_us_per(chat.routed)
    assert threads.get("event loop", 0) > 0 and set(threads) <= {"event loop", "other threads"}
    apart = ceiling_runs["chatd-process"]
    threads = apart.meter.thread_us_per(apart.routed)
    assert threads.get("event loop", 0) > 0 and threads.get("child processes", 0) > 0


def test_ceiling_on_postgres_counts_the_cluster_apart() -> None:
    plan = Plan(urls=[], conns=4, offset=0, duration=0.3, window=2)
    run = measure("chatd", plan, None, quiet=True, store="postgres")
    s = run.summary
    assert s["errors"] == {} and s["delivered"] == s["expected"] == s["acked"] > 0
    assert run.store is not None and run.store.us_per(run.routed) > 0
    assert "PostgreSQL" in report(run) and run.figures()["postgres_cpu_us_per_msg"] > 0


def test_commit_cost_counts_fewer_pages_with_one_sender_index(tmp_path: Path) -> None:
    from bench.commit_cost import measure
    got = measure(80, 400, tmp_path, warm=5000)
    (cpu, pages), (cpu0, pages0) = got["chatd"], got["before"]
    assert cpu > 0 and cpu0 > 0
    # Each index a message lands in is a page per sender per commit: one index fewer.
    assert 0 < pages < pages0
