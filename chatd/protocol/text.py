"""Text hygiene for user-written text fields: one pure function, applied at the edge.

An op marks a text field in its declaration, ``Field(str, text="line")`` for single-line text
shown to others (nicknames, a city) and ``Field(str, text="body")`` for multi-line text
(message and post bodies, bios, report texts, moderators' notes). :func:`text_problem` then
says what is wrong with a value, or ``None``; the envelope turns that into ``bad_request``
naming the field, so no service repeats the check.

Rules:

- ``line``: no control character at all (Unicode category Cc, so no newline or tab either),
  no line or paragraph separator (U+2028, U+2029), and no bidi embedding, override or isolate
  (U+202A–U+202E, U+2066–U+2069), which can make a name read as something else.
- ``body``: no control character other than newline, carriage return and tab (clients on
  Windows send CRLF line ends).
- Both: text that is not blank (it has something left after ``str.strip()``) must not be made
  only of invisible characters: whitespace, format characters (Cf: zero-width space and
  joiners, bidi marks, the BOM, tag characters...), variation selectors, the combining
  grapheme joiner and the blank fillers (Hangul fillers, the blank Braille pattern). Blank
  text (empty, or only whitespace) is left to the service: an empty bio clears it, an empty
  body is refused there.

Emoji sequences (ZWJ families, flags, keycaps, skin tones), CJK and every script pass: they
hold a visible character, and their joiners and selectors are allowed next to it.
"""

from __future__ import annotations

import unicodedata
from typing import Final, Literal

__all__ = ["BIDI_CONTROLS", "TextKind", "is_invisible", "text_problem"]

TextKind = Literal["line", "body"]

#: Embeddings and overrides (U+202A–U+202E) and isolates (U+2066–U+2069).
BIDI_CONTROLS: Final = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))
_LINE_BREAKS: Final = frozenset("\u2028\u2029")
_BODY_CONTROLS_OK: Final = frozenset("\n\r\t")
# Characters that render as nothing but are letters or symbols by category.
_BLANK_FILLERS: Final = frozenset("\u034f\u115f\u1160\u3164\uffa0\u2800")


def is_invisible(ch: str) -> bool:
    """Whitespace, a format or control character, a variation selector or a blank filler."""
    if ch.isspace() or ch in _BLANK_FILLERS:
        return True
    cp = ord(ch)
    if 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF or 0x180B <= cp <= 0x180F:
        return True  # variation selectors (and the Mongolian free ones)
    return unicodedata.category(ch) in ("Cf", "Cc")


def text_problem(value: str, kind: TextKind) -> str | None:
    """What is wrong with ``value`` as text of this kind, or ``None`` when it is fine."""
    # Fast path: a printable string has no Cc, Cf, Zl or Zp character at all.
    printable = value.isprintable() if kind == "line" else \
        value.replace("\n", "").replace("\r", "").replace("\t", "").isprintable()
    for ch in () if printable else value:
        if unicodedata.category(ch) == "Cc" and (kind == "line" or ch not in _BODY_CONTROLS_OK):
            return "must not hold control characters"
        if kind == "line" and (ch in BIDI_CONTROLS or ch in _LINE_BREAKS):
            return "must not hold bidi controls or line breaks"
    if value.strip() and all(is_invisible(ch) for ch in value):
        return "must hold visible text"
    return None
