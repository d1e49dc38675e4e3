"""The id types every room shares (imported by the store, the hub, the services alike).

Kept apart so that importing the hub or the protocol loads no storage module.
"""

from __future__ import annotations

from typing import Final, NewType

__all__ = ["TOMBSTONE", "ConvId", "UserId"]

UserId = NewType("UserId", str)
ConvId = NewType("ConvId", str)
#: The sender of a deleted account's anonymised messages (and actor of its audit rows).
TOMBSTONE: Final = UserId("deleted")
