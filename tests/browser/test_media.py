"""Photos, voice clips, avatars and feedback in /app/ (issue 17), in a real headless Chromium
against a real chatd: uploads through the page's file pickers (CDP intercepts the chooser and
sets the files), thumbnails and the viewer, voice bubbles and playback, photos in posts, the
avatar in settings and in the peer's list, header and match notice, refused uploads explained
in Chinese, 意见反馈 with a moderator's reply, and recording with Chromium's fake microphone.

Screenshots of every step go to test-artifacts/screenshots/<test>/.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
import struct
import zlib
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from chatd.client import Client
from chatd.config import Config
from chatd.server import ChatServer
from chatd.store import UserId
from tests.browser.cdp import Browser, Page
from tests.browser.conftest import Shots
from tests.browser.test_chat_features import login
from tests.browser.test_pages import PASSWORD, base, no_errors
from tests.conftest import new_phone, t, url_of
from tests.test_media_e2e import gps_photo

DATA = Path(__file__).resolve().parent.parent / "data" / "media"
BOTH = ["music.rock", "music.pop"]  # two shared tags: a strong pair, matched at once
MAX_IMAGE_BYTES = 2 * 1024 * 1024


@pytest.fixture
def config(config: Config) -> Config:
    """A smaller photo limit, so that a 413 needs only a few MB; every account's photos are
    fine without review (media_review_new_days 0)."""
    return dataclasses.replace(config, max_image_bytes=MAX_IMAGE_BYTES, media_review_new_days=0)


def js(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def write_photo(path: Path, size: tuple[int, int] = (800, 600), seed: int = 1) -> Path:
    """A JPEG of coloured discs on a gradient, with EXIF and GPS (each seed looks different)."""
    path.write_bytes(gps_photo(size, seed))
    return path


def write_noise(path: Path, nbytes: int) -> Path:
    """A real JPEG of noise, larger than `nbytes`."""
    side = 1200
    while True:
        img = Image.frombytes("RGB", (side, side), random.Random(side).randbytes(side * side * 3))
        img.save(path, "JPEG", quality=95)
        if path.stat().st_size > nbytes:
            return path
        side += 400


def write_bomb(path: Path, side: int = 30_000) -> Path:
    """A PNG that declares side x side pixels in a few KB (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    rows = zlib.compress((b"\x00" + b"\x00" * (side // 8)) * 64, 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    return path


def loaded(selector: str) -> str:
    """A JS expression: how many <img> under `selector` have loaded (naturalWidth > 0)."""
    return (f"[...document.querySelectorAll({js(selector)})]"
            ".filter(i => i.complete && i.naturalWidth > 0).length")


async def http_upload(server: ChatServer, token: str, kind: str, body: bytes
                      ) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.post(
            f"{base(server)}/upload?kind={kind}", data=body,
            headers={"Authorization": f"Bearer {token}"}) as r:
        return r.status, json.loads(await r.read())


def refused(page: Page, *statuses: int) -> list[str]:
    """Take the browser's own console lines about these HTTP refusals out of page.errors
    (Chromium logs every failed fetch); return them."""
    pattern = re.compile(rf"status of ({'|'.join(map(str, statuses))})\b")
    lines = [e for e in page.errors if pattern.search(e)]
    page.errors[:] = [e for e in page.errors if e not in lines]
    return lines


async def account(server: ChatServer, nickname: str, interests: list[str]) -> str:
    phone = new_phone()
    async with await Client.connect(url_of(server), "json") as c:
        await c.register(phone, password=PASSWORD, nickname=nickname, interests=interests)
    return phone


async def open_settings(page: Page) -> None:
    await page.click("#open-settings")
    await page.wait_for("!document.querySelector('#settings').hidden"
                        " && !!document.querySelector('#my-avatar .avatar')")


async def open_group(page: Page, conv: str) -> None:
    await page.click(f"#group-list button[data-conv={js(conv)}]")
    await page.wait_for("!document.querySelector('#composer').hidden"
                        " && !document.querySelector('#messages').hasAttribute('aria-busy')")


async def test_avatar_photo_and_voice_in_a_chat(
        server: ChatServer, browser: Browser, shots: Shots, tmp_path: Path) -> None:
    alice = await browser.new_page("alice")
    bob = await browser.new_page("bob", width=390, height=780, mobile=True)  # a phone
    await login(alice, server, await account(server, "Alice", BOTH))
    await login(bob, server, await account(server, "Bob", BOTH))

    # Alice sets her avatar in 设置: square (the server crops it), in settings and the top bar.
    await open_settings(alice)
    assert await alice.text("#my-avatar .avatar.initials") == "A"
    await alice.choose_files("#avatar-pick", write_photo(tmp_path / "face.jpg", (800, 500), 3))
    await alice.wait_text("#avatar-status", "头像已更新")
    await alice.wait_for(f"{loaded('#my-avatar img.avatar')} === 1"
                         f" && {loaded('#whoami img.avatar')} === 1")
    assert await alice.eval("(() => { const i = document.querySelector('#my-avatar img');"
                            " return i.naturalWidth === i.naturalHeight; })()")
    assert await alice.visible("#avatar-clear")
    await shots.take(alice, "avatar-set")
    await alice.click("#settings-back")

    # They match: Bob sees Alice's avatar on match found, in his list and in the chat header;
    # Alice sees Bob's initial (he has no avatar).
    await alice.click("#match")
    await bob.click("#match")
    for page, peer in ((alice, "Bob"), (bob, "Alice")):
        await page.wait_text("#conv-title", peer, t(10))
    await bob.wait_for(f"{loaded('#match-status img.avatar')} === 1"
                       f" && {loaded('#direct-list .conv img.avatar')} === 1"
                       f" && {loaded('#conv-avatar img.avatar')} === 1")
    assert await alice.text("#direct-list .conv .avatar.initials") == "B"
    assert await alice.text("#conv-avatar .avatar.initials") == "B"
    await shots.take(bob, "matched-avatar-header")
    await bob.click("#back")
    await bob.wait_for(f"{loaded('#direct-list .conv img.avatar')} === 1")
    await shots.take(bob, "list-with-avatar")
    await bob.click("#direct-list .conv")
    await bob.wait_for("!document.querySelector('#messages').hasAttribute('aria-busy')")

    # Alice sends a photo (the text box stays empty): a pending tile, then the message.
    await alice.choose_files("#attach-photo", write_photo(tmp_path / "cat.jpg", (800, 600), 1))
    await alice.wait_for("document.querySelector('#photo-tray .tile')?.dataset.state === 'done'")
    assert await alice.eval(f"{loaded('#photo-tray .tile-img')} === 1")  # its local preview
    await shots.take(alice, "photo-pending")
    await alice.click("#composer button[type=submit]")
    await alice.wait_for("document.querySelector('#photo-tray').hidden")
    await alice.wait_for(f"{loaded('#messages li.msg.mine .photos img.thumb')} === 1")
    await bob.wait_for(f"{loaded('#messages li.msg .photos img.thumb')} === 1", t(10))
    thumb = await bob.eval("(() => { const i = document.querySelector('#messages img.thumb');"
                           " return [i.naturalWidth, i.naturalHeight]; })()")
    assert max(thumb) <= 320 and thumb[0] * 3 == thumb[1] * 4  # the thumbnail, 4:3
    await shots.take(bob, "photo-received")
    await bob.click("#messages li.msg .photo")
    await bob.wait_for("document.querySelector('#viewer').open"
                       f" && {loaded('#viewer-img')} === 1")
    assert await bob.eval("document.querySelector('#viewer-img').naturalWidth") == 800  # full size
    await shots.take(bob, "photo-viewer")
    await bob.press("Escape")
    await bob.wait_for("!document.querySelector('#viewer').open")
    await alice.wait_text("#direct-list", "[图片 Photo]")  # the list's preview

    # Alice picks a voice clip from the 🎤 menu; Bob sees its length and plays it.
    await alice.click("#voice")
    await alice.wait_for("!document.querySelector('#menu').hidden")
    assert await alice.eval("[...document.querySelectorAll('#menu [role=menuitem]')]"
                            ".map(b => b.dataset.action)") == ["voice-record", "voice-file"]
    await shots.take(alice, "voice-menu")
    await alice.choose_files("#menu [data-action=voice-file]", DATA / "tone-1s.m4a")
    await alice.wait_for("!!document.querySelector('#messages li.msg.mine .voice')", t(10))
    await bob.wait_for("!!document.querySelector('#messages li.msg .voice')", t(10))
    assert await bob.text("#messages li.msg .voice .voice-len") == "1″"
    assert await bob.eval("document.querySelector('#messages .voice').dataset.seconds") in (
        "1.06", "1.064")
    await shots.take(bob, "voice-received")
    await bob.click("#messages li.msg .voice")
    await bob.wait_for("document.querySelector('#player').currentTime > 0.2", t(10))
    assert (await bob.eval("document.querySelector('#player').src")).startswith(
        base(server) + "/media/")
    await shots.take(bob, "voice-playing")
    await bob.wait_for("document.querySelector('#player').ended", t(10))
    await alice.wait_text("#direct-list", "[语音 Voice] 1″")
    await shots.take(alice, "chat-with-media")
    no_errors(alice, bob)


async def test_photos_in_posts_show_as_a_grid(
        server: ChatServer, browser: Browser, shots: Shots, tmp_path: Path) -> None:
    alice = await browser.new_page("alice")
    bob = await browser.new_page("bob", width=390, height=780, mobile=True)
    await login(alice, server, await account(server, "Alice", ["music.rock"]))
    await login(bob, server, await account(server, "Bob", ["music.rock"]))

    await alice.click("#open-posts")
    await alice.wait_for("!document.querySelector('#posts').hidden"
                         " && !document.querySelector('#feed').hasAttribute('aria-busy')")
    await alice.type("#post-body", "周末的演出 🎸")
    photos = [write_photo(tmp_path / f"gig{i}.jpg", (640, 480), 10 + i) for i in (1, 2)]
    await alice.choose_files("#post-photo", *photos)
    await alice.wait_for("[...document.querySelectorAll('#post-tray .tile')]"
                         ".filter(t => t.dataset.state === 'done').length === 2")
    await alice.wait_for("!!document.querySelector('#post-group option[value=\"g:music.rock\"]')")
    await alice.eval("(() => { const s = document.querySelector('#post-group');"
                     " s.value = 'g:music.rock'; s.dispatchEvent(new Event('change')); })()")
    await shots.take(alice, "post-form")
    await alice.click("#post-form button[type=submit]")
    await alice.wait_text("#feed", "周末的演出")
    await alice.wait_for(f"{loaded('#feed .post .photos.n2 img.thumb')} === 2")
    assert await alice.text("#feed .post .post-group") == "# 摇滚"
    assert await alice.eval("document.querySelector('#post-tray').hidden")
    await shots.take(alice, "feed")

    # Bob reads the group's feed: the same two photos, and the viewer pages through them.
    await bob.click("#open-posts")
    await bob.wait_for("!document.querySelector('#posts').hidden")
    await bob.eval("(() => { const s = document.querySelector('#feed-scope');"
                   " s.value = 'g:music.rock'; s.dispatchEvent(new Event('change')); })()")
    await bob.wait_text("#feed", "周末的演出")
    await bob.wait_for(f"{loaded('#feed .post .photos img.thumb')} === 2")
    await shots.take(bob, "group-feed")
    await bob.click("#feed .post .photo:nth-child(2)")
    await bob.wait_for(f"document.querySelector('#viewer').open && {loaded('#viewer-img')} === 1")
    assert await bob.text("#viewer-count") == "2 / 2"
    await shots.take(bob, "post-photo-viewer")
    await bob.click("#viewer-next")
    await bob.wait_text("#viewer-count", "1 / 2")
    await bob.click("#viewer-close")
    await bob.wait_for("!document.querySelector('#viewer').open")
    no_errors(alice, bob)


async def test_refused_uploads_are_explained_and_nine_photos_go_at_most(
        server: ChatServer, browser: Browser, shots: Shots, tmp_path: Path) -> None:
    # A moderator bans a picture: uploading it (or a copy) later is refused with 422.
    async with await Client.connect(url_of(server), "json") as mod:
        await mod.register(new_phone(), password=PASSWORD, nickname="审核员")
        assert mod.user is not None and mod.token is not None
        await server.app.store.set_role(UserId(mod.user["id"]), "moderator")
        banned = write_photo(tmp_path / "banned.jpg", (600, 600), 99)
        status, up = await http_upload(server, mod.token, "image", banned.read_bytes())
        assert status == 200
        await mod.call("mod.media.resolve", id=up["id"], action="ban")

    alice = await browser.new_page("alice")
    await login(alice, server, await account(server, "Alice", ["music.rock"]))
    await open_group(alice, "g:music.rock")
    fake = tmp_path / "notes.jpg"
    fake.write_text("这不是图片 not a picture")
    files = [fake, write_bomb(tmp_path / "bomb.png"),
             write_noise(tmp_path / "huge.jpg", MAX_IMAGE_BYTES + 1), banned]
    await alice.choose_files("#attach-photo", *files)
    await alice.wait_for("[...document.querySelectorAll('#photo-tray .tile')]"
                         ".every(t => t.dataset.state === 'error')"
                         " && document.querySelectorAll('#photo-tray .tile').length === 4", t(15))
    tiles = await alice.eval("[...document.querySelectorAll('#photo-tray .tile')].map(t =>"
                             " [t.dataset.status, t.querySelector('.tile-error').textContent])")
    assert [s for s, _ in tiles] == ["415", "413", "413", "422"]
    assert "不支持的格式" in tiles[0][1]
    assert "图片尺寸太大" in tiles[1][1]
    assert "图片太大" in tiles[2][1]
    assert "图片违规" in tiles[3][1]
    await shots.take(alice, "refused-uploads")
    assert len(refused(alice, 413, 415, 422)) == 4
    # Only refused photos: 发送 sends nothing; × removes a tile.
    await alice.click("#composer button[type=submit]")
    assert await alice.eval("document.querySelectorAll('#messages li.msg').length") == 0
    for _ in files:
        await alice.click("#photo-tray .tile-remove")
    await alice.wait_for("document.querySelector('#photo-tray').hidden")

    # Ten photos picked: nine go in (the server's limit), the tenth is left out and said so.
    ten = [write_photo(tmp_path / f"p{i}.jpg", (400, 400), 20 + i) for i in range(10)]
    await alice.choose_files("#attach-photo", *ten)
    await alice.wait_text("#send-error", "一次最多 9 张图片")
    await alice.wait_for("[...document.querySelectorAll('#photo-tray .tile')]"
                         ".filter(t => t.dataset.state === 'done').length === 9", t(15))
    await alice.type("#body", "九宫格")
    await alice.press("Enter")
    await alice.wait_for(f"{loaded('#messages li.msg .photos.n3 img.thumb')} === 9", t(10))
    assert await alice.text("#messages li.msg .body") == "九宫格"
    await shots.take(alice, "nine-photos")
    no_errors(alice)


async def test_feedback_with_a_photo_gets_the_moderators_reply(
        server: ChatServer, browser: Browser, shots: Shots, tmp_path: Path) -> None:
    alice = await browser.new_page("alice", width=390, height=844, mobile=True)
    await login(alice, server, await account(server, "Alice", ["music.rock"]))
    await open_settings(alice)
    await alice.wait_text("#feedback-list", "还没有反馈")
    await alice.type("#feedback-text", "有人一直骚扰我，截图在这里")
    await alice.choose_files("#feedback-photo", write_photo(tmp_path / "proof.jpg", (390, 844), 5))
    await alice.wait_for("document.querySelector('#feedback-tray .tile')?.dataset.state === 'done'")
    await alice.eval("document.querySelector('#feedback-form').scrollIntoView()")
    await shots.take(alice, "feedback-form")
    await alice.click("#feedback-form button[type=submit]")
    await alice.wait_text("#feedback-status", "已提交")
    await alice.wait_text("#feedback-list .feedback .state", "待处理")
    await alice.wait_for(f"{loaded('#feedback-list .feedback img.thumb')} === 1")
    await shots.take(alice, "feedback-sent")

    # A moderator answers over the WebSocket: the page says so at once and shows the reply.
    async with await Client.connect(url_of(server), "json") as mod:
        await mod.register(new_phone(), password=PASSWORD, nickname="客服")
        assert mod.user is not None
        await server.app.store.set_role(UserId(mod.user["id"]), "moderator")
        queue = (await mod.call("mod.queue", queue="feedback"))["items"]
        assert [i["text"] for i in queue] == ["有人一直骚扰我，截图在这里"]
        assert len(queue[0]["attachments"]) == 1
        await mod.call("mod.feedback.reply", id=queue[0]["id"],
                       text="已核实并封禁对方，谢谢你的反馈")
    await alice.wait_text("#notice", "你的意见反馈有了回复", t(5))
    assert "已核实并封禁对方" in await alice.text("#notice")
    await alice.wait_for("document.querySelector('#feedback-list .feedback')"
                         "?.dataset.state === 'answered'")
    assert "已回复" in await alice.text("#feedback-list .feedback .state")
    assert "已核实并封禁对方" in await alice.text("#feedback-list .feedback-reply")
    await shots.take(alice, "feedback-notice")
    await alice.eval("document.querySelector('#feedback-list').scrollIntoView()")
    await shots.take(alice, "feedback-answered")
    # The list is the server's: after a reload it reads the same.
    await alice.reload()
    await alice.wait_for("!document.querySelector('#chat').hidden", t(10))
    await open_settings(alice)
    await alice.wait_for("document.querySelector('#feedback-list .feedback')"
                         "?.dataset.state === 'answered'", t(10))
    no_errors(alice)


RECORD_1S = """(async () => {
  const stream = await navigator.mediaDevices.getUserMedia({audio: true});
  const rec = new MediaRecorder(stream);
  const chunks = [];
  rec.ondataavailable = (e) => chunks.push(e.data);
  const stopped = new Promise((r) => { rec.onstop = r; });
  rec.start();
  await new Promise((r) => setTimeout(r, 1000));
  rec.stop();
  await stopped;
  stream.getTracks().forEach((t) => t.stop());
  const bytes = new Uint8Array(await new Blob(chunks).arrayBuffer());
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return [rec.mimeType, btoa(s)];
})()"""


async def test_voice_recording_with_the_fake_microphone(
        server: ChatServer, browser: Browser, shots: Shots) -> None:
    """Chromium records WebM/Opus; the server remuxes it to Ogg/Opus and the clip is sent,
    with its length, to the other member."""
    alice = await browser.new_page("alice")
    await login(alice, server, await account(server, "Alice", ["music.rock"]))
    await open_group(alice, "g:music.rock")
    mime, _ = await alice.eval(RECORD_1S)
    assert mime.startswith("audio/webm")

    async with await Client.connect(url_of(server), "json") as bob:
        await bob.register(new_phone(), password=PASSWORD, nickname="Bob",
                           interests=["music.rock"])
        await alice.click("#voice")
        await alice.click("#menu [data-action=voice-record]")
        await alice.wait_for("!document.querySelector('#recorder').hidden")
        await alice.wait_text("#rec-time", "0:02", t(10))
        assert await alice.text("#rec-max") == "1:00"
        assert await alice.eval("document.querySelector('#voice').textContent") == "⏹"
        await shots.take(alice, "recording")
        await alice.click("#rec-send")
        await alice.wait_for("document.querySelector('#recorder').hidden")
        got = await bob.next_event("msg", t(10))
        assert got["attachments"][0]["kind"] == "voice"
        assert got["attachments"][0]["seconds"] >= 1.5
        await alice.wait_for("!!document.querySelector('#messages li.msg.mine .voice')")
        await shots.take(alice, "recording-sent")
    await alice.eval("document.querySelector('#voice-tray .tile-remove')?.click()")
    # 取消 throws a recording away: nothing is uploaded.
    await alice.click("#voice")
    await alice.click("#menu [data-action=voice-record]")
    await alice.wait_text("#rec-time", "0:01", t(10))
    await alice.click("#rec-cancel")
    await alice.wait_for("document.querySelector('#recorder').hidden"
                         " && document.querySelector('#voice-tray').hidden")
    assert await alice.eval("document.querySelectorAll('#messages li.msg').length") == 1
    no_errors(alice)
