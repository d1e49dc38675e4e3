from __future__ import annotations

import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filters import Entry, WordFilter, default_wordlists_path

WORDS = ["傻逼", "习近平", "法轮功", "约炮", "冰毒", "六合彩", "代开发票"]
F = WordFilter.from_entries([Entry(w, "x", "block") for w in WORDS])
F_PY = WordFilter.from_entries([Entry(w, "x", "block") for w in WORDS], engine="pyahocorasick")
F_RS = WordFilter.from_entries([Entry(w, "x", "block") for w in WORDS], engine="rs")
DEFAULT = WordFilter.from_paths(default_wordlists_path())

# Characters the filter skips between CJK characters (docs/filters.md).
NOISE = st.sampled_from(
    [
        *" *_-~/\\|,，、:：'\"“”()（）[]【】<>@#$%^&+=`\t\u3000",
        *["\u200b", "\u200c", "\u200d", "\ufeff", "\u2060", "\u00ad", "😀", "🔥", "❤", "️"],
        *"★abcXYZ019",
        *".!?;。！？；…．",  # sentence punctuation is noise too (法.轮.功, 出!售!炸!药)
    ]
)


@given(word=st.sampled_from(WORDS), data=st.data())
@settings(max_examples=300, deadline=None)
def test_noise_between_letters_still_matches(word: str, data: st.DataObject) -> None:
    parts = []
    for ch in word:
        parts.append(ch)
        parts.append("".join(data.draw(st.lists(NOISE, max_size=3))))
    text = data.draw(st.sampled_from(["", "你好", "ok "])) + "".join(parts)
    for f in (F, F_PY, F_RS):
        v = f.check(text)
        assert v.blocked, text
        m = v.matches[0]
        assert text[m.start] == word[0]
        assert len(v.masked) == len(text)


@given(st.text())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_check_never_raises(text: str) -> None:
    for f in (DEFAULT, F_PY):
        v = f.check(text)
        assert len(v.masked) == len(text)
        for m in v.matches:
            assert 0 <= m.start < m.end <= len(text)


@given(st.lists(st.integers(0, sys.maxunicode), max_size=60))
@settings(max_examples=300, deadline=None)
def test_any_code_point_including_surrogates(cps: list[int]) -> None:
    text = "".join(map(chr, cps)) + "傻\ud800逼" + "\x00\x1b\x7f"
    v = DEFAULT.check(text)
    assert len(v.masked) == len(text)
    assert F.check(text).blocked


def test_huge_strings() -> None:
    big = "这是一个很长的正常句子。" * 50_000
    assert not DEFAULT.check(big).blocked
    v = F.check(big + "傻逼")
    assert v.blocked and v.matches[0].start == len(big)
    assert F.check("傻" * 200_000 + "逼").matches[0].end == 200_001
