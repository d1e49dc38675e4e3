"""The decision (blocked/action/category) is taken in skeleton space and matches are mapped
lazily; these check that both always agree, whichever is read first."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from filters import Entry, Match, Verdict, WordFilter

ACTION_RANK = {"review": 1, "mask": 2, "block": 3}
ENTRIES = [
    Entry("傻逼", "abuse", "block"),
    Entry("习近平", "politics", "block"),
    Entry("qq", "ads", "review"),
    Entry("vx", "ads", "mask"),
    Entry("按摩", "porn", "mask"),
    Entry("妈妈的", "abuse", "mask"),
    Entry("QQ群", "ads", "mask"),
    Entry("x1", "t", "review"),
    Entry("m.", "t", "block"),
    Entry("fi", "other", "mask"),
    Entry("近平", "other", "block"),
    Entry("摩椅", "other", "review"),
]
FILTERS = [
    WordFilter.from_entries(ENTRIES, allow=["按摩椅", "qq号"], engine=e)
    for e in ("native", "rs", "pyahocorasick")
]
# Entry characters plus the noise, expansions (ﬁ, ㏂ → am), dots and invisibles that
# move skeleton offsets away from original ones.
ALPHABET = "傻逼习近平按摩椅妈的群qQvVxXm1fi ．.,*\u200b😀ﬁ㏂…\U000e0020號\u0301"


def expected_decision(matches: tuple[Match, ...]) -> tuple[bool, str | None, str | None]:
    if not matches:
        return False, None, None
    top = max(matches, key=lambda m: ACTION_RANK[m.action])  # the first of the strongest
    return top.action == "block", top.action, top.category


@given(st.text(alphabet=ALPHABET, max_size=30))
@settings(max_examples=1500, deadline=None)
def test_decision_agrees_with_matches(text: str) -> None:
    for f in FILTERS:
        decided = f.check(text)
        fields = (decided.blocked, decided.action, decided.category, decided.review)
        full = f.check(text)
        matches = full.matches
        assert fields[:3] == expected_decision(matches), text
        assert fields[3] == any(m.action == "review" for m in matches)
        assert full.review == fields[3]
        assert decided == full and hash(decided) == hash(full)
        assert len(full.masked) == len(text)
        assert list(matches) == sorted(matches, key=lambda m: (m.start, m.end, m.word))


def test_category_tie_goes_to_first_in_text() -> None:
    f = WordFilter.from_entries([Entry("甲乙", "one", "block"), Entry("丙丁", "two", "block")])
    assert f.check("丙丁 甲乙").category == "two"
    assert f.check("甲乙丙丁").category == "one"


def test_verdict_is_a_value() -> None:
    v = Verdict(True, "block", "c", (Match(0, 2, "傻逼", "c", "block"),), "**")
    assert v.matches[0].end == 2 and v.masked == "**" and not v.review
    assert v == Verdict(True, "block", "c", (Match(0, 2, "傻逼", "c", "block"),), "**")
    assert "blocked=True" in repr(v)
    f = FILTERS[0]
    assert f.check("你个傻逼") == f.check("你个傻逼")
    assert Verdict.clean("ok") == f.check("ok")
