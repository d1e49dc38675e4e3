"""Prometheus metrics of one node (a registry per App, so tests can run several servers)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

__all__ = ["Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.connections = Gauge("chatd_connections", "Open WebSocket connections",
                                 registry=self.registry)
        self.requests = Counter("chatd_requests", "Requests handled, by op", ["op"],
                                registry=self.registry)
        self.errors = Counter("chatd_errors", "Error replies, by code", ["code"],
                              registry=self.registry)
        self.closed_slow = Counter("chatd_slow_disconnects",
                                   "Connections closed because they did not read",
                                   registry=self.registry)
        self.deliveries = Gauge("chatd_deliveries", "Frames queued to local connections",
                                registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
