"""Request handlers of the issue-6 ops, kept out of :mod:`chatd.app` to keep modules small.

Each submodule's ``handlers(app)`` returns ``{op: coroutine(conn, request)}``; the App merges
them into its dispatch table. Handlers only translate wire fields to service calls.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from chatd.errors import ChatError
from chatd.hub import Conn
from chatd.protocol import Request
from chatd.store import UserId

__all__ = ["Handler", "uid"]

Handler = Callable[[Conn, Request], Awaitable[dict[str, Any] | None]]


def uid(conn: Conn) -> UserId:
    if conn.user_id is None:  # the session layer refuses unauthenticated ops first
        raise ChatError("no user on this connection")
    return conn.user_id
