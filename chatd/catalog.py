"""Interest-tag catalog: the fixed set of tags users may pick for matching and groups.

The catalog is loaded from a TOML file of ``[[tag]]`` tables (``id``, ``name``, ``en``).
Tag ids are stable ASCII identifiers (``music.rock``) that clients store and that appear
in interest-group conversation ids (``g:<tag id>``); display names may change freely.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = ["GROUP_CONV_PREFIX", "TAG_ID_RE", "Catalog", "Tag", "group_conv_id"]

TAG_ID_RE = re.compile(r"^[a-z0-9]+(\.[a-z0-9_-]+)*$")
GROUP_CONV_PREFIX = "g:"


@dataclass(frozen=True)
class Tag:
    """One interest tag: stable ``id``, Chinese display ``name``, English name ``en``."""

    id: str
    name: str
    en: str


def group_conv_id(tag_id: str) -> str:
    """Conversation id of the interest group for ``tag_id`` (``g:<tag id>``).

    1:1 conversations use the ``d:`` prefix, so the two id spaces never collide.
    """
    return GROUP_CONV_PREFIX + tag_id


class Catalog:
    """An immutable, ordered set of tags with unique, well-formed ids.

    Construction raises ``ValueError`` on a duplicate or malformed id or an empty name.
    """

    __slots__ = ("_by_id", "tags")

    def __init__(self, tags: Iterable[Tag]) -> None:
        self.tags: tuple[Tag, ...] = tuple(tags)
        by_id: dict[str, Tag] = {}
        for tag in self.tags:
            if not TAG_ID_RE.fullmatch(tag.id):
                raise ValueError(f"bad tag id {tag.id!r}: must match {TAG_ID_RE.pattern}")
            if tag.id in by_id:
                raise ValueError(f"duplicate tag id {tag.id!r}")
            if not tag.name.strip() or not tag.en.strip():
                raise ValueError(f"tag {tag.id!r} needs a non-empty name and en")
            by_id[tag.id] = tag
        self._by_id = by_id

    @classmethod
    def load(cls, path: Path | None = None) -> Catalog:
        """Load a catalog from ``path``, or the packaged ``chatd/data/interests.toml``.

        Raises ``ValueError`` (naming the file) on malformed TOML or entries.
        """
        if path is None:
            where = "chatd/data/interests.toml"
            text = resources.files("chatd").joinpath("data/interests.toml").read_text("utf-8")
        else:
            where = str(path)
            text = path.read_text(encoding="utf-8")
        try:
            return cls.from_toml(text)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from e

    @classmethod
    def from_toml(cls, text: str) -> Catalog:
        """Parse catalog TOML text; raises ``ValueError`` on any problem."""
        data = tomllib.loads(text)  # TOMLDecodeError is a ValueError
        entries = data.get("tag")
        if not isinstance(entries, list) or not entries:
            raise ValueError("expected one or more [[tag]] tables")
        tags: list[Tag] = []
        for n, entry in enumerate(entries, 1):
            if not isinstance(entry, dict):
                raise ValueError(f"tag #{n}: expected a table")
            fields: dict[str, str] = {}
            for key in ("id", "name", "en"):
                value = entry.get(key)
                if not isinstance(value, str):
                    raise ValueError(f"tag #{n}: missing or non-string {key!r}")
                fields[key] = value
            extra = sorted(set(entry) - {"id", "name", "en"})
            if extra:
                raise ValueError(f"tag #{n} ({fields['id']!r}): unknown keys {extra}")
            tags.append(Tag(**fields))
        return cls(tags)

    def get(self, tag_id: str) -> Tag | None:
        return self._by_id.get(tag_id)

    def __contains__(self, tag_id: object) -> bool:
        return isinstance(tag_id, str) and tag_id in self._by_id

    def __iter__(self) -> Iterator[Tag]:
        return iter(self.tags)

    def __len__(self) -> int:
        return len(self.tags)

    def validate(self, ids: Iterable[object]) -> tuple[str, ...]:
        """Return ``ids`` de-duplicated in first-seen order.

        Accepts untrusted wire input: raises ``ValueError`` naming the first id that is
        not a known tag (including non-strings).
        """
        if isinstance(ids, str | bytes):
            # A bare string would otherwise be validated character by character.
            raise ValueError("expected a list of interest tag ids, not a string")
        seen: dict[str, None] = {}
        for tag_id in ids:
            if not isinstance(tag_id, str) or tag_id not in self._by_id:
                raise ValueError(f"unknown interest tag {tag_id!r}")
            seen[tag_id] = None
        return tuple(seen)

    def as_wire(self) -> list[dict[str, str]]:
        """The catalog as sent to clients: ``[{"id": ..., "name": ...}, ...]`` in file order."""
        return [{"id": t.id, "name": t.name} for t in self.tags]
