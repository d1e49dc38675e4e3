"""Pairing decisions for 1:1 interest matching: pure, deterministic, clock injected.

Contract overview
-----------------
* A pair is *allowed* only if both users' ``Prefs`` accept the other (gender and age),
  neither blocked the other, and they have not met recently (caller's predicate).
* Each allowed pair has a *level* describing what it achieved:
  ``"strong"`` (weighted score >= ``strong_score`` or >= ``strong_min_shared`` shared tags),
  ``"shared"`` (at least one shared tag) or ``"random"`` (nothing shared).
* Each user has a *required* level from their own wait time and how busy the queue is.
  The queue is *busy* when at least ``hold_pool`` users entered it during the last
  ``any_shared_after`` seconds (matched since or still waiting: the caller counts them,
  see ``Arrivals``). In a busy queue a newcomer holds out for ``"strong"`` during their
  first ``any_shared_after`` seconds; in a quieter one any shared tag (``"shared"``) is
  enough at once. Both widen to ``"random"`` after ``random_after``.
  Why: waiting for a strong pair only pays when one is likely to turn up meanwhile,
  i.e. when many newcomers arrive during the hold-out; two users alone are matched at
  once. Why arrivals and not the size of the waiting pool: the hold-out itself keeps
  people waiting, so a pool-size rule keeps itself on once a burst trips it (simulated:
  after a burst of 300, a rule of 32 waiting users held out for good at 50 arrivals/s,
  p90 wait 3 s instead of 0.5 s). Arrivals do not depend on the policy.
* A pair is acceptable when its level satisfies the STRICTER of the two requirements.
  So a newcomer is never dragged into a weak match just because the other side has
  waited long. Trade-off: an old waiter whose only candidates are newcomers keeps
  waiting until those newcomers widen too (at most ``random_after`` more seconds).
* Tag weights are IDF-like, ``log(1 + N / (1 + count))``: a shared rare tag outweighs
  a shared common one. ``pair_all`` ranks a seeker's partners by level, then score,
  then wait (longest first).

Times are float seconds from any monotonic clock; the policy never reads a clock.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from chatd.ids import UserId

__all__ = [
    "AGE_MAX",
    "AGE_MIN",
    "GENDERS",
    "PAIR_INDEX_TAGS",
    "Arrivals",
    "Level",
    "MatchConfig",
    "MatchPolicy",
    "MetRecently",
    "Pair",
    "Prefs",
    "RecentPairs",
    "Seeker",
    "UserId",
    "never_met",
    "tag_weights",
]

Level = Literal["strong", "shared", "random"]
MetRecently = Callable[[UserId, UserId], bool]

GENDERS: frozenset[str] = frozenset({"male", "female", "other"})
AGE_MIN = 18
AGE_MAX = 120

# Higher = stricter; a pair's level must be at least each side's requirement.
_STRICTNESS: dict[Level, int] = {"random": 0, "shared": 1, "strong": 2}
_PREF_KEYS = frozenset({"gender", "age_min", "age_max", "verified"})


def never_met(a: UserId, b: UserId) -> bool:
    """Default ``met_recently`` predicate: no pair history."""
    return False


def _check_age(name: str, value: object) -> int | None:
    if value is None:
        return None
    # bool is an int subclass; True must not read as age 1.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"prefs.{name} must be an integer, got {value!r}")
    if not AGE_MIN <= value <= AGE_MAX:
        raise ValueError(f"prefs.{name} must be between {AGE_MIN} and {AGE_MAX}, got {value}")
    return value


@dataclass(frozen=True)
class Prefs:
    """What a seeker accepts in a partner; ``None`` means no restriction.

    Invariants (checked, ``ValueError``): ``genders`` non-empty subset of ``GENDERS``;
    ages in ``AGE_MIN..AGE_MAX``; ``age_min <= age_max``.
    """

    genders: frozenset[str] | None = None
    age_min: int | None = None
    age_max: int | None = None
    verified: bool = False  # only partners whose account passed verification

    def __post_init__(self) -> None:
        if self.genders is not None:
            if not self.genders:
                raise ValueError("prefs.gender must name at least one gender")
            bad = sorted(map(repr, self.genders - GENDERS))
            if bad:
                raise ValueError(
                    f"prefs.gender: unknown {', '.join(bad)} (allowed: male, female, other)"
                )
        _check_age("age_min", self.age_min)
        _check_age("age_max", self.age_max)
        if self.age_min is not None and self.age_max is not None and self.age_min > self.age_max:
            raise ValueError(f"prefs.age_min {self.age_min} exceeds age_max {self.age_max}")

    @classmethod
    def from_wire(cls, obj: object) -> Prefs:
        """Parse untrusted client input ``{"gender": ..., "age_min": int, "age_max": int}``.

        ``gender`` is one gender string or a list of them; every key is optional and
        ``None``/missing prefs mean "anyone". Raises ``ValueError`` with a message fit
        for the client on anything else (unknown keys, wrong types, out-of-range ages).
        """
        if obj is None or obj == {}:
            return _ANYONE  # immutable: one shared instance for the common case
        if not isinstance(obj, dict):
            raise ValueError("prefs must be an object")
        unknown = sorted(repr(k) for k in obj if k not in _PREF_KEYS)
        if unknown:
            raise ValueError(f"prefs: unknown keys {', '.join(unknown)}")
        gender = obj.get("gender")
        genders: frozenset[str] | None
        if gender is None:
            genders = None
        elif isinstance(gender, str):
            genders = frozenset({gender})
        elif isinstance(gender, list) and all(isinstance(g, str) for g in gender):
            genders = frozenset(gender)
        else:
            raise ValueError("prefs.gender must be a string or a list of strings")
        verified = obj.get("verified", False)
        if not isinstance(verified, bool):
            raise ValueError("prefs.verified must be true or false")
        return cls(
            genders=genders,
            age_min=_check_age("age_min", obj.get("age_min")),
            age_max=_check_age("age_max", obj.get("age_max")),
            verified=verified,
        )

    def to_wire(self) -> dict[str, object]:
        """Inverse of ``from_wire`` (genders sorted; unset keys omitted)."""
        out: dict[str, object] = {}
        if self.genders is not None:
            out["gender"] = sorted(self.genders)
        if self.age_min is not None:
            out["age_min"] = self.age_min
        if self.age_max is not None:
            out["age_max"] = self.age_max
        if self.verified:
            out["verified"] = True
        return out

    def accepts(self, gender: str | None, age: int | None, verified: bool = False) -> bool:
        """Whether a partner with this gender/age (and verification) is acceptable.

        An unknown (``None``) gender or age never satisfies a restriction on it.
        """
        if self.verified and not verified:
            return False
        if self.genders is not None and (gender is None or gender not in self.genders):
            return False
        if self.age_min is not None and (age is None or age < self.age_min):
            return False
        return not (self.age_max is not None and (age is None or age > self.age_max))


_ANYONE = Prefs()


@dataclass(frozen=True)
class Seeker:
    """A user waiting for a 1:1 match. ``since`` is when they started waiting.

    ``blocked`` holds the ids this user blocked; blocks are honoured in both directions.
    ``nickname`` and ``avatar`` are what the partner is shown (as of joining the queue);
    the policy ignores them.
    """

    user_id: UserId
    tags: frozenset[str]
    gender: str | None
    age: int | None
    prefs: Prefs
    since: float
    blocked: frozenset[UserId] = frozenset()
    verified: bool = False  # the account passed the operator's verification
    nickname: str = ""
    avatar: str = ""  # a media id, "" for none


@dataclass(frozen=True)
class MatchConfig:
    """Tunables. Times in seconds; ``random_after=math.inf`` disables random pairs.

    ``any_shared_after`` is the hold-out for a strong pair and ``hold_pool`` the arrivals
    (within one hold-out) from which it applies; ``hold_pool=0`` always holds out.
    Defaults, 3 s and 200 (about 67 arrivals/s), from a simulation of 56 tags drawn by a
    Zipf law, 1-3 per user: at 50 arrivals/s the quiet queue holds about a dozen users,
    matches with median 0.04 s and p90 0.5 s, and holding out would raise p90 to the
    full 3 s; at 100/s and more a hold-out of 3 s turns most pairs (~80%) strong.

    A pair is ``"strong"`` when it shares ``strong_min_shared`` tags or its weighted
    score reaches ``strong_score`` (with pool weights, 3.0 means one shared tag held by
    under ~5% of the pool counts as strong). ``recent_pair_hours`` is for the caller's
    history (see ``RecentPairs``); the policy itself only calls ``met_recently``.
    ``candidate_limit`` bounds, per index key (tag or tag pair), how many waiting users
    (in wait order) ``pair_all`` considers for each seeker; ``random_scan_limit`` bounds
    how many random-eligible users it checks. Both trade optimality for bounded work.
    """

    strong_score: float = 3.0
    strong_min_shared: int = 2
    any_shared_after: float = 3.0
    hold_pool: int = 200
    random_after: float = 30.0
    recent_pair_hours: float = 24.0
    candidate_limit: int = 16
    random_scan_limit: int = 256

    def __post_init__(self) -> None:
        if not self.strong_score > 0:
            raise ValueError("strong_score must be > 0")
        if self.strong_min_shared < 1:
            raise ValueError("strong_min_shared must be >= 1")
        if not 0 <= self.any_shared_after <= self.random_after:
            raise ValueError("need 0 <= any_shared_after <= random_after")
        if self.hold_pool < 0:
            raise ValueError("hold_pool must be >= 0")
        if not self.recent_pair_hours >= 0:
            raise ValueError("recent_pair_hours must be >= 0")
        if self.candidate_limit < 1 or self.random_scan_limit < 1:
            raise ValueError("candidate_limit and random_scan_limit must be >= 1")

    @property
    def recent_pair_window(self) -> float:
        """``recent_pair_hours`` in seconds."""
        return self.recent_pair_hours * 3600.0


@dataclass(frozen=True)
class Pair:
    """A match decision. In ``pair_all`` results ``a`` is the longer-waiting side.

    ``shared`` is the sorted tuple of shared tag ids (empty for a random pair).
    """

    a: UserId
    b: UserId
    shared: tuple[str, ...]
    score: float
    level: Level


def tag_weights(
    waiting: Iterable[Seeker],
    *,
    counts: Mapping[str, int] | None = None,
    population: int = 0,
) -> dict[str, float]:
    """IDF-like weights ``log(1 + N / (1 + users_with_tag))`` over the waiting pool.

    ``counts``/``population`` optionally add global statistics (e.g. all registered
    users) to the pool's own, so weights stay meaningful when the pool is small.
    Every tag held by a seeker or present in ``counts`` gets a weight.
    """
    tally: dict[str, int] = dict(counts) if counts else {}
    n = population
    for s in waiting:
        n += 1
        for t in s.tags:
            tally[t] = tally.get(t, 0) + 1
    return {t: math.log1p(n / (1 + c)) for t, c in tally.items()}


def _score(shared: Iterable[str], weights: Mapping[str, float] | None) -> float:
    if weights is None:
        return float(sum(1 for _ in shared))
    # fsum is exactly rounded, so the result is independent of set iteration order
    # (which varies with the per-process string hash seed): keeps ties deterministic.
    return math.fsum(weights.get(t, 1.0) for t in shared)


PAIR_INDEX_TAGS = 12


def _pair_keys(tags: Sequence[str], weights: Mapping[str, float]) -> list[tuple[str, str]]:
    """Tag pairs to index a user under; ``tags`` sorted. Caps quadratic growth."""
    if len(tags) > PAIR_INDEX_TAGS:
        rarest = sorted(tags, key=lambda t: (-weights.get(t, 1.0), t))[:PAIR_INDEX_TAGS]
        tags = sorted(rarest)
    return [(a, b) for k, a in enumerate(tags) for b in tags[k + 1 :]]


class MatchPolicy:
    """Decides which waiting users to pair. Stateless apart from its config."""

    __slots__ = ("config",)

    def __init__(self, config: MatchConfig | None = None) -> None:
        self.config = config if config is not None else MatchConfig()

    # -- per-user requirement ------------------------------------------------------------

    def busy(self, arrivals: int) -> bool:
        """Whether newcomers hold out for a strong pair, given the arrivals in the last
        ``any_shared_after`` seconds (see the module docstring)."""
        return arrivals >= self.config.hold_pool

    def required_level(self, s: Seeker, now: float, arrivals: int = 0) -> Level:
        """The weakest pair level ``s`` accepts after waiting until ``now``.

        ``arrivals``: users who entered the queue in the last ``any_shared_after``
        seconds; the default 0 is a quiet queue (no hold-out).
        """
        wait = now - s.since
        if wait >= self.config.random_after:
            return "random"
        if wait >= self.config.any_shared_after or not self.busy(arrivals):
            return "shared"
        return "strong"

    def next_widening(self, s: Seeker, now: float, arrivals: int = 0) -> float | None:
        """Absolute time at which ``s``'s requirement next relaxes, or ``None`` if never,
        assuming ``arrivals`` stays as it is.

        Lets the caller schedule the next ``pair_all`` run instead of polling.
        """
        steps = (self.config.any_shared_after, self.config.random_after) \
            if self.busy(arrivals) else (self.config.random_after,)
        for after in steps:
            at = s.since + after
            if now - s.since < after:
                return at if math.isfinite(at) else None
        return None

    def arrivals(self, waiting: Iterable[Seeker], now: float) -> int:
        """How many of ``waiting`` entered the queue in the last ``any_shared_after``
        seconds: ``pair_all``'s count when the caller keeps no record of matched users."""
        window = self.config.any_shared_after
        return sum(1 for s in waiting if now - s.since < window)

    # -- single pair ---------------------------------------------------------------------

    def level_of(self, shared_count: int, score: float) -> Level:
        """The level a pair achieves given its shared tags."""
        if shared_count >= self.config.strong_min_shared or (
            shared_count and score >= self.config.strong_score
        ):
            return "strong"
        return "shared" if shared_count else "random"

    @staticmethod
    def allowed(x: Seeker, y: Seeker) -> bool:
        """Hard constraints except pair history: distinct, no block, prefs both ways."""
        return (
            x.user_id != y.user_id
            and y.user_id not in x.blocked
            and x.user_id not in y.blocked
            and x.prefs.accepts(y.gender, y.age, y.verified)
            and y.prefs.accepts(x.gender, x.age, x.verified)
        )

    def compatible(
        self,
        x: Seeker,
        y: Seeker,
        now: float,
        met_recently: MetRecently = never_met,
        weights: Mapping[str, float] | None = None,
        arrivals: int = 0,
    ) -> Pair | None:
        """The pair ``(x, y)`` if acceptable at ``now``, else ``None``.

        Symmetric apart from the orientation of the returned ``Pair``. ``weights`` maps
        tag -> weight (see ``tag_weights``); tags missing from it weigh 1.0, and with no
        mapping the score is the shared-tag count. ``met_recently`` is called with the
        two ids in sorted order and only once everything else passed. ``arrivals`` as
        for ``required_level`` (default: a quiet queue).
        """
        if not self.allowed(x, y):
            return None
        shared = x.tags & y.tags
        score = _score(shared, weights)
        level = self.level_of(len(shared), score)
        need = max(
            _STRICTNESS[self.required_level(x, now, arrivals)],
            _STRICTNESS[self.required_level(y, now, arrivals)],
        )
        # History last: it is the caller's lookup and possibly the costliest check.
        if _STRICTNESS[level] < need or _met(met_recently, x.user_id, y.user_id):
            return None
        return Pair(x.user_id, y.user_id, tuple(sorted(shared)), score, level)

    # -- whole pool ----------------------------------------------------------------------

    def pair_all(
        self,
        waiting: Sequence[Seeker],
        now: float,
        met_recently: MetRecently = never_met,
        weights: Mapping[str, float] | None = None,
        arrivals: int | None = None,
    ) -> list[Pair]:
        """Greedily pair the pool at time ``now``; each user appears in at most one pair.

        Seekers are visited longest-waiting first (ties by user id); each unpaired one
        takes its best acceptable partner: highest level, then highest score, then
        longest-waiting. For every returned pair ``p``, ``compatible(p.a, p.b, ...)``
        with the same ``weights`` returns ``p``; ``a`` is the longer waiter.
        Deterministic for a given input, whatever the hash seed. ``weights`` defaults
        to ``tag_weights(waiting)`` and ``arrivals`` (busy queue or not, the same for the
        whole round) to ``self.arrivals(waiting, now)``: pass ``Arrivals.count`` to count
        the users matched lately too. Raises ``ValueError`` on duplicate user ids.

        Candidates come from inverted indexes, so work is roughly
        ``n * keys * candidate_limit`` rather than ``n**2``:

        1. strong: users sharing a pair of tags, or one tag weighing >= ``strong_score``;
        2. if the seeker has widened: users sharing any one tag (only those who widened
           too, since a pair must meet the stricter requirement);
        3. if the seeker has reached the random level: the first compatible of up to
           ``random_scan_limit`` random-eligible users, in wait order.

        Each index key contributes at most ``candidate_limit`` live users (the
        longest-waiting; users the seeker's or their own prefs rule out still count),
        so a better partner deep in a popular list can be missed, and a seeker may be
        left for a later seeker to find: the price of bounded work. Pair indexing uses
        a user's ``PAIR_INDEX_TAGS`` rarest tags (quadratic in tags per user); the
        service should cap tags per user anyway. With no caps hit, the result is
        maximal: no two users left unpaired are compatible.
        """
        cfg = self.config
        order = sorted(waiting, key=lambda s: (s.since, s.user_id))
        n = len(order)
        if len({s.user_id for s in order}) != n:
            raise ValueError("duplicate user id in waiting pool")
        if weights is None:
            weights = tag_weights(order)
        w = weights
        if arrivals is None:
            arrivals = self.arrivals(order, now)
        need = [_STRICTNESS[self.required_level(s, now, arrivals)] for s in order]
        # Waits shrink along `order`, so the widened users form prefixes of it
        # (and of every index list, which is in `order` too).
        random_end = sum(1 for v in need if v == 0)
        shared_end = sum(1 for v in need if v <= 1)

        by_tag: dict[str, list[int]] = {}
        by_pair: dict[tuple[str, str], list[int]] = {}
        sorted_tags: list[list[str]] = []
        pair_keys: list[list[tuple[str, str]]] = []
        for i, s in enumerate(order):
            tags = sorted(s.tags)
            sorted_tags.append(tags)
            for t in tags:
                by_tag.setdefault(t, []).append(i)
            keys = _pair_keys(tags, w)
            pair_keys.append(keys)
            for key in keys:
                by_pair.setdefault(key, []).append(i)
        # Tags that alone make a pair strong (all of them if one shared tag suffices).
        strong_tags = {
            t for t in by_tag if cfg.strong_min_shared <= 1 or w.get(t, 1.0) >= cfg.strong_score
        }

        paired = bytearray(n)
        heads: dict[object, int] = {}
        limit = cfg.candidate_limit

        def live(key: object, lst: list[int], stop: int, i: int) -> Iterable[int]:
            """Up to `limit` unpaired entries of `lst` below index `stop`, other than i."""
            h = heads.get(key, 0)
            while h < len(lst) and paired[lst[h]]:
                h += 1  # paired users are never unpaired: skip them for good
            heads[key] = h
            out: list[int] = []
            for k in range(h, len(lst)):
                j = lst[k]
                if j >= stop:
                    break
                if paired[j] or j == i:
                    continue
                out.append(j)
                if len(out) >= limit:
                    break
            return out

        # nxt[j]: next possibly-unpaired index >= j (path-compressed skip list).
        nxt = list(range(n + 1))

        def next_live(j: int) -> int:
            root = j
            while root < n and paired[root]:
                root = nxt[root]
            while j != root and j < n:
                nxt[j], j = root, nxt[j]
            return root

        pairs: list[Pair] = []
        for i, x in enumerate(order):
            if paired[i]:
                continue
            # 1. strong candidates (every one of them is strong-level).
            cands: set[int] = set()
            for key in pair_keys[i]:
                cands.update(live(key, by_pair[key], n, i))
            for t in sorted_tags[i]:
                if t in strong_tags:
                    cands.update(live(t, by_tag[t], n, i))
            best, best_j = self._pick(x, order, cands, need, i, now, met_recently, w)
            # 2. any shared tag, among users who widened as far.
            if best is None and need[i] <= 1:
                cands = set()
                for t in sorted_tags[i]:
                    cands.update(live(t, by_tag[t], shared_end, i))
                best, best_j = self._pick(x, order, cands, need, i, now, met_recently, w)
            # 3. anyone compatible, among users who reached the random level.
            if best is None and need[i] == 0:
                checked = 0
                j = next_live(0)
                while j < random_end and checked < cfg.random_scan_limit:
                    if j != i:
                        checked += 1
                        best = self.compatible(x, order[j], now, met_recently, w)
                        if best is not None:
                            best_j = j
                            break
                    j = next_live(j + 1)
            if best is not None:
                if best_j < i:  # capped lists can make a later seeker find an earlier one
                    best = replace(best, a=best.b, b=best.a)
                paired[i] = paired[best_j] = 1
                nxt[i], nxt[best_j] = i + 1, best_j + 1
                pairs.append(best)
        return pairs

    def _pick(
        self,
        x: Seeker,
        order: Sequence[Seeker],
        cands: Iterable[int],
        need: Sequence[int],
        i: int,
        now: float,
        met_recently: MetRecently,
        weights: Mapping[str, float],
    ) -> tuple[Pair | None, int]:
        """Best acceptable candidate: level, then score, then wait order (index)."""
        cfg = self.config
        xtags = x.tags
        wx = {t: weights.get(t, 1.0) for t in xtags}
        need_i = need[i]
        ranked: list[tuple[int, float, int]] = []
        for j in cands:  # hot loop: inlined _score/level_of
            shared = xtags & order[j].tags
            c = len(shared)
            # A sum of <= 2 floats does not depend on order; fsum (exactly rounded)
            # keeps longer sums independent of set order, i.e. of the hash seed.
            score = sum([wx[t] for t in shared]) if c <= 2 else math.fsum([wx[t] for t in shared])
            if c >= cfg.strong_min_shared or (c and score >= cfg.strong_score):
                lvl = 2
            else:
                lvl = 1 if c else 0
            if lvl >= need_i and lvl >= need[j]:
                ranked.append((-lvl, -score, j))
        ranked.sort()
        for _lvl, _score_neg, j in ranked:
            y = order[j]
            # Prefs/blocks/history last and lazily: most candidates never get here.
            if self.allowed(x, y) and not _met(met_recently, x.user_id, y.user_id):
                shared = x.tags & y.tags
                return (
                    Pair(
                        x.user_id,
                        y.user_id,
                        tuple(sorted(shared)),
                        -_score_neg,
                        self.level_of(len(shared), -_score_neg),
                    ),
                    j,
                )
        return None, -1


def _met(met_recently: MetRecently, a: UserId, b: UserId) -> bool:
    return met_recently(a, b) if a <= b else met_recently(b, a)


class RecentPairs:
    """In-memory record of who met whom, for the ``met_recently`` predicate.

    Pure data structure: times are passed in. ``record`` times should be
    non-decreasing (monotonic clock), which keeps ``prune`` O(expired).
    """

    __slots__ = ("_at", "_log", "window")

    def __init__(self, window: float) -> None:
        self.window = window
        self._at: dict[tuple[UserId, UserId], float] = {}
        self._log: deque[tuple[float, tuple[UserId, UserId]]] = deque()

    @staticmethod
    def _key(a: UserId, b: UserId) -> tuple[UserId, UserId]:
        return (a, b) if a <= b else (b, a)

    def record(self, a: UserId, b: UserId, at: float) -> None:
        key = self._key(a, b)
        self._at[key] = at
        self._log.append((at, key))

    def met(self, a: UserId, b: UserId, now: float) -> bool:
        """Whether ``a`` and ``b`` (either order) were paired within the window."""
        at = self._at.get(self._key(a, b))
        return at is not None and now - at < self.window

    def prune(self, now: float) -> int:
        """Forget pairs older than the window; returns how many were dropped."""
        dropped = 0
        while self._log and now - self._log[0][0] >= self.window:
            at, key = self._log.popleft()
            if self._at.get(key) == at:  # a later record() of the same pair wins
                del self._at[key]
                dropped += 1
        return dropped

    def predicate(self, now: float) -> MetRecently:
        """A ``met_recently`` callable bound to ``now``, for ``pair_all``."""
        return lambda a, b: self.met(a, b, now)

    def __len__(self) -> int:
        return len(self._at)


class Arrivals:
    """Who entered the queue lately, for ``pair_all``'s ``arrivals`` (busy queue or not).

    Pure data structure: the caller records the ``since`` of every user it matched, and
    ``count`` adds the waiting users who arrived within ``window`` seconds of ``now``
    (the policy's ``any_shared_after``). Users who cancelled are not counted.
    """

    __slots__ = ("_matched", "window")

    def __init__(self, window: float) -> None:
        self.window = window
        self._matched: list[float] = []  # a heap of arrival times: the oldest pop first

    def matched(self, since: float) -> None:
        heapq.heappush(self._matched, since)

    def count(self, waiting: Iterable[Seeker], now: float) -> int:
        while self._matched and now - self._matched[0] >= self.window:
            heapq.heappop(self._matched)
        return len(self._matched) + sum(1 for s in waiting if now - s.since < self.window)
