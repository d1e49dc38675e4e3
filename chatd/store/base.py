"""The storage contract: one :class:`Store` protocol, an implementation per database.

Every method is a coroutine; implementations must not block the event loop. Times are integer
milliseconds since the epoch. Writes that a method returns from are durably committed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from chatd.ids import TOMBSTONE, ConvId, UserId
from chatd.store.campaign import Campaign, CampaignBusy
from chatd.store.media import MediaRecords, parse_attachments

#: The outcome of :meth:`Store.try_sms_code`.
CodeTry = Literal["ok", "wrong", "burnt"]

__all__ = [
    "MSG_COLS",
    "QUOTE_CHARS",
    "TOMBSTONE",
    "UNREAD_CAP",
    "AppendResult",
    "AuditEntry",
    "Campaign",
    "CampaignBusy",
    "CodeTry",
    "Consent",
    "ConvId",
    "ConvSummary",
    "DuplicateError",
    "Membership",
    "Message",
    "NotifySettings",
    "Post",
    "PushDevice",
    "PushJob",
    "Quote",
    "RecallRefused",
    "Report",
    "ReviewItem",
    "SendContext",
    "SendRefused",
    "SessionRow",
    "SmsCodeRow",
    "Store",
    "StoreError",
    "StoreHealth",
    "StoreUnavailable",
    "User",
    "UserId",
    "WordChange",
    "message_row",
    "quote_row",
    "send_refusal",
]

ConvKind = Literal["group", "direct"]


class StoreError(Exception):
    """The store could not do what was asked (disk full, database down, constraint)."""


class DuplicateError(StoreError):
    """A unique constraint refused the write (e.g. the phone is registered already)."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or written right now (down, disk full, busy): retry."""


class StoreHealth:
    """The store's own view of itself: degraded from the first failed commit or connection
    until a commit succeeds again. The hooks (metrics) may be called from a store thread."""

    __slots__ = ("failures", "fault", "on_commit", "on_failure")

    def __init__(self) -> None:
        self.fault: str | None = None  # what failed last, while degraded
        self.failures = 0
        self.on_commit: Callable[[float], None] | None = None  # commit seconds
        self.on_failure: Callable[[], None] | None = None

    @property
    def healthy(self) -> bool:
        return self.fault is None

    def committed(self, seconds: float | None = None) -> None:
        self.fault = None
        if seconds is not None and self.on_commit is not None:
            self.on_commit(seconds)

    def failed(self, exc: BaseException) -> None:
        self.fault = str(exc)[:200] or type(exc).__name__
        self.failures += 1
        if self.on_failure is not None:
            self.on_failure()


@dataclass(frozen=True, slots=True)
class User:
    id: UserId
    phone: str
    pw_hash: str
    birthdate: str
    gender: str
    nickname: str
    bio: str
    role: str
    created_at: int
    interests: tuple[str, ...]
    banned_until: int = 0
    muted_until: int = 0
    # The verifier's verdict: "" (never asked), "pending", "verified" or "rejected".
    verification: str = ""
    avatar: str = ""  # a media id, "" for none

    @property
    def verified(self) -> bool:
        return self.verification == "verified"

    def public(self) -> dict[str, object]:
        """What other users may see: never the phone or the birthdate."""
        return {"id": self.id, "nickname": self.nickname, "bio": self.bio,
                "gender": self.gender, "interests": list(self.interests),
                "verified": self.verified, "avatar": self.avatar or None}


@dataclass(frozen=True, slots=True)
class SessionRow:
    token_hash: bytes
    user_id: UserId
    device: str
    created_at: int
    expires_at: int
    # When the session was last seen (ms): created, a connection authenticated with it, or
    # such a connection closed. Not moved by every request.
    last_active: int = 0


@dataclass(frozen=True, slots=True)
class SmsCodeRow:
    id: int
    phone: str
    purpose: str
    code_hash: bytes
    created_at: int
    expires_at: int
    attempts: int
    used: bool


#: How much of a quoted message a reply carries (a chat bubble shows a line of it).
QUOTE_CHARS: Final = 100


@dataclass(frozen=True, slots=True)
class Quote:
    """The message a reply answers, as it is when read: a recalled or removed one shows as
    such, with no text."""

    id: str
    seq: int
    sender: UserId
    body: str
    gone: Literal["", "recalled", "deleted"] = ""

    def wire(self) -> dict[str, object]:
        wire: dict[str, object] = {"id": self.id, "seq": self.seq, "from": self.sender,
                                   "body": "" if self.gone else self.body[:QUOTE_CHARS]}
        if self.gone:
            wire[self.gone] = True
        return wire


@dataclass(frozen=True, slots=True)
class Message:
    conv: ConvId
    id: str
    seq: int
    sender: UserId
    body: str
    ts: int
    # Removed by a moderator or anonymised by an account deletion: body is "", seq is kept.
    deleted: bool = False
    # Held for review by the word filter (read by the export; not part of the wire form).
    flagged: bool = False
    # Recalled by its sender: body is "" (erased), seq is kept.
    recalled: bool = False
    reply_to: str | None = None
    quote: Quote | None = None  # the message ``reply_to`` names, when it can be read
    attachments: tuple[dict[str, Any], ...] = ()  # photos or a voice clip (MediaRecord.wire)

    def wire(self) -> dict[str, object]:
        wire: dict[str, object] = {"t": "msg", "conv": self.conv, "id": self.id,
                                   "seq": self.seq, "from": self.sender, "body": self.body,
                                   "ts": self.ts}
        if self.deleted:
            wire["deleted"] = True
        if self.recalled:
            wire["recalled"] = True
        if self.reply_to is not None:
            wire["reply_to"] = self.reply_to
            if self.quote is not None:
                wire["quote"] = self.quote.wire()
        if self.attachments and not (self.deleted or self.recalled):
            wire["attachments"] = list(self.attachments)
        return wire


#: A message with the one it replies to (``m`` and ``q``): every read of messages selects
#: these columns (the same SQL in both dialects) and turns a row into a record with
#: :func:`message_row`.
MSG_COLS: Final = ("SELECT m.conv_id, m.id, m.seq, m.sender, m.body, m.ts, m.deleted,"
                   " m.recalled, m.reply_to, q.seq, q.sender, q.body, q.recalled, q.deleted,"
                   " m.attachments FROM messages m LEFT JOIN messages q ON q.id=m.reply_to")


def quote_row(msg_id: str, r: Sequence[Any]) -> Quote:
    """A quote from the columns ``seq, sender, body, recalled, deleted`` of its message."""
    return Quote(msg_id, int(r[0]), UserId(r[1]), r[2],
                 "recalled" if r[3] else "deleted" if r[4] else "")


def message_row(r: Sequence[Any]) -> Message:
    quote = quote_row(r[8], r[9:14]) if r[8] is not None and r[9] is not None else None
    return Message(ConvId(r[0]), r[1], int(r[2]), UserId(r[3]), r[4], int(r[5]), bool(r[6]),
                   recalled=bool(r[7]), reply_to=r[8], quote=quote,
                   attachments=parse_attachments(r[14]))


@dataclass(frozen=True, slots=True)
class AppendResult:
    message: Message
    # False when a retried client id found the first result instead of storing a new message.
    created: bool


#: ``unread`` counts at most this many (the newest): a chat list shows "999+".
UNREAD_CAP: Final = 999


@dataclass(frozen=True, slots=True)
class ConvSummary:
    id: ConvId
    kind: ConvKind
    last_seq: int
    read_seq: int
    peer: UserId | None
    closed: bool
    # Unread messages after ``read_seq`` (at most ``UNREAD_CAP``): never the reader's own,
    # nor ones from users the reader blocked, nor hidden, recalled or removed ones.
    unread: int = 0
    last: Message | None = None  # the newest message the reader sees (hides, blocks)
    active_at: int = 0  # the newest message's time, else when the reader joined
    mute_until: int = 0  # notifications of this conversation are muted until then
    peer_nickname: str = ""
    peer_read_seq: int = 0  # 1:1: how far the peer has read and received
    peer_delivered_seq: int = 0
    peer_avatar: str = ""  # the peer's avatar (a media id), "" for none


@dataclass(frozen=True, slots=True)
class Membership:
    """A user's membership of a conversation, current or left (the export's view)."""

    conv: ConvId
    kind: ConvKind
    joined_at: int
    left_at: int | None
    read_seq: int


@dataclass(frozen=True, slots=True)
class SendContext:
    """Everything ``msg.send`` must know, read in one round trip."""

    kind: ConvKind
    closed: bool
    member: bool
    # 1:1 only: the other member, and whether they blocked the sender.
    peer: UserId | None
    peer_blocked_sender: bool
    muted_until: int


@dataclass(frozen=True, slots=True)
class SendRefused:
    """Why ``send_message`` stored nothing: data, never an exception, so that a refused
    message does not roll back the group-commit batch it shares with others."""

    reason: Literal["not_member", "muted", "closed", "blocked", "no_reply_target"]
    until: int = 0  # muted: when the mute ends


#: Why :meth:`Store.recall_message` recalled nothing.
RecallRefused = Literal["not_found", "not_sender", "too_late"]


def send_refusal(ctx: SendContext | None, now: int) -> SendRefused | None:
    """The rule ``send_message`` applies to the context it read (``None``: no such conv)."""
    if ctx is None or not ctx.member:
        return SendRefused("not_member")
    if ctx.muted_until > now:
        return SendRefused("muted", ctx.muted_until)
    if ctx.closed:
        return SendRefused("closed")
    if ctx.peer_blocked_sender:
        return SendRefused("blocked")
    return None


FeedScope = Literal["group", "peers", "mine"]
WordOp = Literal["add", "remove", "allow_add", "allow_remove"]


@dataclass(frozen=True, slots=True)
class WordChange:
    """One moderator change to the word lists; ``version`` is given by the store (0 = new)."""

    op: WordOp
    word: str
    category: str
    action: str
    actor: str
    ts: int
    version: int = 0


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """Who did what to whom, when (``id`` is given by the store)."""

    ts: int
    actor: str
    action: str
    target: str
    detail: str = ""
    id: int = 0

    def wire(self) -> dict[str, object]:
        return {"id": self.id, "ts": self.ts, "actor": self.actor, "action": self.action,
                "target": self.target, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Post:
    id: str
    author: UserId
    body: str
    ts: int
    group: str | None = None
    city: str | None = None
    flagged: bool = False
    # Read with the post, never stored in it.
    author_nickname: str = ""
    attachments: tuple[dict[str, Any], ...] = ()  # up to 9 photos (MediaRecord.wire)

    def wire(self) -> dict[str, object]:
        """What a viewer sees: the author's id and nickname only."""
        wire: dict[str, object] = {"id": self.id, "author": {"id": self.author,
                                                             "nickname": self.author_nickname},
                                   "body": self.body, "ts": self.ts, "group": self.group}
        if self.city:
            wire["city"] = self.city
        if self.attachments:
            wire["attachments"] = list(self.attachments)
        return wire


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """A text the filter flagged ``review``: a message (``m:<id>``) or a post (``p:<id>``)."""

    kind: Literal["message", "post"]
    id: str
    author: UserId
    body: str
    ts: int
    where: str | None  # the conversation of a message, the group of a post

    @property
    def item(self) -> str:
        return ("m:" if self.kind == "message" else "p:") + self.id


ReportKind = Literal["user", "message", "post"]


@dataclass(frozen=True, slots=True)
class Report:
    """A user's report; one per (reporter, kind, target): a repeat bumps ``count``."""

    id: str
    reporter: UserId
    kind: ReportKind
    target: str
    target_user: UserId
    reason: str
    note: str
    snapshot: str
    created_at: int
    updated_at: int
    count: int = 1
    state: Literal["open", "resolved"] = "open"
    resolution: str | None = None


@dataclass(frozen=True, slots=True)
class Consent:
    name: str
    value: bool
    updated_at: int


@dataclass(frozen=True, slots=True)
class PushDevice:
    """A device's push registration; one per session (``token_hash`` of that session)."""

    token_hash: bytes
    user_id: UserId
    vendor: str
    token: str
    created_at: int


@dataclass(frozen=True, slots=True)
class NotifySettings:
    """A user's notification choices. Quiet hours are minutes of the user's local day
    (``tz_offset`` minutes east of UTC); ``quiet_start == -1`` means none."""

    enabled: bool = True
    previews: bool = False  # show the message text in the notification
    groups: bool = False  # notify for group messages too (1:1 always, when enabled)
    quiet_start: int = -1
    quiet_end: int = -1
    tz_offset: int = 480


@dataclass(frozen=True, slots=True)
class PushJob:
    """One notification in the durable outbox. ``id``, ``attempts``, ``read_seq`` and
    ``delivered_seq`` (the user's marks of ``conv`` when the job was claimed) are given by
    the store."""

    user_id: UserId
    kind: str
    dedup: str
    payload: str  # JSON: title, body, data
    created_at: int
    due_at: int
    conv: ConvId | None = None
    seq: int = 0
    id: int = 0
    attempts: int = 0
    read_seq: int = 0
    delivered_seq: int = 0


class Store(MediaRecords, Protocol):
    health: StoreHealth

    async def open(self) -> None: ...
    async def close(self) -> None: ...

    # Users
    async def create_user(self, user: User, group_convs: Sequence[ConvId]) -> None: ...
    async def get_user(self, user_id: UserId) -> User | None: ...
    async def get_user_by_phone(self, phone: str) -> User | None: ...
    async def set_password(self, user_id: UserId, pw_hash: str) -> None: ...
    async def set_phone(self, user_id: UserId, phone: str) -> None: ...
    async def update_profile(self, user_id: UserId, nickname: str | None, bio: str | None,
                             interests: Sequence[str] | None,
                             group_convs: Sequence[ConvId] | None) -> User: ...

    # Sessions
    async def create_session(self, row: SessionRow) -> None: ...
    async def get_session(self, token_hash: bytes, now: int) -> SessionRow | None: ...
    async def delete_session(self, token_hash: bytes) -> None: ...
    async def delete_user_sessions(self, user_id: UserId,
                                   keep: bytes | None = None) -> list[bytes]: ...
    async def live_sessions(self, user_id: UserId, now: int, limit: int) -> list[SessionRow]:
        """The user's unexpired sessions (``expires_at > now``), at most ``limit``, most
        recently active first (then the newest first)."""
    async def touch_session(self, token_hash: bytes, ts: int) -> None:
        """Move the session's ``last_active`` to ``ts`` (never backwards); nothing for an
        unknown session."""
    async def delete_user_session(self, user_id: UserId, token_hash: bytes) -> bool:
        """Delete the session if it is ``user_id``'s; False when there was no such session."""

    # Contacts: the other member of each open 1:1 (both still in it), no block either way
    async def contacts_of(self, user_id: UserId) -> set[UserId]: ...

    # SMS codes
    async def add_sms_code(self, phone: str, purpose: str, code_hash: bytes, created_at: int,
                           expires_at: int) -> None: ...
    async def latest_sms_code(self, phone: str, purpose: str) -> SmsCodeRow | None: ...
    async def sms_sends_since(self, phone: str, since: int) -> list[int]: ...
    async def sms_total_since(self, since: int) -> int: ...
    async def sms_code_failed(self, code_id: int) -> None: ...
    async def sms_code_used(self, code_id: int) -> bool: ...
    async def try_sms_code(self, phone: str, purpose: str, code_hash: bytes, now: int,
                           max_attempts: int) -> CodeTry:
        """One try of the latest code of ``phone`` and ``purpose``, compared and counted in one
        atomic step (however many tries arrive at once, on however many nodes): ``ok`` marks
        it used; ``wrong`` counts an attempt; ``burnt`` when there is none usable (missing,
        used, expired, or ``max_attempts`` wrong tries already)."""

    # Conversations and messages
    async def create_direct(self, conv: ConvId, a: UserId, b: UserId, now: int) -> None: ...
    async def create_directs(self, pairs: Sequence[tuple[ConvId, UserId, UserId]],
                             now: int) -> None: ...
    async def get_users(self, user_ids: Sequence[UserId]) -> dict[UserId, User]: ...
    async def is_member(self, conv: ConvId, user_id: UserId) -> bool: ...
    async def was_member(self, conv: ConvId, user_id: UserId) -> bool: ...
    async def send_context(self, conv: ConvId, user_id: UserId) -> SendContext | None: ...
    async def conv_members(self, conv: ConvId) -> list[UserId]: ...
    async def user_convs(self, user_id: UserId) -> list[ConvSummary]: ...
    async def conv_seqs(self, user_id: UserId) -> dict[ConvId, int]:
        """The user's current conversations and their last seqs (what a connection needs
        to route; cheap, unlike the chat list of :meth:`user_convs`)."""
    async def leave_conv(self, conv: ConvId, user_id: UserId, now: int) -> bool: ...
    async def append_message(self, conv: ConvId, msg_id: str, sender: UserId, body: str, ts: int,
                             cid: str | None, flagged: bool) -> AppendResult: ...
    async def send_message(self, conv: ConvId, msg_id: str, sender: UserId, ts: int,
                           cid: str | None, body: str, flagged: bool,
                           reply_to: str | None = None,
                           attachments: str = "") -> AppendResult | SendRefused:
        """The retry check, the sender's right to send and the reply target (a message of
        the same conversation) in one job; a refusal is returned, not raised."""
    async def history(self, conv: ConvId, after: int, limit: int,
                      viewer: UserId | None = None,
                      hide_blocked: bool = False) -> list[Message]:
        """Up to ``limit`` messages with ``seq > after``, oldest first, with their quotes.
        With ``viewer``: none the viewer hid, and with ``hide_blocked`` none from users the
        viewer blocked (left out before the limit, so pages stay full)."""
    async def set_read(self, conv: ConvId, user_id: UserId, seq: int) -> int: ...
    async def recall_message(self, conv: ConvId, msg_id: str, sender: UserId, now: int,
                             window_ms: int) -> Message | RecallRefused:
        """Erase the text of the sender's own message sent within ``window_ms`` (the row and
        its seq stay, ``recalled``); recalling twice returns the recalled message again."""
    async def hide_message(self, conv: ConvId, msg_id: str, user_id: UserId) -> Message | None:
        """Hide one message of ``conv`` from ``user_id``'s own view; None if no such message."""
    async def set_conv_mute(self, conv: ConvId, user_id: UserId, until: int) -> bool:
        """False when the user is not a current member."""
    async def mark_delivered(self, marks: Sequence[tuple[ConvId, UserId, int]]
                             ) -> list[tuple[ConvId, UserId, int]]:
        """Raise each (conv, recipient) delivered mark to ``seq`` (clamped to ``last_seq``);
        returns the marks that rose, with their new value."""
    async def recent_pairs(self, users: Sequence[UserId],
                           since: int) -> set[tuple[UserId, UserId]]: ...

    # Blocks
    async def block(self, blocker: UserId, blocked: UserId, now: int) -> None: ...
    async def unblock(self, blocker: UserId, blocked: UserId) -> None: ...
    async def blocked_by(self, user_id: UserId) -> set[UserId]: ...
    async def blocks_of(self, user_id: UserId) -> set[UserId]: ...
    async def blocks_among(self, users: Sequence[UserId]) -> set[tuple[UserId, UserId]]: ...
    async def presence_visible(self, viewer: UserId,
                               users: Sequence[UserId]) -> set[UserId]: ...

    # Moderation
    async def set_role(self, user_id: UserId, role: str) -> bool: ...
    async def set_banned(self, user_id: UserId, until: int) -> bool: ...
    async def set_muted(self, user_id: UserId, until: int) -> bool: ...
    async def add_word_change(self, change: WordChange) -> int: ...
    async def word_changes(self, after: int = 0) -> list[WordChange]: ...
    async def word_version(self) -> int: ...
    async def add_audit(self, entry: AuditEntry) -> int: ...
    async def audit_log(self, before: int | None, limit: int,
                        target: str | None = None) -> list[AuditEntry]: ...
    async def review_queue(self, offset: int, limit: int) -> list[ReviewItem]: ...
    async def unflag(self, kind: str, item_id: str) -> bool: ...
    async def get_message(self, msg_id: str) -> Message | None: ...
    async def delete_message(self, msg_id: str) -> Message | None: ...

    # Posts and feeds
    async def create_post(self, post: Post) -> None: ...
    async def get_post(self, post_id: str) -> Post | None: ...
    async def delete_post(self, post_id: str) -> bool: ...
    async def feed(self, viewer: UserId, scope: FeedScope, group: str | None,
                   before: tuple[int, str] | None, limit: int, now: int) -> list[Post]: ...
    async def clear_post_locations(self, user_id: UserId) -> None: ...

    # Search
    async def search_users(self, viewer: UserId, text: str, tags: Sequence[str], offset: int,
                           limit: int, now: int) -> list[User]: ...
    async def search_posts(self, viewer: UserId, text: str, offset: int, limit: int,
                           now: int) -> list[Post]: ...
    async def add_search(self, user_id: UserId, query: str, ts: int, keep: int) -> None: ...
    async def search_history(self, user_id: UserId, limit: int) -> list[tuple[str, int]]: ...
    async def clear_search_history(self, user_id: UserId) -> None: ...

    # Reports
    async def add_report(self, report: Report) -> Report: ...
    async def get_report(self, report_id: str) -> Report | None: ...
    async def reports_by(self, user_id: UserId) -> list[Report]: ...
    async def open_reports(self, offset: int, limit: int) -> list[Report]: ...
    async def resolve_reports(self, kind: str, target: str, resolution: str, ts: int) -> int: ...
    async def resolve_reports_for(self, kind: str, target: str, resolution: str,
                                  ts: int) -> list[tuple[str, UserId]]:
        """Like :meth:`resolve_reports`; the (report id, reporter) of each report resolved."""

    # Privacy
    async def get_consents(self, user_id: UserId) -> list[Consent]: ...
    async def set_consent(self, user_id: UserId, name: str, value: bool, ts: int) -> None: ...
    async def user_sessions(self, user_id: UserId) -> list[SessionRow]: ...
    async def messages_by(self, user_id: UserId) -> list[Message]: ...
    async def posts_by(self, user_id: UserId) -> list[Post]: ...
    async def memberships_of(self, user_id: UserId) -> list[Membership]: ...
    async def sms_codes_of(self, user_id: UserId) -> list[SmsCodeRow]: ...
    async def erase_sms_codes_of(self, user_id: UserId) -> None: ...
    async def purge_sms_codes(self, expired_before: int, sent_before: int) -> int: ...
    async def delete_account(self, user_id: UserId) -> list[bytes]: ...

    # Push notifications
    async def set_push_device(self, device: PushDevice) -> None:
        """Register (or replace) the push token of one session."""
    async def delete_push_device(self, token_hash: bytes, vendor: str | None = None) -> bool: ...
    async def delete_push_token(self, vendor: str, token: str) -> int:
        """Forget a token the vendor reported invalid, whatever session holds it."""
    async def push_devices_of(self, user_id: UserId) -> list[PushDevice]: ...
    async def get_notify_settings(self, user_id: UserId) -> NotifySettings: ...
    async def set_notify_settings(self, user_id: UserId, settings: NotifySettings,
                                  now: int) -> None: ...
    async def push_targets(self, conv: ConvId, sender: UserId,
                           now: int) -> list[tuple[UserId, NotifySettings]]:
        """Members of ``conv`` other than ``sender`` a message there may be pushed to: with
        a device, notifications on (for groups: group notifications on), the conversation
        not muted by them, the sender not blocked by them."""
    async def enqueue_pushes(self, jobs: Sequence[PushJob]) -> int:
        """Add jobs to the outbox; returns how many were new. A ``msg`` job joins a pending
        one of the same user and conversation (one notification per burst); any other job
        whose ``dedup`` is known already is dropped."""
    async def claim_pushes(self, now: int, lease_ms: int, limit: int) -> list[PushJob]:
        """Up to ``limit`` due jobs, leased for ``lease_ms`` (a claimer that dies gives them
        back when the lease ends): at most one claimer holds a job at a time."""
    async def finish_push(self, job_id: int, state: str, due_at: int, attempts: int,
                          error: str = "") -> None:
        """``state`` ``sent``/``dropped``/``failed`` ends the job; ``pending`` retries it at
        ``due_at``."""
    async def push_jobs_of(self, user_id: UserId) -> list[tuple[str, str, int]]:
        """(kind, state, created_at) of the user's jobs (the export)."""

    # Outreach: the server API, marketing campaigns, account verification
    async def conv_exists(self, conv: ConvId) -> bool: ...
    async def set_verification(self, user_id: UserId, state: str) -> bool: ...
    async def start_campaign(self, campaign: Campaign) -> tuple[Campaign, bool] | CampaignBusy:
        """Record ``campaign`` as running, with ``recipients`` counted in the same step (as
        :meth:`campaign_recipients` with ``consented_before=created_at`` would list them).
        An id recorded already returns that campaign and False (a retried start); another
        running campaign refuses, on any node."""
    async def get_campaign(self, campaign_id: str) -> Campaign | None: ...
    async def campaign_recipients(self, after: str, limit: int, now: int,
                                  consented_before: int) -> list[tuple[UserId, str]]:
        """(user id, phone) of up to ``limit`` users with an id above ``after``, by id, whose
        ``marketing`` consent is on since ``consented_before`` or earlier and who are not
        banned at ``now``."""
    async def campaign_progress(self, campaign_id: str, sent: int, failed: int) -> str | None:
        """Store the counts of a campaign, whatever its state (a cancelled one's sender
        reports the page it was sending); its state (None: no such campaign)."""
    async def end_campaign(self, campaign_id: str, state: str, ts: int, sent: int | None = None,
                           failed: int | None = None) -> Campaign | None:
        """End a running campaign in ``state`` (counts as given); one that ended already
        keeps its end. The campaign as it is now (None: no such campaign)."""
