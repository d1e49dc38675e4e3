"""The room rules of ARCHITECTURE.md, checked on the code itself."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from chatd.protocol.envelope import OpSpec
from chatd.services.ops import op, op_specs
from chatd.services.registry import OPS, SERVICES

ROOT = Path(__file__).resolve().parent.parent
CHATD = ROOT / "chatd"


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_store_never_calls_back_into_services_filters_or_the_app() -> None:
    for path in (CHATD / "store").rglob("*.py"):
        for name in imports_of(path):
            assert not name.startswith(("chatd.services", "filters", "chatd.app")), (path, name)


@pytest.mark.parametrize("module, forbidden", [
    ("chatd.hub", "sqlite3"),
    ("chatd.protocol", "sqlite3"),
    ("chatd.store", "asyncpg"),
    ("chatd.app", "redis"),
    ("chatd.media", "aiobotocore"),
    ("chatd.media", "botocore"),
])
def test_importing_a_room_loads_no_backend_it_does_not_need(module: str, forbidden: str) -> None:
    code = f"import {module}, sys; assert {forbidden!r} not in sys.modules, 'loaded'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_only_the_edges_import_websockets_and_only_backends_import_their_clients() -> None:
    # The edges: the server and the client library (chatd.client) for apps and tests; for
    # HTTP, the server API's listener and the outbound webhooks (services see neither).
    for path in CHATD.rglob("*.py"):
        rel = path.relative_to(CHATD).as_posix()
        for name in imports_of(path):
            top = name.split(".")[0]
            if top == "websockets":
                assert rel in ("server.py", "client.py"), rel
            if top == "aiohttp":
                assert rel in ("httpapi.py", "webhooks.py"), rel
            if top == "redis":
                assert rel.endswith("redis.py"), rel
            if top == "asyncpg":
                assert rel.startswith("store/postgres/"), rel
            if top in ("aiobotocore", "botocore"):
                assert rel == "media/s3.py", rel


def test_the_media_checks_are_pure() -> None:
    # No event loop, no I/O room of chatd: a worker thread or a fuzzer calls them as they are.
    # They may use the errors and one another (voice.py remuxes with webm.py), nothing else.
    pure = ("images", "voice", "webm")
    allowed = {"chatd.media.errors", *(f"chatd.media.{name}" for name in pure)}
    for name in pure:
        for imported in imports_of(CHATD / "media" / f"{name}.py"):
            assert imported.split(".")[0] not in ("asyncio", "socket", "aiohttp"), imported
            if imported.startswith("chatd"):
                assert imported in allowed, (name, imported)


def test_no_file_is_named_after_an_issue() -> None:
    for path in [*CHATD.rglob("*.py"), *(ROOT / "tests").rglob("*.py")]:
        assert "issue" not in path.name, path


def test_every_op_is_declared_once_next_to_its_method() -> None:
    specs = op_specs(*SERVICES)
    assert specs == OPS
    # The protocol's fixed core is there (PROTOCOL.md).
    for name in ("register", "login", "auth", "msg.send", "history", "match.start", "ping"):
        assert name in OPS
    for cls in SERVICES:
        for attr, value in vars(cls).items():
            spec = getattr(value, "__chatd_op__", None)
            if isinstance(spec, OpSpec):
                assert OPS[spec.name] is spec, (cls.__name__, attr)


def test_an_op_declared_twice_is_refused() -> None:
    class A:
        @op("x")
        async def one(self, call: object) -> None: ...

    class B:
        @op("x")
        async def two(self, call: object) -> None: ...

    with pytest.raises(ValueError, match="declared twice"):
        op_specs(A, B)
