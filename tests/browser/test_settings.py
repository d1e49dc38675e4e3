"""The settings view of /app/ (设置) in a real headless Chromium against a real chatd: the
signed-in devices (登录设备: sessions, session.revoke both ways) and the notification
preferences (通知设置: notify.settings, with the browser's time zone).

Screenshots of every step go to test-artifacts/screenshots/<test>/.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from chatd.client import Client
from chatd.server import ChatServer
from tests.browser.cdp import Browser, Page
from tests.browser.conftest import Shots
from tests.browser.test_chat_features import login
from tests.browser.test_pages import PASSWORD, no_errors
from tests.conftest import new_phone, t, url_of


def js(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


async def device_login(url: str, phone: str, device: str) -> Client:
    """A Python client logged in as `phone` with a device label (Client.login sends none)."""
    c = await Client.connect(url, "json")
    reply = await c.call("login", phone=phone, password=PASSWORD, device=device)
    c.user, c.token = reply["user"], reply["token"]
    return c


async def open_settings(page: Page) -> None:
    await page.click("#open-settings")
    await page.wait_for("!document.querySelector('#settings').hidden"
                        " && document.querySelectorAll('#sessions li').length > 0"
                        " && document.querySelector('#notify-tz').textContent !== ''")


def session_rows() -> str:
    """A JS expression: [device, current] of each listed session, in order."""
    return ("[...document.querySelectorAll('#sessions li')].map(li =>"
            " [li.querySelector('.session-device').firstChild.textContent,"
            " li.classList.contains('current')])")


def revoke_button(device: str) -> str:
    """A selector of the 下线 button of the session row labelled `device`."""
    return f"#sessions li[data-session] button[aria-label^={js('下线 Sign out: ' + device)}]"


async def confirm(page: Page, answer: str = "ok") -> None:
    await page.wait_for("document.querySelector('#confirm').open")
    await page.click("#confirm-ok" if answer == "ok" else "#confirm button[value=cancel]")
    await page.wait_for("!document.querySelector('#confirm').open")


async def closed_with(c: Client) -> tuple[int | None, str | None]:
    await asyncio.wait_for(c.ws.wait_closed(), t(5))
    return c.ws.close_code, c.ws.close_reason


async def test_sessions_are_listed_and_revoked_both_ways(
        server: ChatServer, browser: Browser, shots: Shots) -> None:
    url = url_of(server)
    phone = new_phone()
    async with await Client.connect(url, "json") as c:
        await c.register(phone, nickname="Alice")
        await c.call("logout")  # no third session: the one of the registration ends
    iphone = await device_login(url, phone, "Alice 的 iPhone")

    page = await browser.new_page("alice")
    await login(page, server, phone)
    await open_settings(page)
    await page.wait_for(f"{session_rows()}.length === 2")
    rows = await page.eval(session_rows())
    assert rows[0][1] is True and rows[0][0].startswith("网页 Web · Chrome")  # this page
    assert rows[1] == ["Alice 的 iPhone", False]
    assert "本机" in await page.text("#sessions li.current")
    assert "正在使用" in await page.text("#sessions li.current")
    assert "最近活跃" in await page.text("#sessions li:not(.current)")
    await shots.take(page, "sessions")

    # Cancelling the dialog revokes nothing.
    await page.click(revoke_button("Alice 的 iPhone"))
    await page.wait_for("document.querySelector('#confirm').open")
    assert "Alice 的 iPhone" in await page.text("#confirm-text")
    await shots.take(page, "confirm-revoke")
    await confirm(page, "cancel")
    assert len(await page.eval(session_rows())) == 2
    assert (await iphone.call("ping"))["t"] == "ok"

    # 下线 the iPhone: its connection closes with 4001 and the list shows this page alone.
    await page.click(revoke_button("Alice 的 iPhone"))
    await confirm(page)
    assert await closed_with(iphone) == (4001, "session ended")
    await page.wait_for(f"{session_rows()}.length === 1")
    await page.wait_text("#sessions-status", "已下线")
    await shots.take(page, "revoked-iphone")
    async with await Client.connect(url, "json") as again:  # its token is dead
        assert (await again.request("auth", token=iphone.token))["code"] == "unauthorized"

    # Another device revokes this page's session: the page goes back to the login form and
    # says why.
    ipad = await device_login(url, phone, "Alice 的 iPad")
    listed = (await ipad.call("sessions"))["sessions"]
    web = next(s for s in listed if s["device"].startswith("网页 Web"))
    assert not web["current"]
    await ipad.call("session.revoke", id=web["id"])
    await page.wait_for("!document.querySelector('#auth').hidden", t(5))
    await page.wait_text("#notice", "已在其他设备下线")
    assert await page.eval("localStorage.getItem('chatd.app.token')") is None
    assert await page.eval("document.querySelector('#settings').hidden")
    await shots.take(page, "revoked-from-elsewhere")

    # Logged in again, the page signs its own session out from the list: back to the login
    # form with nothing to explain, and the session is gone for the iPad too.
    await page.wait_for("document.querySelector('#conn').dataset.state === 'open'", t(5))
    await page.click("#tab-login")
    await page.type("#login-phone", phone)
    await page.type("#login-password", PASSWORD)
    await page.press("Enter")
    await page.wait_for("!document.querySelector('#chat').hidden", t(10))
    assert await page.eval("document.querySelector('#notice').hidden")
    await open_settings(page)
    await page.wait_for(f"{session_rows()}.length === 2")
    await page.click("#sessions li.current button")
    await page.wait_text("#confirm-text", "本机")
    await confirm(page)
    await page.wait_for("!document.querySelector('#auth').hidden", t(5))
    assert await page.eval("localStorage.getItem('chatd.app.token')") is None
    assert await page.eval("document.querySelector('#notice').hidden")
    await shots.take(page, "revoked-own")
    left = (await ipad.call("sessions"))["sessions"]
    assert [s["device"] for s in left] == ["Alice 的 iPad"]
    # The page stays signed out (its reconnect has no token), and still works.
    await page.wait_for("document.querySelector('#conn').dataset.state === 'open'", t(5))
    assert await page.eval("document.querySelector('#chat').hidden")
    await ipad.close()
    no_errors(page)


async def test_notification_settings_round_trip(
        server: ChatServer, browser: Browser, shots: Shots) -> None:
    url = url_of(server)
    phone = new_phone()
    async with await Client.connect(url, "json") as c:
        await c.register(phone, nickname="Alice")
    page = await browser.new_page("alice", width=390, height=780, mobile=True)  # a phone
    # India is UTC+5:30 with no summer time: getTimezoneOffset() is -330, the server wants 330.
    await page.send("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Kolkata"})
    await login(page, server, phone)
    await open_settings(page)
    # The defaults: on, no previews, no groups, no quiet hours (the time fields disabled).
    f = "document.querySelector('#notify-form').elements"
    assert await page.eval(f"[{f}.enabled.checked, {f}.previews.checked, {f}.groups.checked,"
                           f" {f}.quiet.checked, {f}.quiet_start.disabled]") \
        == [True, False, False, False, True]
    assert "UTC+05:30" in await page.text("#notify-tz")
    await shots.take(page, "notify-defaults", full_page=True)

    await page.click("label[for=notify-previews]")
    await page.click("label[for=notify-groups]")
    await page.click("label[for=notify-quiet]")
    await page.wait_for("!document.querySelector('#quiet-start').disabled")
    # A time input takes no typed text over CDP: set the values as the picker would.
    set_times = ("((a, b) => { for (const [id, v] of [['quiet-start', a], ['quiet-end', b]]) {"
                 " const e = document.getElementById(id); e.value = v;"
                 " e.dispatchEvent(new Event('input', {bubbles: true}));"
                 " e.dispatchEvent(new Event('change', {bubbles: true})); } })")
    # The same start and end are refused before anything is sent.
    await page.eval(f"{set_times}('23:00', '23:00')")
    await page.click("#notify-form button[type=submit]")
    await page.wait_text("#notify-form .error", "不同的开始和结束时间")
    await page.eval(f"{set_times}('23:30', '07:15')")
    await page.click("#notify-form button[type=submit]")
    await page.wait_text("#notify-status", "已保存")
    assert await page.eval("document.querySelector('#notify-form .error').hidden")
    await shots.take(page, "notify-saved", full_page=True)

    async with await device_login(url, phone, "pytest") as other:
        settings = (await other.call("notify.settings"))["settings"]
        assert settings == {"enabled": True, "previews": True, "groups": True,
                            "quiet_start": 23 * 60 + 30, "quiet_end": 7 * 60 + 15,
                            "tz_offset": 330}

        # A reload shows the saved values.
        await page.reload()
        await page.wait_for("!document.querySelector('#chat').hidden", t(10))
        await open_settings(page)
        assert await page.eval(f"[{f}.enabled.checked, {f}.previews.checked,"
                               f" {f}.groups.checked, {f}.quiet.checked,"
                               f" {f}.quiet_start.value, {f}.quiet_end.value]") \
            == [True, True, True, True, "23:30", "07:15"]
        await shots.take(page, "notify-after-reload", full_page=True)

        # Changed on another device (notifications off, saved from UTC+8): shown when the
        # settings are opened again, the details greyed out, the other zone named.
        await other.call("notify.settings", enabled=False, tz_offset=480)
        await page.click("#settings-back")
        await page.wait_for("!document.querySelector('#chat').hidden")
        await open_settings(page)
        await page.wait_for(f"!{f}.enabled.checked")
        assert await page.eval("document.querySelector('#notify-details').disabled")
        assert "UTC+08:00" in await page.text("#notify-tz")
        await shots.take(page, "notify-off-elsewhere", full_page=True)
        # Turning them on again here saves this browser's zone.
        await page.click("label[for=notify-enabled]")
        await page.click("#notify-form button[type=submit]")
        await page.wait_text("#notify-status", "已保存")
        settings = (await other.call("notify.settings"))["settings"]
        assert settings["enabled"] is True and settings["tz_offset"] == 330
        assert settings["quiet_start"] == 23 * 60 + 30
    no_errors(page)
