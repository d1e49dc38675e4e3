"""The PostgreSQL store: one database shared by several chatd nodes, through an asyncpg pool.

Semantics are those of :class:`chatd.store.sqlite.SQLiteStore` (the reference), made safe for
concurrent writers on different hosts (see :mod:`~chatd.store.postgres.chat` for seqs and
retries, :mod:`~chatd.store.postgres.engine` for transactions, errors and migrations).
:class:`PostgresStore` is composed of one class per domain, as the SQLite store is. This
package is the only one that imports ``asyncpg``: ``import chatd.store`` does not load it.
"""

from __future__ import annotations

from chatd.store.postgres.accounts import Accounts
from chatd.store.postgres.chat import Chat
from chatd.store.postgres.media import Media
from chatd.store.postgres.moderation import Moderation
from chatd.store.postgres.outreach import Outreach
from chatd.store.postgres.privacy import Privacy
from chatd.store.postgres.push import Push
from chatd.store.postgres.social import Social

__all__ = ["PostgresStore"]


class PostgresStore(Accounts, Chat, Social, Moderation, Privacy, Push, Outreach, Media):
    """A :class:`chatd.store.base.Store` on PostgreSQL (tested against 15).

    ``open()`` creates the pool and migrates the schema; ``close()`` waits for borrowed
    connections and closes the pool. Calls on a store that is not open raise StoreError.
    """
