"""In-memory abuse limits on a monotonic clock (wall-clock jumps change nothing)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

__all__ = ["WindowLimiter"]


class WindowLimiter:
    """At most ``limit`` events per key in a sliding ``window`` of seconds.

    Used for failed logins and code guesses per phone and per address. Memory stays bounded:
    at most ``max_keys`` keys are tracked; the oldest key is dropped first.
    """

    def __init__(self, limit: int, window: float, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        self._events: dict[str, deque[float]] = {}

    def retry_after_ms(self, key: str) -> int:
        """0 when another event is allowed now, else milliseconds to wait."""
        events = self._prune(key)
        if events is None or len(events) < self.limit:
            return 0
        return max(1, int((events[0] + self.window - self._clock()) * 1000))

    def hit(self, key: str) -> None:
        events = self._prune(key)
        if events is None:
            if len(self._events) >= self.max_keys:
                self._events.pop(next(iter(self._events)))
            events = self._events[key] = deque()
        events.append(self._clock())

    def reset(self, key: str) -> None:
        self._events.pop(key, None)

    def _prune(self, key: str) -> deque[float] | None:
        events = self._events.get(key)
        if events is None:
            return None
        horizon = self._clock() - self.window
        while events and events[0] <= horizon:
            events.popleft()
        if not events:
            del self._events[key]
            return None
        return events
