"""The load kit keeps working: bench.load for ~2 s against a node it starts, numbers consistent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
