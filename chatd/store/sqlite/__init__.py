"""The embedded SQLite store: one file, one worker thread, group commit.

:class:`SQLiteStore` is composed of one class per domain, each a subclass of the
:class:`~chatd.store.sqlite.engine.Engine` that runs its SQL as group-committed jobs:

- :mod:`~chatd.store.sqlite.accounts`: users, sessions, SMS codes;
- :mod:`~chatd.store.sqlite.chat`: conversations, members, messages, blocks;
- :mod:`~chatd.store.sqlite.social`: posts, feeds, search, reports;
- :mod:`~chatd.store.sqlite.moderation`: roles, bans, mutes, word changes, audit, review;
- :mod:`~chatd.store.sqlite.privacy`: consents, export queries, account deletion;
- :mod:`~chatd.store.sqlite.push`: push devices, notification settings, the push outbox;
- :mod:`~chatd.store.sqlite.media`: photos, voice clips, avatars, image bans, links, feedback;
- :mod:`~chatd.store.sqlite.outreach`: campaigns, verification, server-API lookups.

Row converters shared by them live in :mod:`~chatd.store.sqlite.rows`, the migrations in
:mod:`~chatd.store.sqlite.schema`.
"""

from __future__ import annotations

from chatd.store.sqlite.accounts import Accounts
from chatd.store.sqlite.chat import Chat
from chatd.store.sqlite.media import Media
from chatd.store.sqlite.moderation import Moderation
from chatd.store.sqlite.outreach import Outreach
from chatd.store.sqlite.privacy import Privacy
from chatd.store.sqlite.push import Push
from chatd.store.sqlite.social import Social

__all__ = ["SQLiteStore"]


class SQLiteStore(Accounts, Chat, Social, Moderation, Privacy, Push, Outreach, Media):
    """A :class:`chatd.store.base.Store` in one SQLite file (``Engine(path, max_batch,
    synchronous)``)."""
