"""Authorization matrix: every op, called by an unauthenticated connection, a user, a muted
user, a banned user and a moderator. Also: nobody reaches a conversation they are not in,
nor another user's phone, birthdate or search history."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from chatd.client import Client
from chatd.errors import Unauthorized
from chatd.server import ChatServer
from chatd.services.registry import MOD_OPS, OPS
from chatd.store import UserId
from tests.conftest import new_phone, registered, t

# Plausible fields for every op: the matrix is about who may call, not about validation.
SAMPLES: dict[str, dict[str, Any]] = {
    "sms.send": {"phone": "13800000000", "purpose": "login"},
    "register": {"phone": "13800000001", "code": "000000", "password": "password-1",
                 "birthdate": "1990-01-01", "gender": "male", "interests": ["pet.cat"],
                 "nickname": "n"},
    "login": {"phone": "13800000002", "password": "password-1"},
    "auth": {"token": "nope"},
    "password.reset": {"phone": "13800000003", "code": "000000", "password": "password-2"},
    "interests": {}, "ping": {}, "me": {}, "logout": {},
    "sessions": {}, "session.revoke": {"id": "0000000000000000"},
    "phone.rebind": {"phone": "13800000004", "code": "000000"},
    "profile.update": {"bio": "你好"},
    "match.start": {}, "match.cancel": {},
    "msg.send": {"conv": "g:pet.cat", "body": "hi"},
    "msg.recall": {"conv": "g:pet.cat", "id": "nope"}, "msg.hide": {"conv": "g:pet.cat",
                                                                   "id": "nope"},
    "conv.mute": {"conv": "g:pet.cat", "until": 0},
    "push.register": {"vendor": "fcm", "token": "t"}, "push.unregister": {"vendor": "fcm"},
    "notify.settings": {"previews": False},
    "history": {"conv": "g:pet.cat"}, "convs": {},
    "conv.leave": {"conv": "d:nope"}, "read": {"conv": "g:pet.cat", "seq": 0},
    "typing": {"conv": "g:pet.cat"}, "presence": {"users": ["x"]}, "profiles": {"users": ["x"]},
    "block": {"user": "nobody"}, "unblock": {"user": "nobody"},
    "post.create": {"body": "今天天气好", "group": "g:pet.cat"}, "post.delete": {"id": "nope"},
    "feed": {"scope": "mine"}, "search": {"q": "猫"}, "search.history": {},
    "search.history.clear": {},
    "report": {"kind": "user", "target": "nobody", "reason": "spam"}, "reports.mine": {},
    "consent.set": {"marketing": False}, "account.export": {},
    "account.delete": {"password": "wrong-password"},
    "mod.words.add": {"word": "测试违禁词", "category": "abuse", "action": "block"},
    "mod.words.remove": {"word": "测试违禁词"}, "mod.allow.add": {"word": "测试允许词"},
    "mod.allow.remove": {"word": "测试允许词"}, "mod.words.list": {},
    "mod.words.version": {}, "mod.words.check": {"text": "你好"},
    "mod.queue": {"queue": "review"}, "mod.resolve": {"item": "r:0", "action": "dismiss"},
    "mod.warn": {"user": "nobody"}, "mod.mute": {"user": "nobody", "duration": 60},
    "mod.ban": {"user": "nobody", "duration": 60}, "mod.unban": {"user": "nobody"},
    "mod.audit": {},
    "profile.avatar": {"media": ""}, "media.link": {"id": "nope"},
    "feedback": {"text": "意见"}, "feedback.list": {},
    "mod.media.resolve": {"id": "nope", "action": "dismiss"},
    "mod.feedback.reply": {"id": "nope", "text": "好的"},
}
# Ops that end the caller's own session or account: checked separately, not in the loop.
SESSION_ENDING = {"logout", "account.delete"}


def test_every_op_has_a_sample() -> None:
    assert set(SAMPLES) == set(OPS)


async def codes(c: Client, ops: list[str]) -> dict[str, str]:
    out = {}
    for op in ops:
        reply = await c.request(op, **SAMPLES[op])
        out[op] = reply["t"] if reply["t"] == "ok" else reply["code"]
    return out


async def test_unauthenticated(url: str) -> None:
    async with await Client.connect(url) as c:
        for op in sorted(OPS):
            reply = await c.request(op, **SAMPLES[op])
            refused = reply.get("msg") == Unauthorized.default_msg
            # Ops open before auth may still fail (a bad token, a wrong password), not so.
            assert refused == OPS[op].needs_user, (op, reply)


async def test_user_and_moderator(server: ChatServer, url: str) -> None:
    user = await registered(url, ["pet.cat"])
    mod = await registered(url, ["pet.cat"])
    await server.app.store.set_role(UserId(mod.user["id"]), "moderator")  # type: ignore[index]
    ops = sorted(op for op in OPS if OPS[op].needs_user and op not in SESSION_ENDING)
    as_user = await codes(user, ops)
    as_mod = await codes(mod, ops)
    for op in ops:
        assert as_user[op] != "unauthorized" and as_mod[op] != "unauthorized", op
        if op in MOD_OPS:
            assert as_user[op] == "forbidden", (op, as_user[op])
            assert as_mod[op] != "forbidden", (op, as_mod[op])
    for c in (user, mod):
        await c.close()


async def test_muted_and_banned_users(server: ChatServer, url: str) -> None:
    mod = await registered(url, ["pet.cat"])
    await server.app.store.set_role(UserId(mod.user["id"]), "moderator")  # type: ignore[index]
    phone = new_phone()
    muted = await Client.connect(url)
    await muted.register(phone, password="password-1", interests=["pet.cat"])
    await mod.call("mod.mute", user=muted.user["id"], duration=600)  # type: ignore[index]
    for op in ("msg.send", "post.create"):
        reply = await muted.request(op, **SAMPLES[op])
        assert reply["code"] == "forbidden" and reply["reason"] == "muted", op
    assert (await muted.request("history", conv="g:pet.cat"))["t"] == "ok"  # reading is fine
    await mod.call("mod.ban", user=muted.user["id"])  # type: ignore[index]
    await asyncio.wait_for(muted.ws.wait_closed(), t(5))
    assert muted.ws.close_code == 4001
    async with await Client.connect(url) as again:
        login = await again.request("login", phone=phone, password="password-1")
        assert login["code"] == "forbidden"
        assert (await again.request("auth", token=muted.token))["code"] in (
            "forbidden", "unauthorized")
    await mod.close()


async def test_strangers_reach_no_conversation_and_no_private_data(server: ChatServer,
                                                                   url: str) -> None:
    phone = new_phone()
    a = await Client.connect(url)
    await a.register(phone, interests=["book.wuxia"], birthdate="1991-02-03", nickname="甲")
    b = await registered(url, ["book.wuxia"])
    await a.call("match.start")
    await b.call("match.start")
    conv = (await a.next_event("match.found", timeout=t(10)))["conv"]
    await a.call("search", q="独孤九剑")  # a's own search history
    stranger = await registered(url, ["film.movie"])
    for op, fields in (("history", {"conv": conv}), ("msg.send", {"conv": conv, "body": "x"}),
                       ("read", {"conv": conv, "seq": 1}), ("typing", {"conv": conv}),
                       ("conv.leave", {"conv": conv}), ("conv.mute", {"conv": conv, "until": 0}),
                       ("msg.hide", {"conv": conv, "id": "x"}),
                       ("history", {"conv": "g:book.wuxia"}),
                       ("msg.send", {"conv": "g:book.wuxia", "body": "x"})):
        assert (await stranger.request(op, **fields))["code"] == "forbidden", (op, fields)
    # Everything the other two can see of a never holds a's phone, birthdate or searches.
    seen = []
    for c in (b, stranger):
        for op in ("search", "feed", "presence", "convs", "search.history", "me", "profiles"):
            fields = {"search": {"q": "甲"}, "feed": {"scope": "peers"},
                      "presence": {"users": [a.user["id"]]},  # type: ignore[index]
                      "profiles": {"users": [a.user["id"]]}}.get(op, {})  # type: ignore[index]
            seen.append(json.dumps(await c.request(op, **fields), ensure_ascii=False))
    text = "\n".join(seen)
    assert phone not in text and "1991-02-03" not in text and "独孤九剑" not in text
    assert "独孤九剑" in json.dumps(await a.call("search.history"), ensure_ascii=False)
    for c in (a, b, stranger):
        await c.close()
