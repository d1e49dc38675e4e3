"""The static /app/ and /mod/ pages over plain HTTP (no browser): served with the CSP, every
script and stylesheet they load exists, nothing inline that the CSP would block, and
``web_pages = "off"`` hides them. The pages themselves run in tests/browser/."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from chatd.config import Config
from chatd.server import ChatServer

WEB = Path(__file__).resolve().parent.parent / "chatd" / "web"
PAGES = ("/app/", "/mod/")


async def get(server: ChatServer, path: str) -> tuple[int, dict[str, str], bytes]:
    def fetch() -> tuple[int, dict[str, str], bytes]:
        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: object, **kwargs: object) -> None:
                return None

        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(f"http://127.0.0.1:{server.port}{path}", timeout=5) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    return await asyncio.to_thread(fetch)


def references(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="(/(?:app|mod)/[^"]+)"', html)


def imports(js: str) -> list[str]:
    return re.findall(r'^import [^;]*? from "([^"]+)";', js, re.M)


@pytest.mark.parametrize("page", PAGES)
async def test_pages_are_served_with_the_csp(server: ChatServer, page: str) -> None:
    status, headers, body = await get(server, page)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    html = body.decode()
    # The CSP allows no inline script: every <script> loads a file; no onclick= handlers.
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert re.search(r"\son[a-z]+=", html) is None
    assert '<html lang="zh-CN">' in html and 'name="viewport"' in html
    # Every label points at a control of the page.
    ids = set(re.findall(r'\bid="([^"]+)"', html))
    assert set(re.findall(r'\bfor="([^"]+)"', html)) <= ids


async def test_everything_the_pages_load_exists(server: ChatServer) -> None:
    todo = [ref for page in PAGES
            for ref in references((await get(server, page))[2].decode())]
    seen: set[str] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        status, headers, body = await get(server, path)
        assert status == 200, path
        if path.endswith(".js"):
            assert headers["Content-Type"].startswith("text/javascript"), path
            for spec in imports(body.decode()):
                base = path.rsplit("/", 1)[0]
                todo.append(spec if spec.startswith("/") else f"{base}/{spec.removeprefix('./')}")
        elif path.endswith(".css"):
            assert headers["Content-Type"].startswith("text/css"), path
    assert {"/app/chatd.js", "/app/ui.js", "/app/app.js", "/app/views.js", "/app/menu.js",
            "/app/actions.js", "/app/account.js", "/app/names.js", "/app/settings.js",
            "/mod/mod.js", "/app/style.css", "/mod/mod.css"} <= seen
    # Every module of /app/ is loaded by the page (none left behind by a move).
    modules = {f"/app/{p.name}" for p in (WEB / "app").glob("*.js")}
    assert modules <= seen, modules - seen


async def test_redirect_and_not_found(server: ChatServer) -> None:
    status, headers, _ = await get(server, "/app")
    assert (status, headers["Location"]) == (301, "/app/")
    assert (await get(server, "/app/nope.js"))[0] == 404
    assert (await get(server, "/app/../__init__.py"))[0] == 404


async def test_web_pages_off(config: Config) -> None:
    srv = ChatServer(dataclasses.replace(config, web_pages="off"))
    await srv.start()
    try:
        for path in ("/app/", "/mod/", "/app/chatd.js"):
            assert (await get(srv, path))[0] == 404
    finally:
        await srv.stop()


def test_every_page_file_is_packaged() -> None:
    """pyproject's package-data ships chatd/web/* and chatd/web/*/* only: no deeper files."""
    for path in WEB.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            assert len(path.relative_to(WEB).parts) <= 2, path
