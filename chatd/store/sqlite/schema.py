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
    # 4: full-text search (FTS5, trigram tokenizer: substrings of 3+ characters, fit for
    # Chinese) over users (nickname, bio) and posts (body), filled from the existing rows and
    # kept in step by triggers. ``fts_docs`` gives each indexed row a stable integer rowid
    # (users and posts have text keys, whose implicit rowids VACUUM may renumber).
    """
    CREATE TABLE fts_docs(
        rid INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        ref TEXT NOT NULL,
        UNIQUE(kind, ref)
    );
    CREATE VIRTUAL TABLE users_fts USING fts5(nickname, bio, tokenize='trigram');
    CREATE VIRTUAL TABLE posts_fts USING fts5(body, tokenize='trigram');
    INSERT INTO fts_docs(kind, ref) SELECT 'u', id FROM users;
    INSERT INTO users_fts(rowid, nickname, bio)
        SELECT d.rid, u.nickname, u.bio FROM users u JOIN fts_docs d ON d.kind='u' AND d.ref=u.id;
    INSERT INTO fts_docs(kind, ref) SELECT 'p', id FROM posts;
    INSERT INTO posts_fts(rowid, body)
        SELECT d.rid, p.body FROM posts p JOIN fts_docs d ON d.kind='p' AND d.ref=p.id;
    CREATE TRIGGER users_fts_insert AFTER INSERT ON users BEGIN
        INSERT INTO fts_docs(kind, ref) VALUES ('u', new.id);
        INSERT INTO users_fts(rowid, nickname, bio) VALUES (
            (SELECT rid FROM fts_docs WHERE kind='u' AND ref=new.id), new.nickname, new.bio);
    END;
    CREATE TRIGGER users_fts_update AFTER UPDATE OF nickname, bio ON users BEGIN
        UPDATE users_fts SET nickname=new.nickname, bio=new.bio
            WHERE rowid=(SELECT rid FROM fts_docs WHERE kind='u' AND ref=old.id);
    END;
    CREATE TRIGGER users_fts_delete AFTER DELETE ON users BEGIN
        DELETE FROM users_fts WHERE rowid=(SELECT rid FROM fts_docs WHERE kind='u' AND ref=old.id);
        DELETE FROM fts_docs WHERE kind='u' AND ref=old.id;
    END;
    CREATE TRIGGER posts_fts_insert AFTER INSERT ON posts BEGIN
        INSERT INTO fts_docs(kind, ref) VALUES ('p', new.id);
        INSERT INTO posts_fts(rowid, body) VALUES (
            (SELECT rid FROM fts_docs WHERE kind='p' AND ref=new.id), new.body);
    END;
    CREATE TRIGGER posts_fts_update AFTER UPDATE OF body ON posts BEGIN
        UPDATE posts_fts SET body=new.body
            WHERE rowid=(SELECT rid FROM fts_docs WHERE kind='p' AND ref=old.id);
    END;
    CREATE TRIGGER posts_fts_delete AFTER DELETE ON posts BEGIN
        DELETE FROM posts_fts WHERE rowid=(SELECT rid FROM fts_docs WHERE kind='p' AND ref=old.id);
        DELETE FROM fts_docs WHERE kind='p' AND ref=old.id;
    END;
    CREATE INDEX users_nickname_nocase ON users(nickname COLLATE NOCASE)
    """,
    # 5: replies, recall, per-user hides, conversation mutes, delivered receipts, session
    # activity (what a chat list and a devices page show)
    """
    ALTER TABLE messages ADD COLUMN reply_to TEXT;
    ALTER TABLE messages ADD COLUMN recalled INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE conv_members ADD COLUMN mute_until INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE conv_members ADD COLUMN delivered_seq INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN last_active INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE message_hides(
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        conv_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY(user_id, conv_id, seq)
    )
    """,
    # 6: push devices and the durable push outbox, notification settings, marketing campaigns,
    # account verification (issue 18)
    """
    CREATE TABLE push_devices(
        token_hash BLOB PRIMARY KEY REFERENCES sessions(token_hash) ON DELETE CASCADE,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        vendor TEXT NOT NULL,
        token TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX push_devices_user ON push_devices(user_id);
    CREATE TABLE push_outbox(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        dedup TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        conv_id TEXT,
        seq INTEGER NOT NULL DEFAULT 0,
        payload TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        due_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL DEFAULT 'pending',
        last_error TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX push_outbox_due ON push_outbox(state, due_at);
    CREATE INDEX push_outbox_user ON push_outbox(user_id, conv_id);
    CREATE TABLE notify_settings(
        user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        enabled INTEGER NOT NULL DEFAULT 1,
        previews INTEGER NOT NULL DEFAULT 0,
        groups INTEGER NOT NULL DEFAULT 0,
        quiet_start INTEGER NOT NULL DEFAULT -1,
        quiet_end INTEGER NOT NULL DEFAULT -1,
        tz_offset INTEGER NOT NULL DEFAULT 480,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE campaigns(
        id TEXT PRIMARY KEY,
        actor TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        finished_at INTEGER,
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
        seconds REAL NOT NULL DEFAULT 0,
        thumb_type TEXT NOT NULL DEFAULT '',
        phash INTEGER,
        created_at INTEGER NOT NULL,
        target TEXT NOT NULL DEFAULT '',
        ref TEXT NOT NULL DEFAULT '',
        review INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX media_owner ON media(owner);
    CREATE INDEX media_orphans ON media(created_at) WHERE target='';
    CREATE INDEX media_ref ON media(ref) WHERE ref<>'';
    CREATE INDEX media_target ON media(target) WHERE target<>'';
    CREATE INDEX media_review ON media(created_at) WHERE review=1;
    CREATE TABLE image_bans(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        phash INTEGER NOT NULL,
        actor TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE media_links(
        token_hash BLOB PRIMARY KEY,
        media_id TEXT NOT NULL REFERENCES media(id) ON DELETE CASCADE,
        user_id TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX media_links_expiry ON media_links(expires_at);
    CREATE TABLE feedback(
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        body TEXT NOT NULL,
        attachments TEXT NOT NULL DEFAULT '',
        created_at INTEGER NOT NULL,
        state TEXT NOT NULL DEFAULT 'open',
        reply TEXT NOT NULL DEFAULT '',
        replied_by TEXT NOT NULL DEFAULT '',
        replied_at INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX feedback_user ON feedback(user_id, created_at);
    CREATE INDEX feedback_open ON feedback(created_at) WHERE state='open';
    ALTER TABLE messages ADD COLUMN attachments TEXT NOT NULL DEFAULT '';
    ALTER TABLE posts ADD COLUMN attachments TEXT NOT NULL DEFAULT '';
    ALTER TABLE users ADD COLUMN avatar TEXT NOT NULL DEFAULT ''
    """,
    # 8: one index by sender for the retry check and the by-sender queries: each index a
    # message lands in costs a page per sender per commit (a third of a commit's writes).
    # NULL cids are distinct, so the retry check's uniqueness is what it was.
    """
    CREATE UNIQUE INDEX messages_sender_cid ON messages(sender, cid);
    DROP INDEX messages_cid;
    DROP INDEX messages_sender
    """,
)
