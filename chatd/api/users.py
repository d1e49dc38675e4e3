"""Handlers of posts, feeds, search, reports, consents, export and account deletion."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chatd.api import Handler, uid
from chatd.errors import CLOSE_REVOKED, Forbidden
from chatd.hub import Conn
from chatd.protocol import Request
from chatd.services.privacy import CONSENT_DEFAULTS

if TYPE_CHECKING:
    from chatd.app import App

__all__ = ["handlers"]


def handlers(app: App) -> dict[str, Handler]:
    social, privacy = app.social, app.privacy

    async def post_create(conn: Conn, req: Request) -> dict[str, Any]:
        a = req.args
        return await social.create_post(uid(conn), a["body"], a.get("group"), a.get("city"))

    async def post_delete(conn: Conn, req: Request) -> None:
        await social.delete_post(uid(conn), req.args["id"])

    async def feed(conn: Conn, req: Request) -> dict[str, Any]:
        a = req.args
        return await social.feed(uid(conn), a["scope"], a.get("group"), a.get("before"),
                                 a.get("limit"))

    async def search(conn: Conn, req: Request) -> dict[str, Any]:
        a = req.args
        return await social.search(uid(conn), a["q"], a.get("kind"), a.get("offset"),
                                   a.get("limit"))

    async def history(conn: Conn, req: Request) -> dict[str, Any]:
        return await social.history(uid(conn), req.args.get("limit"))

    async def history_clear(conn: Conn, req: Request) -> None:
        await social.clear_history(uid(conn))

    async def report(conn: Conn, req: Request) -> dict[str, Any]:
        a = req.args
        return await social.report(uid(conn), a["kind"], a["target"], a["reason"],
                                   a.get("text"))

    async def reports_mine(conn: Conn, req: Request) -> dict[str, Any]:
        return await social.my_reports(uid(conn))

    async def consent_set(conn: Conn, req: Request) -> dict[str, Any]:
        changes = {k: bool(req.args[k]) for k in CONSENT_DEFAULTS if k in req.args}
        return await privacy.set_consents(uid(conn), changes)

    async def export(conn: Conn, req: Request) -> dict[str, Any]:
        return {"export": await privacy.export(uid(conn))}

    async def delete(conn: Conn, req: Request) -> None:
        user_id = uid(conn)
        user = await app.store.get_user(user_id)
        if user is None:
            raise Forbidden("this account no longer exists")
        await app.accounts.confirm(user, req.args.get("password"), req.args.get("code"))
        ended = await privacy.delete(user_id)
        app.accounts.forget(user.phone)
        await app.matching.cancel(user_id)
        # Every other connection of the user, on every node, ends now; this one after its
        # reply (it no longer holds a token, so the revoke passes it by).
        conn.token_hash = None
        await app.node.revoke(user_id, ended)
        conn.close_after_reply = (CLOSE_REVOKED, "account deleted")

    return {
        "post.create": post_create,
        "post.delete": post_delete,
        "feed": feed,
        "search": search,
        "search.history": history,
        "search.history.clear": history_clear,
        "report": report,
        "reports.mine": reports_mine,
        "consent.set": consent_set,
        "account.export": export,
        "account.delete": delete,
    }
