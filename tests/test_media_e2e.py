"""Photos, voice clips and avatars end to end: real HTTP uploads and fetches on the WebSocket
port, real WebSocket clients, on the directory store and on an S3 endpoint (moto's server)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import random
import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image, ImageDraw

from chatd.client import Client, ClientError
from chatd.config import Config
from chatd.ids import UserId
from chatd.server import ChatServer
from tests.conftest import registered, t, url_of
from tests.media_fixtures import s3_endpoint  # noqa: F401  (a fixture)

DATA = Path(__file__).parent / "data" / "media"


def gps_photo(size: tuple[int, int] = (640, 480), seed: int = 1) -> bytes:
    """A JPEG as a phone writes it, with the GPS position and the camera in EXIF; its shapes
    (and so its perceptual hash) depend on ``seed``."""
    rng = random.Random(seed)
    img = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(img)
    w, h = size
    for _ in range(6):
        x, y = rng.randrange(w), rng.randrange(h)
        r = rng.randrange(min(w, h) // 8, min(w, h) // 3)
        draw.ellipse((x - r, y - r, x + r, y + r),
                     fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (39.0, 54.0, 27.0)
    gps[3], gps[4] = "E", (116.0, 23.0, 50.0)
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif.tobytes(), quality=90)
    return out.getvalue()


def bomb_png(side: int = 30_000) -> bytes:
    """A PNG that declares side x side pixels (900 MP) in a few KB."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    row = b"\x00" + b"\x00" * (side // 8)
    rows = zlib.compress(row * 64, 9)  # only the start of the pixels: the header is the bomb
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0,
                                                              0, 0))
            + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


@pytest.fixture(params=["dir", "s3"])
async def media_server(request: pytest.FixtureRequest, config: Config
                       ) -> AsyncIterator[ChatServer]:
    cfg = replace(config, max_image_bytes=3 * 1024 * 1024, media_review_new_days=0,
                  max_voice_seconds=2.0)
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        cfg = replace(cfg, media_store="s3", s3_endpoint=endpoint,
                      s3_bucket=f"chatd-{id(cfg):x}", s3_access_key="testing",
                      s3_secret_key="testing")
    srv = ChatServer(cfg)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def base(srv: ChatServer) -> str:
    return f"http://127.0.0.1:{srv.port}"


async def upload(srv: ChatServer, token: str | None, kind: str, body: bytes
                 ) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as s, s.post(
            f"{base(srv)}/upload?kind={kind}", data=body, headers=headers) as r:
        return r.status, json.loads(await r.read())


async def fetch(srv: ChatServer, token: str | None, path: str, **headers: str
                ) -> tuple[int, bytes, Any]:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with aiohttp.ClientSession() as s, s.get(f"{base(srv)}{path}", headers=headers) as r:
        return r.status, await r.read(), r.headers


async def pair(url: str) -> tuple[Client, Client, str]:
    a = await registered(url, ["music.jazz"])
    b = await registered(url, ["music.jazz"])
    await a.call("match.start")
    await b.call("match.start")
    found = await a.next_event("match.found", timeout=t(10))
    await b.next_event("match.found", timeout=t(10))
    return a, b, found["conv"]


async def test_photo_in_chat_reaches_the_peer_without_its_location(
        media_server: ChatServer) -> None:
    srv, url = media_server, url_of(media_server)
    a, b, conv = await pair(url)
    stranger = await registered(url, ["pet.cat"])
    status, up = await upload(srv, a.token, "image", gps_photo())
    assert status == 200, up
    assert up["kind"] == "image" and (up["width"], up["height"]) == (640, 480)
    assert up["bytes"] > 0
    sent = await a.call("msg.send", conv=conv, body="", attachments=[up["id"]])
    got = await b.next_event("msg")
    assert got["id"] == sent["id"] and got["attachments"][0]["id"] == up["id"]
    # The peer fetches it: a re-encoded JPEG without EXIF, GPS or the camera's name.
    status, data, headers = await fetch(srv, b.token, f"/media/{up['id']}")
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    assert "private" in headers["Cache-Control"]
    assert b"Exif" not in data and b"PhoneMaker" not in data
    assert not Image.open(io.BytesIO(data)).getexif().get_ifd(0x8825)
    status, thumb, headers = await fetch(srv, b.token, f"/media/{up['id']}/thumb")
    assert status == 200 and max(Image.open(io.BytesIO(thumb)).size) <= 320
    # A stranger, a bad token and no token: nothing to see (404, 401, 401).
    assert (await fetch(srv, stranger.token, f"/media/{up['id']}"))[0] == 404
    assert (await fetch(srv, "not-a-token", f"/media/{up['id']}"))[0] == 401
    assert (await fetch(srv, None, f"/media/{up['id']}"))[0] == 401
    # History carries it too; the sender cannot attach it twice elsewhere.
    history = await b.call("history", conv=conv)
    assert history["messages"][-1]["attachments"][0]["id"] == up["id"]
    with pytest.raises(ClientError) as err:
        await stranger.call("msg.send", conv=conv, body="x", attachments=[up["id"]])
    assert err.value.code in ("forbidden", "bad_request")
    for c in (a, b, stranger):
        await c.close()


async def test_voice_clip_with_range_requests_and_length(media_server: ChatServer) -> None:
    srv, url = media_server, url_of(media_server)
    a, b, conv = await pair(url)
    clip = (DATA / "tone-1s.m4a").read_bytes()
    status, up = await upload(srv, a.token, "voice", clip)
    assert status == 200, up
    assert up["kind"] == "voice" and 0.8 <= up["seconds"] <= 1.2
    await a.call("msg.send", conv=conv, body="", attachments=[up["id"]])
    got = await b.next_event("msg")
    assert got["attachments"][0]["seconds"] == up["seconds"]
    status, part, headers = await fetch(srv, b.token, f"/media/{up['id']}", Range="bytes=0-99")
    assert status == 206 and len(part) == 100
    assert headers["Content-Range"] == f"bytes 0-99/{up['bytes']}"
    status, whole, headers = await fetch(srv, b.token, f"/media/{up['id']}")
    assert status == 200 and headers["Content-Type"] == "audio/mp4" and whole[:100] == part
    status, tail, _ = await fetch(srv, b.token, f"/media/{up['id']}", Range="bytes=-10")
    assert status == 206 and tail == whole[-10:]
    # Not a voice clip, too long: refused with the reason.
    status, err = await upload(srv, a.token, "voice", b"RIFF....WAVEfmt " + b"\0" * 200)
    assert status == 415 and err["reason"] == "unsupported"
    status, err = await upload(srv, a.token, "voice", (DATA / "tone-3s.opus.ogg").read_bytes())
    assert status == 413 and err["reason"] == "too_long"  # max_voice_seconds is 2 here
    status, ogg = await upload(srv, a.token, "voice", (DATA / "tone-1s.opus.ogg").read_bytes())
    assert status == 200 and ogg["kind"] == "voice"
    # What a browser's MediaRecorder sends (WebM/Opus) is kept as Ogg/Opus.
    status, rec = await upload(srv, a.token, "voice", (DATA / "chrome-2s.webm").read_bytes())
    assert status == 200 and rec["seconds"] == pytest.approx(1.98)
    status, kept, headers = await fetch(srv, a.token, f"/media/{rec['id']}")
    assert status == 200 and headers["Content-Type"] == "audio/ogg" and kept[:4] == b"OggS"
    await a.close()
    await b.close()


async def test_bombs_fakes_and_oversized_bodies_are_refused(media_server: ChatServer) -> None:
    srv, url = media_server, url_of(media_server)
    a = await registered(url)
    status, err = await upload(srv, a.token, "image", bomb_png())
    assert status == 413 and err["reason"] == "too_many_pixels"
    status, err = await upload(srv, a.token, "image", b"<html>not a picture</html>")
    assert status == 415 and err["reason"] == "unsupported"
    status, err = await upload(srv, a.token, "image", gps_photo()[:2000])
    assert status == 400 and err["reason"] == "corrupt"
    # A body past max_image_bytes is cut off while it streams: the server answers 413 after
    # about 3 MB of the 40 MB, and no spooled file outgrows the limit.
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    writer.write(b"POST /upload?kind=image HTTP/1.1\r\nHost: x\r\n"
                 b"Authorization: Bearer " + str(a.token).encode() +
                 b"\r\nTransfer-Encoding: chunked\r\n\r\n")
    answer = asyncio.ensure_future(reader.read(200))
    chunk = b"%x\r\n" % (1 << 20) + b"\xff" * (1 << 20) + b"\r\n"
    sent = 0
    with contextlib.suppress(ConnectionError):
        while sent < 40 and not answer.done():
            writer.write(chunk)
            await writer.drain()
            sent += 1
            await asyncio.sleep(0.02)
    head = await asyncio.wait_for(answer, t(5))
    assert head.startswith(b"HTTP/1.1 413") and sent < 40
    writer.close()
    spool = srv.config.data_dir / "uploads"
    assert all(f.stat().st_size <= srv.config.max_image_bytes for f in spool.glob("*"))
    # A declared Content-Length over the limit is refused before a byte is read.
    async with aiohttp.ClientSession() as s, s.post(
            f"{base(srv)}/upload?kind=image", data=b"x" * (4 << 20),
            headers={"Authorization": f"Bearer {a.token}"}) as r:
        assert r.status == 413
    # Unknown kinds and methods, and uploads without a session.
    assert (await upload(srv, a.token, "video", b"x"))[0] == 400
    assert (await upload(srv, None, "image", gps_photo()))[0] == 401
    async with aiohttp.ClientSession() as s, s.get(f"{base(srv)}/upload?kind=image") as r:
        assert r.status in (404, 405)
    await a.close()


async def test_banned_picture_and_its_resized_copy_are_refused(media_server: ChatServer
                                                              ) -> None:
    srv, url = media_server, url_of(media_server)
    a = await registered(url)
    mod = await registered(url)
    await srv.app.store.set_role(UserId(mod.user["id"]), "moderator")  # type: ignore[index]
    photo = gps_photo(seed=7)
    status, up = await upload(srv, a.token, "image", photo)
    assert status == 200
    await mod.call("mod.media.resolve", id=up["id"], action="ban")
    assert (await fetch(srv, a.token, f"/media/{up['id']}"))[0] == 404  # erased
    status, err = await upload(srv, a.token, "image", photo)
    assert status == 422 and err["error"] == "filtered"
    smaller = io.BytesIO()
    Image.open(io.BytesIO(photo)).resize((320, 240)).save(smaller, "PNG")
    status, err = await upload(srv, a.token, "image", smaller.getvalue())
    assert status == 422 and err["error"] == "filtered"
    status, _ = await upload(srv, a.token, "image", gps_photo(seed=3, size=(500, 500)))
    assert status == 200  # another picture is fine
    await a.close()
    await mod.close()


async def test_posts_avatars_feedback_and_the_queues(media_server: ChatServer) -> None:
    srv, url = media_server, url_of(media_server)
    a = await registered(url, ["music.jazz"])
    viewer = await registered(url, ["music.jazz"])
    mod = await registered(url)
    await srv.app.store.set_role(UserId(mod.user["id"]), "moderator")  # type: ignore[index]
    ids = [(await upload(srv, a.token, "image", gps_photo(seed=s)))[1]["id"] for s in (2, 5)]
    post = (await a.call("post.create", body="今天的猫", group="g:music.jazz",
                         attachments=ids))["post"]
    assert [f["id"] for f in post["attachments"]] == ids
    feed = await viewer.call("feed", scope="group", group="g:music.jazz")
    assert any(p["id"] == post["id"] and len(p["attachments"]) == 2 for p in feed["posts"])
    assert (await fetch(srv, viewer.token, f"/media/{ids[0]}"))[0] == 200
    with pytest.raises(ClientError):
        await a.call("post.create", body="x", attachments=["nope-not-an-upload"])
    # An avatar: square, public, shown in the profile; a new one erases the old.
    status, av = await upload(srv, a.token, "avatar", gps_photo(size=(800, 400)))
    assert status == 200 and av["width"] == av["height"]
    await a.call("profile.avatar", media=av["id"])
    assert (await fetch(srv, viewer.token, f"/media/{av['id']}"))[0] == 200
    status, av2 = await upload(srv, a.token, "avatar", gps_photo(size=(300, 300), seed=9))
    await a.call("profile.avatar", media=av2["id"])
    assert (await fetch(srv, a.token, f"/media/{av['id']}"))[0] == 404
    # Feedback with a photo: only the user and the moderators see it; a reply comes back.
    status, ev = await upload(srv, a.token, "image", gps_photo(seed=11))
    sent = (await a.call("feedback", text="有人骚扰我", attachments=[ev["id"]]))["feedback"]
    assert (await fetch(srv, viewer.token, f"/media/{ev['id']}"))[0] == 404
    assert (await fetch(srv, mod.token, f"/media/{ev['id']}"))[0] == 200
    queue = await mod.call("mod.queue", queue="feedback")
    assert [i["id"] for i in queue["items"]] == [sent["id"]]
    await mod.call("mod.feedback.reply", id=sent["id"], text="已处理, 谢谢")
    reply = await a.next_event("feedback.reply")
    assert reply["reply"] == "已处理, 谢谢"
    mine = await a.call("feedback.list")
    assert mine["feedback"][0]["state"] == "answered"
    # New accounts' photos wait in the media queue (media_review_new_days=0 here: none).
    assert (await mod.call("mod.queue", queue="media"))["items"] == []
    # Deleting the post erases its photos.
    await a.call("post.delete", id=post["id"])
    assert (await fetch(srv, a.token, f"/media/{ids[0]}"))[0] == 404
    for c in (a, viewer, mod):
        await c.close()


async def test_recall_export_delete_and_blocks_cover_media(media_server: ChatServer) -> None:
    srv, url = media_server, url_of(media_server)
    a, b, conv = await pair(url)
    ups = [(await upload(srv, a.token, "image", gps_photo(seed=s)))[1] for s in (4, 6)]
    sent = await a.call("msg.send", conv=conv, body="看", attachments=[ups[0]["id"]])
    await a.call("msg.send", conv=conv, body="再看", attachments=[ups[1]["id"]])
    # A recall erases the photo from storage.
    await a.call("msg.recall", conv=conv, id=sent["id"])
    assert (await fetch(srv, a.token, f"/media/{ups[0]['id']}"))[0] == 404
    # A block hides the other photo from the blocked peer.
    assert (await fetch(srv, b.token, f"/media/{ups[1]['id']}"))[0] == 200
    await b.call("block", user=a.user["id"])  # type: ignore[index]
    assert (await fetch(srv, b.token, f"/media/{ups[1]['id']}"))[0] == 404
    await b.call("unblock", user=a.user["id"])  # type: ignore[index]
    # The export lists each file with a signed link that works without the token.
    export = (await a.call("account.export"))["export"]
    files = {f["id"]: f for f in export["media"]}
    assert set(files) == {ups[1]["id"]}
    status, data, _ = await fetch(srv, None, files[ups[1]["id"]]["url"])
    assert status == 200 and data[:2] == b"\xff\xd8"
    # A link for <img> tags; a forged one opens nothing.
    link = await b.call("media.link", id=ups[1]["id"])
    assert (await fetch(srv, None, link["url"]))[0] == 200
    assert (await fetch(srv, None, f"/media/{ups[1]['id']}?link=forged"))[0] == 404
    # Deleting the account erases the files, in storage too.
    await a.call("account.delete", password="correct horse 1")
    assert (await fetch(srv, b.token, f"/media/{ups[1]['id']}"))[0] == 404
    assert not await srv.app.store.media_of(UserId(a.user["id"]))  # type: ignore[index]
    if srv.config.media_store == "dir":
        assert not any(p.is_file() for p in (srv.config.data_dir / "media").rglob("*"))
    await b.close()


async def test_unattached_uploads_are_swept(media_server: ChatServer) -> None:
    srv, url = media_server, url_of(media_server)
    a = await registered(url)
    status, up = await upload(srv, a.token, "image", gps_photo())
    assert status == 200
    srv.app.media.config = replace(srv.app.media.config, media_orphan_after=0.001)
    await asyncio.sleep(0.05)
    assert await srv.app.media.sweep() == 1
    assert (await fetch(srv, a.token, f"/media/{up['id']}"))[0] == 404
    await a.close()


async def test_keep_alive_and_websocket_share_the_port(media_server: ChatServer) -> None:
    srv, url = media_server, url_of(media_server)
    a = await registered(url)
    async with aiohttp.ClientSession() as s:  # one TCP connection for several requests
        for seed in (1, 2, 3):
            async with s.post(f"{base(srv)}/upload?kind=image", data=gps_photo(seed=seed),
                              headers={"Authorization": f"Bearer {a.token}"}) as r:
                assert r.status == 200
        async with s.get(f"{base(srv)}/healthz") as r:  # pages on the same connection too
            assert r.status == 200 and (await r.json())["status"] == "ok"
        async with s.head(f"{base(srv)}/app/") as r:
            assert r.status == 200 and int(r.headers["Content-Length"]) > 100
    assert (await a.call("convs"))["convs"] is not None  # the WebSocket still serves
    await a.close()


async def test_new_accounts_photos_wait_in_the_media_queue(server: ChatServer) -> None:
    """With the default review rule, a new account's photo is published and queued for the
    moderators; dismiss clears it, delete erases it. Uploads are counted in /metrics."""
    srv = server
    url = url_of(srv)
    a, b, conv = await pair(url)
    mod = await registered(url)
    await srv.app.store.set_role(UserId(mod.user["id"]), "moderator")  # type: ignore[index]
    ups = [(await upload(srv, a.token, "image", gps_photo(seed=s)))[1] for s in (12, 13)]
    await a.call("msg.send", conv=conv, body="", attachments=[u["id"] for u in ups])
    assert len((await b.next_event("msg"))["attachments"]) == 2  # published meanwhile
    items = (await mod.call("mod.queue", queue="media"))["items"]
    assert [i["id"] for i in items] == [u["id"] for u in ups]
    assert items[0]["author"] == a.user["id"] and items[0]["used_in"] == f"m:{conv}"  # type: ignore[index]
    assert (await fetch(srv, mod.token, f"/media/{ups[0]['id']}"))[0] == 200
    await mod.call("mod.media.resolve", id=ups[0]["id"], action="dismiss")
    await mod.call("mod.media.resolve", id=ups[1]["id"], action="delete")
    assert (await mod.call("mod.queue", queue="media"))["items"] == []
    assert (await fetch(srv, b.token, f"/media/{ups[0]['id']}"))[0] == 200
    assert (await fetch(srv, b.token, f"/media/{ups[1]['id']}"))[0] == 404
    async with aiohttp.ClientSession() as s, s.get(f"{base(srv)}/metrics") as r:
        metrics = await r.text()
    assert 'chatd_uploads_total{kind="image",status="200"} 2.0' in metrics
    for c in (a, b, mod):
        await c.close()


async def test_reported_users_photos_wait_in_the_media_queue(media_server: ChatServer
                                                             ) -> None:
    """An older account's photos go straight out (media_review_new_days=0 here); once
    someone reports the user, their new photos are queued for the moderators too."""
    srv, url = media_server, url_of(media_server)
    a, b, _ = await pair(url)
    mod = await registered(url)
    await srv.app.store.set_role(UserId(mod.user["id"]), "moderator")  # type: ignore[index]
    first = (await upload(srv, a.token, "image", gps_photo(seed=21)))[1]
    assert (await mod.call("mod.queue", queue="media"))["items"] == []
    await b.call("report", kind="user", target=a.user["id"], reason="spam")  # type: ignore[index]
    second = (await upload(srv, a.token, "image", gps_photo(seed=22)))[1]
    items = (await mod.call("mod.queue", queue="media"))["items"]
    assert [i["id"] for i in items] == [second["id"]] != [first["id"]]
    for c in (a, b, mod):
        await c.close()


async def test_malformed_http_on_the_edge_gets_an_error_and_the_node_carries_on(
        server: ChatServer) -> None:
    srv = server
    for raw in (b"POST /upload?kind=image HTTP/1.1\r\nHost x\r\n\r\n",  # no colon
                b"POST /upload?kind=image HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                b"PUT /media/abcdefgh HTTP/1.1\r\nHost: x\r\n\r\n",
                b"POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
                b"POST " + b"x" * 20_000 + b"\r\n\r\n"):
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(raw)
        head = await asyncio.wait_for(reader.read(100), t(5))
        assert head == b"" or head.split(b" ")[1][:1] == b"4", (raw[:40], head)
        writer.close()
    a = await registered(url_of(srv))  # the node still serves
    assert (await upload(srv, a.token, "image", gps_photo()))[0] == 200
    await a.close()
