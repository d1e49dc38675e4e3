from __future__ import annotations

import math
import random
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatd.matching import (
    Arrivals,
    MatchConfig,
    MatchPolicy,
    MetRecently,
    Pair,
    Prefs,
    RecentPairs,
    Seeker,
    UserId,
    tag_weights,
)

CFG = MatchConfig(strong_score=3.0, any_shared_after=10.0, random_after=30.0)
POLICY = MatchPolicy(CFG)
ANY = Prefs()
BUSY = CFG.hold_pool  # arrivals that make the queue busy: newcomers hold out for strong


def mk(
    uid: str,
    tags: Iterable[str] = (),
    since: float = 0.0,
    *,
    gender: str | None = "male",
    age: int | None = 25,
    prefs: Prefs = ANY,
    blocked: Iterable[str] = (),
) -> Seeker:
    return Seeker(
        UserId(uid),
        frozenset(tags),
        gender,
        age,
        prefs,
        since,
        frozenset(UserId(b) for b in blocked),
    )


def met_set(*pairs: tuple[str, str]) -> MetRecently:
    known = {frozenset(p) for p in pairs}
    return lambda a, b: frozenset((a, b)) in known


def partner(pairs: list[Pair], uid: str) -> str | None:
    for p in pairs:
        if p.a == uid:
            return p.b
        if p.b == uid:
            return p.a
    return None


# -- scoring ------------------------------------------------------------------------------


def test_prefers_more_shared_tags() -> None:
    x = mk("x", ["a", "b", "c"], since=0)
    one = mk("one", ["a", "z"], since=1)
    two = mk("two", ["a", "b", "y"], since=2)  # waited less, still preferred
    pairs = POLICY.pair_all([x, one, two], now=20.0, weights=dict.fromkeys("abcyz", 1.0))
    assert partner(pairs, "x") == "two"
    assert pairs[0] == Pair(UserId("x"), UserId("two"), ("a", "b"), 2.0, "strong")


def test_rare_tag_outweighs_common_tag() -> None:
    x = mk("x", ["common", "rare"], since=0)
    c = mk("c", ["common"], since=1)
    r = mk("r", ["rare"], since=2)
    # Global stats: everyone likes "common", almost nobody "rare".
    w = tag_weights([x, c, r], counts={"common": 1000, "rare": 1}, population=1000)
    assert w["rare"] > w["common"]
    pc = POLICY.compatible(x, c, 20.0, weights=w)
    pr = POLICY.compatible(x, r, 20.0, weights=w)
    assert pc is not None and pr is not None and pr.score > pc.score
    assert pr.level == "strong" and pc.level == "shared"  # a rare tag alone is strong
    assert partner(POLICY.pair_all([x, c, r], 20.0, weights=w), "x") == "r"
    # ...and so immediately, while in a busy queue the common tag alone is not enough yet.
    assert POLICY.compatible(x, r, 0.0, weights=w, arrivals=BUSY) is not None
    assert POLICY.compatible(x, c, 0.0, weights=w, arrivals=BUSY) is None
    assert POLICY.compatible(x, c, 0.0, weights=w) is not None  # a quiet queue: at once


def test_pool_weights_are_idf() -> None:
    pool = [mk(f"u{i}", ["pop"] + (["jazz"] if i == 0 else [])) for i in range(9)]
    w = tag_weights(pool)
    assert w["jazz"] == pytest.approx(math.log1p(9 / 2))
    assert w["pop"] == pytest.approx(math.log1p(9 / 10))


def test_tie_goes_to_longest_waiting() -> None:
    x = mk("x", ["a", "b"], since=0)
    later = mk("later", ["a", "b"], since=5)
    earlier = mk("earlier", ["a", "b"], since=3)
    assert partner(POLICY.pair_all([x, later, earlier], now=6.0), "x") == "earlier"


# -- hard constraints ---------------------------------------------------------------------


def test_gender_prefs_both_ways() -> None:
    wants_f = Prefs(genders=frozenset({"female"}))
    m = mk("m", ["a", "b"], gender="male", prefs=wants_f)
    f = mk("f", ["a", "b"], gender="female")
    f_wants_f = mk("ff", ["a", "b"], gender="female", prefs=wants_f)
    assert POLICY.compatible(m, f, 0.0) is not None
    # One-sided mismatch refuses, whichever side is asked first.
    assert POLICY.compatible(m, f_wants_f, 0.0) is None
    assert POLICY.compatible(f_wants_f, m, 0.0) is None
    # Unknown gender never satisfies a gender preference.
    assert POLICY.compatible(m, mk("u", ["a", "b"], gender=None), 0.0) is None


def test_age_prefs_both_ways() -> None:
    young = Prefs(age_min=18, age_max=25)
    x = mk("x", ["a", "b"], age=22, prefs=young)
    assert POLICY.compatible(x, mk("y", ["a", "b"], age=25), 0.0) is not None
    assert POLICY.compatible(x, mk("y", ["a", "b"], age=26), 0.0) is None
    assert POLICY.compatible(x, mk("y", ["a", "b"], age=None), 0.0) is None
    # y's own range excludes x (22): refused even though x accepts y.
    picky = mk("y", ["a", "b"], age=24, prefs=Prefs(age_min=30))
    assert POLICY.compatible(x, picky, 0.0) is None
    assert POLICY.compatible(picky, x, 0.0) is None


@pytest.mark.parametrize("who_blocks", ["x", "y"])
def test_blocks_either_direction(who_blocks: str) -> None:
    x = mk("x", ["a", "b"], blocked=["y"] if who_blocks == "x" else [])
    y = mk("y", ["a", "b"], blocked=["x"] if who_blocks == "y" else [])
    z = mk("z", ["a"], since=1)
    assert POLICY.compatible(x, y, 100.0) is None
    assert POLICY.compatible(y, x, 100.0) is None
    assert [p for p in POLICY.pair_all([x, y], 100.0)] == []
    # x falls back to a worse but allowed partner.
    assert partner(POLICY.pair_all([x, y, z], 100.0), "x") == "z"


def test_recent_pair_avoided() -> None:
    x = mk("x", ["a", "b"], since=0)
    y = mk("y", ["a", "b"], since=1)
    z = mk("z", ["a", "b"], since=2)
    met = met_set(("y", "x"))
    assert POLICY.compatible(x, y, 5.0, met) is None
    assert POLICY.compatible(y, x, 5.0, met) is None
    pairs = POLICY.pair_all([x, y, z], 100.0, met)
    assert partner(pairs, "x") == "z" and partner(pairs, "y") is None


def test_met_recently_gets_sorted_ids() -> None:
    calls: list[tuple[str, str]] = []

    def spy(a: UserId, b: UserId) -> bool:
        calls.append((a, b))
        return False

    POLICY.compatible(mk("zed", ["a", "b"]), mk("amy", ["a", "b"]), 0.0, spy)
    assert calls == [("amy", "zed")]


def test_self_and_duplicates() -> None:
    x = mk("x", ["a", "b"])
    assert POLICY.compatible(x, x, 0.0) is None
    with pytest.raises(ValueError, match="duplicate"):
        POLICY.pair_all([x, mk("x", ["a", "b"], since=3)], 0.0)


def test_recent_pairs_window() -> None:
    rp = RecentPairs(window=CFG.recent_pair_window)
    assert CFG.recent_pair_window == 24 * 3600
    a, b, c = UserId("a"), UserId("b"), UserId("c")
    rp.record(a, b, at=100.0)
    assert rp.met(b, a, 100.0 + 3600)
    assert not rp.met(a, c, 200.0)
    assert not rp.met(a, b, 100.0 + 24 * 3600)
    pred = rp.predicate(200.0)
    assert pred(a, b) and not pred(b, c)
    rp.record(a, c, at=50_000.0)
    rp.record(b, a, at=60_000.0)  # re-record: the later time wins
    assert rp.prune(100.0 + 24 * 3600) == 0 and len(rp) == 2
    assert rp.prune(60_000.0 + 24 * 3600) == 2 and len(rp) == 0


# -- widening with time ------------------------------------------------------------------


def test_no_shared_tag_pairs_only_after_random_after() -> None:
    x = mk("x", ["a"], since=0.0)
    y = mk("y", ["b"], since=0.0)
    for now in (0.0, 10.0, 29.9):
        assert POLICY.compatible(x, y, now) is None
        assert POLICY.pair_all([x, y], now) == []
    p = POLICY.compatible(x, y, 30.0)
    assert p is not None and p.level == "random" and p.shared == () and p.score == 0
    assert POLICY.pair_all([x, y], 30.0) == [p]


def test_busy_queue_one_shared_tag_pairs_only_after_any_shared_after() -> None:
    x = mk("x", ["a", "b"], since=0.0)
    y = mk("y", ["a", "c"], since=0.0)
    w = dict.fromkeys("abc", 1.0)  # below strong_score
    assert POLICY.compatible(x, y, 9.9, weights=w, arrivals=BUSY) is None
    assert POLICY.pair_all([x, y], 9.9, weights=w, arrivals=BUSY) == []
    p = POLICY.compatible(x, y, 10.0, weights=w, arrivals=BUSY)
    assert p is not None and p.level == "shared" and p.shared == ("a",)
    assert POLICY.pair_all([x, y], 10.0, weights=w, arrivals=BUSY) == [p]


def test_two_shared_tags_pair_immediately() -> None:
    p = POLICY.compatible(mk("x", ["a", "b", "c"]), mk("y", ["b", "a"]), 0.0)
    assert p is not None and p.level == "strong" and p.shared == ("a", "b")


def test_stricter_requirement_of_the_two_applies() -> None:
    old = mk("old", ["a"], since=0.0)
    new = mk("new", ["b"], since=95.0)
    # old waited 100 s (random level), new only 5 s: new's requirement wins.
    assert POLICY.required_level(old, 100.0) == "random"
    assert POLICY.required_level(new, 100.0) == "shared"
    assert POLICY.required_level(new, 100.0, arrivals=BUSY) == "strong"
    assert POLICY.compatible(old, new, 100.0) is None
    assert POLICY.compatible(old, new, 125.0) is not None


def test_next_widening() -> None:
    s = mk("x", since=100.0)
    assert POLICY.next_widening(s, 100.0, arrivals=BUSY) == 110.0
    assert POLICY.next_widening(s, 115.0, arrivals=BUSY) == 130.0
    assert POLICY.next_widening(s, 100.0) == 130.0  # quiet: no hold-out to end
    assert POLICY.next_widening(s, 130.0) is None
    never = MatchPolicy(MatchConfig(random_after=math.inf))
    assert never.next_widening(s, 115.0) is None
    assert never.next_widening(s, 100.0, arrivals=BUSY) == 103.0
    assert never.required_level(s, 1e12) == "shared"


# -- quiet queue: at once; busy queue: a short hold-out for a strong pair -----------------

DEFAULT = MatchPolicy()  # the shipped defaults


def test_small_pool_one_shared_tag_pairs_at_once() -> None:
    """Issue 14: two new users, one identical tag, nobody else: matched in the first round."""
    x = mk("x", ["music.rock"], since=100.0)
    y = mk("y", ["music.rock"], since=100.2)
    assert DEFAULT.arrivals([x, y], 100.2) == 2 and not DEFAULT.busy(2)
    [p] = DEFAULT.pair_all([x, y], now=100.2)
    assert (p.a, p.b, p.shared, p.level) == ("x", "y", ("music.rock",), "shared")
    assert DEFAULT.compatible(x, y, 100.2, weights=tag_weights([x, y])) == p


def test_quiet_queue_still_prefers_a_strong_partner() -> None:
    x = mk("x", ["a", "b"], since=0.0)
    weak = mk("weak", ["a"], since=0.1)  # waited longer than strong, still second choice
    strong = mk("strong", ["a", "b"], since=0.2)
    pairs = DEFAULT.pair_all([x, weak, strong], now=0.3)
    assert partner(pairs, "x") == "strong" and partner(pairs, "weak") is None


def big_pool(n: int, since: float = 0.0) -> list[Seeker]:
    """``n`` newcomers who all share one common tag and nothing else: only "shared" pairs."""
    return [mk(f"u{i:04d}", ["pop", f"own{i}"], since=since) for i in range(n)]


def test_big_pool_holds_out_for_strong_for_the_configured_time() -> None:
    cfg = DEFAULT.config
    pool = big_pool(cfg.hold_pool)
    assert DEFAULT.busy(DEFAULT.arrivals(pool, 0.0))
    hold = cfg.any_shared_after
    assert DEFAULT.pair_all(pool, now=hold - 0.01) == []  # everyone holds out
    pairs = DEFAULT.pair_all(pool, now=hold)  # the hold-out is over: any shared tag
    assert len(pairs) == cfg.hold_pool // 2 and {p.level for p in pairs} == {"shared"}
    # One user fewer and the queue is quiet: the same pool pairs at once.
    assert len(DEFAULT.pair_all(pool[1:], now=0.0)) == (cfg.hold_pool - 1) // 2


def test_big_pool_pairs_a_strong_pair_at_once() -> None:
    pool = big_pool(DEFAULT.config.hold_pool)
    x = mk("x", ["pop", "rare1", "rare2"], since=0.0)
    y = mk("y", ["rare1", "rare2"], since=0.0)
    pairs = DEFAULT.pair_all([*pool, x, y], now=0.0)
    assert [(p.a, p.b, p.level) for p in pairs] == [("x", "y", "strong")]


def test_matched_users_keep_the_queue_busy() -> None:
    """The hold-out depends on arrivals, not on who is still waiting: users matched during
    the window still count (else one burst's leftovers decide)."""
    arrivals = Arrivals(window=DEFAULT.config.any_shared_after)
    x = mk("x", ["pop"], since=10.0)
    y = mk("y", ["pop"], since=10.5)
    for k in range(DEFAULT.config.hold_pool - 2):
        arrivals.matched(9.0 + k / 1000)
    busy = arrivals.count([x, y], 11.0)
    assert busy == DEFAULT.config.hold_pool
    assert DEFAULT.pair_all([x, y], 11.0, arrivals=busy) == []
    # Three seconds after the matched users arrived, they no longer count.
    quiet = arrivals.count([x, y], 12.5)
    assert quiet == 2 and len(DEFAULT.pair_all([x, y], 12.5, arrivals=quiet)) == 1


def test_arrivals_window() -> None:
    a = Arrivals(window=3.0)
    for since in (5.0, 1.0, 3.0):  # recorded in any order
        a.matched(since)
    waiting = [mk("w1", since=2.0), mk("w2", since=5.5)]
    assert a.count(waiting, 5.9) == 3  # 3.0, 5.0 matched; w2 waiting (1.0 and w1: too old)
    assert a.count(waiting, 8.0) == 1  # only w2 (5.0 dropped at exactly 3 s)
    assert a.count([], 100.0) == 0


@pytest.mark.parametrize("arrivals", [0, BUSY])
def test_random_fallback_still_waits(arrivals: int) -> None:
    x = mk("x", ["a"], since=0.0)
    y = mk("y", ["b"], since=0.0)
    assert POLICY.pair_all([x, y], 29.9, arrivals=arrivals) == []
    [p] = POLICY.pair_all([x, y], 30.0, arrivals=arrivals)
    assert p.level == "random"


def test_quiet_queue_honours_blocks_prefs_and_recent_pairs() -> None:
    """Pairing at once changes nothing about who may be paired."""
    x = mk("x", ["pop"], since=0.0, blocked=["y"])
    y = mk("y", ["pop"], since=0.0)
    assert DEFAULT.pair_all([x, y], 0.0) == []
    f = mk("f", ["pop"], gender="female", prefs=Prefs(genders=frozenset({"female"})))
    m = mk("m", ["pop"], gender="male")
    assert DEFAULT.pair_all([f, m], 0.0) == []
    a, b = mk("a", ["pop"]), mk("b", ["pop"])
    assert DEFAULT.pair_all([a, b], 0.0, met_set(("a", "b"))) == []
    assert len(DEFAULT.pair_all([a, b], 0.0)) == 1


# -- pool behaviour ----------------------------------------------------------------------


def test_each_user_in_at_most_one_pair() -> None:
    pool = [mk(f"u{i}", ["a", "b"], since=float(i)) for i in range(5)]
    pairs = POLICY.pair_all(pool, 10.0)
    assert [(p.a, p.b) for p in pairs] == [("u0", "u1"), ("u2", "u3")]


def random_pool(n: int, seed: int, ntags: int = 20) -> list[Seeker]:
    rng = random.Random(seed)
    tags = [f"t{k}" for k in range(ntags)]
    out = []
    for i in range(n):
        prefs = ANY
        if rng.random() < 0.3:
            prefs = Prefs(genders=frozenset(rng.sample(["male", "female", "other"], 2)))
        elif rng.random() < 0.2:
            prefs = Prefs(age_min=20, age_max=35)
        out.append(
            mk(
                f"u{i}",
                rng.sample(tags, rng.randint(1, 5)),
                since=float(rng.randint(0, 40)),
                gender=rng.choice(["male", "female", "other"]),
                age=rng.randint(18, 50),
                prefs=prefs,
                blocked=[f"u{rng.randrange(n)}"] if rng.random() < 0.1 else [],
            )
        )
    return out


def test_deterministic_and_order_independent() -> None:
    pool = random_pool(300, seed=7)
    first = POLICY.pair_all(pool, now=45.0)
    assert first and first == POLICY.pair_all(pool, now=45.0)
    shuffled = pool[:]
    random.Random(1).shuffle(shuffled)
    assert POLICY.pair_all(shuffled, now=45.0) == first


def test_larger_pool_invariants() -> None:
    pool = random_pool(2000, seed=3, ntags=40)
    w = tag_weights(pool)
    pairs = POLICY.pair_all(pool, now=45.0)
    ids = [u for p in pairs for u in (p.a, p.b)]
    assert len(ids) == len(set(ids)) and len(pairs) > 600
    by_id = {s.user_id: s for s in pool}
    arrivals = POLICY.arrivals(pool, 45.0)
    assert arrivals >= BUSY  # ~12% of 2000 arrived within 10 s: the hold-out is on
    for p in pairs:
        assert POLICY.compatible(by_id[p.a], by_id[p.b], 45.0, weights=w,
                                 arrivals=arrivals) == p


# -- Prefs parsing -----------------------------------------------------------------------


def test_prefs_from_wire_ok() -> None:
    assert Prefs.from_wire(None) == Prefs()
    assert Prefs.from_wire({}) == Prefs()
    assert Prefs.from_wire({"gender": "female"}) == Prefs(genders=frozenset({"female"}))
    p = Prefs.from_wire({"gender": ["male", "female"], "age_min": 20, "age_max": 30})
    assert p == Prefs(frozenset({"male", "female"}), 20, 30)
    assert Prefs.from_wire(p.to_wire()) == p
    assert Prefs.from_wire({"age_min": 18, "age_max": 18}).age_max == 18


@pytest.mark.parametrize(
    ("wire", "match"),
    [
        ([], "must be an object"),
        ("female", "must be an object"),
        ({"gender": "robot"}, "unknown 'robot'"),
        ({"gender": []}, "at least one"),
        ({"gender": ["male", 3]}, "string or a list"),
        ({"gender": {"male": 1}}, "string or a list"),
        ({"age_min": 17}, "between 18 and 120"),
        ({"age_max": 121}, "between 18 and 120"),
        ({"age_min": "20"}, "must be an integer"),
        ({"age_min": 20.5}, "must be an integer"),
        ({"age_max": True}, "must be an integer"),
        ({"age_min": 40, "age_max": 30}, "exceeds"),
        ({"genders": "male"}, "unknown keys 'genders'"),
    ],
)
def test_prefs_from_wire_rejects(wire: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Prefs.from_wire(wire)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"strong_score": 0.0},
        {"strong_min_shared": 0},
        {"any_shared_after": 40.0, "random_after": 30.0},
        {"any_shared_after": -1.0},
        {"candidate_limit": 0},
        {"random_scan_limit": 0},
        {"recent_pair_hours": -1.0},
        {"hold_pool": -1},
    ],
)
def test_config_validation(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        MatchConfig(**kwargs)  # type: ignore[arg-type]


# -- properties --------------------------------------------------------------------------

GENDER_OPTS = ["male", "female", "other"]


@st.composite
def pools(draw: st.DrawFn) -> tuple[list[Seeker], set[frozenset[str]]]:
    n = draw(st.integers(0, 24))
    ids = [f"u{i}" for i in range(n)]
    tag_st = st.frozensets(st.sampled_from([f"t{k}" for k in range(6)]), max_size=4)
    genders_st = st.none() | st.frozensets(st.sampled_from(GENDER_OPTS), min_size=1)
    age_st = st.integers(18, 60)
    seekers = []
    for uid in ids:
        lo, hi = sorted((draw(age_st), draw(age_st)))
        prefs = Prefs(
            genders=draw(genders_st),
            age_min=draw(st.none() | st.just(lo)),
            age_max=draw(st.none() | st.just(hi)),
        )
        seekers.append(
            mk(
                uid,
                draw(tag_st),
                since=draw(st.floats(0, 60)),
                gender=draw(st.none() | st.sampled_from(GENDER_OPTS)),
                age=draw(st.none() | age_st),
                prefs=prefs,
                blocked=draw(st.frozensets(st.sampled_from(ids), max_size=3)) if ids else (),
            )
        )
    met: set[frozenset[str]] = set()
    if n >= 2:
        for a, b in draw(st.lists(st.tuples(st.sampled_from(ids), st.sampled_from(ids)))):
            met.add(frozenset((a, b)))
    return seekers, met


configs = st.builds(
    MatchConfig,
    strong_score=st.sampled_from([0.5, 1.0, 3.0]),
    strong_min_shared=st.integers(1, 3),
    any_shared_after=st.just(10.0),
    hold_pool=st.sampled_from([0, 3, 1000]),
    random_after=st.sampled_from([10.0, 30.0, math.inf]),
    candidate_limit=st.integers(1, 4),
    random_scan_limit=st.integers(1, 4),
)


@settings(max_examples=200, deadline=None)
@given(pools(), configs, st.floats(0, 100))
def test_pair_all_properties(
    pool_met: tuple[list[Seeker], set[frozenset[str]]], cfg: MatchConfig, now: float
) -> None:
    pool, met = pool_met
    policy = MatchPolicy(cfg)

    def met_recently(a: UserId, b: UserId) -> bool:
        return frozenset((a, b)) in met

    w = tag_weights(pool)
    pairs = policy.pair_all(pool, now, met_recently)
    arrivals = policy.arrivals(pool, now)  # what pair_all counts by default
    ids = [u for p in pairs for u in (p.a, p.b)]
    assert len(ids) == len(set(ids))
    by_id = {s.user_id: s for s in pool}
    for p in pairs:
        x, y = by_id[p.a], by_id[p.b]
        assert y.user_id not in x.blocked and x.user_id not in y.blocked
        assert frozenset((p.a, p.b)) not in met
        assert x.prefs.accepts(y.gender, y.age) and y.prefs.accepts(x.gender, x.age)
        assert (x.since, x.user_id) < (y.since, y.user_id)  # a is the longer waiter
        # Acceptable both ways, with identical reasons.
        assert policy.compatible(x, y, now, met_recently, w, arrivals) == p
        back = policy.compatible(y, x, now, met_recently, w, arrivals)
        assert back is not None and (back.shared, back.score, back.level) == (
            p.shared,
            p.score,
            p.level,
        )


@settings(max_examples=120, deadline=None)
@given(pools(), configs, st.floats(0, 100))
def test_pair_all_is_maximal_without_caps(
    pool_met: tuple[list[Seeker], set[frozenset[str]]], cfg: MatchConfig, now: float
) -> None:
    """With unbounded candidate lists, no two users left over could have been paired."""
    pool, met = pool_met
    policy = MatchPolicy(
        MatchConfig(
            strong_score=cfg.strong_score,
            strong_min_shared=cfg.strong_min_shared,
            any_shared_after=cfg.any_shared_after,
            hold_pool=cfg.hold_pool,
            random_after=cfg.random_after,
            candidate_limit=10**9,
            random_scan_limit=10**9,
        )
    )

    def met_recently(a: UserId, b: UserId) -> bool:
        return frozenset((a, b)) in met

    w = tag_weights(pool)
    pairs = policy.pair_all(pool, now, met_recently)
    arrivals = policy.arrivals(pool, now)
    used = {u for p in pairs for u in (p.a, p.b)}
    left = [s for s in pool if s.user_id not in used]
    for i, x in enumerate(left):
        for y in left[i + 1 :]:
            assert policy.compatible(x, y, now, met_recently, w, arrivals) is None


def test_verified_only_prefs_accept_only_verified_partners() -> None:
    picky = Prefs.from_wire({"verified": True})
    assert picky.to_wire() == {"verified": True} and Prefs.from_wire(picky.to_wire()) == picky
    with pytest.raises(ValueError, match="verified"):
        Prefs.from_wire({"verified": "yes"})
    policy = MatchPolicy(MatchConfig())
    a = mk("a", ["t1", "t2"], prefs=picky)
    plain = mk("b", ["t1", "t2"])
    checked = Seeker(UserId("c"), frozenset({"t1", "t2"}), "male", 25, ANY, 0.0, verified=True)
    assert policy.compatible(a, plain, 0.0) is None
    assert policy.compatible(a, checked, 0.0) is not None
    # With an unverified user in the pool too, a is paired with the verified one only.
    for p in policy.pair_all([a, plain, checked], 0.0):
        assert "a" not in (p.a, p.b) or {p.a, p.b} == {"a", "c"}
    pairs = policy.pair_all([a, checked], 0.0)
    assert len(pairs) == 1 and {pairs[0].a, pairs[0].b} == {"a", "c"}
