"""Delivered receipts of 1:1 messages, batched off the delivery path.

The node that writes a ``msg`` to a recipient's connection notes it here (as does ``history``
for a recipient who was offline). Marks are coalesced per (conversation, recipient) over
``delay`` seconds (50 ms: a tick sooner than the eye needs) and written in one store call;
each mark that rose becomes one ``delivered`` event to the other member's connections, on
whichever node they are. A busy chat thus costs one receipt per window, not per message
(per loop pass, receipts were 8% of a node's time in bench.ceiling). Receipts are best effort: a
failed write is logged and the next delivery or ``history`` raises the mark again.
"""

from __future__ import annotations

import asyncio
import logging

from chatd.ids import ConvId, UserId
from chatd.node import Node
from chatd.store import Store

__all__ = ["DeliveryReceipts"]

log = logging.getLogger("chatd.receipts")


class DeliveryReceipts:
    def __init__(self, store: Store, node: Node, delay: float = 0.05) -> None:
        self.store = store
        self.node = node
        self.delay = delay
        # (conv, recipient) -> (highest seq received, the author to tell)
        self._pending: dict[tuple[ConvId, UserId], tuple[int, UserId]] = {}
        self._flushing: asyncio.Task[None] | None = None

    def note(self, conv: ConvId, recipient: UserId, author: UserId, seq: int) -> None:
        """``recipient`` has received ``conv`` up to ``seq`` (written by ``author``)."""
        key = (conv, recipient)
        known = self._pending.get(key)
        if known is None or seq > known[0]:
            self._pending[key] = (seq, author)
        if self._flushing is None:
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self._pending:
                await asyncio.sleep(self.delay)  # let the window's marks gather
                batch, self._pending = self._pending, {}
                try:
                    raised = await self.store.mark_delivered(
                        [(conv, user, seq) for (conv, user), (seq, _) in batch.items()])
                except Exception as exc:
                    log.warning("delivered marks not stored (%s); the next delivery retries",
                                type(exc).__name__)
                    continue
                for conv, user, seq in raised:
                    await self.node.to_user(batch[conv, user][1],
                                            {"t": "delivered", "conv": conv, "seq": seq})
        finally:
            self._flushing = None

    async def close(self) -> None:
        if self._flushing is not None:
            self._flushing.cancel()
