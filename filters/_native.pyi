from collections.abc import Sequence

from filters.wordlist import Entry

TABLE_LIMIT: int

def set_table(table: list[str], flags: bytes, /) -> None: ...

class Automaton:
    """Aho-Corasick over code points; keys distinct and non-empty."""

    def __init__(self, keys: Sequence[str]) -> None: ...
    def scan(self, text: str, /) -> list[tuple[int, int, int]]: ...
    def any(self, text: str, /) -> bool: ...
    @property
    def nbytes(self) -> int: ...
    @property
    def keys(self) -> tuple[str, ...]: ...

# Policy values: an allow word (str) or (entry, rank, need runs | None, ascii edges, word).
PolicyItem = str | tuple[Entry, int, tuple[int, ...] | None, int, str]
Raw = tuple[tuple[tuple[int, int, Entry], ...], int]

class Matcher:
    def __init__(
        self,
        ascii_automata: tuple[Automaton, ...],
        cjk_automata: tuple[Automaton, ...],
        policy: dict[str, PolicyItem],
    ) -> None: ...
    def check(self, text: str, /) -> Raw | None: ...
