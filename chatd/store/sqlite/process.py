"""The SQLite store in a process of its own, so that the event loop's core runs no SQL.

With the writer on a thread, the event loop and the writer share one interpreter lock: they
run one at a time however many cores the host has, and each of the writer's statements
hands the lock back and forth. :class:`ProcessSQLiteStore` speaks the same
:class:`~chatd.store.base.Store` contract by forwarding each call (its method name and
arguments, pickled) over a socket pair to a child process that runs the
:class:`~chatd.store.sqlite.SQLiteStore` (``python -m chatd.store.sqlite.process``).

- The calls of one event-loop pass travel in one frame. The child has no event loop and no
  thread: it reads all that has arrived, steps each call's coroutine by hand up to its job
  (:class:`_Inline`), runs the jobs in one transaction (group commit, as the thread does),
  and sends the replies of that round in one frame.
- A reply leaves the child only after its transaction committed: an acknowledged message is
  as durable as with the thread.
- If the child dies, the calls in flight fail with ``StoreUnavailable`` (they may or may not
  have committed, as with a lost database connection), the store reports itself degraded, and
  the next call after a second starts a new child.
- The child ignores SIGINT and SIGTERM: it stops when its socket closes (the node's
  ``close()``, or the node's death), after the jobs it holds committed.

A frame is a 4-byte big-endian length and a pickle; the socket pair is private to the two
processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import copyreg
import dataclasses
import gc
import itertools
import logging
import operator
import pickle
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Generator
from pathlib import Path
from typing import Any, Final, cast

from chatd.store.base import StoreError, StoreHealth, StoreUnavailable
from chatd.store.sqlite.engine import check_synchronous, settle

__all__ = ["ProcessSQLiteStore"]

log = logging.getLogger("chatd.store")
_HEADER: Final = struct.Struct(">I")
_RESPAWN_AFTER: Final = 1.0  # seconds between starts of a child that keeps dying
_READ: Final = 1 << 20
# A call: (id, method name, positional args, keyword args).
Call = tuple[int, str, tuple[Any, ...], dict[str, Any]]
# A reply: (id, value, exception or None).
Reply = tuple[int, Any, BaseException | None]


def _register_reducers() -> None:
    """Pickle the store's records as (class, field values): a slotted dataclass's own
    ``__getstate__``/``__setstate__`` are Python code (a reply took 4 µs to pickle and 4.3 to
    load that way, 1.5 and 3.1 so)."""
    from chatd.store import base, campaign, media

    for module in (base, campaign, media):
        for cls in vars(module).values():
            if isinstance(cls, type) and dataclasses.is_dataclass(cls) \
                    and cls.__module__ == module.__name__:
                fields = dataclasses.fields(cls)
                if all(f.init for f in fields):
                    copyreg.pickle(cls, _reducer(cls, [f.name for f in fields]))


def _reducer(cls: type, names: list[str]) -> Callable[[Any], Any]:
    values = operator.attrgetter(*names)
    if len(names) == 1:  # attrgetter of one name gives the value, not a tuple
        return lambda obj: (cls, (values(obj),))
    return lambda obj: (cls, values(obj))


_register_reducers()


def _frame(obj: Any) -> bytes:
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(payload)) + payload


def _take_frames(buf: bytearray) -> list[Any]:
    """The complete frames at the start of ``buf``, decoded and removed from it."""
    out, start = [], 0
    with memoryview(buf) as view:
        while len(buf) - start >= 4:
            (size,) = _HEADER.unpack_from(buf, start)
            end = start + 4 + size
            if len(buf) < end:
                break
            out.append(pickle.loads(view[start + 4:end]))
            start = end
    del buf[:start]
    return out


class _Link(asyncio.Protocol):
    """The node's end of the socket pair."""

    def __init__(self, store: ProcessSQLiteStore) -> None:
        self.store = store
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buf = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self._buf += data
        for frame in _take_frames(self._buf):
            self.store._received(frame)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        self.store._child_lost(self)


class ProcessSQLiteStore:
    """A :class:`chatd.store.base.Store` whose SQLite engine runs in a child process. Every
    method of the contract is forwarded by name (``__getattr__``)."""

    def __init__(self, path: Path, max_batch: int = 512, synchronous: str = "full") -> None:
        check_synchronous(synchronous)
        self.path = path
        self.max_batch = max_batch
        self.synchronous = synchronous
        self.health = StoreHealth()
        self._proc: asyncio.subprocess.Process | None = None
        self._link: _Link | None = None
        self._ids = itertools.count()
        self._waiting: dict[int, asyncio.Future[Any]] = {}  # sent, not answered
        self._pass: list[Call] = []  # this event-loop pass's calls, sent at its end
        self._ready: asyncio.Future[None] | None = None
        self._starting: asyncio.Task[None] | None = None
        self._started_at = 0.0
        self._opened = False  # a child was running once: one that dies is replaced
        self._closing = False

    # --- lifecycle -----------------------------------------------------------------------

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        await self._start()
        self._opened = True

    async def _start(self) -> None:
        self._started_at = time.monotonic()
        ours, theirs = socket.socketpair()
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "chatd.store.sqlite.process", str(theirs.fileno()),
                str(self.path), self.synchronous, str(self.max_batch),
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
        finally:
            theirs.close()
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        _, self._link = await loop.create_connection(lambda: _Link(self), sock=ours)
        try:
            await self._ready  # the child's first frame: migrated and open, or why not
        except BaseException:
            await self._stop_child()
            raise

    async def close(self) -> None:
        self._closing = True
        if self._starting is not None:  # a replacement child on its way: let it come up
            await asyncio.gather(self._starting, return_exceptions=True)
        self._send_pass()
        # Replies still due are the commits of jobs already sent: wait for them.
        if self._waiting:
            await asyncio.gather(*self._waiting.values(), return_exceptions=True)
        await self._stop_child()

    async def _stop_child(self) -> None:
        link, proc = self._link, self._proc
        self._link = None
        if link is not None and link.transport is not None:
            link.transport.close()  # EOF: the child commits what it holds and exits
            await link.lost
        if proc is not None:
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
            self._proc = None

    # --- calls -----------------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> asyncio.Future[Any]:
            return self._call(name, args, kwargs)
        call.__name__ = name
        self.__dict__[name] = call  # looked up once per name
        return call

    def _call(self, name: str, args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        if self._link is None or self._closing:
            if self._opened and not self._closing:
                self._respawn_soon()
            fut.set_exception(StoreUnavailable("store process is not running"))
            return fut
        call_id = next(self._ids)
        self._waiting[call_id] = fut
        if not self._pass:
            loop.call_soon(self._send_pass)
        self._pass.append((call_id, name, args, kwargs))
        return fut

    def _send_pass(self) -> None:
        calls, self._pass = self._pass, []
        link = self._link
        if not calls:
            return
        if link is None or link.transport is None or link.transport.is_closing():
            self._fail([c[0] for c in calls], "store process is not running")
            return
        try:
            frame = _frame(calls)
        except Exception:  # an argument that does not pickle: a bug; fail those calls only
            frame = self._frame_each(calls)
        link.transport.write(frame)

    def _frame_each(self, calls: list[Call]) -> bytes:
        out = bytearray()
        for call in calls:
            try:
                out += _frame([call])
            except Exception as exc:
                log.error("store call %s not sent: %s", call[1], exc)
                self._settle(call[0], None, StoreError(f"arguments of {call[1]} do not pickle"))
        return bytes(out)

    def _received(self, obj: Any) -> None:
        # ("ready", None or why the child could not open, []) or ("replies", replies, events)
        kind, body, events = obj
        if kind == "ready":
            if self._ready is not None:
                settle(self._ready, None, body)
            return
        replies: list[Reply] = body
        for event in events:
            if isinstance(event, float):
                self.health.committed(event)
            else:
                self.health.failed(StoreUnavailable(event))
        for call_id, value, err in replies:
            self._settle(call_id, value, err)

    def _settle(self, call_id: int, value: Any, err: BaseException | None) -> None:
        fut = self._waiting.pop(call_id, None)
        if fut is not None:
            settle(fut, value, err)

    def _fail(self, call_ids: list[int], why: str) -> None:
        for call_id in call_ids:
            self._settle(call_id, None, StoreUnavailable(why))

    def _child_lost(self, link: _Link) -> None:
        if self._ready is not None and not self._ready.done():
            code = self._proc.returncode if self._proc is not None else None
            self._ready.set_exception(StoreUnavailable(
                f"store process exited before it was ready (code {code})"))
        if link is not self._link:
            return
        self._link = None
        if self._waiting or not self._closing:
            why = "store process exited"
            log.error("%s; %d call(s) in flight failed", why, len(self._waiting))
            self.health.failed(StoreUnavailable(why))
            self._fail(list(self._waiting), why)

    def _respawn_soon(self) -> None:
        if self._starting is not None and not self._starting.done():
            return
        if time.monotonic() - self._started_at < _RESPAWN_AFTER:
            return
        self._starting = asyncio.get_running_loop().create_task(self._respawn())

    async def _respawn(self) -> None:
        await self._stop_child()  # reap the dead one
        try:
            await self._start()
        except Exception as exc:
            log.error("store process did not start again: %s", exc)
            return
        log.warning("store process started again")


# --- the child ------------------------------------------------------------------------------

class _Job:
    """What a store method awaits in the child instead of the engine's future: its job, run
    with the others of this round in one transaction, its outcome sent back in."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[sqlite3.Connection], Any]) -> None:
        self.fn = fn

    def __await__(self) -> Generator[_Job, Any, Any]:
        return (yield self)


class _Inline:
    """A store whose methods run without an event loop or a thread: each call's coroutine is
    stepped by hand (:meth:`start`, :meth:`run`), as a task would be, and all the jobs they
    wait on in one round go in one transaction (the engine's :meth:`Engine._commit`: group
    commit and replay with savepoints)."""

    def __init__(self, path: Path, max_batch: int, synchronous: str) -> None:
        from chatd.store.sqlite import SQLiteStore

        self.store = SQLiteStore(path, max_batch=max_batch, synchronous=synchronous)
        self.store._run = _Job  # type: ignore[assignment,method-assign]
        self.events: list[float | str] = []  # health since the last reply frame
        self.store.health.on_commit = self.events.append
        self.store.health.on_failure = lambda: self.events.append(
            self.store.health.fault or "store failed")
        self.conn: sqlite3.Connection | None = None
        self.replies: list[Reply] = []
        self.waiting: list[tuple[int, Coroutine[Any, Any, Any], _Job]] = []

    def open(self) -> None:
        self.conn = self.store._connect()
        self.store._start_checkpointer()

    def close(self) -> None:
        self.store._stop_checkpointer()
        if self.conn is not None:
            self.conn.close()

    def start(self, call_id: int, name: str, args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> None:
        method = getattr(self.store, name, None) if not name.startswith("_") else None
        if method is None:
            self.replies.append((call_id, None, StoreError(f"no store method {name!r}")))
            return
        try:
            coro = method(*args, **kwargs)
        except TypeError as exc:  # arguments the method does not take: a bug
            self.replies.append((call_id, None, StoreError(f"{name}: {exc}")))
            return
        self._step(call_id, coro, None, None)

    def _step(self, call_id: int, coro: Coroutine[Any, Any, Any], value: Any,
              err: BaseException | None) -> None:
        try:
            job = coro.send(value) if err is None else coro.throw(err)
        except StopIteration as done:
            self.replies.append((call_id, done.value, None))
        except Exception as exc:
            self.replies.append((call_id, None, exc))
        else:
            if isinstance(job, _Job):
                self.waiting.append((call_id, coro, job))
            else:  # a store method awaited something else: not possible without a loop
                coro.close()
                self.replies.append((call_id, None, StoreError("store method awaited "
                                                                f"{type(job).__name__}")))

    def run(self) -> None:
        """Commit the jobs waiting, round after round, until every started call is done."""
        assert self.conn is not None
        while self.waiting:
            batch = self.waiting[:self.store.max_batch]
            del self.waiting[:len(batch)]
            outcomes = self.store._commit(self.conn, [job.fn for _, _, job in batch])
            for (call_id, coro, _), (value, err) in zip(batch, outcomes, strict=True):
                self._step(call_id, coro, value, err)
        if self.store._erasure_due:
            self.store._checkpoint(self.conn)

    def reply_frame(self) -> bytes:
        replies, self.replies = self.replies, []
        events = self.events[:]
        self.events.clear()  # the same list: the health hooks append to it
        try:
            return _frame(("replies", replies, events))
        except Exception:
            # A value or exception that does not pickle (a bug): say what it was instead.
            replies = [(i, v, e) if _pickles(v, e) else (i, None, _unpicklable(v, e))
                       for i, v, e in replies]
            return _frame(("replies", replies, events))


def _pickles(*objs: Any) -> bool:
    try:
        pickle.dumps(objs, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return False
    return True


def _unpicklable(value: Any, err: BaseException | None) -> StoreError:
    what = err if err is not None else value
    return StoreError(f"{type(what).__name__} does not pickle: {what}"[:200])


def _serve(sock: socket.socket, store: _Inline) -> None:
    """Read what the node sent (all of it that has arrived), run it, reply; until EOF."""
    try:
        store.open()
    except Exception as exc:
        sock.sendall(_frame(("ready", exc if _pickles(exc) else StoreError(str(exc)), [])))
        return
    sock.sendall(_frame(("ready", None, [])))
    # As the node does (chatd.server.run): what start-up made, out of the collector's sight.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        buf = bytearray()
        while True:
            # A blocked erasure checkpoint is retried within a second even when no call comes.
            sock.settimeout(1.0 if store.store._erasure_due else None)
            try:
                data = sock.recv(_READ)
            except TimeoutError:
                store.run()
                continue
            if not data:
                break
            buf += data
            with contextlib.suppress(BlockingIOError):  # what else has arrived joins this round
                while more := sock.recv(_READ, socket.MSG_DONTWAIT):
                    buf += more
            for calls in _take_frames(buf):
                for call in calls:
                    store.start(*call)
            store.run()
            if store.replies or store.events:
                sock.sendall(store.reply_frame())
    finally:
        store.close()


def main(argv: list[str]) -> None:
    fd, path, synchronous, max_batch = argv
    # Stop on EOF from the node, never on a signal meant for it: its shutdown still writes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sock = socket.socket(fileno=int(fd))
    with contextlib.suppress(ConnectionError):  # the node died: nobody to answer
        _serve(sock, _Inline(Path(path), int(max_batch), synchronous))


if __name__ == "__main__":
    main(sys.argv[1:])
