"""Chat: conversations and members, the send context, recent pairs, messages and their seqs,
read marks, blocks."""

from __future__ import annotations

import asyncio

import pytest

from chatd.store import (
    QUOTE_CHARS,
    UNREAD_CAP,
    AppendResult,
    ConvId,
    DuplicateError,
    Message,
    SendRefused,
    Store,
    StoreError,
    UserId,
)
from tests.store.support import NOW, Backend, direct, new_user, uid


async def test_direct_conversation(store: Store) -> None:
    conv, a, b = await direct(store)
    stranger = await new_user(store)
    assert await store.is_member(conv, a.id) and await store.is_member(conv, b.id)
    assert not await store.is_member(conv, stranger.id)
    assert not await store.was_member(conv, stranger.id)
    assert sorted(await store.conv_members(conv)) == sorted([a.id, b.id])
    assert await store.conv_members(ConvId(uid("d"))) == []
    [sa] = await store.user_convs(a.id)
    assert (sa.id, sa.kind, sa.last_seq, sa.read_seq, sa.peer, sa.closed) == \
        (conv, "direct", 0, 0, b.id, False)
    [sb] = await store.user_convs(b.id)
    assert sb.peer == a.id
    with pytest.raises(DuplicateError):
        await store.create_direct(conv, a.id, b.id, NOW)


async def test_user_convs_order_and_unread(store: Store) -> None:
    # Newest activity first (the last message, else joining); ties by id bytewise ("Z" < "a"),
    # whatever the database collation.
    tag = uid("")
    groups = [ConvId(f"g:{tag}-b"), ConvId(f"g:{tag}-Z"), ConvId(f"g:{tag}-a")]
    u = await new_user(store, ("x",), tuple(groups))
    peer = await new_user(store)
    d1, d2 = ConvId(uid("dB")), ConvId(uid("da"))
    await store.create_direct(d1, u.id, peer.id, NOW)
    await store.create_direct(d2, u.id, peer.id, NOW)
    for i in range(4):
        await store.append_message(d2, uid("m"), peer.id, str(i), NOW + 10 + i, None, False)
    await store.append_message(groups[2], uid("m"), peer.id, "g", NOW + 5, None, False)
    await store.set_read(d2, u.id, 1)
    convs = await store.user_convs(u.id)
    assert [c.id for c in convs] == [d2, groups[2], d1, *sorted(groups[:2])]
    by_id = {c.id: c for c in convs}
    assert (by_id[d2].last_seq, by_id[d2].read_seq, by_id[d2].unread) == (4, 1, 3)
    assert by_id[d2].active_at == NOW + 13 and by_id[d1].active_at == NOW
    last = by_id[d2].last
    assert last is not None and (last.seq, last.body) == (4, "3")
    assert by_id[d1].peer == peer.id and by_id[d1].peer_nickname == peer.nickname
    assert by_id[d1].last is None and by_id[groups[0]].peer is None
    assert await store.conv_seqs(u.id) == {c.id: c.last_seq for c in convs}
    await store.leave_conv(d1, u.id, NOW)
    assert d1 not in await store.conv_seqs(u.id)


async def test_leave_closes_direct(store: Store) -> None:
    conv, a, b = await direct(store)
    assert await store.leave_conv(conv, a.id, NOW + 5)
    assert not await store.leave_conv(conv, a.id, NOW + 6)
    assert not await store.leave_conv(ConvId(uid("d")), a.id, NOW)
    assert not await store.is_member(conv, a.id) and await store.was_member(conv, a.id)
    assert await store.conv_members(conv) == [b.id]
    assert await store.user_convs(a.id) == []
    [sb] = await store.user_convs(b.id)
    assert sb.closed and sb.peer == a.id
    ctx = await store.send_context(conv, b.id)
    assert ctx is not None and ctx.closed and ctx.member


async def test_send_context(store: Store, backend: Backend) -> None:
    conv, a, b = await direct(store)
    assert await store.send_context(ConvId(uid("d")), a.id) is None
    ctx = await store.send_context(conv, a.id)
    assert ctx is not None
    assert (ctx.kind, ctx.closed, ctx.member, ctx.peer, ctx.peer_blocked_sender,
            ctx.muted_until) == ("direct", False, True, b.id, False, 0)
    await store.block(a.id, b.id, NOW)  # the sender blocking the peer is not the question
    ctx = await store.send_context(conv, a.id)
    assert ctx is not None and not ctx.peer_blocked_sender
    await store.block(b.id, a.id, NOW)
    ctx = await store.send_context(conv, a.id)
    assert ctx is not None and ctx.peer_blocked_sender
    # muted_until has no setter in the protocol yet: set the column directly.
    await backend.raw("UPDATE users SET muted_until=$1 WHERE id=$2", (NOW + 60_000, a.id))
    ctx = await store.send_context(conv, a.id)
    assert ctx is not None and ctx.muted_until == NOW + 60_000
    g = ConvId(uid("g:"))
    await new_user(store, ("t",), (g,))
    ctx = await store.send_context(g, a.id)
    assert ctx is not None
    assert (ctx.kind, ctx.closed, ctx.member, ctx.peer, ctx.peer_blocked_sender) == \
        ("group", False, False, None, False)


async def test_recent_pairs(store: Store) -> None:
    _, a, b = await direct(store)
    c, d = await new_user(store), await new_user(store)
    old = ConvId(uid("d"))
    await store.create_direct(old, a.id, c.id, NOW - 10)
    await store.create_direct(ConvId(uid("d")), c.id, d.id, NOW)
    await store.leave_conv(old, a.id, NOW)  # a former member still met them
    pair = tuple(sorted((a.id, b.id)))
    assert await store.recent_pairs([a.id], NOW) == {pair}
    assert await store.recent_pairs([a.id, b.id], NOW) == {pair}
    assert await store.recent_pairs([a.id], NOW - 10) == {pair, tuple(sorted((a.id, c.id)))}
    assert await store.recent_pairs([d.id], NOW + 1) == set()
    assert await store.recent_pairs([b.id], NOW + 1) == set()  # created at NOW: not since
    assert await store.recent_pairs([], 0) == set()


async def test_append_and_history(store: Store) -> None:
    conv, a, b = await direct(store)
    sent = []
    for i in range(5):
        r = await store.append_message(conv, uid("m"), (a, b)[i % 2].id, f"body {i}", NOW + i,
                                       None, i == 3)
        assert r.created and r.message.seq == i + 1
        sent.append(r.message)
    assert sent[0] == Message(conv, sent[0].id, 1, a.id, "body 0", NOW)
    assert await store.history(conv, 0, 100) == sent
    assert await store.history(conv, 0, 2) == sent[:2]
    assert await store.history(conv, 2, 2) == sent[2:4]
    assert await store.history(conv, 5, 10) == []
    assert await store.history(ConvId(uid("d")), 0, 10) == []
    [summary] = await store.user_convs(a.id)
    assert summary.last_seq == 5
    with pytest.raises(StoreError) as err:
        await store.append_message(ConvId(uid("d")), uid("m"), a.id, "x", NOW, None, False)
    assert not isinstance(err.value, DuplicateError)
    with pytest.raises(DuplicateError):
        await store.append_message(conv, sent[0].id, a.id, "same id", NOW, None, False)
    # Neither failure consumed a seq.
    r = await store.append_message(conv, uid("m"), a.id, "next", NOW, None, False)
    assert r.message.seq == 6


async def test_append_cid_idempotent(store: Store) -> None:
    conv, a, b = await direct(store)
    cid = uid("c")
    first = await store.append_message(conv, uid("m"), a.id, "hello", NOW, cid, False)
    retry = await store.append_message(conv, uid("m"), a.id, "hello again", NOW + 1, cid, False)
    assert first.created and not retry.created
    assert retry.message == first.message
    # The same cid from another sender is another message; no cid never deduplicates.
    other = await store.append_message(conv, uid("m"), b.id, "hi", NOW, cid, False)
    assert other.created and other.message.seq == 2
    n1 = await store.append_message(conv, uid("m"), a.id, "x", NOW, None, False)
    n2 = await store.append_message(conv, uid("m"), a.id, "x", NOW, None, False)
    assert (n1.message.seq, n2.message.seq) == (3, 4)
    assert [m.seq for m in await store.history(conv, 0, 10)] == [1, 2, 3, 4]


async def test_append_cid_race(store: Store) -> None:
    conv, a, _ = await direct(store)
    cid = uid("c")
    results = await asyncio.gather(*(
        store.append_message(conv, uid("m"), a.id, "once", NOW, cid, False) for _ in range(20)))
    assert sum(r.created for r in results) == 1
    assert {r.message for r in results} == {results[0].message}
    assert [m.seq for m in await store.history(conv, 0, 100)] == [1]


async def test_set_read(store: Store) -> None:
    conv, a, b = await direct(store)
    stranger = await new_user(store)
    for _ in range(3):
        await store.append_message(conv, uid("m"), b.id, "x", NOW, None, False)
    assert await store.set_read(conv, a.id, 2) == 2
    assert await store.set_read(conv, a.id, 1) == 2  # never backwards
    assert await store.set_read(conv, a.id, 99) == 3  # clamped to last_seq
    assert await store.set_read(conv, stranger.id, 2) == 0
    [summary] = await store.user_convs(a.id)
    assert summary.read_seq == 3
    [summary] = await store.user_convs(b.id)
    assert summary.read_seq == 0


async def test_blocks(store: Store) -> None:
    a, b, c = await new_user(store), await new_user(store), await new_user(store)
    assert await store.blocked_by(a.id) == set() and await store.blocks_of(b.id) == set()
    await store.block(a.id, b.id, NOW)
    await store.block(a.id, b.id, NOW + 1)  # idempotent
    await store.block(a.id, c.id, NOW)
    await store.block(c.id, b.id, NOW)
    assert await store.blocked_by(a.id) == {b.id, c.id}
    assert await store.blocks_of(b.id) == {a.id, c.id}
    await store.unblock(a.id, b.id)
    await store.unblock(a.id, b.id)  # idempotent too
    assert await store.blocked_by(a.id) == {c.id}
    assert await store.blocks_of(b.id) == {c.id}


async def test_concurrent_appends_two_nodes(store: Store, backend: Backend) -> None:
    """200 appends from 20 tasks over two store instances ("nodes"): seqs exactly 1..200."""
    conv, a, b = await direct(store)
    second = backend.make()
    await second.open()
    try:
        async def writer(node: Store, w: int) -> list[int]:
            seqs = []
            for i in range(10):
                r = await node.append_message(conv, uid("m"), (a, b)[w % 2].id, f"{w}.{i}", NOW,
                                              f"{w}.{i}", False)
                seqs.append(r.message.seq)
            return seqs

        per_task = await asyncio.gather(*(writer((store, second)[w % 2], w) for w in range(20)))
    finally:
        await second.close()
    seqs = [s for task in per_task for s in task]
    assert sorted(seqs) == list(range(1, 201))
    assert all(task == sorted(task) for task in per_task)  # each writer sees its own order
    history = await store.history(conv, 0, 500)
    assert [m.seq for m in history] == list(range(1, 201))
    [summary] = await store.user_convs(a.id)
    assert summary.last_seq == 200


async def test_unread_leaves_out_own_blocked_hidden_recalled(store: Store) -> None:
    tag = uid("")
    group = ConvId(f"g:{tag}")
    me = await new_user(store, ("x",), (group,))
    friend, pest = await new_user(store, ("x",), (group,)), await new_user(store, ("x",), (group,))

    async def say(who: str, body: str) -> Message:
        return (await store.append_message(group, uid("m"), UserId(who), body, NOW, None,
                                           False)).message

    await say(me.id, "mine")
    hidden = await say(friend.id, "hide me")
    recalled = await say(friend.id, "oops")
    await say(pest.id, "spam")
    seen = await say(friend.id, "hello")
    await store.block(me.id, pest.id, NOW)
    assert await store.hide_message(group, hidden.id, me.id) is not None
    assert not isinstance(await store.recall_message(group, recalled.id, friend.id, NOW, 1000),
                          str)
    [summary] = await store.user_convs(me.id)
    assert summary.unread == 1
    assert summary.last is not None and summary.last.id == seen.id
    await store.hide_message(group, seen.id, me.id)
    await say(pest.id, "more spam")  # the newest, but blocked: the preview skips it
    [summary] = await store.user_convs(me.id)
    assert summary.last is not None and summary.last.id == recalled.id
    assert summary.last.recalled and summary.last.body == ""
    # The friend hid nothing and blocked nobody: everyone else's messages count.
    [theirs] = await store.user_convs(friend.id)
    assert theirs.unread == 3  # mine, spam, more spam (recalled and own ones never count)


async def test_unread_is_capped(store: Store) -> None:
    conv, a, b = await direct(store)
    for i in range(UNREAD_CAP + 5):
        await store.append_message(conv, uid("m"), b.id, str(i), NOW, None, False)
    [summary] = await store.user_convs(a.id)
    assert summary.unread == UNREAD_CAP


async def test_recall(store: Store, backend: Backend) -> None:
    conv, a, b = await direct(store)
    msg = (await store.append_message(conv, uid("m"), a.id, "secret words", NOW, None,
                                      False)).message
    assert await store.recall_message(conv, msg.id, b.id, NOW + 1, 120_000) == "not_sender"
    assert await store.recall_message(conv, uid("m"), a.id, NOW + 1, 120_000) == "not_found"
    other, _, _ = await direct(store)
    assert await store.recall_message(other, msg.id, a.id, NOW + 1, 120_000) == "not_found"
    assert await store.recall_message(conv, msg.id, a.id, NOW + 120_001, 120_000) == "too_late"
    recalled = await store.recall_message(conv, msg.id, a.id, NOW + 120_000, 120_000)
    assert isinstance(recalled, Message)
    assert (recalled.seq, recalled.body, recalled.recalled) == (msg.seq, "", True)
    again = await store.recall_message(conv, msg.id, a.id, NOW + 999_999, 120_000)
    assert isinstance(again, Message) and again.recalled  # idempotent, even after the window
    [h] = await store.history(conv, 0, 10)
    assert h.recalled and h.body == "" and h.wire()["recalled"] is True
    assert [m.body for m in await store.messages_by(a.id)] == [""]


async def test_replies_quote_their_target(store: Store) -> None:
    conv, a, b = await direct(store)
    first = (await store.append_message(conv, uid("m"), a.id, "question?" * 20, NOW, None,
                                        False)).message
    reply = await store.send_message(conv, uid("m"), b.id, NOW, None, "answer", False,
                                     reply_to=first.id)
    assert isinstance(reply, AppendResult)
    quote = reply.message.wire()["quote"]
    assert reply.message.reply_to == first.id
    assert quote == {"id": first.id, "seq": 1, "from": a.id, "body": first.body[:QUOTE_CHARS]}
    other, x, _ = await direct(store)
    elsewhere = (await store.append_message(other, uid("m"), x.id, "x", NOW, None,
                                            False)).message
    for target in (elsewhere.id, uid("m")):  # another conversation's message, or none
        refused = await store.send_message(conv, uid("m"), b.id, NOW, None, "a", False,
                                           reply_to=target)
        assert refused == SendRefused("no_reply_target")
    await store.recall_message(conv, first.id, a.id, NOW, 1000)
    [_, h] = await store.history(conv, 0, 10)
    assert h.wire()["quote"] == {"id": first.id, "seq": 1, "from": a.id, "body": "",
                                 "recalled": True}


async def test_hides_are_per_user(store: Store) -> None:
    conv, a, b = await direct(store)
    m1 = (await store.append_message(conv, uid("m"), a.id, "1", NOW, None, False)).message
    await store.append_message(conv, uid("m"), a.id, "2", NOW, None, False)
    assert await store.hide_message(conv, uid("m"), b.id) is None
    hidden = await store.hide_message(conv, m1.id, b.id)
    assert hidden is not None and hidden.seq == 1
    assert await store.hide_message(conv, m1.id, b.id) is not None  # idempotent
    assert [m.seq for m in await store.history(conv, 0, 10, b.id)] == [2]
    assert [m.seq for m in await store.history(conv, 0, 10, a.id)] == [1, 2]
    assert [m.seq for m in await store.history(conv, 0, 10)] == [1, 2]


async def test_conv_mute_and_delivered_marks(store: Store) -> None:
    conv, a, b = await direct(store)
    for i in range(3):
        await store.append_message(conv, uid("m"), a.id, str(i), NOW, None, False)
    assert await store.set_conv_mute(conv, b.id, NOW + 60_000)
    assert not await store.set_conv_mute(ConvId(uid("d")), b.id, NOW)
    assert await store.mark_delivered([(conv, b.id, 2)]) == [(conv, b.id, 2)]
    # Lower or equal marks do not move it; a mark past the last seq is clamped.
    assert await store.mark_delivered([(conv, b.id, 1), (conv, b.id, 2)]) == []
    assert await store.mark_delivered([(conv, b.id, 99)]) == [(conv, b.id, 3)]
    await store.set_read(conv, b.id, 1)
    [sa] = await store.user_convs(a.id)
    [sb] = await store.user_convs(b.id)
    assert (sa.peer_delivered_seq, sa.peer_read_seq, sa.mute_until) == (3, 1, 0)
    assert sb.mute_until == NOW + 60_000
    assert await store.set_conv_mute(conv, b.id, 0)
    [sb] = await store.user_convs(b.id)
    assert sb.mute_until == 0
