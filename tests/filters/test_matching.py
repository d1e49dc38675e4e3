from __future__ import annotations

import pytest

from filters import Entry, WordFilter, default_wordlists_path

ENTRIES = [
    Entry("傻逼", "abuse", "block"),
    Entry("习近平", "politics", "block"),
    Entry("qq", "ads", "review"),
    Entry("vx", "ads", "mask"),
    Entry("按摩", "porn", "mask"),
    Entry("妈妈的", "abuse", "mask"),
    Entry("QQ群", "ads", "mask"),
    Entry("黄金", "fraud", "block"),
]


DEFAULT = WordFilter.from_paths(default_wordlists_path())


@pytest.fixture(params=["native", "rs", "pyahocorasick"])
def f(request: pytest.FixtureRequest) -> WordFilter:
    return WordFilter.from_entries(ENTRIES, allow=["按摩椅"], engine=request.param)


def spans(f: WordFilter, text: str) -> list[tuple[int, int, str]]:
    return [(m.start, m.end, m.word) for m in f.scan(text)]


@pytest.mark.parametrize(
    "text",
    ["傻*逼", "傻 逼", "傻😀逼", "傻\u200b逼", "傻\ufeff逼", "傻a逼", "傻123逼", "傻-_-逼",
     "傻\u0301逼", "傻\U000e0020逼", "傻️逼", "傻\t逼", "傻，逼", "傻\u3000逼"],
)
def test_noise_between_cjk(f: WordFilter, text: str) -> None:
    v = f.check(text)
    assert v.blocked and v.category == "abuse"
    assert spans(f, text) == [(0, len(text), "傻逼")]
    assert v.masked == "*" * len(text)


def test_zero_width_anywhere(f: WordFilter) -> None:
    assert f.check("\u200b傻\u200d逼\u2060").blocked


@pytest.mark.parametrize("text", ["ＱＱ", "Qq", "QQ", "ｑｑ", "q\u200bq"])
def test_fullwidth_and_case(f: WordFilter, text: str) -> None:
    assert [m.word for m in f.scan(text)] == ["qq"]


def test_compatibility_forms(f: WordFilter) -> None:
    # U+2FA6 KANGXI RADICAL GOLD is NFKC-equivalent to 金.
    v = f.check("黄\u2fa6")
    assert v.blocked and spans(f, "黄\u2fa6") == [(0, 2, "黄金")]


def test_traditional_matches_simplified_entry(f: WordFilter) -> None:
    assert f.check("習近平").blocked
    assert f.check("傻逼").blocked


def test_simplified_text_matches_traditional_entry() -> None:
    g = WordFilter.from_entries([Entry("習近平", "politics", "block")])
    assert g.check("习近平").blocked
    assert g.check("習近平").blocked


@pytest.mark.parametrize(
    ("text", "span"),
    [("傻傻傻逼", (0, 4)), ("傻逼逼逼", (0, 4)), ("习近近平", (0, 4)), ("xx习习近平平yy", (2, 7))],
)
def test_repeated_characters(f: WordFilter, text: str, span: tuple[int, int]) -> None:
    v = f.check(text)
    assert v.blocked
    assert (v.matches[0].start, v.matches[0].end) == span


def test_doubled_entry_needs_its_doubles(f: WordFilter) -> None:
    assert not f.scan("妈的")
    assert [m.word for m in f.scan("妈妈妈的")] == ["妈妈的"]


@pytest.mark.parametrize(
    "text",
    ["傻。逼", "傻\n逼", "傻!逼", "傻？逼", "傻.逼", "傻；逼", "傻！!。.逼", "傻…逼", "傻．逼"],
)
def test_sentence_punctuation_is_noise_too(f: WordFilter, text: str) -> None:
    # Evaders use . and ! because a filter that stops at them lets 法.轮.功 through.
    v = f.check(text)
    assert v.blocked and spans(f, text) == [(0, len(text), "傻逼")]


def test_dots_and_exclamation_marks_between_every_character() -> None:
    g = WordFilter.from_entries([Entry("法轮功"), Entry("出售炸药")])
    for text in ("法.轮.功", "出!售!炸!药", "法。轮！功", "出 .!售,.炸-!药", "法...轮...功"):
        assert g.check(f"你看{text}吧").blocked, text


@pytest.mark.parametrize(
    "text", ["哈哈!!!", "版本v1.2.3好用", "价格9.9元", "3.5折", "访问https://www.example.com/a.html",
             "评分6.4分", "1.99美元"]
)
def test_ordinary_punctuation_stays_clean(text: str) -> None:
    g = WordFilter.from_entries(
        [Entry("哈哈哈哈"), Entry("64"), Entry("99"), Entry("35"), Entry("123"), Entry("comaht")]
    )
    assert not g.check(text).matches, text
    assert not DEFAULT.check(text).blocked, text


def test_a_decimal_point_keeps_its_digits_apart() -> None:
    g = WordFilter.from_entries([Entry("64"), Entry("v12")])
    assert not g.scan("6.4") and not g.scan("6．4") and g.scan("v.1.2") == ()
    # Only a dot right between two digits is a decimal point; 6 . 4 and 6-.4 are evasions.
    assert g.scan("64") and g.scan("6 4") and g.scan("6 . 4") and g.scan("6-.4")
    assert g.scan("v1 2") and g.scan("v.12")


@pytest.mark.parametrize("text", ["aqq", "qqa", "vxyz", "hivx", "qq2"])
def test_ascii_words_need_boundaries(f: WordFilter, text: str) -> None:
    assert not f.scan(text)


@pytest.mark.parametrize("text", ["加qq", "qq号", "my qq!", "(vx)", "加v*x", "v x"])
def test_ascii_words_match_alone(f: WordFilter, text: str) -> None:
    assert f.scan(text)


def test_mixed_text_offsets_and_masking(f: WordFilter) -> None:
    text = "你好，加我ＶＸ：abc，你個傻\u200b逼。按摩椅很好"
    v = f.check(text)
    got = [(text[m.start : m.end], m.word, m.action) for m in v.matches]
    assert got == [("ＶＸ", "vx", "mask"), ("傻\u200b逼", "傻逼", "block")]
    assert v.blocked and v.action == "block" and v.category == "abuse"
    assert v.masked == "你好，加我**：abc，你個***。按摩椅很好"
    assert len(v.masked) == len(text)


def test_strongest_action_and_category(f: WordFilter) -> None:
    v = f.check("qq群")
    assert v.action == "mask" and v.category == "ads" and not v.blocked
    v = f.check("加qq")
    assert v.action == "review" and not v.blocked and v.review


def test_allow_list(f: WordFilter) -> None:
    assert not f.scan("按摩椅")
    assert not f.scan("这个按-摩-椅不错")
    assert f.scan("按摩一下")
    # Only where the allow word occurs.
    assert [m.start for m in f.scan("按摩椅和按摩")] == [4]


def test_clean_text(f: WordFilter) -> None:
    v = f.check("今天天气很好，我们去公园散步吧。")
    assert not v.blocked and v.action is None and v.category is None and v.matches == ()
    assert v.masked == "今天天气很好，我们去公园散步吧。"


def test_every_entry_blocks_its_own_text(f: WordFilter) -> None:
    for e in ENTRIES:
        assert f.check(e.word).action == e.action or e.word == "按摩"


def test_inspection(f: WordFilter) -> None:
    assert len(f) == len(ENTRIES)
    assert set(f.entries()) == set(ENTRIES)
    assert f.allow_words() == ["按摩椅"]
    g = WordFilter.from_entries(list(reversed(ENTRIES)), allow=["按摩椅"])
    assert g.version == f.version and len(f.version) >= 16
    assert WordFilter.from_entries(ENTRIES).version != f.version


def test_duplicate_keys_keep_strongest() -> None:
    g = WordFilter.from_entries([Entry("傻逼", "a", "review"), Entry("傻 逼", "b", "block")])
    assert len(g) == 1 and g.check("傻逼").category == "b"


def test_unknown_engine() -> None:
    with pytest.raises(ValueError):
        WordFilter.from_entries(ENTRIES, engine="nope")  # type: ignore[arg-type]
