"""Accounts and sessions: SMS codes, registration, login, tokens, password reset, phone rebind."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

import argon2

from chatd.catalog import Catalog, group_conv_id
from chatd.config import Config
from chatd.errors import (
    CLOSE_REVOKED,
    BadRequest,
    Conflict,
    Forbidden,
    InvalidCode,
    NotFound,
    RateLimited,
    Unauthorized,
    Underage,
    muted,
)
from chatd.ids import ConvId, UserId
from chatd.limits import Counters, MemoryCounters
from chatd.node import Node
from chatd.services.ops import (
    BODY_OPT,
    LINE,
    LINE_OPT,
    S_OPT,
    STR_LIST,
    Attach,
    Call,
    End,
    Field,
    Outcome,
    S,
    op,
)
from chatd.services.phones import mask_phone, normalize_phone
from chatd.services.privacy import consents_of
from chatd.services.sms import SmsError, SmsProvider
from chatd.services.text import TextGate
from chatd.services.verification import Verifier
from chatd.store import DuplicateError, SessionRow, Store, StoreError, User

__all__ = ["AccountService", "LoginResult", "age_on", "hash_token", "self_view", "session_id"]

log = logging.getLogger("chatd.accounts")

Purpose = Literal["register", "login", "reset", "rebind", "delete"]
PURPOSES: Final = ("register", "login", "reset", "rebind", "delete")
GENDERS: Final = ("male", "female", "other")
DAY_MS: Final = 86_400_000
HOUR_MS: Final = 3_600_000
MIN_PASSWORD: Final = 8
MAX_PASSWORD: Final = 128
MAX_NICKNAME: Final = 20
MAX_BIO: Final = 200
# The matcher indexes pairs of tags: keep the per-user count small.
MAX_INTERESTS: Final = 10
FAILURE_WINDOW_MS: Final = 15 * 60_000
#: Sessions ``sessions`` lists (the most recently active); older ones still work.
MAX_SESSIONS_LISTED: Final = 100


def hash_token(token: str) -> bytes:
    """Session tokens are 256 random bits, so a plain SHA-256 is a safe at-rest form."""
    return hashlib.sha256(token.encode()).digest()


def session_id(token_hash: bytes) -> str:
    """A session's public id: the hex of the first 8 bytes of its token's SHA-256. It names
    the session to its owner and resumes nothing (the hash of a random token is one way, and
    this is only part of it); no column is needed for it."""
    return token_hash[:8].hex()


@dataclass(frozen=True, slots=True)
class LoginResult:
    user: User
    token: str
    token_hash: bytes


class AccountService:
    def __init__(self, config: Config, store: Store, node: Node, sms: SmsProvider,
                 catalog: Catalog, text: TextGate, secret: bytes,
                 now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
                 counters: Counters | None = None, verifier: Verifier | None = None) -> None:
        self.config = config
        self.store = store
        self.node = node
        self.sms = sms
        self.catalog = catalog
        self.text = text
        self._secret = secret
        self._now = now_ms
        # argon2id with the library's current recommended parameters.
        self._hasher = argon2.PasswordHasher()
        # Verified instead of a real hash for an unknown phone, so a wrong-password login takes
        # as long whether the phone is registered or not (no enumeration by timing).
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(24))
        # Guessing limits per phone and per client address, counted before the slow step and
        # across nodes when the counters are Redis' (see chatd.limits).
        self.counters: Counters = counters if counters is not None else MemoryCounters()
        # With a verifier, new accounts start pending and the verifier is told of each.
        self.verifier = verifier

    # --- the connection ------------------------------------------------------------------

    @op("ping", auth="none")
    async def ping(self, call: Call) -> dict[str, Any]:
        return {"ts": self._now()}

    @op("interests", auth="none")
    async def interests(self, call: Call) -> dict[str, Any]:
        return {"tags": self.catalog.as_wire()}

    # --- SMS codes -----------------------------------------------------------------------

    @op("sms.send", auth="none", phone=S, purpose=S)
    async def send_code(self, call: Call, phone: str, purpose: str) -> dict[str, Any]:
        if purpose not in PURPOSES:
            raise BadRequest(f"purpose must be one of {', '.join(PURPOSES)}", field="purpose")
        raw_phone, address = phone, call.address
        phone = normalize_phone(raw_phone)
        if purpose in ("rebind", "delete") and call.user_id is None:
            raise Forbidden("log in first")
        if purpose == "delete":
            # A deletion code goes only to the account's own phone.
            me = await self.store.get_user(call.user)
            if me is None or phone != me.phone:
                raise Forbidden("a deletion code goes to your own phone only")
        now = self._now()
        sends = await self.store.sms_sends_since(phone, now - DAY_MS)
        if sends and now - sends[-1] < self.config.sms_resend_interval * 1000:
            raise RateLimited(sends[-1] + self.config.sms_resend_interval * 1000 - now,
                              "wait before asking for another code")
        if len(sends) >= self.config.sms_daily_limit:
            raise RateLimited(sends[0] + DAY_MS - now, "daily SMS limit reached for this phone")
        if await self.store.sms_total_since(now - HOUR_MS) >= self.config.sms_global_hourly:
            log.error("global SMS cap reached (%d per hour)", self.config.sms_global_hourly)
            raise RateLimited(60_000, "SMS service busy; try again later")
        if address:
            wait = await self.counters.hit(f"sms:a:{address}", self.config.sms_address_hourly,
                                           HOUR_MS)
            if wait:
                await self.counters.forgive(f"sms:a:{address}")
                raise RateLimited(wait, "too many codes requested from this address")
        code = f"{secrets.randbelow(1_000_000):06d}"
        ttl = self.config.sms_code_ttl
        await self.store.add_sms_code(phone, purpose, self._code_hash(phone, purpose, code),
                                      now, now + ttl * 1000)
        try:
            await self.sms.send_code(phone, code, purpose, ttl)
        except SmsError as exc:
            log.error("SMS to %s failed: %s", mask_phone(phone), exc)
            raise
        result: dict[str, Any] = {"ttl": ttl, "retry_after": self.config.sms_resend_interval}
        if self.sms.reveals_code:
            result["dev_code"] = code
        return result

    def _code_hash(self, phone: str, purpose: str, code: str) -> bytes:
        # Keyed, so a copy of the database alone cannot enumerate the 10^6 codes.
        return hmac.new(self._secret, f"{phone}|{purpose}|{code}".encode(), "sha256").digest()

    async def _consume_code(self, phone: str, purpose: str, code: str) -> None:
        # Compared, counted and consumed in one store step: concurrent wrong tries burn the
        # code after ``sms_code_attempts`` however they arrive.
        tried = await self.store.try_sms_code(phone, purpose,
                                              self._code_hash(phone, purpose, code),
                                              self._now(), self.config.sms_code_attempts)
        if tried != "ok":
            raise InvalidCode()

    # --- registration and login --------------------------------------------------------

    @op("register", auth="none", phone=S, code=S, password=S, birthdate=S, gender=S,
        interests=STR_LIST, nickname=LINE, device=S_OPT)
    async def register(self, call: Call, **args: Any) -> Outcome:
        _not_twice(call)
        phone = normalize_phone(args["phone"])
        password = _check_password(args["password"])
        birthdate = _parse_birthdate(args["birthdate"])
        if age_on(birthdate, dt.datetime.fromtimestamp(self._now() / 1000, dt.UTC).date()) < 18:
            raise Underage()
        gender = args["gender"]
        if gender not in GENDERS:
            raise BadRequest(f"gender must be one of {', '.join(GENDERS)}", field="gender")
        interests = self._interests(args["interests"])
        nickname = self._nickname(args["nickname"])
        # The code first: only its owner may learn that the phone is taken.
        await self._consume_code(phone, "register", args["code"])
        if await self.store.get_user_by_phone(phone) is not None:
            raise Conflict("this phone is registered already; log in instead")
        pw_hash = await asyncio.to_thread(self._hasher.hash, password)
        user = User(UserId(uuid.uuid4().hex), phone, pw_hash, birthdate.isoformat(), gender,
                    nickname, "", "user", self._now(), interests,
                    verification="pending" if self.verifier is not None else "")
        try:
            await self.store.create_user(user, [ConvId(group_conv_id(t)) for t in interests])
        except DuplicateError:
            raise Conflict("this phone is registered already; log in instead") from None
        log.info("registered user %s", user.id)
        if self.verifier is not None:
            self.verifier.requested(user.id)
        return await self._attached(await self._new_session(user, args.get("device", "")))

    @op("login", auth="none", phone=S, password=S_OPT, code=S_OPT, device=S_OPT)
    async def login(self, call: Call, **args: Any) -> Outcome:
        _not_twice(call)
        address = call.address
        phone = normalize_phone(args["phone"])
        password, code = args.get("password"), args.get("code")
        if (password is None) == (code is None):
            raise BadRequest("give either 'password' or 'code'")
        # Each attempt is counted (reserved) before the slow check and forgiven on success:
        # parallel attempts cannot all pass a check made before the first one failed.
        keys = await self._reserve(phone, address)
        user = await self.store.get_user_by_phone(phone)
        if code is not None:
            await self._consume_code(phone, "login", code)
            if user is None:
                raise Unauthorized("no account for this phone; register first")
        else:
            # An unknown phone costs one argon2 verify too (no enumeration by timing).
            ok = await self._verify(user.pw_hash if user else self._dummy_hash, password or "")
            if user is None or not ok:
                raise Unauthorized("phone or password is wrong")
        # A success clears the phone's counter and forgives the address this attempt.
        await self.counters.reset(keys[0])
        await self._forgive(keys[1:])
        self._check_not_banned(user)
        return await self._attached(await self._new_session(user, args.get("device", "")))

    async def _reserve(self, phone: str, address: str) -> list[str]:
        """Count one failed attempt of the phone (and the address) ahead of time; refused with
        ``rate_limited`` when a limit is reached. The keys to forgive after a success."""
        rules = [(_phone_failures(phone), self.config.login_failures_per_phone)]
        if address:
            rules.append((f"login:a:{address}", self.config.login_failures_per_address))
        keys: list[str] = []
        for key, limit in rules:
            wait = await self.counters.hit(key, limit, FAILURE_WINDOW_MS)
            keys.append(key)
            if wait:
                await self._forgive(keys)
                raise RateLimited(wait, "too many failed attempts; try later")
        return keys

    async def _forgive(self, keys: list[str]) -> None:
        for key in keys:
            await self.counters.forgive(key)

    async def _verify(self, pw_hash: str, password: str) -> bool:
        def verify() -> bool:
            try:
                return self._hasher.verify(pw_hash, password)
            except argon2.exceptions.VerificationError:
                return False
            except argon2.exceptions.InvalidHashError:
                return False
        return await asyncio.to_thread(verify)

    @op("auth", auth="none", token=S)
    async def resume(self, call: Call, token: str) -> Outcome:
        _not_twice(call)
        token_hash = hash_token(token)
        row = await self.store.get_session(token_hash, self._now())
        if row is None:
            raise Unauthorized("the token is unknown or expired; log in again")
        user = await self.store.get_user(row.user_id)
        if user is None:
            raise Unauthorized("the token is unknown or expired; log in again")
        self._check_not_banned(user)
        await self.store.touch_session(token_hash, self._now())
        return await self._attached(LoginResult(user, token, token_hash), with_token=False)

    async def _attached(self, result: LoginResult, with_token: bool = True) -> Outcome:
        """The reply to a login, and the effect that puts the user on the connection."""
        user = result.user
        convs = await self.store.conv_seqs(user.id)
        blocked = frozenset(await self.store.blocked_by(user.id))
        reply: dict[str, Any] = {"user": self_view(user)}
        if with_token:
            reply["token"] = result.token
        return Outcome(reply, Attach(user.id, result.token_hash, convs, blocked))

    def _check_not_banned(self, user: User) -> None:
        if user.banned_until > self._now():
            raise Forbidden("this account is banned", reason="banned", until=user.banned_until)

    async def _new_session(self, user: User, device: str) -> LoginResult:
        token = secrets.token_urlsafe(32)
        token_hash = hash_token(token)
        now = self._now()
        await self.store.create_session(SessionRow(
            token_hash, user.id, device[:64], now, now + self.config.session_ttl_days * DAY_MS,
            last_active=now))
        return LoginResult(user, token, token_hash)

    async def session_closed(self, token_hash: bytes) -> None:
        """A connection on this session closed: note when it was last active. Best effort:
        a failing store must not hold up the rest of the cleanup."""
        try:
            await self.store.touch_session(token_hash, self._now())
        except StoreError as exc:
            log.warning("last_active of a closed session not stored: %s", exc)

    async def confirm(self, user: User, password: str | None, code: str | None) -> None:
        """Prove the caller still holds the account: its password, or a code sent with
        purpose ``delete``. Failures count against the phone's failed-login limit."""
        if (password is None) == (code is None):
            raise BadRequest("give either 'password' or 'code'")
        keys = await self._reserve(user.phone, "")
        if code is not None:
            await self._consume_code(user.phone, "delete", code)
        elif not await self._verify(user.pw_hash, password or ""):
            raise Unauthorized("the password is wrong")
        await self._forgive(keys)

    async def forget(self, phone: str) -> None:
        """Drop the failed-login counter of a deleted account's phone."""
        await self.counters.reset(_phone_failures(phone))

    @op("logout")
    async def logout(self, call: Call) -> Outcome | None:
        if call.token_hash is None:
            return None
        await self.store.delete_session(call.token_hash)
        # Other connections on the same token end now; this one after its reply.
        await self.node.revoke(call.user, [call.token_hash], skip=call.conn_id)
        return Outcome(None, End(CLOSE_REVOKED, "logged out"))

    @op("sessions")
    async def sessions(self, call: Call) -> dict[str, Any]:
        """The caller's live sessions (devices), most recently active first."""
        rows = await self.store.live_sessions(call.user, self._now(), MAX_SESSIONS_LISTED)
        return {"sessions": [{"id": session_id(r.token_hash), "device": r.device,
                              "created": r.created_at, "last_active": r.last_active,
                              "current": r.token_hash == call.token_hash} for r in rows]}

    @op("session.revoke", id=S)
    async def revoke_session(self, call: Call, id: str) -> Outcome | None:
        """End one of the caller's own sessions: its token stops working and its connections
        close with 4001 on every node. The current session may be revoked too: like
        ``logout``, its connection closes after the reply."""
        user_id, now, wanted = call.user, self._now(), id.strip().lower()
        row = next((r for r in await self.store.user_sessions(user_id)
                    if r.expires_at > now and session_id(r.token_hash) == wanted), None)
        # Unknown, expired, gone already or another user's: the same answer.
        if row is None or not await self.store.delete_user_session(user_id, row.token_hash):
            raise NotFound("no such session")
        current = row.token_hash == call.token_hash
        await self.node.revoke(user_id, [row.token_hash], skip=call.conn_id if current else None)
        log.info("user %s revoked a session", user_id)
        if current:
            return Outcome(None, End(CLOSE_REVOKED, "session ended"))
        return None

    @op("me")
    async def me(self, call: Call) -> dict[str, Any]:
        user = await self.store.get_user(call.user)
        if user is None:
            raise Forbidden("this account no longer exists")
        return {"user": self_view(user), "consents": await consents_of(self.store, user.id)}

    # --- password and phone --------------------------------------------------------------

    @op("password.reset", auth="none", phone=S, code=S, password=S)
    async def reset_password(self, call: Call, **args: Any) -> None:
        """Set a new password; every session of the user ends, on every node."""
        phone = normalize_phone(args["phone"])
        password = _check_password(args["password"])
        await self._consume_code(phone, "reset", args["code"])
        user = await self.store.get_user_by_phone(phone)
        if user is None:
            # The code proved the caller owns the phone, so saying so leaks nothing.
            raise Unauthorized("no account for this phone; register first")
        pw_hash = await asyncio.to_thread(self._hasher.hash, password)
        await self.store.set_password(user.id, pw_hash)
        ended = await self.store.delete_user_sessions(user.id)
        log.info("password reset for user %s; %d sessions ended", user.id, len(ended))
        await self.node.revoke(user.id, ended)

    @op("phone.rebind", phone=S, code=S)
    async def rebind_phone(self, call: Call, **args: Any) -> dict[str, Any]:
        user_id = call.user
        phone = normalize_phone(args["phone"])
        # The code first: only its owner may learn that the phone is taken.
        await self._consume_code(phone, "rebind", args["code"])
        if await self.store.get_user_by_phone(phone) is not None:
            raise Conflict("this phone belongs to another account")
        # The old phone's SMS codes are erased with it, not kept with the account (privacy).
        await self.store.erase_sms_codes_of(user_id)
        try:
            await self.store.set_phone(user_id, phone)
        except DuplicateError:
            raise Conflict("this phone belongs to another account") from None
        user = await self.store.get_user(user_id)
        assert user is not None
        return {"user": self_view(user)}

    @op("profile.update", nickname=LINE_OPT, bio=BODY_OPT,
        interests=Field(list, required=False, items=str))
    async def update_profile(self, call: Call, **args: Any) -> dict[str, Any]:
        user_id = call.user
        before = await self.store.get_user(user_id)
        if ("nickname" in args or "bio" in args) and before is not None \
                and before.muted_until > self._now():
            # A nickname or a bio is published text: a mute covers it as it covers msg.send.
            raise muted(before.muted_until)
        nickname = self._nickname(args["nickname"]) if "nickname" in args else None
        bio = None
        if "bio" in args:
            bio = args["bio"].strip()
            if len(bio) > MAX_BIO:
                raise BadRequest(f"bio is at most {MAX_BIO} characters", field="bio")
            bio = self.text.publishable(bio)
        interests = self._interests(args["interests"]) if "interests" in args else None
        groups = [ConvId(group_conv_id(t)) for t in interests] if interests is not None else None
        user = await self.store.update_profile(user_id, nickname, bio, interests, groups)
        if before is not None and before.interests != user.interests:
            # Group membership follows the interests: route the groups' traffic accordingly.
            for tag in set(before.interests) - set(user.interests):
                await self.node.left(user_id, ConvId(group_conv_id(tag)))
            for tag in set(user.interests) - set(before.interests):
                await self.node.joined(user_id, ConvId(group_conv_id(tag)))
        return {"user": self_view(user)}

    def _interests(self, raw: list[str]) -> tuple[str, ...]:
        if not 1 <= len(raw) <= MAX_INTERESTS:
            raise BadRequest(f"choose 1 to {MAX_INTERESTS} interests", field="interests")
        try:
            return self.catalog.validate(raw)
        except ValueError as exc:
            raise BadRequest(str(exc), field="interests") from None

    def _nickname(self, raw: str) -> str:
        nickname = raw.strip()
        if not 1 <= len(nickname) <= MAX_NICKNAME:
            raise BadRequest(f"nickname must be 1 to {MAX_NICKNAME} characters",
                             field="nickname")
        return self.text.publishable(nickname)


def self_view(user: User) -> dict[str, Any]:
    """The caller's own profile: the public view plus what only they may see."""
    view: dict[str, Any] = user.public()
    view.update(phone=user.phone, birthdate=user.birthdate, role=user.role,
                verification=user.verification)
    return view


def _phone_failures(phone: str) -> str:
    """The counter of a phone's failed logins and confirmations."""
    return f"login:p:{phone}"


def _not_twice(call: Call) -> None:
    if call.user_id is not None:
        raise BadRequest("this connection is authenticated already")


def _check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise BadRequest(f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters",
                         field="password")
    return password


def _parse_birthdate(raw: str) -> dt.date:
    try:
        date = dt.date.fromisoformat(raw)
    except ValueError:
        raise BadRequest("birthdate must be YYYY-MM-DD", field="birthdate") from None
    if len(raw) != 10 or date.year < 1900:
        raise BadRequest("birthdate must be YYYY-MM-DD", field="birthdate")
    return date


def age_on(birth: dt.date, today: dt.date) -> int:
    """Full years lived on ``today``."""
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
