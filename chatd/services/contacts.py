"""Presence events for contacts: who hears that a user came online or went offline.

A user's contacts are the other members of the user's open 1:1 conversations (both still in
them) with no block either way (:meth:`Store.contacts_of`); group co-members are not told.
The node decides when a user comes online or, after ``presence_grace``, goes offline on every
node (:attr:`chatd.node.Node.on_presence`); this service turns that into
``{"t": "presence", "user", "online"}`` for each contact who is online, through the contact's
user channel (so it reaches their sessions on every node). It runs only on a user's first
session and after their last one left, never per request.
"""

from __future__ import annotations

from typing import Any

from chatd.ids import UserId
from chatd.node import Node
from chatd.store import Store

__all__ = ["ContactPresence"]


class ContactPresence:
    def __init__(self, store: Store, node: Node) -> None:
        self.store = store
        self.node = node

    async def changed(self, user_id: UserId, online: bool) -> None:
        """``user_id`` came online (``True``) or is offline everywhere (``False``)."""
        contacts = sorted(await self.store.contacts_of(user_id))
        if not contacts:
            return
        # Only contacts someone could deliver to: an offline contact asks `presence` later.
        reachable = await self.node.presence.online(contacts)
        event: dict[str, Any] = {"t": "presence", "user": user_id, "online": online}
        for contact in contacts:
            if reachable.get(contact):
                await self.node.to_user(contact, event)
