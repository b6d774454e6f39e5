"""The Chinese text layer python-escpos lacks: `FS &`, GB18030 bytes the printer's font can
hold, and wrapping by printed columns that never splits a number or a Latin word. Pure.

python-escpos's `text()` sends Chinese through its code-page encoder without `FS &` (many
Chinese printers then print it as single-byte garbage) and passes GB18030 four-byte
sequences (rare CJK extension characters, emoji) that a printer's double-byte font prints
as two wrong characters; here they become `?`.
"""

from __future__ import annotations

import re
import unicodedata

from escpos.constants import FS

CHINESE_ON = FS + b"&"  # FS & : Chinese character mode
CHINESE_OFF = FS + b"."
REPLACEMENT = "?"

_GB = {"gb18030", "gbk", "gb2312", "cp936"}


def is_gb(encoding: str) -> bool:
    return encoding.replace("-", "").replace("_", "").lower() in _GB


def char_width(ch: str, encoding: str = "gb18030") -> int:
    """Columns a character takes on paper.

    A Chinese printer prints every double-byte character full width, including the
    "ambiguous" ones (`：`, `·`, `═`, `①`) a terminal would print narrow: count bytes.
    """
    if is_gb(encoding):
        try:
            n = len(ch.encode(encoding))
        except UnicodeEncodeError:
            return 1
        return 2 if n == 2 else 1  # four-byte sequences print as a single `?`
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def text_width(s: str, encoding: str = "gb18030") -> int:
    return sum(char_width(c, encoding) for c in s)


_SPACES = re.compile(r"\s+")


def _tokens(para: str, encoding: str) -> list[str]:
    """Runs of white space, runs of narrow characters (a Latin word, a number, `09:00-09:30`,
    `A20261123-0042`), and single wide characters: a line may break between tokens only."""
    out: list[str] = []
    word = ""
    for ch in para:
        if ch.isspace():
            if word and not word[-1].isspace():
                out.append(word)
                word = ""
            word += ch
        elif char_width(ch, encoding) == 1:
            if word and word[-1].isspace():
                out.append(word)
                word = ""
            word += ch
        else:
            if word:
                out.append(word)
                word = ""
            out.append(ch)
    if word:
        out.append(word)
    return out


def _hard_break(token: str, columns: int, encoding: str) -> list[str]:
    """A token wider than a whole line, cut into line-sized pieces (at least a character each)."""
    pieces: list[str] = []
    cur, width = "", 0
    for ch in token:
        w = char_width(ch, encoding)
        if cur and width + w > columns:
            pieces.append(cur)
            cur, width = "", 0
        cur += ch
        width += w
    pieces.append(cur)
    return pieces


def wrap(text: str, columns: int, encoding: str = "gb18030") -> list[str]:
    """Greedy wrap by printed columns. A line breaks at white space or next to a wide (CJK)
    character, never inside a run of narrow characters unless that run alone is wider than
    the line. White space at the end of a line is dropped, and at the start of a wrapped one."""
    columns = max(1, columns)
    lines: list[str] = []
    for para in text.split("\n"):
        cur, width = "", 0
        for tok in _tokens(para, encoding):
            w = text_width(tok, encoding)
            if width + w <= columns:
                cur += tok
                width += w
                continue
            if cur.strip():
                lines.append(cur.rstrip())
            cur, width = "", 0
            if tok.isspace():
                continue  # the break itself
            *full, tok = _hard_break(tok, columns, encoding)
            lines.extend(full)
            cur, width = tok, text_width(tok, encoding)
        lines.append(cur.rstrip())
    return lines


def encode_text(s: str, encoding: str = "gb18030") -> bytes:
    """Characters the printer's font cannot hold become `?` (never multi-byte garbage);
    control characters become spaces (no command smuggled in through patient data)."""
    out = bytearray()
    gb = is_gb(encoding)
    for ch in s:
        try:
            b = ch.encode(encoding)
        except UnicodeEncodeError:
            b = REPLACEMENT.encode()
        if gb and len(b) > 2:
            b = REPLACEMENT.encode()
        if len(b) == 1 and (b[0] < 0x20 or b[0] == 0x7F):
            b = b" "
        out += b
    return bytes(out)
