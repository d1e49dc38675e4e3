from __future__ import annotations

from pathlib import Path

import pytest

from filters import Entry, LiveFilter, WordFilter, WordListError, default_wordlists_path


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    p = tmp_path / name
    if isinstance(data, bytes):
        p.write_bytes(data)
    else:
        p.write_text(data, encoding="utf-8")
    return p


def test_format_with_headers_overrides_and_allow(tmp_path: Path) -> None:
    p = write(
        tmp_path, "a.txt",
        "# comment\n@category porn\n@action mask\n按摩\n\n\\#tag\n"
        "傻逼\tabuse\tblock\n@action review\n约吗\n@allow\n按摩椅\n",
    )
    f = WordFilter.from_paths(p)
    assert set(f.entries()) == {
        Entry("按摩", "porn", "mask"), Entry("#tag", "porn", "mask"),
        Entry("傻逼", "abuse", "block"), Entry("约吗", "porn", "review"),
    }
    assert f.allow_words() == ["按摩椅"]
    assert not f.scan("按摩椅")


def test_plain_file_defaults(tmp_path: Path) -> None:
    p = write(tmp_path, "raw.txt", "\ufeff傻逼\r\n习近平\r\n")
    f = WordFilter.from_paths(p)
    assert {(e.category, e.action) for e in f.entries()} == {("default", "block")}
    assert f.check("傻逼").blocked


def test_folder_loads_txt_files_but_not_licence(tmp_path: Path) -> None:
    write(tmp_path, "a.txt", "傻逼\n")
    write(tmp_path, "b.txt", "@category x\n习近平\n")
    write(tmp_path, "LICENSE.txt", "MIT License\nPermission is hereby granted\n")
    write(tmp_path, "notes.md", "不是词表\n")
    f = WordFilter.from_paths(tmp_path)
    assert sorted(e.word for e in f.entries()) == ["习近平", "傻逼"]


@pytest.mark.parametrize(
    ("data", "line", "needle"),
    [
        ("ok\n@action destroy\n", 2, "directive"),
        ("ok\n@colour red\n", 2, "directive"),
        ("ok\nok2\nw\tporn\n", 3, "fields"),
        ("ok\nw\tporn\tnuke\n", 2, "action"),
        ("ok\nw\tBad Cat\tblock\n", 2, "category"),
        ("ok\n" + "长" * 65 + "\n", 2, "longer"),
        ("ok\n***\n", 2, "empty"),
        (b"ok\nfine\n\xff\xfe\x00bad\n", 3, "UTF-8"),
        ("ok\nx\x00y\n", 2, "NUL"),
    ],
)
def test_bad_files_name_file_and_line(
    tmp_path: Path, data: str | bytes, line: int, needle: str
) -> None:
    p = write(tmp_path, "bad.txt", data)
    with pytest.raises(WordListError) as ei:
        WordFilter.from_paths(p)
    err = ei.value
    assert err.path == str(p) and err.line == line
    assert f"{p}:{line}" in str(err) and needle in str(err)


def test_too_many_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import filters.wordlist as wl

    monkeypatch.setattr(wl, "MAX_ENTRIES", 3)
    p = write(tmp_path, "big.txt", "".join(f"词{i}\n" for i in range(10)))
    with pytest.raises(WordListError, match="more than 3"):
        WordFilter.from_paths(p)


def test_huge_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import filters.wordlist as wl

    monkeypatch.setattr(wl, "MAX_FILE_BYTES", 1024)
    p = write(tmp_path, "huge.txt", "词\n" * 2000)
    with pytest.raises(WordListError) as ei:
        WordFilter.from_paths(p)
    assert ei.value.path == str(p)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(WordListError, match="no such"):
        WordFilter.from_paths(tmp_path / "nope.txt")


def test_bad_entries_in_from_entries() -> None:
    with pytest.raises(WordListError):
        WordFilter.from_entries([Entry("ok"), Entry("x", "c", "nuke")])  # type: ignore[arg-type]
    with pytest.raises(WordListError):
        WordFilter.from_entries([Entry("   ")])


def test_with_changes_leaves_old_filter_unchanged() -> None:
    old = WordFilter.from_entries([Entry("傻逼"), Entry("习近平", "politics")], allow=["x习近平"])
    v0 = old.version
    new = old.with_changes(
        add=[Entry("约炮", "porn", "block"), Entry("傻逼", "abuse", "review")],
        remove=["习近平"], allow_add=["约炮王"], allow_remove=["x习近平"],
    )
    assert old.version == v0 and len(old) == 2
    assert old.check("习近平").blocked and not old.scan("约炮")
    assert old.check("傻逼").blocked
    assert not new.scan("习近平")
    assert new.check("约炮").blocked and not new.scan("约炮王")
    assert new.check("傻 逼").action == "review"
    assert new.version != v0 and len(new) == 2
    # Removing what was added, re-adding what was removed.
    back = new.with_changes(add=[Entry("习近平", "politics")], remove=["约炮"])
    assert back.check("習近平").blocked and not back.scan("约炮")


@pytest.mark.parametrize("engine", ["rs", "pyahocorasick"])
def test_many_changes_compact(engine: str) -> None:
    f = WordFilter.from_entries([Entry(f"词{i}号") for i in range(50)], engine=engine)  # type: ignore[arg-type]
    g = f
    for i in range(30):
        g = g.with_changes(add=[Entry(f"新{i}词")], remove=[f"词{i}号"])
    assert len(g) == 50
    assert g.check("新7词").blocked and not g.scan("词7号") and g.check("词40号").blocked
    same = WordFilter.from_entries(g.entries(), engine=engine)  # type: ignore[arg-type]
    assert same.version == g.version


def test_live_filter_swap_and_broken_reload(tmp_path: Path) -> None:
    good = write(tmp_path, "good.txt", "傻逼\n")
    live = LiveFilter(WordFilter.from_paths(good))
    first = live.current
    bad = write(tmp_path, "bad.txt", "傻逼\n@action nuke\n")
    with pytest.raises(WordListError):
        live.reload(bad)
    assert live.current is first and live.check("傻逼").blocked
    write(tmp_path, "good.txt", "习近平\n")
    live.reload(good)
    assert live.current is not first and live.check("习近平").blocked
    assert not live.check("傻逼").blocked
    assert first.check("傻逼").blocked  # the old one is immutable
    assert live.swap(first) is not first and live.current is first


def test_default_path_loads() -> None:
    assert default_wordlists_path().name == "wordlists"
    f = WordFilter.from_paths(default_wordlists_path())
    assert len(f) > 5000
    assert f.check("操你妈").blocked or f.check("傻逼").blocked


def test_live_edit_in_another_form_merges_to_the_strongest_action() -> None:
    base = WordFilter.from_entries([Entry("法轮功", "politics", "block")])
    dotted = base.with_changes(add=[Entry("法.轮.功", "misc", "mask")])
    assert dotted.check("法.轮.功").blocked and dotted.check("法轮功").category == "politics"
    stronger = WordFilter.from_entries([Entry("法轮功", "politics", "mask")]).with_changes(
        add=[Entry("法 轮 功", "politics", "block")])
    assert stronger.check("法轮功").blocked
    # The same word is the moderator's own decision: it may lower the action.
    lowered = base.with_changes(add=[Entry("法轮功", "politics", "review")])
    assert lowered.check("法.轮.功").action == "review"
    assert not base.with_changes(remove=["法.轮.功"]).scan("法轮功")
