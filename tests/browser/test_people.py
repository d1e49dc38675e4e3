"""Other people on /app/, in a real headless Chromium against a real chatd: group members'
nicknames looked up with ``profiles`` (messages, quotes, the group's preview; batched, each
id asked once) and a 1:1 peer's online dot following ``presence`` events.

Screenshots of every step go to test-artifacts/screenshots/<test>/.
"""

from __future__ import annotations

import json
from typing import Any

from chatd.client import Client
from chatd.server import ChatServer
from tests.browser.cdp import Browser, Page
from tests.browser.conftest import Shots
from tests.browser.test_chat_features import bubble, bubble_sel, login, match, row, row_text
from tests.browser.test_pages import no_errors
from tests.conftest import new_phone, registered, t, url_of

ROCK = "g:music.rock"

# Records every request the page sends (before its scripts run: CDP's injected scripts are
# not subject to the page's CSP), so a test can count the "profiles" lookups.
SPY = """
window.__sent = [];
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) {
  try { window.__sent.push(JSON.parse(data)); } catch {}
  return send.call(this, data);
};
"""


def js(value: Any) -> str:
    return json.dumps(value)


async def spy_on_requests(page: Page) -> None:
    await page.send("Page.addScriptToEvaluateOnNewDocument", {"source": SPY})


async def profile_lookups(page: Page) -> list[list[str]]:
    """The `users` of every "profiles" request the page sent so far."""
    sent = await page.eval("window.__sent.filter(f => f.t === 'profiles').map(f => f.users)")
    return list(sent)


def dot_on(selector: str) -> str:
    return f"document.querySelector({js(selector + ' .dot')})?.classList.contains('on')"


async def test_group_members_are_named_with_profiles(
        server: ChatServer, browser: Browser, shots: Shots) -> None:
    url = url_of(server)
    alice_phone = new_phone()
    async with await Client.connect(url, "json") as alice:
        await alice.register(alice_phone, nickname="Alice", interests=["music.rock"])
    bob = await registered(url, ["music.rock"], "json", nickname="鲍勃 Bob")
    carol = await registered(url, ["music.rock"], "json", nickname="卡罗 Carol")
    dave = await registered(url, ["music.rock"], "json", nickname="Dave")
    # Dave writes, then leaves the group: he shares no conversation with Alice any more, so
    # "profiles" leaves him out and he stays "用户 <id>".
    await dave.call("msg.send", conv=ROCK, body="我先走了")
    await dave.call("profile.update", interests=["music.pop"])
    hello = await bob.call("msg.send", conv=ROCK, body="大家好")
    await carol.call("msg.send", conv=ROCK, body="你好呀", reply_to=hello["id"])
    await bob.call("msg.send", conv=ROCK, body="今晚听什么？")

    page = await browser.new_page("alice")
    await spy_on_requests(page)
    await login(page, server, alice_phone)
    # The group's preview names its newest sender (nobody here is Alice's 1:1 peer).
    await page.wait_text(row(ROCK) + " .conv-preview", "鲍勃 Bob: 今晚听什么？")
    await shots.take(page, "group-preview-named")

    await page.click(row(ROCK))
    await page.wait_text("#messages", "今晚听什么？")
    await page.wait_for(f"({bubble('你好呀')})?.querySelector('.from')?.textContent"
                        " === '卡罗 Carol'")
    assert await page.eval(f"({bubble('大家好')}).querySelector('.from').textContent") \
        == "鲍勃 Bob"
    # The quote names the quoted message's author.
    assert await page.eval(f"({bubble('你好呀')}).querySelector('.quote').textContent") \
        == "鲍勃 Bob: 大家好"
    assert dave.user is not None
    assert await page.eval(f"({bubble('我先走了')}).querySelector('.from').textContent") \
        == f"用户 {dave.user['id'][:6]}"
    await shots.take(page, "group-names")

    # A new member writes while the page is open: looked up when first shown.
    async with await registered(url, ["music.rock"], "json", nickname="新人 Erin") as erin:
        await erin.call("msg.send", conv=ROCK, body="我是新来的")
        await page.wait_for(f"({bubble('我是新来的')})?.querySelector('.from')?.textContent"
                            " === '新人 Erin'")
        await page.click(await bubble_sel(page, "我是新来的") + " .more")
        await page.click("#menu [data-action=reply]")
        await page.wait_text("#reply-name", "新人 Erin")
        await shots.take(page, "new-member-named")
        assert erin.user is not None
        erin_id = erin.user["id"]

    # Batched and never repeated: each id was asked about once, at most 100 per request,
    # though every render (list, bubbles, quotes, reply bar) asked for the names.
    lookups = await profile_lookups(page)
    asked = [u for users in lookups for u in users]
    assert len(asked) == len(set(asked)), lookups
    assert all(len(users) <= 100 for users in lookups)
    assert bob.user and carol.user
    assert {bob.user["id"], carol.user["id"], dave.user["id"], erin_id} == set(asked)
    assert await row_text(page, ROCK, ".conv-preview") == "新人 Erin: 我是新来的"

    # The batching itself, on the module: 250 unknown ids are 3 requests (100, 100, 50); an
    # id the server leaves out is not asked about again.
    result = await page.eval("""(async () => {
      const { Names } = await import('/app/names.js');
      const calls = [];
      const client = { request: async (op, f) => {
        calls.push([op, f.users.length]);
        const users = {};
        for (const u of f.users) if (u !== 'u7') users[u] = { id: u, nickname: 'N' + u };
        return { t: 'ok', users };
      } };
      let learned = 0;
      const names = new Names(client, () => { learned += 1; });
      for (let i = 0; i < 250; i++) names.get('u' + i);
      names.get('u1');
      await new Promise((r) => setTimeout(r, 50));
      const first = [names.get('u3'), names.get('u7') ?? null];
      await new Promise((r) => setTimeout(r, 50));
      return { calls, learned, first };
    })()""")
    assert result == {"calls": [["profiles", 100], ["profiles", 100], ["profiles", 50]],
                      "learned": 1, "first": ["Nu3", None]}
    for c in (bob, carol, dave):
        await c.close()
    no_errors(page)


async def test_the_online_dot_follows_presence_events(
        server: ChatServer, browser: Browser, shots: Shots) -> None:
    url = url_of(server)
    alice_phone = new_phone()
    both = ["music.rock", "music.pop"]
    alice = await Client.connect(url, "json")
    await alice.register(alice_phone, nickname="Alice", interests=both)
    bob = await registered(url, both, "json", nickname="Bob")
    conv = await match(alice, bob)
    await alice.close()
    bob_token = bob.token
    assert bob_token is not None

    page = await browser.new_page("alice")
    await login(page, server, alice_phone)
    await page.wait_for(dot_on(row(conv)))
    await page.click(row(conv))
    await page.wait_for(dot_on("#conv-title"))
    assert await page.eval("document.querySelector('#conv-title .dot').getAttribute("
                           "'aria-label')") == "在线 online"
    await shots.take(page, "bob-online")

    # Bob's last connection closes: after the presence grace Alice's page hears it.
    await bob.close()
    await page.wait_for(f"!({dot_on(row(conv))}) && !({dot_on('#conv-title')})", t(5))
    assert await page.eval("document.querySelector('#conv-title .dot').getAttribute("
                           "'aria-label')") == "离线 offline"
    await shots.take(page, "bob-offline")

    # He comes back: online at once.
    bob = await Client.connect(url, "json")
    await bob.auth(bob_token)
    await page.wait_for(f"({dot_on(row(conv))}) && ({dot_on('#conv-title')})", t(5))
    await shots.take(page, "bob-back-online")
    await bob.close()
    no_errors(page)
