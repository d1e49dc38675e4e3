"""Text hygiene at the edge: no invisible-only, control or bidi-spoofed text in what users
write for others (nicknames, bios, bodies, cities, report texts, moderators' notes), while
emoji sequences, CJK, right-to-left scripts and newlines in bodies still pass."""

from __future__ import annotations

from typing import Any

import pytest

from chatd.client import Client
from chatd.protocol.text import text_problem
from chatd.server import ChatServer
from chatd.services.registry import OPS
from chatd.store import UserId
from tests.conftest import new_phone, registered

FAMILY = "\U0001F468\u200d\U0001F469\u200d\U0001F467"  # 👨‍👩‍👧 (ZWJ sequence)
RAINBOW = "\U0001F3F3\ufe0f\u200d\U0001F308"  # 🏳️‍🌈
FLAGS = "\U0001F1E8\U0001F1F3\U0001F1EF\U0001F1F5"  # 🇨🇳🇯🇵
KEYCAP = "1\ufe0f\u20e3"  # 1️⃣
THUMB = "\U0001F44D\U0001F3FD"  # 👍🏽
ENGLAND = "\U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F"

INVISIBLE = ["\u200b", "\u200b\u200b\u200c\u200d", "\ufeff", "\u2060\u2061", "\u00ad",
             "\ufe0f\ufe0f", "\U000E0020\U000E0041", "\u3164", "\u115f\u1160", "\u2800",
             "\u034f", " \u200b ", "\u3000\u200b", "\u180e"]
GOOD_LINE = ["小明", "李 雷", "Zoë", FAMILY, RAINBOW, FLAGS, KEYCAP, THUMB, ENGLAND,
             "مرحبا", "נועה", "a\u200bb", "ピカチュウ⚡", "김민지"]
BAD_LINE_ONLY = ["a\nb", "a\tb", "\u202eevil", "adm\u202din", "\u2066admin\u2069",
                 "x\u202a", "a\u2028b", "a\u2029b"]
CONTROLS = ["a\x07b", "\x1b[31mred", "a\x7f", "a\x85b", "\x01"]
GOOD_BODY = ["第一行\n第二行", "tab\tseparated", f"{FAMILY} family", RAINBOW, "😀",
             "English 中文 عربى mixed", "a\u200bb", "   padded   ", "\u2067שלום\u2069 hi",
             f"{ENGLAND}\n{FLAGS}\n\n{KEYCAP}"]


@pytest.mark.parametrize("value", INVISIBLE + CONTROLS)
def test_invisible_and_control_text_is_refused_in_both_kinds(value: str) -> None:
    assert text_problem(value, "line") is not None
    assert text_problem(value, "body") is not None


@pytest.mark.parametrize("value", BAD_LINE_ONLY)
def test_line_breaks_tabs_and_bidi_controls_are_refused_in_lines_only(value: str) -> None:
    assert text_problem(value, "line") is not None
    assert text_problem(value, "body") is None


@pytest.mark.parametrize("value", GOOD_LINE)
def test_ordinary_text_and_emoji_pass(value: str) -> None:
    assert text_problem(value, "line") is None, value
    assert text_problem(value, "body") is None, value


@pytest.mark.parametrize("value", GOOD_BODY)
def test_ordinary_bodies_pass(value: str) -> None:
    assert text_problem(value, "body") is None, value


@pytest.mark.parametrize("value", ["", " ", "\u3000 "])
def test_blank_text_is_left_to_the_service(value: str) -> None:
    assert text_problem(value, "line") is None and text_problem(value, "body") is None
    assert text_problem(value + "\n\t", "body") is None


def test_every_user_written_text_field_is_marked() -> None:
    """Every field others read is declared as text, so no op forgets the check."""
    expected = {("register", "nickname"): "line", ("profile.update", "nickname"): "line",
                ("profile.update", "bio"): "body", ("msg.send", "body"): "body",
                ("post.create", "body"): "body", ("post.create", "city"): "line",
                ("report", "text"): "body", ("mod.resolve", "note"): "body",
                ("mod.warn", "note"): "body", ("mod.mute", "note"): "body",
                ("mod.ban", "note"): "body", ("feedback", "text"): "body",
                ("mod.feedback.reply", "text"): "body"}
    marked = {(op, name): f.text for op, spec in OPS.items()
              for name, f in spec.fields.items() if f.text is not None}
    assert marked == expected


def refused(reply: dict[str, Any], field: str, what: object) -> None:
    assert reply["t"] == "err" and reply["code"] == "bad_request", (what, reply)
    assert reply.get("field") == field, (what, reply)


async def test_nicknames(url: str) -> None:
    c = await registered(url, codec="json")
    for bad in INVISIBLE + CONTROLS + BAD_LINE_ONLY:
        refused(await c.request("profile.update", nickname=bad), "nickname", repr(bad))
    for good in GOOD_LINE:
        r = await c.call("profile.update", nickname=good)
        assert r["user"]["nickname"] == good
    # register checks the nickname at the edge too, before it uses up the code.
    async with await Client.connect(url, "json") as fresh:
        phone = new_phone()
        code = (await fresh.call("sms.send", phone=phone, purpose="register"))["dev_code"]
        fields = {"phone": phone, "code": code, "password": "correct horse 1",
                  "birthdate": "1995-05-05", "gender": "male", "interests": ["music.rock"]}
        refused(await fresh.request("register", nickname="\u200b\u200b", **fields),
                "nickname", "register")
        refused(await fresh.request("register", nickname="\u202eadmin", **fields),
                "nickname", "register bidi")
        ok = await fresh.call("register", nickname=FAMILY + "小红", **fields)
        assert ok["user"]["nickname"] == FAMILY + "小红"
    await c.close()


async def test_message_and_post_bodies(url: str) -> None:
    c = await registered(url, ["music.rock"], codec="json")
    for op, extra in (("msg.send", {"conv": "g:music.rock"}),
                      ("post.create", {"group": "g:music.rock"})):
        for bad in [*INVISIBLE, *CONTROLS, "   ", "\n\n"]:
            refused(await c.request(op, body=bad, **extra), "body", (op, repr(bad)))
        for good in GOOD_BODY:
            r = await c.call(op, body=good, **extra)
            assert r["t"] == "ok", (op, good)
    bodies = [m["body"] for m in
              (await c.call("history", conv="g:music.rock", limit=200))["messages"]]
    assert bodies == GOOD_BODY  # stored as written, none of the refused ones
    await c.close()


async def test_bio_city_report_text_and_moderator_notes(server: ChatServer, url: str) -> None:
    c = await registered(url, codec="json")
    other = await registered(url, codec="json")
    mod = await registered(url, codec="json")
    await server.app.store.set_role(UserId(mod.user["id"]), "moderator")  # type: ignore[index]
    for bad in INVISIBLE + CONTROLS:
        refused(await c.request("profile.update", bio=bad), "bio", repr(bad))
        refused(await c.request("post.create", body="hi", city=bad), "city", repr(bad))
        refused(await c.request("report", kind="user", target=other.user["id"],  # type: ignore[index]
                                reason="spam", text=bad), "text", repr(bad))
        refused(await mod.request("mod.warn", user=other.user["id"], note=bad),  # type: ignore[index]
                "note", repr(bad))
    for bad in BAD_LINE_ONLY:
        refused(await c.request("post.create", body="hi", city=bad), "city", repr(bad))
    # What must still work: multi-line bios (and clearing one), cities, texts, notes.
    assert (await c.call("profile.update", bio="喜欢音乐\n和电影 🎸"))["user"]["bio"] == \
        "喜欢音乐\n和电影 🎸"
    assert (await c.call("profile.update", bio="  "))["user"]["bio"] == ""
    await c.call("consent.set", location=True)
    assert (await c.call("post.create", body="到了", city="北京"))["post"]["city"] == "北京"
    report = await c.call("report", kind="user", target=other.user["id"],  # type: ignore[index]
                          reason="spam", text=f"他一直发广告\n{THUMB}")
    assert report["report"]["text"] == f"他一直发广告\n{THUMB}"
    assert (await mod.call("mod.warn", user=other.user["id"],  # type: ignore[index]
                           note="请注意 🙏\n谢谢"))["t"] == "ok"
    assert (await other.next_event("mod.notice"))["reason"] == "请注意 🙏\n谢谢"
    for x in (c, other, mod):
        await x.close()


def test_bodies_may_end_lines_with_crlf() -> None:
    from chatd.protocol.text import text_problem
    assert text_problem("第一行\r\n第二行", "body") is None
    assert text_problem("no\r\nbreaks", "line") is not None
