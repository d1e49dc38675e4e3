"""Every account path over real WebSocket connections to a real server."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from chatd.client import Client
from chatd.config import Config
from chatd.server import ChatServer
from tests.conftest import new_phone, registered, url_of


async def code_for(c: Client, phone: str, purpose: str) -> str:
    return str((await c.call("sms.send", phone=phone, purpose=purpose))["dev_code"])


@pytest.mark.parametrize("codec", ["msgpack", "json"])
async def test_register_then_login_on_both_codecs(url: str, codec: str) -> None:
    phone = new_phone()
    async with await Client.connect(url, codec) as c:  # type: ignore[arg-type]
        sent = await c.call("sms.send", phone=phone, purpose="register")
        assert sent["ttl"] == 300 and sent["retry_after"] >= 0 and len(sent["dev_code"]) == 6
        reply = await c.call("register", phone=phone, code=sent["dev_code"],
                             password="s3cret-pass", birthdate="1990-01-31", gender="male",
                             interests=["music.rock", "pet.cat"], nickname="小明")
        assert reply["user"]["id"] and len(reply["token"]) >= 32
        assert reply["user"]["phone"] == "+86" + phone
        me = await c.call("me")
        assert me["user"]["interests"] == ["music.rock", "pet.cat"]
    async with await Client.connect(url, codec) as c:  # type: ignore[arg-type]
        login = await c.call("login", phone=phone, password="s3cret-pass")
        assert login["user"]["id"] == reply["user"]["id"]


async def test_interests_catalog_is_open_before_auth(url: str) -> None:
    async with await Client.connect(url) as c:
        tags = (await c.call("interests"))["tags"]
        assert len(tags) >= 30 and {"id", "name"} <= set(tags[0])


async def test_register_errors(url: str) -> None:
    async with await Client.connect(url) as c:
        phone = new_phone()
        code = await code_for(c, phone, "register")
        base = dict(phone=phone, code=code, password="long enough", birthdate="1990-01-01",
                    gender="female", interests=["music.rock"], nickname="n")
        today = dt.date.today()
        cases = [
            (dict(birthdate=today.replace(year=today.year - 17).isoformat()), "underage"),
            (dict(password="short"), "bad_request"),
            (dict(birthdate="1990/01/01"), "bad_request"),
            (dict(gender="robot"), "bad_request"),
            (dict(interests=[]), "bad_request"),
            (dict(interests=["no.such"]), "bad_request"),
            (dict(nickname=""), "bad_request"),
            (dict(nickname="x" * 21), "bad_request"),
            (dict(phone="12345"), "bad_request"),
            (dict(code="000000" if code != "000000" else "111111"), "invalid_code"),
        ]
        for change, expected in cases:
            r = await c.request("register", **{**base, **change})
            assert r["code"] == expected, (change, r)
        # The underage attempt stored nothing and the valid code still works.
        ok = await c.call("register", **base)
        assert ok["token"]
    async with await Client.connect(url) as c2:
        # The phone is taken now, but a wrong code reveals nothing: invalid_code. Only the
        # owner of a right code learns it (conflict).
        r = await c2.request("register", **{**base, "code": "123456"})
        assert r["code"] == "invalid_code"
        fresh = await code_for(c2, phone, "register")
        r = await c2.request("register", **{**base, "code": fresh})
        assert r["code"] == "conflict"


async def test_nickname_passes_the_word_filter(url: str) -> None:
    async with await Client.connect(url) as c:
        phone = new_phone()
        code = await code_for(c, phone, "register")
        r = await c.request("register", phone=phone, code=code, password="long enough",
                            birthdate="1990-01-01", gender="female", interests=["music.rock"],
                            nickname="我是傻逼")
        assert r["code"] == "filtered" and r["category"] == "abuse"


async def test_sms_code_is_single_use(url: str) -> None:
    phone = new_phone()
    async with await Client.connect(url) as c:
        await c.register(phone, password="password-1")
        code = await code_for(c, phone, "login")
    async with await Client.connect(url) as c:
        assert (await c.call("login", phone=phone, code=code))["token"]
    async with await Client.connect(url) as c:
        assert (await c.request("login", phone=phone, code=code))["code"] == "invalid_code"


async def test_wrong_code_five_times_burns_it(url: str) -> None:
    phone = new_phone()
    async with await Client.connect(url) as c:
        await c.register(phone)
        code = await code_for(c, phone, "login")
    async with await Client.connect(url) as c:
        wrong = "000000" if code != "000000" else "111111"
        for _ in range(5):
            assert (await c.request("login", phone=phone, code=wrong))["code"] == "invalid_code"
        assert (await c.request("login", phone=phone, code=code))["code"] == "invalid_code"


async def test_sms_resend_interval_and_daily_cap(tmp_path: Path, wordlist: Path) -> None:
    srv = ChatServer(Config(port=0, data_dir=tmp_path / "d", wordlists=(str(wordlist),)))
    await srv.start()
    try:
        async with await Client.connect(url_of(srv)) as c:
            phone = new_phone()
            await code_for(c, phone, "register")
            r = await c.request("sms.send", phone=phone, purpose="register")
            assert r["code"] == "rate_limited" and 55_000 < r["retry_after"] <= 60_000
            for _ in range(9):
                await _age_codes(srv, phone)
                await code_for(c, phone, "login")
            await _age_codes(srv, phone)
            r = await c.request("sms.send", phone=phone, purpose="login")
            assert r["code"] == "rate_limited" and "daily" in r["msg"]
    finally:
        await srv.stop()


async def test_global_sms_cap(tmp_path: Path, wordlist: Path) -> None:
    srv = ChatServer(Config(port=0, data_dir=tmp_path / "d", wordlists=(str(wordlist),),
                            sms_global_hourly=3))
    await srv.start()
    try:
        async with await Client.connect(url_of(srv)) as c:
            for _ in range(3):
                await code_for(c, new_phone(), "register")
            r = await c.request("sms.send", phone=new_phone(), purpose="register")
            assert r["code"] == "rate_limited" and r["retry_after"] > 0
    finally:
        await srv.stop()


async def _age_codes(server: ChatServer, phone: str) -> None:
    """Move earlier sends 61 s into the past instead of sleeping through the interval."""
    await server.app.store._run(lambda db: db.execute(  # type: ignore[attr-defined]
        "UPDATE sms_codes SET created_at=created_at-61000 WHERE phone=?", ("+86" + phone,)))


async def test_code_expires(server: ChatServer) -> None:
    async with await Client.connect(url_of(server)) as c:
        phone = new_phone()
        code = await code_for(c, phone, "register")
        await server.app.store._run(lambda db: db.execute(  # type: ignore[attr-defined]
            "UPDATE sms_codes SET expires_at=0 WHERE phone=?", ("+86" + phone,)))
        r = await c.request("register", phone=phone, code=code, password="long enough",
                            birthdate="1990-01-01", gender="other", interests=["pet.dog"],
                            nickname="n")
        assert r["code"] == "invalid_code"


async def test_unknown_purpose_and_bad_phone(url: str) -> None:
    async with await Client.connect(url) as c:
        assert (await c.request("sms.send", phone=new_phone(), purpose="x"))["code"] == \
            "bad_request"
        assert (await c.request("sms.send", phone="+0", purpose="login"))["code"] == \
            "bad_request"
        # rebind needs a logged-in session.
        assert (await c.request("sms.send", phone=new_phone(), purpose="rebind"))["code"] == \
            "forbidden"


async def test_wrong_password_does_not_reveal_registration(url: str) -> None:
    async with await Client.connect(url) as c:
        phone = new_phone()
        await c.register(phone, password="password-1")
    async with await Client.connect(url) as c:
        a = await c.request("login", phone=phone, password="wrong-pass")
        b = await c.request("login", phone=new_phone(), password="wrong-pass")
        assert a["code"] == b["code"] == "unauthorized" and a["msg"] == b["msg"]


async def test_password_guessing_is_rate_limited(url: str) -> None:
    phone = new_phone()
    async with await Client.connect(url) as c:
        await c.register(phone, password="password-1")
    async with await Client.connect(url) as c:
        codes = [(await c.request("login", phone=phone, password=f"guess-{i:04d}"))["code"]
                 for i in range(11)]
        assert codes[:10] == ["unauthorized"] * 10 and codes[10] == "rate_limited"


async def test_auth_with_token_and_logout(url: str) -> None:
    a = await registered(url)
    token = a.token
    assert token
    async with await Client.connect(url) as b:
        assert (await b.auth(token))["user"]["id"] == a.user["id"]  # type: ignore[index]
        await b.call("logout")
        await asyncio.wait_for(b.ws.wait_closed(), 5)
        assert b.ws.close_code == 4001
    async with await Client.connect(url) as c:
        assert (await c.request("auth", token=token))["code"] == "unauthorized"
        assert (await c.request("auth", token="garbage"))["code"] == "unauthorized"
    await a.close()


async def test_ops_need_auth(url: str) -> None:
    async with await Client.connect(url) as c:
        for op, fields in (("me", {}), ("msg.send", {"conv": "g:x", "body": "hi"}),
                           ("match.start", {}), ("logout", {})):
            assert (await c.request(op, **fields))["code"] == "unauthorized"


async def test_password_reset_ends_sessions_and_changes_password(url: str) -> None:
    phone = new_phone()
    a = await Client.connect(url)
    await a.register(phone, password="old-password")
    async with await Client.connect(url) as c:
        code = await code_for(c, phone, "reset")
        await c.call("password.reset", phone=phone, code=code, password="new-password")
        await asyncio.wait_for(a.ws.wait_closed(), 5)
        assert a.ws.close_code == 4001
        assert (await c.request("login", phone=phone, password="old-password"))["code"] == \
            "unauthorized"
    async with await Client.connect(url) as c:
        assert (await c.call("login", phone=phone, password="new-password"))["token"]
    async with await Client.connect(url) as d:
        assert (await d.request("auth", token=a.token))["code"] == "unauthorized"


async def test_phone_rebind(url: str) -> None:
    old, new, taken = new_phone(), new_phone(), new_phone()
    other = await Client.connect(url)
    await other.register(taken)
    async with await Client.connect(url) as c:
        await c.register(old, password="password-1")
        # A wrong code says nothing of the phone; a right one (its owner's) says it is taken.
        assert (await c.request("phone.rebind", phone=taken, code="123456"))["code"] == \
            "invalid_code"
        taken_code = await code_for(c, taken, "rebind")
        assert (await c.request("phone.rebind", phone=taken, code=taken_code))["code"] == \
            "conflict"
        code = await code_for(c, new, "rebind")
        me = await c.call("phone.rebind", phone=new, code=code)
        assert me["user"]["phone"] == "+86" + new
    async with await Client.connect(url) as c:
        assert (await c.call("login", phone=new, password="password-1"))["token"]
    async with await Client.connect(url) as c:
        assert (await c.request("login", phone=old, password="password-1"))["code"] == \
            "unauthorized"
    await other.close()


async def test_profile_update_filters_bio(url: str) -> None:
    c = await registered(url)
    r = await c.call("profile.update", nickname="新名字", bio="请加微信聊")
    assert r["user"]["nickname"] == "新名字" and r["user"]["bio"] == "请***聊"
    assert (await c.request("profile.update", bio="傻逼"))["code"] == "filtered"
    await c.close()
