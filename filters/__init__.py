"""Evasion-resistant sensitive-word filter (pure library: no asyncio, no chatd imports).

    f = WordFilter.from_paths(default_wordlists_path())
    v = f.check("加我ＶＸ")   # v.blocked, v.action, v.category, v.matches, v.masked
"""

from __future__ import annotations

from filters.core import LiveFilter, Match, Verdict, WordFilter, default_wordlists_path
from filters.engine import EngineName
from filters.wordlist import Action, Entry, WordListError

__all__ = [
    "Action",
    "EngineName",
    "Entry",
    "LiveFilter",
    "Match",
    "Verdict",
    "WordFilter",
    "WordListError",
    "default_wordlists_path",
]
