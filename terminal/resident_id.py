"""The resident ID number's check character (GB 11643, ISO 7064 MOD 11-2): one function for all."""

from __future__ import annotations

import re

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"  # index = weighted sum of the first 17 digits mod 11
_SHAPE = re.compile(r"^[0-9]{17}[0-9X]$")


def check_char(first17: str) -> str:
    """The 18th character for these 17 digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("a resident ID number starts with 17 digits")
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11]


def is_valid(number: str) -> bool:
    """18 characters whose last one is the right check character (`x` taken as `X`)."""
    number = number.upper()
    return bool(_SHAPE.fullmatch(number)) and check_char(number[:17]) == number[17]


def complete(first17: str) -> str:
    """The 17 digits with their check character appended (demo and test data)."""
    return first17 + check_char(first17)
