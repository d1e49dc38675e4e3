"""Wall-clock jumps change nothing that is measured in durations: limits and match widening
run on the monotonic clock. (SMS code expiry and message timestamps are wall-clock facts.)"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from chatd.config import Config
from chatd.server import ChatServer
from tests.conftest import registered, url_of


@pytest.mark.parametrize("jump", [86_400.0, -86_400.0])
async def test_wall_clock_jump_does_not_widen_matching_or_refill_limits(
        tmp_path: Path, wordlist: Path, monkeypatch: pytest.MonkeyPatch, jump: float) -> None:
    srv = ChatServer(Config(port=0, data_dir=tmp_path / "d", wordlists=(str(wordlist),),
                            sms_resend_interval=0, match_any_shared_after=1.5,
                            match_random_after=1.5, rate_per_second=1, rate_burst=40))
    await srv.start()
    try:
        url = url_of(srv)
        a = await registered(url, ["sport.yoga"])
        b = await registered(url, ["tech.ai"])
        await a.call("match.start")
        await b.call("match.start")
        real = time.time
        monkeypatch.setattr(time, "time", lambda: real() + jump)
        await asyncio.sleep(0.8)
        assert a.events.empty()  # still waiting: the jump did not count as waiting time
        # Drain the bucket; a jump must not hand out fresh tokens.
        replies = await asyncio.gather(*(a.request("ping") for _ in range(60)))
        assert any(r.get("code") == "rate_limited" for r in replies)
        found = await a.next_event("match.found", timeout=5)
        assert found["shared"] == []
        for c in (a, b):
            await c.close()
    finally:
        await srv.stop()
