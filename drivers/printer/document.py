"""What a ticket says, independent of the printer: a list of blocks the ESC/POS builder renders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Align = Literal["left", "center", "right"]


@dataclass(frozen=True)
class Text:
    text: str
    align: Align = "left"
    bold: bool = False
    double: bool = False
    """Double width and height (the queue number)."""


@dataclass(frozen=True)
class Rule:
    """A full-width line of dashes."""

    char: str = "-"


@dataclass(frozen=True)
class QR:
    data: str
    size: int = 6
    """Module size in dots (1..16)."""


@dataclass(frozen=True)
class Feed:
    lines: int = 1


Block = Text | Rule | QR | Feed


@dataclass(frozen=True)
class Document:
    blocks: tuple[Block, ...]
    title: str = ""
    """For logs and the preview file name; never patient data."""
