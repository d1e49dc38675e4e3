from __future__ import annotations

from pathlib import Path

import pytest

from chatd.catalog import TAG_ID_RE, Catalog, Tag, group_conv_id


def test_packaged_catalog_loads() -> None:
    cat = Catalog.load()
    assert 40 <= len(cat.tags) <= 60
    assert all(TAG_ID_RE.fullmatch(t.id) and t.name and t.en for t in cat.tags)
    assert len({t.id for t in cat.tags}) == len(cat.tags)
    rock = cat.get("music.rock")
    assert rock == Tag("music.rock", "摇滚", "Rock")
    assert "pet.cat" in cat
    assert "pet.dragon" not in cat
    assert 42 not in cat
    assert cat.get("nope") is None


def test_validate_dedups_keeping_order() -> None:
    cat = Catalog.load()
    assert cat.validate(["pet.cat", "music.rock", "pet.cat"]) == ("pet.cat", "music.rock")
    assert cat.validate([]) == ()


@pytest.mark.parametrize("bad", ["pet.dragon", "", "PET.CAT", 7, None])
def test_validate_rejects_unknown_naming_it(bad: object) -> None:
    cat = Catalog.load()
    with pytest.raises(ValueError, match="unknown interest tag") as ei:
        cat.validate(["pet.cat", bad])
    assert repr(bad) in str(ei.value)


def test_validate_rejects_bare_string() -> None:
    with pytest.raises(ValueError, match="not a string"):
        Catalog.load().validate("pet.cat")


def test_as_wire() -> None:
    cat = Catalog.load()
    wire = cat.as_wire()
    assert len(wire) == len(cat.tags)
    assert {"id": "music.rock", "name": "摇滚"} in wire
    assert all(set(d) == {"id", "name"} for d in wire)


def test_group_conv_id() -> None:
    assert group_conv_id("game.moba") == "g:game.moba"


def _write(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "tags.toml"
    p.write_text(body, encoding="utf-8")
    return p


def test_load_explicit_path(tmp_path: Path) -> None:
    p = _write(tmp_path, '[[tag]]\nid = "a.b"\nname = "甲"\nen = "A"\n')
    assert Catalog.load(p).tags == (Tag("a.b", "甲", "A"),)


def test_duplicate_id_rejected(tmp_path: Path) -> None:
    body = '[[tag]]\nid = "pet.cat"\nname = "猫"\nen = "Cats"\n' * 2
    p = _write(tmp_path, body)
    with pytest.raises(ValueError, match=r"duplicate tag id 'pet.cat'") as ei:
        Catalog.load(p)
    assert str(p) in str(ei.value)


@pytest.mark.parametrize("bad_id", ["Pet.cat", "pet..cat", ".pet", "pet cat", "宠物", "pet."])
def test_bad_id_rejected(tmp_path: Path, bad_id: str) -> None:
    p = _write(tmp_path, f'[[tag]]\nid = "{bad_id}"\nname = "x"\nen = "x"\n')
    with pytest.raises(ValueError, match="bad tag id"):
        Catalog.load(p)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("", "one or more"),
        ('[[tag]]\nid = "a"\nname = "x"\n', "'en'"),
        ('[[tag]]\nid = "a"\nname = 3\nen = "x"\n', "'name'"),
        ('[[tag]]\nid = "a"\nname = "x"\nen = "x"\ncolour = "red"\n', "unknown keys"),
        ('[[tag]]\nid = "a"\nname = " "\nen = "x"\n', "non-empty"),
        ("[[tag]\n", "Expected"),  # TOML syntax error surfaces as ValueError
    ],
)
def test_malformed_files_rejected(tmp_path: Path, body: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Catalog.load(_write(tmp_path, body))
