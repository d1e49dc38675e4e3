"""Prometheus metrics of one node (a registry per App, so tests can run several servers)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.connections = Gauge("chatd_connections", "Open WebSocket connections",
                                 registry=self.registry)
        self.requests = Counter("chatd_requests", "Requests handled, by op", ["op"],
                                registry=self.registry)
        self._requests_by_op: dict[str, Any] = {}
        self.errors = Counter("chatd_errors", "Error replies, by code", ["code"],
                              registry=self.registry)
        self.closed_slow = Counter("chatd_slow_disconnects",
                                   "Connections closed because they did not read",
                                   registry=self.registry)
        self.deliveries = Gauge("chatd_deliveries", "Frames queued to local connections",
                                registry=self.registry)
        self.store_healthy = Gauge("chatd_store_healthy",
                                   "1 while the store commits, 0 from a failed commit or "
                                   "connection until the next good commit",
                                   registry=self.registry)
        self.store_failures = Counter("chatd_store_failures",
                                      "Failed store commits and connections",
                                      registry=self.registry)
        self.commit_seconds = Histogram("chatd_store_commit_seconds",
                                        "Store transaction time, begin to durable commit",
                                        buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1,
                                                 .25, .5, 1, 2.5),
                                        registry=self.registry)
        self.broker_healthy = Gauge("chatd_broker_healthy", "1 while the broker publishes",
                                    registry=self.registry)
        self.filter_reloads = Counter("chatd_filter_reloads",
                                      "Word-list reloads, by result (ok or failed)", ["result"],
                                      registry=self.registry)

        self.uploads = Counter("chatd_uploads", "POST /upload answers, by kind and HTTP status",
                               ["kind", "status"], registry=self.registry)
        self.api_requests = Counter("chatd_api_requests",
                                    "Server API calls, by method and HTTP status",
                                    ["method", "status"], registry=self.registry)

        # Series an alert watches with increase(): present at 0 from the start, so the first
        # one after a restart counts.
        for code in ("internal", "unavailable"):
            self.errors.labels(code)
        for result in ("ok", "failed"):
            self.filter_reloads.labels(result)

    def count_request(self, op: str) -> None:
        """``requests{op}`` + 1, with the series kept per op (``labels()`` costs three times
        the increment, once per request). Ops come from the op table: a bounded set."""
        child = self._requests_by_op.get(op)
        if child is None:
            child = self._requests_by_op[op] = self.requests.labels(op)
        child.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
