"""The server HTTP API's edge: the only module that serves HTTP with ``aiohttp``.

A listener of its own (``api_host``:``api_port``), apart from the WebSocket port, for the
app's own backend. ``POST /api/<method>`` with a JSON object, authenticated by
``Authorization: apikey <secret>``; the answer is ``{"result": {...}}`` or
``{"error": {"code", "message", ...details}}`` with the HTTP status of the code.
``POST /sms/inbound`` takes the SMS gateway's replies, signed with HMAC-SHA256 over the raw
body (``X-Chatd-Signature: <hex>``). Methods and their rules live in
:mod:`chatd.services.serverapi`; see docs/api.md.

Keys: only a SHA-256 of each secret is kept, and a presented key is compared with every one
of them in constant time (:func:`hmac.compare_digest`, no early exit), so neither timing nor
a log line tells anything about a secret. No log line carries a header or a body.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from typing import Any, Final

from aiohttp import web

from chatd.app import App
from chatd.broker import BrokerUnavailable
from chatd.config import Config, api_key_pairs
from chatd.errors import BadRequest, ChatError, Internal, TooLarge, Unauthorized, Unavailable
from chatd.protocol import JSON, parse_request
from chatd.services.serverapi import ApiCall
from chatd.store import StoreUnavailable

__all__ = ["MAX_BODY_BYTES", "STATUS", "ApiServer"]

log = logging.getLogger("chatd.api")

MAX_BODY_BYTES: Final = 64 * 1024
RETRY_MS: Final = 1000
#: The HTTP status of each error code.
STATUS: Final = {"bad_request": 400, "invalid_code": 400, "underage": 400, "unauthorized": 401,
                 "forbidden": 403, "not_found": 404, "conflict": 409, "too_large": 413,
                 "filtered": 422, "rate_limited": 429, "internal": 500, "unavailable": 503}


class ApiServer:
    def __init__(self, config: Config, app: App) -> None:
        self.config = config
        self.app = app
        self._keys = [(name, _digest(secret)) for name, secret in api_key_pairs(config.api_keys)]
        self._inbound = config.sms_inbound_secret.encode()
        web_app = web.Application(client_max_size=MAX_BODY_BYTES)
        web_app.router.add_route("*", "/api/{method}", self._api)
        web_app.router.add_route("*", "/sms/inbound", self._sms_inbound)
        web_app.router.add_route("*", "/{tail:.*}", self._not_found)
        # No access log: the default one would print every path and peer at INFO; the
        # audit log holds who changed what.
        self._runner = web.AppRunner(web_app, access_log=None, shutdown_timeout=5.0)
        self.port = config.api_port
        self._refused, self._refused_logged = 0, 0.0

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.api_host, self.config.api_port,
                           reuse_port=self.config.reuse_port or None)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        log.info("server API listening on http://%s:%d/api/ (%d keys%s)", self.config.api_host,
                 self.port, len(self._keys),
                 ", SMS replies at /sms/inbound" if self._inbound else "")

    async def stop(self) -> None:
        await self._runner.cleanup()

    # --- /api/<method> -------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        method = request.match_info["method"]
        methods = self.app.api.methods
        label = method if method in methods else "unknown"
        key: str | None = None
        try:
            key = self._key(request.headers.get("Authorization", ""))
            if key is None:
                self._note_refused(request)
                raise Unauthorized("a valid 'Authorization: apikey <secret>' header is needed")
            if request.method != "POST":
                response = _error(BadRequest("use POST with a JSON object"), 405)
            elif method not in methods:
                response = _error(_UnknownMethod(), 404)
            else:
                obj = await _json_body(request)
                obj.pop("rid", None)
                obj["t"] = method
                args = parse_request(obj, methods).args
                result = await self.app.api.handle(ApiCall(key, request.remote or ""), method,
                                                   args)
                response = web.json_response({"result": result}, dumps=_dumps)
        except ChatError as exc:
            response = _error(exc)
        except (StoreUnavailable, BrokerUnavailable) as exc:
            log.warning("API %s refused as unavailable: %s", label, exc)
            response = _error(Unavailable(RETRY_MS))
        except Exception:
            log.exception("API %s failed", label)
            response = _error(Internal())
        self.app.metrics.api_requests.labels(label, str(response.status)).inc()
        log.debug("API %s by %s: %d in %.1f ms", label, key or "-", response.status,
                  (time.perf_counter() - started) * 1000)
        return response

    def _key(self, header: str) -> str | None:
        """The name of the key the header presents, or None. Every stored digest is
        compared, whatever matched before, so the time taken says nothing."""
        scheme, _, secret = header.strip().partition(" ")
        if scheme.lower() != "apikey" or not secret.strip():
            return None
        digest = _digest(secret.strip())
        found = None
        for name, stored in self._keys:
            if hmac.compare_digest(digest, stored):
                found = name
        return found

    def _note_refused(self, request: web.Request) -> None:
        """One WARNING line per minute at most, naming no key (refused ones may be typos of
        a real secret)."""
        self._refused += 1
        now = time.monotonic()
        if now - self._refused_logged >= 60.0:
            log.warning("%d API requests refused without a valid key (last from %s)",
                        self._refused, request.remote)
            self._refused, self._refused_logged = 0, now

    # --- /sms/inbound --------------------------------------------------------------------

    async def _sms_inbound(self, request: web.Request) -> web.Response:
        """A reply from a phone. Always 200 once signed, whatever it changed: the answer
        must not tell whether the phone has an account."""
        if not self._inbound:
            return _error(_NoEndpoint(), 404)
        try:
            if request.method != "POST":
                return _error(BadRequest("use POST"), 405)
            body = await _read(request)
            signature = request.headers.get("X-Chatd-Signature", "").strip().lower()
            expected = hmac.new(self._inbound, body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(signature.removeprefix("sha256=").encode(),
                                       expected.encode()):
                self._note_refused(request)
                raise Unauthorized("bad or missing X-Chatd-Signature")
            obj = _decode(body)
            phone, text = obj.get("phone"), obj.get("text")
            if not isinstance(phone, str) or not isinstance(text, str):
                raise BadRequest("give 'phone' and 'text' (strings)")
            await self.app.campaigns.withdraw(phone, text)
            response = web.json_response({"result": {}})
        except ChatError as exc:
            response = _error(exc)
        except StoreUnavailable as exc:
            # The gateway should retry: the reply has not been honoured yet.
            log.warning("SMS reply refused as unavailable: %s", exc)
            response = _error(Unavailable(RETRY_MS))
        except Exception:
            log.exception("SMS reply failed")
            response = _error(Internal())
        self.app.metrics.api_requests.labels("sms.inbound", str(response.status)).inc()
        return response

    async def _not_found(self, request: web.Request) -> web.Response:
        return _error(_NoEndpoint(), 404)


class _UnknownMethod(ChatError):
    code = "not_found"
    default_msg = "no such API method (see docs/api.md)"


class _NoEndpoint(ChatError):
    code = "not_found"
    default_msg = "no such endpoint"


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "replace")).digest()


def _dumps(obj: Any) -> str:
    return JSON.encode(obj)


async def _read(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise TooLarge(f"the body is at most {MAX_BODY_BYTES} bytes",
                       limit=MAX_BODY_BYTES) from None


def _decode(body: bytes) -> dict[str, Any]:
    """A JSON object, checked as a WebSocket frame is (no NUL, lone surrogate, huge int)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8") from None
    if not text.strip():
        return {}
    try:
        return JSON.decode(text)
    except BadRequest as exc:
        raise BadRequest(exc.msg.replace("frame", "body"), **exc.details) from None


async def _json_body(request: web.Request) -> dict[str, Any]:
    return _decode(await _read(request))


def _error(exc: ChatError, status: int | None = None) -> web.Response:
    code = STATUS.get(exc.code, 500) if status is None else status
    headers: dict[str, str] = {}
    retry = exc.details.get("retry_after")
    if exc.code in ("rate_limited", "unavailable") and isinstance(retry, int):
        headers["Retry-After"] = str(max(1, math.ceil(retry / 1000)))
    if code == 401:
        headers["WWW-Authenticate"] = "apikey"
    return web.json_response({"error": {"code": exc.code, "message": exc.msg, **exc.details}},
                             status=code, headers=headers, dumps=_dumps)
