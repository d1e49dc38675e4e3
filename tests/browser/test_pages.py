"""The /app/ and /mod/ pages in a real headless Chromium against a real chatd on port 0.

Screenshots of every step go to test-artifacts/screenshots/<test>/ (kept after the run).
"""

from __future__ import annotations

import asyncio
import json

from chatd.client import Client
from chatd.server import ChatServer
from chatd.store import UserId
from tests.browser.cdp import Browser, Page
from tests.browser.conftest import Shots
from tests.conftest import new_phone, t

PASSWORD = "correct horse 1"


def base(server: ChatServer) -> str:
    return f"http://127.0.0.1:{server.port}"


def js(value: str) -> str:
    return json.dumps(value)


async def register(page: Page, server: ChatServer, shots: Shots, nickname: str,
                   interests: list[str]) -> str:
    phone = new_phone()
    await page.goto(base(server) + "/app/")
    await page.wait_for("!document.querySelector('#auth').hidden"
                        " && document.querySelectorAll('#reg-interests input').length > 10")
    await page.type("#reg-phone", phone)
    await page.click("#reg-sms")
    await page.wait_for("/^[0-9]{6}$/.test(document.querySelector('#reg-code').value)")
    assert "开发模式验证码" in await page.text("#reg-devcode")
    await page.type("#reg-password", PASSWORD)
    await page.type("#reg-nickname", nickname)
    for tag in interests:
        await page.click(f"label[for='reg-tag-{tag}']")
    await shots.take(page, "register-form", full_page=True)
    await page.click("#register button[type=submit]")
    await page.wait_for("!document.querySelector('#chat').hidden", t(10))
    await page.wait_text("#group-list", "摇滚")
    assert await page.eval("!!localStorage.getItem('chatd.app.token')")
    return phone


async def send(page: Page, text: str, enter: bool = True) -> None:
    await page.type("#body", text)
    if enter:
        await page.press("Enter")
    else:
        await page.click("#composer button[type=submit]")


async def make_moderator(server: ChatServer, nickname: str = "审核员小王") -> str:
    phone = new_phone()
    async with await Client.connect(f"ws://127.0.0.1:{server.port}/ws", "json") as c:
        await c.register(phone, password=PASSWORD, nickname=nickname)
        assert c.user is not None
        await server.app.store.set_role(UserId(c.user["id"]), "moderator")
    return phone


async def mod_login(page: Page, server: ChatServer, phone: str) -> None:
    await page.goto(base(server) + "/mod/")
    await page.wait_for("!document.querySelector('#auth').hidden")
    await page.type("#login-phone", phone)
    await page.type("#login-password", PASSWORD)
    await page.press("Enter")
    await page.wait_for("!document.querySelector('#console').hidden")
    await page.wait_text("#words-version", "词表版本")


def no_errors(*pages: Page) -> None:
    for page in pages:
        assert page.errors == [], (page.name, page.errors)


async def test_two_users_match_chat_reload_and_a_moderator_blocks_a_word(
        server: ChatServer, browser: Browser, shots: Shots) -> None:
    alice = await browser.new_page("alice")
    bob = await browser.new_page("bob", width=390, height=780, mobile=True)  # a phone
    # Two shared tags: a strong pair, matched at once.
    both = ["music.rock", "music.pop"]
    await asyncio.gather(register(alice, server, shots, "Alice", both),
                         register(bob, server, shots, "Bob", both))
    await shots.take(alice, "registered")

    # Match and chat both ways.
    await alice.click("#match")
    await alice.wait_text("#match-status", "正在寻找")
    await shots.take(alice, "matching")
    await bob.click("#match")
    for page, peer in ((alice, "Bob"), (bob, "Alice")):
        await page.wait_text("#conv-title", peer, t(10))
        await page.wait_text("#match-status", "已匹配")
    await send(alice, "你好，我是 Alice 👋")  # Enter sends
    await bob.wait_text("#messages", "你好，我是 Alice 👋")
    await alice.wait_text("#messages", "你好，我是 Alice 👋")  # the sender sees it too
    await send(bob, "Hi Alice! 很高兴认识你", enter=False)  # the button sends
    await alice.wait_text("#messages", "很高兴认识你")
    await bob.wait_text("#messages", "很高兴认识你")
    # A `mask` word: both sides show the stored, masked text.
    await send(alice, "加微信 abc123")
    await bob.wait_text("#messages", "*** abc123")
    await alice.wait_text("#messages", "*** abc123")
    assert "加微信" not in await alice.text("#messages")
    await shots.take(alice, "chat")
    await shots.take(bob, "chat-mobile")
    assert "摇滚" in await alice.text("#group-list") and "流行" in await alice.text("#group-list")

    # A reload resumes the session (auth with the kept token) and rebuilds the chat from
    # convs and history.
    await alice.reload()
    await alice.wait_text("#messages", "很高兴认识你", t(10))
    assert "你好，我是 Alice" in await alice.text("#messages")
    assert "Bob" in await alice.text("#direct-list")
    await shots.take(alice, "after-reload")

    # A word of the test list is refused with `filtered`; nothing reaches Bob.
    await send(alice, "你是傻逼")
    await alice.wait_for("!document.querySelector('#send-error').hidden")
    assert await alice.eval("document.querySelector('#send-error').dataset.code") == "filtered"
    assert "abuse" in await alice.text("#send-error")
    await shots.take(alice, "filtered")

    # A moderator adds a word on /mod/; Alice's next message with it is refused.
    mod = await browser.new_page("mod", width=1200, height=900)
    await mod_login(mod, server, await make_moderator(server))
    await shots.take(mod, "words")
    await mod.type("#add-word", "新坏词")
    await mod.type("#add-category", "abuse")
    await mod.click("#words-add button[type=submit]")
    await mod.wait_text("#words-msg", "已添加")
    await mod.type("#words-q", "坏词")
    await mod.press("Enter")
    await mod.wait_text("#words-table", "新坏词")
    await mod.type("#allow-word", "新坏词典")
    await mod.click("#allow-add button[type=submit]")
    await mod.wait_text("#allow-list", "新坏词典")
    await shots.take(mod, "word-added")

    await mod.click("#tab-check")
    await mod.type("#check-text", "你个新 坏词! 买本新坏词典 😀 加微信 聊敏感话题")
    await mod.click("#check-form button[type=submit]")
    await mod.wait_for("document.querySelectorAll('#check-highlight mark').length >= 3")
    marks = await mod.eval("[...document.querySelectorAll('#check-highlight mark')]"
                           ".map(m => m.textContent)")
    assert marks == ["新 坏词", "加微信", "敏感话题"], marks
    assert "会被拦截" in await mod.text("#check-verdict")
    await shots.take(mod, "dry-run")

    await send(alice, "你个新坏词")
    await alice.wait_text("#send-error", "filtered")
    await alice.wait_for("document.querySelector('#body').value === '你个新坏词'")
    await shots.take(alice, "filtered-new-word")
    await send(bob, "买本新坏词典")  # the allow-list wins
    await alice.wait_text("#messages", "买本新坏词典")
    assert "你个新坏词" not in await bob.text("#messages")
    await shots.take(bob, "allowed-word-mobile")
    no_errors(alice, bob, mod)


async def test_moderator_works_the_review_and_report_queues(
        server: ChatServer, browser: Browser, shots: Shots) -> None:
    url = f"ws://127.0.0.1:{server.port}/ws"
    phone = new_phone()
    async with await Client.connect(url, "json") as c:
        await c.register(phone, password=PASSWORD, nickname="小明")
        author_id = c.user["id"]  # type: ignore[index]

    # The author logs in on /app/ and posts a `review` word in a group.
    user = await browser.new_page("user")
    await user.goto(base(server) + "/app/")
    await user.wait_for("!document.querySelector('#auth').hidden")
    await user.click("#tab-register")
    await user.press("ArrowRight")  # keyboard tab switch to 登录
    await user.wait_for("!document.querySelector('#login').hidden")
    await user.type("#login-phone", phone)
    await user.type("#login-password", PASSWORD)
    await shots.take(user, "login")
    await user.press("Enter")
    await user.wait_for("!document.querySelector('#chat').hidden")
    await user.click("#group-list button[data-conv='g:music.rock']")
    await user.wait_for("!document.querySelector('#composer').hidden")
    await send(user, "我们聊聊敏感话题吧")
    await user.wait_text("#messages", "我们聊聊敏感话题吧")
    await shots.take(user, "group-message")

    async with await Client.connect(url, "json") as reporter:
        await reporter.register(new_phone(), nickname="路人")
        await reporter.call("report", kind="user", target=author_id, reason="harassment",
                            text="他骂人")

    mod = await browser.new_page("mod", width=1200, height=900)
    await mod_login(mod, server, await make_moderator(server))
    await mod.click("#tab-review")
    await mod.wait_text("#review .queue", "我们聊聊敏感话题吧")
    await shots.take(mod, "review-queue", full_page=True)
    await mod.click("#review .queue-item button[type=submit]")  # default action: dismiss
    await mod.wait_text("#review > .status", "已处理")
    await mod.wait_text("#review .queue", "队列为空")

    await mod.click("#tab-reports")
    await mod.wait_text("#reports .queue", "harassment")
    assert "他骂人" in await mod.text("#reports .queue")
    await mod.eval("(() => { const s = document.querySelector('#reports .queue-item select');"
                   " s.value = 'warn'; s.dispatchEvent(new Event('change')); })()")
    await mod.type("#reports .queue-item input[name=note]", "请文明聊天")
    await shots.take(mod, "report-queue", full_page=True)
    await mod.click("#reports .queue-item button[type=submit]")
    await mod.wait_text("#reports > .status", "关闭举报 reports closed: 1")
    await mod.wait_text("#reports .queue", "队列为空")
    await shots.take(mod, "report-resolved")

    await user.wait_text("#notice", "请文明聊天")
    await shots.take(user, "warned")

    # Pick another interest: its group appears. Then log out: the token is gone.
    await user.click(".side details summary")
    await user.click("label[for='my-tag-music.pop']")
    await shots.take(user, "interests")
    await user.click("#interests-form button[type=submit]")
    await user.wait_text("#group-list", "流行")
    await user.click("#logout")
    await user.wait_for("!document.querySelector('#auth').hidden")
    assert await user.eval("localStorage.getItem('chatd.app.token')") is None
    no_errors(user, mod)
