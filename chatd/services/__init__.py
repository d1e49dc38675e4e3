"""The product's rules. Services see the store and the node through small interfaces only."""

from __future__ import annotations

__all__: list[str] = []
