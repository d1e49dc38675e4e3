"""Who sees what of whom: presence, blocks among waiting users, history and unread counts
with the reader's blocks."""

from __future__ import annotations

from chatd.store import ConvId, Store, UserId
from tests.store.support import NOW, direct, new_user, uid


async def test_presence_visible_needs_a_shared_conversation_and_no_block(store: Store) -> None:
    group = uid("g:")
    conv, me, peer = await direct(store)
    mate = await new_user(store, ("x",), (group,))
    blocker = await new_user(store, ("x",), (group,))
    blocked = await new_user(store, ("x",), (group,))
    stranger = await new_user(store)
    await store.update_profile(me.id, None, None, ("x",), [ConvId(group)])
    await store.block(blocker.id, me.id, NOW)
    await store.block(me.id, blocked.id, NOW)
    asked = [peer.id, mate.id, blocker.id, blocked.id, stranger.id, uid()]
    assert await store.presence_visible(me.id, asked) == {peer.id, mate.id}
    # A closed 1:1 is not a current conversation; leaving the group ends it too.
    await store.leave_conv(conv, peer.id, NOW)
    await store.update_profile(mate.id, None, None, ("y",), [])
    assert await store.presence_visible(me.id, asked) == set()
    assert await store.presence_visible(me.id, []) == set()


async def test_blocks_among(store: Store) -> None:
    a, b, c = [await new_user(store) for _ in range(3)]
    await store.block(a.id, b.id, NOW)
    await store.block(c.id, a.id, NOW)
    assert await store.blocks_among([a.id, b.id]) == {(a.id, b.id)}
    assert await store.blocks_among([a.id, b.id, c.id]) == {(a.id, b.id), (c.id, a.id)}
    assert await store.blocks_among([b.id, c.id]) == set()


async def test_history_and_unread_leave_out_blocked_senders(store: Store) -> None:
    group = ConvId(uid("g:"))
    me = await new_user(store, ("x",), (group,))
    friend = await new_user(store, ("x",), (group,))
    pest = await new_user(store, ("x",), (group,))
    for i, sender in enumerate([friend, pest, pest, friend, pest]):
        await store.append_message(group, uid("m"), sender.id, str(i), NOW, None, False)
    await store.block(me.id, pest.id, NOW)
    assert [m.body for m in await store.history(group, 0, 10, me.id, True)] == ["0", "3"]
    # Left out before the limit, so pages stay full; without a viewer, everything.
    assert [m.body for m in await store.history(group, 0, 1, me.id, True)] == ["0"]
    assert [m.body for m in await store.history(group, 1, 1, me.id, True)] == ["3"]
    assert len(await store.history(group, 0, 10)) == 5
    assert len(await store.history(group, 0, 10, me.id)) == 5  # 1:1 views keep them
    [summary] = [c for c in await store.user_convs(me.id) if c.id == group]
    assert (summary.last_seq, summary.unread) == (5, 2)
    await store.set_read(group, me.id, 2)
    [summary] = [c for c in await store.user_convs(me.id) if c.id == group]
    assert summary.unread == 1
    [theirs] = [c for c in await store.user_convs(friend.id) if c.id == group]
    assert theirs.unread == 3  # the pest's: their own never count


async def test_contacts_are_peers_of_open_one_to_ones_without_blocks(store: Store) -> None:
    group = ConvId(uid("g:"))
    conv, me, peer = await direct(store)
    _, elsewhere, left = await direct(store)  # left also has an open 1:1 with elsewhere
    blocker, blocked, mate = [await new_user(store, ("x",), (group,)) for _ in range(3)]
    await store.update_profile(me.id, None, None, ("x",), [group])
    for other in (blocker, blocked):
        await store.create_direct(ConvId(uid("d")), me.id, other.id, NOW)
    ended = ConvId(uid("d"))
    await store.create_direct(ended, me.id, left.id, NOW)
    await store.leave_conv(ended, left.id, NOW)
    await store.block(blocker.id, me.id, NOW)
    await store.block(me.id, blocked.id, NOW)
    # Only an open 1:1 counts: not a group co-member, not a block either way, not a closed 1:1.
    assert await store.contacts_of(me.id) == {peer.id}
    assert await store.contacts_of(peer.id) == {me.id}
    assert await store.contacts_of(left.id) == {elsewhere.id}
    assert await store.contacts_of(mate.id) == set()
    assert await store.contacts_of(blocker.id) == set()
    assert await store.contacts_of(UserId(uid())) == set()
    await store.unblock(me.id, blocked.id)
    assert await store.contacts_of(me.id) == {peer.id, blocked.id}
    await store.leave_conv(conv, me.id, NOW)
    assert await store.contacts_of(me.id) == {blocked.id}
    assert await store.contacts_of(peer.id) == set()
