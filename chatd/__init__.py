"""chatd: real-time chat and interest matching server for social apps."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
