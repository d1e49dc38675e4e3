"""PostgreSQL schema migrations, applied in order; ``schema_version`` records how far a database is.

The tables, keys and indexes mirror :mod:`chatd.store.sqlite.schema` one for one,
so the two stores answer the contract suite identically. Differences are type-level only:
``BYTEA`` for hashes, ``BIGINT`` for millisecond times and sequence numbers, ``BOOLEAN`` for
flags, an identity column for SMS code ids. Every script runs inside one transaction (DDL is
transactional in PostgreSQL), so a migration is applied whole or not at all.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MIGRATIONS"]

MIGRATIONS: Final[tuple[str, ...]] = (
    # 1: accounts, sessions, SMS codes, conversations, messages, blocks
    """
    CREATE TABLE users(
        id TEXT PRIMARY KEY,
        phone TEXT NOT NULL UNIQUE,
        pw_hash TEXT NOT NULL,
        birthdate TEXT NOT NULL,
        gender TEXT NOT NULL,
        nickname TEXT NOT NULL,
        bio TEXT NOT NULL DEFAULT '',
        role TEXT NOT NULL DEFAULT 'user',
        created_at BIGINT NOT NULL,
        banned_until BIGINT NOT NULL DEFAULT 0,
        muted_until BIGINT NOT NULL DEFAULT 0
    );
    CREATE TABLE user_interests(
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        tag TEXT NOT NULL,
        pos INTEGER NOT NULL,
        PRIMARY KEY(user_id, tag)
    );
    CREATE INDEX user_interests_tag ON user_interests(tag);
    CREATE TABLE sessions(
        token_hash BYTEA PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        device TEXT NOT NULL DEFAULT '',
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
    );
    CREATE INDEX sessions_user ON sessions(user_id);
    CREATE TABLE sms_codes(
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        phone TEXT NOT NULL,
        purpose TEXT NOT NULL,
        code_hash BYTEA NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        used BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE INDEX sms_codes_phone ON sms_codes(phone, purpose, id);
    CREATE INDEX sms_codes_sent ON sms_codes(phone, created_at);
    CREATE TABLE conversations(
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('group', 'direct')),
        pair TEXT,
        last_seq BIGINT NOT NULL DEFAULT 0,
        closed BOOLEAN NOT NULL DEFAULT FALSE,
        created_at BIGINT NOT NULL
    );
    CREATE INDEX conversations_pair ON conversations(pair, created_at);
    CREATE TABLE conv_members(
        conv_id TEXT NOT NULL REFERENCES conversations(id),
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        joined_at BIGINT NOT NULL,
        left_at BIGINT,
        read_seq BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY(conv_id, user_id)
    );
    CREATE INDEX conv_members_user ON conv_members(user_id);
    CREATE TABLE messages(
        conv_id TEXT NOT NULL REFERENCES conversations(id),
        seq BIGINT NOT NULL,
        id TEXT NOT NULL UNIQUE,
        sender TEXT NOT NULL,
        body TEXT NOT NULL,
        ts BIGINT NOT NULL,
        cid TEXT,
        flagged BOOLEAN NOT NULL DEFAULT FALSE,
        PRIMARY KEY(conv_id, seq)
    );
    CREATE UNIQUE INDEX messages_cid ON messages(sender, cid) WHERE cid IS NOT NULL;
    CREATE TABLE blocks(
        blocker TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        blocked TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY(blocker, blocked)
    );
    CREATE INDEX blocks_blocked ON blocks(blocked)
    """,
    # 2: moderation, posts, search history, reports, consents, word-list changes, audit log
    """
    ALTER TABLE messages ADD COLUMN deleted BOOLEAN NOT NULL DEFAULT FALSE;
    CREATE INDEX messages_flagged ON messages(ts) WHERE flagged;
    CREATE INDEX messages_sender ON messages(sender);
    CREATE TABLE consents(
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        value BOOLEAN NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY(user_id, name)
    );
    CREATE TABLE posts(
        id TEXT PRIMARY KEY,
        author TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        grp TEXT,
        body TEXT NOT NULL,
        city TEXT,
        ts BIGINT NOT NULL,
        flagged BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE INDEX posts_author ON posts(author, ts);
    CREATE INDEX posts_group ON posts(grp, ts);
    CREATE INDEX posts_ts ON posts(ts);
    CREATE INDEX posts_flagged ON posts(ts) WHERE flagged;
    CREATE TABLE search_history(
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        query TEXT NOT NULL,
        ts BIGINT NOT NULL
    );
    CREATE INDEX search_history_user ON search_history(user_id, id);
    CREATE TABLE reports(
        id TEXT PRIMARY KEY,
        reporter TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        target TEXT NOT NULL,
        target_user TEXT NOT NULL,
        reason TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT '',
        snapshot TEXT NOT NULL DEFAULT '',
        count INTEGER NOT NULL DEFAULT 1,
        state TEXT NOT NULL DEFAULT 'open',
        resolution TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        UNIQUE(reporter, kind, target)
    );
    CREATE INDEX reports_open ON reports(state, updated_at);
    CREATE INDEX reports_target ON reports(kind, target);
    CREATE INDEX reports_target_user ON reports(target_user);
    CREATE TABLE word_changes(
        version BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        op TEXT NOT NULL,
        word TEXT NOT NULL,
        category TEXT NOT NULL DEFAULT '',
        action TEXT NOT NULL DEFAULT '',
        actor TEXT NOT NULL,
        ts BIGINT NOT NULL
    );
    CREATE TABLE audit_log(
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        ts BIGINT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL DEFAULT '',
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX audit_target ON audit_log(target);
    CREATE INDEX audit_actor ON audit_log(actor)
    """,
    # 3: the global SMS cap counts codes sent in the last hour
    """
    CREATE INDEX sms_codes_created ON sms_codes(created_at)
    """,
    # 4: full-text search: pg_trgm GIN indexes (trigrams: substrings of 3+ characters, fit
    # for Chinese) over users (nickname, bio) and posts (body); an index follows its rows by
    # itself. Nickname prefixes (queries of 1-2 characters) use a btree. SQLite's FTS5 tables.
    """
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    CREATE INDEX users_nickname_trgm ON users USING gin (nickname gin_trgm_ops);
    CREATE INDEX users_bio_trgm ON users USING gin (bio gin_trgm_ops);
    CREATE INDEX posts_body_trgm ON posts USING gin (body gin_trgm_ops);
    CREATE INDEX users_nickname_prefix ON users (lower(nickname) text_pattern_ops)
    """,
    # 5: replies, recall, per-user hides, conversation mutes, delivered receipts, session
    # activity (what a chat list and a devices page show)
    """
    ALTER TABLE messages ADD COLUMN reply_to TEXT;
    ALTER TABLE messages ADD COLUMN recalled BOOLEAN NOT NULL DEFAULT FALSE;
    ALTER TABLE conv_members ADD COLUMN mute_until BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE conv_members ADD COLUMN delivered_seq BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN last_active BIGINT NOT NULL DEFAULT 0;
    CREATE TABLE message_hides(
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        conv_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        PRIMARY KEY(user_id, conv_id, seq)
    )
    """,
    # 6: push devices and the durable push outbox, notification settings, marketing campaigns,
    # account verification (issue 18)
    """
    CREATE TABLE push_devices(
        token_hash BYTEA PRIMARY KEY REFERENCES sessions(token_hash) ON DELETE CASCADE,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        vendor TEXT NOT NULL,
        token TEXT NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE INDEX push_devices_user ON push_devices(user_id);
    CREATE TABLE push_outbox(
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        dedup TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        conv_id TEXT,
        seq BIGINT NOT NULL DEFAULT 0,
        payload TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        due_at BIGINT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL DEFAULT 'pending',
        last_error TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX push_outbox_due ON push_outbox(state, due_at);
    CREATE INDEX push_outbox_user ON push_outbox(user_id, conv_id);
    CREATE TABLE notify_settings(
        user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        enabled BOOLEAN NOT NULL DEFAULT TRUE,
        previews BOOLEAN NOT NULL DEFAULT FALSE,
        groups BOOLEAN NOT NULL DEFAULT FALSE,
        quiet_start INTEGER NOT NULL DEFAULT -1,
        quiet_end INTEGER NOT NULL DEFAULT -1,
        tz_offset INTEGER NOT NULL DEFAULT 480,
        updated_at BIGINT NOT NULL
    );
    CREATE TABLE campaigns(
        id TEXT PRIMARY KEY,
        actor TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        finished_at BIGINT,
        recipients INTEGER NOT NULL DEFAULT 0,
        sent INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL DEFAULT 'running'
    );
    ALTER TABLE users ADD COLUMN verification TEXT NOT NULL DEFAULT ''
    """,
    # 7: photos, voice clips and avatars; image bans; media links; feedback (issue 17)
    """
    CREATE TABLE media(
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        content_type TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        width INTEGER NOT NULL DEFAULT 0,
        height INTEGER NOT NULL DEFAULT 0,
        seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
        thumb_type TEXT NOT NULL DEFAULT '',
        phash BIGINT,
        created_at BIGINT NOT NULL,
        target TEXT NOT NULL DEFAULT '',
        ref TEXT NOT NULL DEFAULT '',
        review BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE INDEX media_owner ON media(owner);
    CREATE INDEX media_orphans ON media(created_at) WHERE target='';
    CREATE INDEX media_ref ON media(ref) WHERE ref<>'';
    CREATE INDEX media_target ON media(target) WHERE target<>'';
    CREATE INDEX media_review ON media(created_at) WHERE review;
    CREATE TABLE image_bans(
        id BIGSERIAL PRIMARY KEY,
        phash BIGINT NOT NULL,
        actor TEXT NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE media_links(
        token_hash BYTEA PRIMARY KEY,
        media_id TEXT NOT NULL REFERENCES media(id) ON DELETE CASCADE,
        user_id TEXT NOT NULL,
        expires_at BIGINT NOT NULL
    );
    CREATE INDEX media_links_expiry ON media_links(expires_at);
    CREATE TABLE feedback(
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        body TEXT NOT NULL,
        attachments TEXT NOT NULL DEFAULT '',
        created_at BIGINT NOT NULL,
        state TEXT NOT NULL DEFAULT 'open',
        reply TEXT NOT NULL DEFAULT '',
        replied_by TEXT NOT NULL DEFAULT '',
        replied_at BIGINT NOT NULL DEFAULT 0
    );
    CREATE INDEX feedback_user ON feedback(user_id, created_at);
    CREATE INDEX feedback_open ON feedback(created_at) WHERE state='open';
    ALTER TABLE messages ADD COLUMN attachments TEXT NOT NULL DEFAULT '';
    ALTER TABLE posts ADD COLUMN attachments TEXT NOT NULL DEFAULT '';
    ALTER TABLE users ADD COLUMN avatar TEXT NOT NULL DEFAULT ''
    """,
    # 8: one index by sender for the retry check and the by-sender queries (as on SQLite:
    # each index a message lands in is one more page written per sender). NULL cids are
    # distinct, so the retry check's uniqueness is what it was.
    """
    CREATE UNIQUE INDEX messages_sender_cid ON messages(sender, cid);
    DROP INDEX messages_cid;
    DROP INDEX messages_sender
    """,
)
