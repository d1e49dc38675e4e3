"""A tiny headless-Chromium driver over the Chrome DevTools Protocol (no npm, no Selenium).

It starts ``/usr/bin/chromium`` with a fresh profile and ``--remote-debugging-port=0``, reads
the port from the profile's ``DevToolsActivePort`` file and speaks CDP over the ``websockets``
client. Each :class:`Page` lives in its own browser context, so pages do not share
localStorage (two users in one browser).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         "--disable-default-apps", "--disable-extensions", "--mute-audio",
         "--no-default-browser-check", "--password-store=basic", "--use-mock-keychain",
         "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
         # getUserMedia gets a fake microphone (a beeping tone) with no permission prompt.
         "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream")


def find_chromium() -> str | None:
    explicit = os.environ.get("CHATD_CHROMIUM")
    if explicit:
        return explicit
    for path in CHROMIUM_CANDIDATES:
        if Path(path).is_file() and os.access(path, os.X_OK):
            return path
    return None


class CdpError(Exception):
    pass


class Browser:
    """One Chromium process and its browser-level CDP connection."""

    def __init__(self, executable: str, timeout: float = 10.0) -> None:
        self.executable = executable
        self.timeout = timeout
        self.profile = Path(tempfile.mkdtemp(prefix="chatd-chromium-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.ws: ClientConnection | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._listeners: dict[str, list[Any]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.pages: list[Page] = []

    def _launch(self) -> subprocess.Popen[bytes]:
        with (self.profile / "chromium.log").open("wb") as log:
            return subprocess.Popen(
                [self.executable, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)  # its own process group: teardown reaches every helper

    async def start(self) -> Browser:
        self.proc = self._launch()
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 3 * self.timeout
        while True:
            if self.proc.poll() is not None:
                raise CdpError(f"chromium exited: {self.log_tail()}")
            if port_file.is_file():
                lines = port_file.read_text().split()
                if len(lines) >= 2:
                    break
            if time.monotonic() > deadline:
                raise CdpError(f"chromium did not open its debugging port: {self.log_tail()}")
            await asyncio.sleep(0.05)
        port, path = lines[0], lines[1]
        self.ws = await connect(f"ws://127.0.0.1:{port}{path}", max_size=None,
                                compression=None, ping_interval=None)
        self._reader = asyncio.create_task(self._read())
        return self

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self.profile / "chromium.log").read_text(errors="replace")[-2000:]
        return ""

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for frame in self.ws:
                msg = json.loads(frame)
                if "id" in msg:
                    fut = self._pending.pop(msg["id"], None)
                    if fut is not None and not fut.done():
                        fut.set_result(msg)
                else:
                    key = msg.get("sessionId", "")
                    for fn in self._listeners.get(key, []):
                        fn(msg["method"], msg.get("params", {}))
        except ConnectionClosed:
            pass
        finally:
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(CdpError("the CDP connection closed"))

    async def send(self, method: str, params: dict[str, Any] | None = None,
                   session: str | None = None) -> dict[str, Any]:
        assert self.ws is not None
        ident = next(self._ids)
        msg: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ident] = fut
        await self.ws.send(json.dumps(msg))
        reply = await asyncio.wait_for(fut, self.timeout)
        if "error" in reply:
            raise CdpError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def new_page(self, name: str, width: int = 1100, height: int = 760,
                       mobile: bool = False) -> Page:
        """A tab in a fresh browser context (its own cookies and localStorage)."""
        ctx = (await self.send("Target.createBrowserContext",
                               {"disposeOnDetach": True}))["browserContextId"]
        target = (await self.send("Target.createTarget",
                                  {"url": "about:blank", "browserContextId": ctx}))["targetId"]
        session = (await self.send("Target.attachToTarget",
                                   {"targetId": target, "flatten": True}))["sessionId"]
        page = Page(self, name, session)
        self._listeners[session] = [page._on_event]
        for domain in ("Page", "Runtime", "Log"):
            await page.send(f"{domain}.enable")
        await page.send("Emulation.setDeviceMetricsOverride",
                        {"width": width, "height": height, "deviceScaleFactor": 1,
                         "mobile": mobile})
        if mobile:
            await page.send("Emulation.setTouchEmulationEnabled", {"enabled": True})
        self.pages.append(page)
        return page

    async def close(self) -> None:
        """Close the browser and kill its whole process group; safe to call twice."""
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.send("Browser.close"), 3)
            with contextlib.suppress(Exception):
                await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=3)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # our own group: leftover helpers
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    """One tab: evaluate JavaScript, click and type with real input events, screenshots."""

    def __init__(self, browser: Browser, name: str, session: str) -> None:
        self.browser = browser
        self.name = name
        self.session = session
        self.errors: list[str] = []  # console errors, uncaught exceptions, CSP violations
        self._waiters: dict[str, list[asyncio.Future[dict[str, Any]]]] = {}

    def _on_event(self, method: str, params: dict[str, Any]) -> None:
        for fut in self._waiters.pop(method, []):
            if not fut.done():
                fut.set_result(params)
        if method == "Runtime.exceptionThrown":
            d = params["exceptionDetails"]
            self.errors.append(d.get("exception", {}).get("description") or d.get("text", ""))
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                        for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            self.errors.append(params["entry"].get("text", ""))

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.browser.send(method, params, self.session)

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", {"url": url})
        await self.wait_for("document.readyState === 'complete'")

    async def reload(self) -> None:
        await self.send("Page.reload", {"ignoreCache": True})
        await asyncio.sleep(0.2)
        await self.wait_for("document.readyState === 'complete'")

    async def eval(self, expression: str) -> Any:
        reply = await self.send("Runtime.evaluate", {"expression": expression,
                                                     "awaitPromise": True,
                                                     "returnByValue": True})
        if "exceptionDetails" in reply:
            d = reply["exceptionDetails"]
            raise CdpError(d.get("exception", {}).get("description") or d.get("text"))
        return reply["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 10.0) -> Any:
        """Poll a JavaScript expression until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(CdpError):  # e.g. during a navigation
                value = await self.eval(expression)
                if value:
                    return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"[{self.name}] still false after {timeout}s: {expression}")
            await asyncio.sleep(0.05)

    async def wait_text(self, selector: str, text: str, timeout: float = 10.0) -> None:
        await self.wait_for(f"(document.querySelector({json.dumps(selector)})?.innerText ?? '')"
                            f".includes({json.dumps(text)})", timeout)

    async def text(self, selector: str) -> str:
        return str(await self.eval(
            f"document.querySelector({json.dumps(selector)})?.innerText ?? ''"))

    async def visible(self, selector: str) -> bool:
        return bool(await self.eval(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " return !!e && e.getClientRects().length > 0; })()"))

    async def _center(self, selector: str) -> tuple[float, float]:
        box = await self.wait_for(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e || !e.getClientRects().length) return null;"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        return float(box[0]), float(box[1])

    async def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element (it must be visible)."""
        x, y = await self._center(selector)
        for kind in ("mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y,
                                                         "button": "left", "clickCount": 1})

    async def type(self, selector: str, text: str) -> None:
        """Focus the field, clear it, and type ``text`` as keyboard input."""
        await self.click(selector)
        await self.eval(f"document.querySelector({json.dumps(selector)}).select?.()")
        await self.send("Input.insertText", {"text": text})

    def next_event(self, method: str) -> asyncio.Future[dict[str, Any]]:
        """A future of the params of this page's next CDP event `method`."""
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(method, []).append(fut)
        return fut

    async def choose_files(self, selector: str, *paths: Path) -> None:
        """Click `selector` (something that opens a file picker, as a user would) and pick
        `paths` in the picker: the page's <input type=file> gets them and fires "change"."""
        await self.send("Page.setInterceptFileChooserDialog", {"enabled": True})
        opened = self.next_event("Page.fileChooserOpened")
        await self.click(selector)
        chooser = await asyncio.wait_for(opened, self.browser.timeout)
        await self.send("DOM.setFileInputFiles", {"files": [str(p) for p in paths],
                                                  "backendNodeId": chooser["backendNodeId"]})

    async def press(self, key: str) -> None:
        codes = {"Enter": 13, "Tab": 9, "Escape": 27, "ArrowRight": 39, "ArrowLeft": 37}
        base = {"key": key, "code": key, "windowsVirtualKeyCode": codes[key]}
        down = {**base, "type": "keyDown"}
        if key == "Enter":
            down["text"] = "\r"
        await self.send("Input.dispatchKeyEvent", down)
        await self.send("Input.dispatchKeyEvent", {**base, "type": "keyUp"})

    async def screenshot(self, path: Path, full_page: bool = False) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = (await self.send("Page.getLayoutMetrics"))["cssContentSize"]
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": size["width"],
                                "height": size["height"], "scale": 1})
        shot = await self.send("Page.captureScreenshot", params)
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))
        return path
