"""Handlers of the ``mod.*`` ops (see :class:`chatd.services.moderation.ModerationService`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chatd.api import Handler, uid
from chatd.hub import Conn
from chatd.protocol import Request
from chatd.store import UserId

if TYPE_CHECKING:
    from chatd.app import App

__all__ = ["handlers"]


def handlers(app: App) -> dict[str, Handler]:
    mod = app.moderation

    def change(op: str) -> Handler:
        async def handle(conn: Conn, req: Request) -> dict[str, Any]:
            a = req.args
            return await mod.word_change(uid(conn), op, a["word"], a.get("category", ""),
                                         a.get("action", ""))
        return handle

    async def words_list(conn: Conn, req: Request) -> dict[str, Any]:
        a = req.args
        return await mod.word_list(uid(conn), a.get("q", ""), a.get("offset"), a.get("limit"))

    async def words_version(conn: Conn, req: Request) -> dict[str, Any]:
        return await mod.word_version(uid(conn))

    async def words_check(conn: Conn, req: Request) -> dict[str, Any]:
        return await mod.dry_run(uid(conn), req.args["text"])

    async def queue(conn: Conn, req: Request) -> dict[str, Any]:
        a = req.args
        return await mod.queue(uid(conn), a["queue"], a.get("offset"), a.get("limit"))

    async def resolve(conn: Conn, req: Request) -> dict[str, Any]:
        a = req.args
        return await mod.resolve(uid(conn), a["item"], a["action"], a.get("duration"),
                                 a.get("note", ""))

    async def warn(conn: Conn, req: Request) -> None:
        await mod.warn(uid(conn), UserId(req.args["user"]), req.args.get("note", ""))

    async def mute(conn: Conn, req: Request) -> dict[str, Any]:
        a = req.args
        return await mod.mute(uid(conn), UserId(a["user"]), a["duration"], a.get("note", ""))

    async def ban(conn: Conn, req: Request) -> dict[str, Any]:
        a = req.args
        return await mod.ban(uid(conn), UserId(a["user"]), a.get("duration"),
                             a.get("note", ""))

    async def unban(conn: Conn, req: Request) -> None:
        await mod.unban(uid(conn), UserId(req.args["user"]))

    async def audit(conn: Conn, req: Request) -> dict[str, Any]:
        a = req.args
        return await mod.audit(uid(conn), a.get("before"), a.get("limit"), a.get("target"))

    return {
        "mod.words.add": change("add"),
        "mod.words.remove": change("remove"),
        "mod.allow.add": change("allow_add"),
        "mod.allow.remove": change("allow_remove"),
        "mod.words.list": words_list,
        "mod.words.version": words_version,
        "mod.words.check": words_check,
        "mod.queue": queue,
        "mod.resolve": resolve,
        "mod.warn": warn,
        "mod.mute": mute,
        "mod.ban": ban,
        "mod.unban": unban,
        "mod.audit": audit,
    }
