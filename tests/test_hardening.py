"""Hostile clients at the socket level, and faults of the disk under the store."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import msgpack
import pytest
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from chatd.client import Client
from chatd.config import Config
from chatd.server import ChatServer
from tests.conftest import registered, t, url_of


async def started(tmp_path: Path, wordlist: Path, **settings: object) -> ChatServer:
    srv = ChatServer(Config(port=0, data_dir=tmp_path / "d", wordlists=(str(wordlist),),
                            **settings))  # type: ignore[arg-type]
    await srv.start()
    return srv


async def test_per_address_connection_cap(tmp_path: Path, wordlist: Path) -> None:
    srv = await started(tmp_path, wordlist, max_conns_per_address=20)
    try:
        conns = [await connect(url_of(srv)) for _ in range(20)]
        with pytest.raises(InvalidStatus) as info:
            await connect(url_of(srv))
        assert info.value.response.status_code == 429
        await conns.pop().close()
        await asyncio.sleep(0.1)
        conns.append(await connect(url_of(srv)))  # a slot is free again
        for c in conns:
            await c.close()
    finally:
        await srv.stop()


async def test_trusted_proxy_forwarded_address_is_capped_per_client(tmp_path: Path,
                                                                    wordlist: Path) -> None:
    srv = await started(tmp_path, wordlist, max_conns_per_address=2,
                        trusted_proxies=("127.0.0.1",))
    try:
        def via(client: str) -> object:
            return connect(url_of(srv), additional_headers={"X-Forwarded-For": client})
        a = [await via("203.0.113.7"), await via("203.0.113.7")]
        with pytest.raises(InvalidStatus):
            await via("203.0.113.7")
        b = await via("198.51.100.1")  # another client behind the same proxy
        for c in [*a, b]:
            await c.close()  # type: ignore[attr-defined]
    finally:
        await srv.stop()


async def test_fragmented_frames_are_reassembled(url: str) -> None:
    async with connect(url, subprotocols=["chatd.v1.json"]) as ws:  # type: ignore[list-item]
        await ws.send(iter(['{"t": "pi', 'ng", "ri', 'd": 5}']))
        assert b'"rid":5' in (await ws.recv()).encode()


class RawClient:
    """A client at the byte level: chatd's own frame parser sees exactly the bytes written.
    ``codec`` None asks for no subprotocol (msgpack)."""

    def __init__(self, url: str, codec: str | None = "json") -> None:
        self.url = url
        self.proto = ClientProtocol(parse_uri(url), subprotocols=[Subprotocol(
            f"chatd.v1.{codec}")] if codec else None)
        self.events: list[Frame] = []

    async def open(self, early: bytes = b"") -> None:
        """The handshake, with ``early`` bytes in the same TCP write."""
        self.proto.send_request(self.proto.connect())
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1",
                                                                 urlsplit(self.url).port)
        self.writer.write(b"".join(self.proto.data_to_send()) + early)
        while self.proto.state is State.CONNECTING:
            await self._read()
        assert self.proto.handshake_exc is None

    def send(self, data: bytes = b"") -> None:
        """What the protocol queued (frames made with ``self.proto``), then ``data``."""
        self.writer.write(b"".join(self.proto.data_to_send()) + data)

    async def _read(self) -> bool:
        data = await asyncio.wait_for(self.reader.read(65536), t(5))
        if not data:
            self.proto.receive_eof()
        else:
            self.proto.receive_data(data)
        self.events.extend(e for e in self.proto.events_received() if isinstance(e, Frame))
        return bool(data)

    async def payloads(self, opcode: Opcode, count: int) -> list[bytes]:
        """The payloads of the first ``count`` data frames of ``opcode``."""
        while True:
            found = [bytes(e.data) for e in self.events if e.opcode is opcode]
            if len(found) >= count:
                return found
            assert await self._read(), "the server closed the connection"

    async def replies(self, count: int) -> list[dict[str, object]]:
        return [json.loads(p) for p in await self.payloads(Opcode.TEXT, count)]

    async def close_code(self) -> int | None:
        with contextlib.suppress(ConnectionError):
            while await self._read():
                pass
        self.writer.close()
        return self.proto.close_rcvd.code if self.proto.close_rcvd else None


async def test_requests_in_the_handshake_write_are_answered_in_order(url: str) -> None:
    """Frames that arrive with the handshake request, before the connection's handler runs,
    are held and handled first, in order; then a binary message in fragments with a ping
    between them is reassembled (and the ping answered)."""
    raw = RawClient(url, codec=None)
    await raw.open(b"".join(Frame(Opcode.BINARY, msgpack.packb({"t": "ping", "rid": rid}))
                            .serialize(mask=True) for rid in (1, 2, 3)))

    async def rids(count: int) -> list[int]:
        return [msgpack.unpackb(p)["rid"] for p in await raw.payloads(Opcode.BINARY, count)]

    assert await rids(3) == [1, 2, 3]
    whole = msgpack.packb({"t": "ping", "rid": 4})
    raw.send(Frame(Opcode.BINARY, whole[:3], fin=False).serialize(mask=True)
             + Frame(Opcode.PING, b"k").serialize(mask=True)
             + Frame(Opcode.CONT, whole[3:]).serialize(mask=True))
    assert await rids(4) == [1, 2, 3, 4]
    assert any(e.opcode is Opcode.PONG for e in raw.events)
    raw.writer.close()


def ping_frame(rid: int, pad: int = 0) -> bytes:
    body = json.dumps({"t": "ping", "rid": rid, **({"pad": "x" * pad} if pad else {})})
    return Frame(Opcode.TEXT, body.encode()).serialize(mask=True)


async def test_frames_split_at_every_byte_are_parsed_in_order(tmp_path: Path,
                                                              wordlist: Path) -> None:
    """Payload lengths around each header form (7-bit, 16-bit, 64-bit length), written in
    one burst, then byte by byte, then in odd chunks with pings and an empty frame between:
    every request is answered, in order, and the pings are answered too."""
    srv = await started(tmp_path, wordlist, max_frame_bytes=200_000, rate_burst=10_000,
                        rate_per_second=10_000, max_inflight=1000)
    try:
        raw = RawClient(url_of(srv))
        await raw.open()
        pads = [0, 90, 91, 92, 200, 65_500, 65_600, 70_000]
        frames = [ping_frame(rid, pad) for rid, pad in enumerate(pads)]
        raw.writer.write(b"".join(frames))
        one_by_one = ping_frame(100, 60)
        for i in range(len(one_by_one)):
            raw.writer.write(one_by_one[i:i + 1])
            await raw.writer.drain()
            await asyncio.sleep(0)
        mixed = b"".join([ping_frame(200), Frame(Opcode.PING, b"p1").serialize(mask=True),
                          ping_frame(201, 65_530), Frame(Opcode.BINARY, b"").serialize(mask=True),
                          ping_frame(202)])
        for i in range(0, len(mixed), 7_777):
            raw.writer.write(mixed[i:i + 7_777])
            await raw.writer.drain()
        texts = await raw.replies(len(pads) + 5)
        assert [r.get("rid") for r in texts if "rid" in r] == [*range(len(pads)), 100,
                                                              200, 201, 202]
        assert [r["code"] for r in texts if "rid" not in r] == ["bad_request"]  # the empty one
        assert [bytes(e.data) for e in raw.events if e.opcode is Opcode.PONG] == [b"p1"]
        raw.writer.close()
    finally:
        await srv.stop()


@pytest.mark.parametrize("frame,code", [
    (Frame(Opcode.TEXT, b'{"t":"ping","rid":1}').serialize(mask=False), 1002),  # unmasked
    (bytes([0xC1, 0x81]) + b"\x00" * 4 + b"x", 1002),  # RSV1 with no extension agreed
    (bytes([0x83, 0x80]) + b"\x00" * 4, 1002),  # a reserved opcode
    (Frame(Opcode.CONT, b"x").serialize(mask=True), 1002),  # a continuation of nothing
    (Frame(Opcode.TEXT, b"a", fin=False).serialize(mask=True)
     + Frame(Opcode.TEXT, b"b").serialize(mask=True), 1002),  # a new message mid-message
    (bytes([0x81, 0xFF]) + (1 << 40).to_bytes(8, "big"), 1009),  # 1 TiB announced
])
async def test_frames_the_protocol_refuses_close_the_connection(url: str, frame: bytes,
                                                                code: int) -> None:
    raw = RawClient(url)
    await raw.open()
    raw.writer.write(ping_frame(0))
    await raw.replies(1)
    raw.writer.write(frame + ping_frame(1))
    assert await raw.close_code() == code
    texts = [json.loads(bytes(e.data)) for e in raw.events if e.opcode is Opcode.TEXT]
    assert [r.get("rid") for r in texts] == [0]  # answered before, nothing after
    async with await Client.connect(url) as c:
        assert (await c.call("ping"))["t"] == "ok"


async def test_ping_flood_does_not_disturb_others(url: str) -> None:
    other = await Client.connect(url)
    async with connect(url) as flood:
        waiters = [await flood.ping() for _ in range(2000)]
        await asyncio.wait_for(asyncio.gather(*waiters), t(10))
        assert (await other.call("ping"))["t"] == "ok"
    await other.close()


async def test_frames_after_close_are_ignored(url: str) -> None:
    """A client sends a close frame and, in the same TCP write (so it arrives before the
    server's closing handshake is done), one more request: the server must not run it."""
    author = await registered(url, ["music.rock"])
    assert author.token is not None
    raw = RawClient(url)
    await raw.open()
    raw.proto.send_text(json.dumps({"t": "auth", "rid": 1, "token": author.token}).encode())
    raw.proto.send_text(json.dumps({"t": "msg.send", "rid": 2, "conv": "g:music.rock",
                                    "body": "before close", "cid": "before"}).encode())
    raw.send()
    assert [r["t"] for r in await raw.replies(2) if r.get("rid") in (1, 2)] == ["ok", "ok"]
    before = len(raw.events)

    # Close, then a masked text frame the websockets protocol would refuse to send itself.
    raw.proto.send_close(1000)
    late = json.dumps({"t": "msg.send", "rid": 3, "conv": "g:music.rock", "body": "after close",
                       "cid": "after"}).encode()
    raw.send(Frame(Opcode.TEXT, late).serialize(mask=True))
    assert await raw.close_code() == 1000
    # Only the server's close frame came back: no reply to the late request.
    assert [e.opcode for e in raw.events[before:]] == [Opcode.CLOSE]

    await asyncio.sleep(t(0.2))  # time enough to store the late message, had it been run
    history = (await author.call("history", conv="g:music.rock", limit=50))["messages"]
    bodies = [m["body"] for m in history]
    assert "before close" in bodies and "after close" not in bodies, bodies
    async with await Client.connect(url) as c:  # the server is fine for everyone else
        assert (await c.call("ping"))["t"] == "ok"
    await author.close()


async def test_half_open_and_slowloris_handshakes_are_dropped(tmp_path: Path,
                                                              wordlist: Path) -> None:
    srv = await started(tmp_path, wordlist, open_timeout=0.5)
    try:
        loop = asyncio.get_running_loop()
        silent = socket.create_connection(("127.0.0.1", srv.port))
        slow = socket.create_connection(("127.0.0.1", srv.port))
        slow.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
        for sock in (silent, slow):
            sock.setblocking(False)
        start = loop.time()
        for _ in range(10):  # slowloris: a header byte now and then never finishes
            await asyncio.sleep(0.1)
            try:
                slow.send(b"X")
            except OSError:
                break
        for sock in (silent, slow):
            data = await asyncio.wait_for(loop.sock_recv(sock, 4096), t(5))
            assert b"101" not in data  # never upgraded: closed (or refused) by the server
            sock.close()
        assert loop.time() - start < t(5)
        async with await Client.connect(url_of(srv)) as c:
            assert (await c.call("ping"))["t"] == "ok"
    finally:
        await srv.stop()


async def test_many_bad_frames_then_good_ones(url: str) -> None:
    async with await Client.connect(url) as c:
        for i in range(200):
            await c.send_raw(msgpack.packb({"t": 7, "rid": i}))
        for _ in range(200):
            r = await asyncio.wait_for(c.replies_without_rid.get(), t(5))
            assert r["code"] == "bad_request"
        assert (await c.call("ping"))["t"] == "ok"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs for the SQLite data directory (this suite runs as root)."""
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.parametrize("writer", ["thread", "process"])
async def test_full_disk_answers_unavailable_and_recovers(small_disk: Path, wordlist: Path,
                                                          writer: str) -> None:
    srv = ChatServer(Config(port=0, data_dir=small_disk / "d", wordlists=(str(wordlist),),
                            rate_per_second=1000, rate_burst=1000, sms_resend_interval=0,
                            sqlite_writer=writer))  # type: ignore[arg-type]
    await srv.start()
    try:
        a = await registered(url_of(srv), ["pet.cat"])
        a.retry_attempts = 1  # every reply seen as it comes
        acked = [await a.call("msg.send", conv="g:pet.cat", body="before", cid="b0")]
        filler = small_disk / "filler"
        # Unbuffered: nothing is left to flush (and fail again) when the file closes.
        with filler.open("wb", buffering=0) as f, pytest.raises(OSError):
            while True:
                f.write(os.urandom(64 * 1024))
        codes = set()
        for i in range(30):
            r = await a.request("msg.send", conv="g:pet.cat", body="x" * 2000, cid=f"f{i}")
            codes.add(r["t"] if r["t"] == "ok" else r["code"])
            if r["t"] == "ok":
                acked.append(r)
        # Retryable, never "internal" (a bug); the node says its store is down.
        assert "unavailable" in codes and "internal" not in codes, codes
        status, health = srv.app.health()
        assert status == 503 and health["store"] == "degraded" and health["status"] == "degraded"
        assert "full" in health["store_error"]
        filler.unlink()
        after = await a.call("msg.send", conv="g:pet.cat", body="after", cid="a0")
        status, health = srv.app.health()
        assert status == 200 and health["store"] == "ok" and "store_error" not in health
        acked.append(after)
        history = (await a.call("history", conv="g:pet.cat", limit=200))["messages"]
        assert {m["id"] for m in history} >= {x["id"] for x in acked}
        await a.close()
    finally:
        await srv.stop()


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 70000])
def test_server_frames_match_websockets_serialisation(size: int) -> None:
    from chatd.server import _server_frame
    payload = os.urandom(size)
    for opcode in (Opcode.TEXT, Opcode.BINARY):
        assert _server_frame(opcode, payload) == Frame(opcode, payload).serialize(mask=False)
