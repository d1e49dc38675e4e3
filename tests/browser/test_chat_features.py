"""The chat features of /app/ (issue 14) in a real headless Chromium against a real chatd:
the conversation list after a fresh login (peer nicknames, unread badges, previews, order,
mute marker, online dot), delivered and read ticks, replies with quotes, recall on both
sides, delete for me, and mutes, each also changed from another device of the same user.

Screenshots of every step go to test-artifacts/screenshots/<test>/.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

from chatd.client import Client
from chatd.config import Config
from chatd.server import ChatServer
from tests.browser.cdp import Browser, Page
from tests.browser.conftest import Shots
from tests.browser.test_pages import PASSWORD, base, no_errors, register, send
from tests.conftest import new_phone, registered, t, url_of

BOTH = ["music.rock", "music.pop"]  # two shared tags: a strong pair, matched at once
FOREVER = 4102444800000


def js(value: Any) -> str:
    return json.dumps(value)


async def login(page: Page, server: ChatServer, phone: str) -> None:
    """Log in through the form of a fresh page (nothing in its localStorage yet)."""
    await page.goto(base(server) + "/app/")
    await page.wait_for("!document.querySelector('#auth').hidden")
    await page.click("#tab-login")
    await page.wait_for("!document.querySelector('#login').hidden")
    await page.type("#login-phone", phone)
    await page.type("#login-password", PASSWORD)
    await page.press("Enter")
    await page.wait_for("!document.querySelector('#chat').hidden", t(10))


async def match(a: Client, b: Client) -> str:
    await a.call("match.start")
    await b.call("match.start")
    found = await a.next_event("match.found", t(10))
    await b.next_event("match.found", t(10))
    return str(found["conv"])


def row(conv: str) -> str:
    return f"#chat .conv[data-conv={js(conv)}]"


async def row_text(page: Page, conv: str, part: str) -> str:
    return str(await page.eval(
        f"document.querySelector({js(row(conv) + ' ' + part)})?.textContent ?? ''"))


def bubble(text: str) -> str:
    """A JS expression: the <li> of the open conversation whose body is `text` (or null)."""
    return ("[...document.querySelectorAll('#messages li.msg')]"
            f".find(li => li.querySelector('.body')?.textContent === {js(text)}) ?? null")


async def bubble_sel(page: Page, text: str) -> str:
    """The selector of the bubble saying `text`, once the open conversation's history is in
    (until then a render may replace the bubble between a click's press and release)."""
    seq = await page.wait_for(f"!document.querySelector('#messages').hasAttribute('aria-busy')"
                              f" && ({bubble(text)})?.dataset.seq")
    return f"#messages li[data-seq='{seq}']"


async def menu_action(page: Page, text: str, action: str) -> None:
    """Open the ⋯ menu of the bubble saying `text` and pick `action`."""
    await page.click(await bubble_sel(page, text) + " .more")
    await page.click(f"#menu [data-action={action}]")


async def long_press(page: Page, selector: str) -> None:
    """Hold a finger on the element until the message menu opens, then lift it."""
    x, y = await page._center(selector)
    await page.send("Input.dispatchTouchEvent",
                    {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    await page.wait_for("!document.querySelector('#menu').hidden")
    await page.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def tick(text: str) -> str:
    """A JS expression: the tick state of the bubble saying `text` (sent, delivered, read)."""
    return f"(({bubble(text)})?.querySelector('.tick')?.dataset.tick ?? null)"


async def test_fresh_login_shows_the_list_and_ticks_go_sent_delivered_read(
        server: ChatServer, browser: Browser, shots: Shots) -> None:
    url = url_of(server)
    alice_phone = new_phone()
    alice = await Client.connect(url, "json")
    await alice.register(alice_phone, nickname="Alice", interests=BOTH)
    bob = await registered(url, BOTH, "json", nickname="小明 Bob")
    carol = await registered(url, BOTH, "json", nickname="Carol")
    bob_conv = await match(alice, bob)
    carol_conv = await match(alice, carol)
    # Carol writes first, Bob later: Bob's chat is the newest. Bob also writes in a group.
    await carol.call("msg.send", conv=carol_conv, body="我是 Carol")
    await bob.call("msg.send", conv=bob_conv, body="你好 Alice")
    await bob.call("msg.send", conv=bob_conv, body="在吗？")
    await bob.call("msg.send", conv="g:music.rock", body="大家好")
    # Alice muted Carol's chat on another device; Carol is offline, Bob online.
    await alice.call("conv.mute", conv=carol_conv, until=FOREVER)
    await alice.close()
    carol_token = carol.token
    await carol.close()
    await asyncio.sleep(t(0.5))  # past the presence grace (0.2 s here): Carol is offline

    page = await browser.new_page("alice")
    await login(page, server, alice_phone)
    await page.wait_text("#direct-list", "小明 Bob")  # the nickname comes with convs
    assert "用户 " not in await page.text("#chat .side")
    assert await page.eval("[...document.querySelectorAll('#direct-list .conv')]"
                           ".map(b => b.dataset.conv)") == [bob_conv, carol_conv]
    assert await row_text(page, bob_conv, ".badge") == "2"
    assert await row_text(page, bob_conv, ".conv-preview") == "在吗？"
    assert await page.eval(f"document.querySelector({js(row(bob_conv) + ' .dot')})"
                           ".classList.contains('on')")
    assert await row_text(page, carol_conv, ".conv-preview") == "我是 Carol"
    assert await row_text(page, carol_conv, ".badge.quiet") == "1"  # muted: a grey badge
    assert await row_text(page, carol_conv, ".mute-mark") == "🔕"
    # Carol reads as offline once the presence grace is over (convs, or the presence event).
    await page.wait_for(f"!document.querySelector({js(row(carol_conv) + ' .dot')})"
                        ".classList.contains('on')", t(5))
    rock = "g:music.rock"
    assert await row_text(page, rock, ".conv-preview") == "小明 Bob: 大家好"
    assert await row_text(page, rock, ".badge") == "1"
    # The server caps unread at 999, meaning "999 or more".
    assert await page.eval("import('/app/views.js').then(v => [998, 999, 5000]"
                           ".map(v.unreadLabel))") == ["998", "999+", "999+"]
    await shots.take(page, "fresh-login-list")

    # Carol comes back and writes: her chat moves to the top, its preview and badge follow.
    carol = await Client.connect(url, "json")
    assert carol_token is not None
    await carol.auth(carol_token)
    await carol.call("msg.send", conv=carol_conv, body="我又来了")
    await page.wait_for(f"document.querySelector('#direct-list .conv').dataset.conv"
                        f" === {js(carol_conv)}")
    assert await row_text(page, carol_conv, ".conv-preview") == "我又来了"
    assert await row_text(page, carol_conv, ".badge") == "2"
    await shots.take(page, "resorted")

    # Opening Bob's chat reads it: the badge goes and Bob gets the read receipt.
    await page.click(row(bob_conv))
    await page.wait_text("#messages", "在吗？")
    assert "小明 Bob" in await page.text("#messages")
    assert "与 小明 Bob 私聊" in await page.text("#conv-title")
    await page.wait_for(f"!document.querySelector({js(row(bob_conv) + ' .badge')})")
    assert (await bob.next_event("read", t(5)))["seq"] == 2

    # Ticks: ✓ stored while Bob is offline, ✓✓ when he receives it, coloured when he reads.
    bob_token = bob.token
    await bob.close()
    await send(page, "收到了吗？")
    await page.wait_for(tick("收到了吗？"))
    assert await page.eval(tick("收到了吗？")) == "sent"
    await shots.take(page, "tick-sent")
    bob = await Client.connect(url, "json")
    assert bob_token is not None
    await bob.auth(bob_token)
    got = await bob.call("history", conv=bob_conv, after=2)  # back online: he receives it
    assert [m["body"] for m in got["messages"]] == ["收到了吗？"]
    await page.wait_for(f"{tick('收到了吗？')} === 'delivered'", t(5))
    await shots.take(page, "tick-delivered")
    await bob.call("read", conv=bob_conv, seq=3)
    await page.wait_for(f"{tick('收到了吗？')} === 'read'", t(5))
    await shots.take(page, "tick-read")
    # After a reload the ticks come from convs (peer_read_seq).
    await page.reload()
    await page.wait_text("#messages", "收到了吗？", t(10))
    await page.wait_for(f"{tick('收到了吗？')} === 'read'")
    await shots.take(page, "ticks-after-reload")
    await bob.close()
    await carol.close()
    no_errors(page)


async def test_reply_recall_hide_and_mute_between_two_pages_and_another_device(
        server: ChatServer, browser: Browser, shots: Shots) -> None:
    alice = await browser.new_page("alice")
    bob = await browser.new_page("bob", width=390, height=780, mobile=True)  # a phone
    alice_phone, _ = await asyncio.gather(register(alice, server, shots, "Alice", BOTH),
                                          register(bob, server, shots, "Bob", BOTH))
    await alice.click("#match")
    await alice.wait_text("#match-status", "正在寻找")
    await bob.click("#match")
    for page, peer in ((alice, "Bob"), (bob, "Alice")):
        await page.wait_text("#conv-title", peer, t(10))
    conv = await alice.eval("localStorage.getItem('chatd.app.current')")

    # Reply: Alice answers Bob's message; both sides show the quote.
    await send(bob, "原来的消息")
    await alice.wait_text("#messages", "原来的消息")
    await menu_action(alice, "原来的消息", "reply")
    await alice.wait_for("!document.querySelector('#reply-bar').hidden")
    bar = await alice.text("#reply-bar")
    assert "Bob" in bar and "原来的消息" in bar
    await shots.take(alice, "reply-bar")
    await send(alice, "这是回复")
    await alice.wait_for("document.querySelector('#reply-bar').hidden")
    for page, who in ((alice, "Bob"), (bob, "我 me")):
        await page.wait_for(f"({bubble('这是回复')})?.querySelector('.quote')"
                            f"?.textContent === {js(who + ': 原来的消息')}")
    await shots.take(alice, "reply-sent")
    await shots.take(bob, "reply-received")

    # A reply bar can be cancelled with its ×.
    await menu_action(alice, "原来的消息", "reply")
    await alice.click("#reply-cancel")
    await alice.wait_for("document.querySelector('#reply-bar').hidden")

    # Recall of Alice's own message, from the ⋯ menu: the bubble changes on both sides.
    await send(alice, "发错了")
    await bob.wait_text("#messages", "发错了")
    await menu_action(alice, "发错了", "recall")
    await alice.wait_text("#messages", "你撤回了一条消息")
    await bob.wait_text("#messages", "对方撤回了一条消息")
    assert "发错了" not in await alice.text("#messages") + await bob.text("#messages")
    await alice.wait_text(row(conv) + " .conv-preview", "[消息已撤回]")
    await shots.take(alice, "recalled-own")
    await shots.take(bob, "recalled-by-peer")

    # Bob recalls the quoted message with a long-press on his phone: the quote says so.
    await long_press(bob, await bubble_sel(bob, "原来的消息"))
    await shots.take(bob, "long-press-menu")
    await bob.click("#menu [data-action=recall]")
    await bob.wait_text("#messages", "你撤回了一条消息")
    for page in (alice, bob):
        await page.wait_for(f"({bubble('这是回复')})?.querySelector('.quote.gone')"
                            "?.textContent === '[消息已撤回]'")
    await alice.wait_text("#messages", "对方撤回了一条消息")
    await shots.take(alice, "quote-recalled")
    await shots.take(bob, "quote-recalled-mobile")
    # Bob cannot recall Alice's message: the menu does not offer it.
    await bob.click(await bubble_sel(bob, "这是回复") + " .more")
    assert await bob.eval("[...document.querySelectorAll('#menu [role=menuitem]')]"
                          ".map(b => b.dataset.action)") == ["reply", "copy", "hide"]
    await bob.press("Escape")
    await bob.wait_for("document.querySelector('#menu').hidden")

    # Delete for me: the bubble goes on Alice's page only.
    await send(bob, "只在 Alice 这边删除")
    await alice.wait_text("#messages", "只在 Alice 这边删除")
    await menu_action(alice, "只在 Alice 这边删除", "hide")
    await alice.wait_for(f"!({bubble('只在 Alice 这边删除')})")
    assert "只在 Alice 这边删除" in await bob.text("#messages")
    await shots.take(alice, "hidden")

    # Alice's other device hides a message: it leaves this page too.
    url = url_of(server)
    async with await Client.connect(url, "json") as phone:
        await phone.login(alice_phone, PASSWORD)
        await send(bob, "另一台设备删除")
        await alice.wait_text("#messages", "另一台设备删除")
        ev = await phone.next_event("msg", t(5))
        await phone.call("msg.hide", conv=conv, id=ev["id"])
        await alice.wait_for(f"!({bubble('另一台设备删除')})")
        # The preview falls back to the newest message still shown: the recalled one.
        await alice.wait_text(row(conv) + " .conv-preview", "[消息已撤回]")
        await shots.take(alice, "hidden-on-another-device")

        # Mute for 8 h from the header: the list shows the marker, the phone hears of it.
        await alice.click("#mute")
        await shots.take(alice, "mute-menu")
        await alice.click("#menu [data-action=mute-hours]")
        await alice.wait_for(f"!!document.querySelector({js(row(conv) + ' .mute-mark')})")
        assert await alice.eval("document.querySelector('#mute').dataset.muted") == "true"
        muted = await phone.next_event("conv.muted", t(5))
        assert 7.9 * 3600_000 < muted["until"] - await alice.eval("Date.now()") < 8.1 * 3600_000
        await shots.take(alice, "muted")
        # The phone lifts it, then mutes until lifted: the page follows.
        await phone.call("conv.mute", conv=conv, until=0)
        await alice.wait_for(f"!document.querySelector({js(row(conv) + ' .mute-mark')})")
        assert await alice.eval("document.querySelector('#mute').dataset.muted") == "false"
        await phone.call("conv.mute", conv=conv, until=FOREVER)
        await alice.wait_for(f"!!document.querySelector({js(row(conv) + ' .mute-mark')})")
        assert "直到取消" in await alice.eval(
            f"document.querySelector({js(row(conv) + ' .mute-mark')}).title")
        # Muted: the header button lifts it in one click.
        await alice.click("#mute")
        await alice.wait_for(f"!document.querySelector({js(row(conv) + ' .mute-mark')})")
        assert (await phone.next_event("conv.muted", t(5)))["until"] == 0
        await shots.take(alice, "unmuted")
    no_errors(alice, bob)


async def test_a_recall_refused_as_too_late_is_explained(
        config: Config, browser: Browser, shots: Shots) -> None:
    # recall_window 0: the server refuses every recall with too_late (the page offers 撤回 for
    # 120 s, the default window, so this is what it shows when the server's is shorter).
    srv = ChatServer(dataclasses.replace(config, recall_window=0))
    await srv.start()
    try:
        phone = new_phone()
        async with await Client.connect(url_of(srv), "json") as c:
            await c.register(phone, nickname="Alice", interests=["music.rock"])
        page = await browser.new_page("alice")
        await login(page, srv, phone)
        await page.click(row("g:music.rock"))
        await page.wait_for("!document.querySelector('#composer').hidden")
        await send(page, "群里说一句")
        await page.wait_text(row("g:music.rock") + " .conv-preview", "我 me: 群里说一句")
        await menu_action(page, "群里说一句", "recall")
        await page.wait_text("#send-error", "撤回失败")
        assert "已超过可撤回的时间" in await page.text("#send-error")
        assert await page.eval("document.querySelector('#send-error').dataset.code") == "too_late"
        assert "群里说一句" in await page.text("#messages")
        await shots.take(page, "too-late")
        # Not offered again for that message.
        await page.click(await bubble_sel(page, "群里说一句") + " .more")
        actions = await page.eval("[...document.querySelectorAll('#menu [role=menuitem]')]"
                                  ".map(b => b.dataset.action)")
        assert "recall" not in actions and "hide" in actions
        no_errors(page)
    finally:
        await srv.stop()
