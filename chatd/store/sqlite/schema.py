"""SQLite schema migrations, applied in order; ``schema_version`` records how far a file is."""

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
        created_at INTEGER NOT NULL,
        banned_until INTEGER NOT NULL DEFAULT 0,
        muted_until INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE user_interests(
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        tag TEXT NOT NULL,
        pos INTEGER NOT NULL,
        PRIMARY KEY(user_id, tag)
    );
    CREATE INDEX user_interests_tag ON user_interests(tag);
    CREATE TABLE sessions(
        token_hash BLOB PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        device TEXT NOT NULL DEFAULT '',
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX sessions_user ON sessions(user_id);
    CREATE TABLE sms_codes(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        phone TEXT NOT NULL,
        purpose TEXT NOT NULL,
        code_hash BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        used INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX sms_codes_phone ON sms_codes(phone, purpose, id);
    CREATE INDEX sms_codes_sent ON sms_codes(phone, created_at);
    CREATE TABLE conversations(
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('group', 'direct')),
        pair TEXT,
        last_seq INTEGER NOT NULL DEFAULT 0,
        closed INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX conversations_pair ON conversations(pair, created_at);
    CREATE TABLE conv_members(
        conv_id TEXT NOT NULL REFERENCES conversations(id),
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        joined_at INTEGER NOT NULL,
        left_at INTEGER,
        read_seq INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY(conv_id, user_id)
    );
    CREATE INDEX conv_members_user ON conv_members(user_id);
    CREATE TABLE messages(
        conv_id TEXT NOT NULL REFERENCES conversations(id),
        seq INTEGER NOT NULL,
        id TEXT NOT NULL UNIQUE,
        sender TEXT NOT NULL,
        body TEXT NOT NULL,
        ts INTEGER NOT NULL,
        cid TEXT,
        flagged INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY(conv_id, seq)
    );
    CREATE UNIQUE INDEX messages_cid ON messages(sender, cid) WHERE cid IS NOT NULL;
    CREATE TABLE blocks(
        blocker TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        blocked TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY(blocker, blocked)
    );
    CREATE INDEX blocks_blocked ON blocks(blocked)
    """,
    # 2: moderation, posts, search history, reports, consents, word-list changes, audit log
    """
    ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX messages_flagged ON messages(ts) WHERE flagged=1;
    CREATE INDEX messages_sender ON messages(sender);
    CREATE TABLE consents(
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        value INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY(user_id, name)
    );
    CREATE TABLE posts(
        id TEXT PRIMARY KEY,
        author TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        grp TEXT,
        body TEXT NOT NULL,
        city TEXT,
        ts INTEGER NOT NULL,
        flagged INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX posts_author ON posts(author, ts);
    CREATE INDEX posts_group ON posts(grp, ts);
    CREATE INDEX posts_ts ON posts(ts);
    CREATE INDEX posts_flagged ON posts(ts) WHERE flagged=1;
    CREATE TABLE search_history(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        query TEXT NOT NULL,
        ts INTEGER NOT NULL
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
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE(reporter, kind, target)
    );
    CREATE INDEX reports_open ON reports(state, updated_at);
    CREATE INDEX reports_target ON reports(kind, target);
    CREATE INDEX reports_target_user ON reports(target_user);
    CREATE TABLE word_changes(
        version INTEGER PRIMARY KEY AUTOINCREMENT,
        op TEXT NOT NULL,
        word TEXT NOT NULL,
        category TEXT NOT NULL DEFAULT '',
        action TEXT NOT NULL DEFAULT '',
        actor TEXT NOT NULL,
        ts INTEGER NOT NULL
    );
    CREATE TABLE audit_log(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts INTEGER NOT NULL,
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
)
