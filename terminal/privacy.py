"""Card tokens and masked forms (SPEC 6.4): the only shapes a card number may leave a driver in."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

TOKEN_HEX_CHARS = 32


class SaltError(Exception):
    pass


def load_salt(path: str | Path) -> bytes:
    """The site secret: the file's content with surrounding white space removed."""
    p = Path(path)
    try:
        salt = p.read_bytes().strip()
    except FileNotFoundError:
        raise SaltError(f"{p}: salt file not found ([privacy].salt_file)") from None
    except OSError as e:
        raise SaltError(f"{p}: cannot read salt file: {e.strerror}") from None
    if not salt:
        raise SaltError(f"{p}: salt file is empty ([privacy].salt_file)")
    return salt


def card_token(salt: bytes, kind: str, number: str) -> str:
    """First 32 lower-case hex chars of HMAC-SHA256(salt, f"{kind}:{NUMBER}")."""
    msg = f"{kind}:{number.upper()}".encode()
    return hmac.new(salt, msg, hashlib.sha256).hexdigest()[:TOKEN_HEX_CHARS]


LOOKUP_KINDS = ("appointment", "phone_birth")


def lookup_token(salt: bytes, kind: str, value: str) -> str:
    """The roster token of a typed lookup (SPEC 9.6): `card_token` with kind `appointment`
    (value: the appointment number) or `phone_birth` (value: the 11-digit mobile number
    followed by the birth date YYYYMMDD, e.g. `1381234567819560312`). The site's roster
    builder and the kiosk both call this, so the two always agree."""
    if kind not in LOOKUP_KINDS:
        raise ValueError(f"unknown lookup kind {kind!r}")
    return card_token(salt, kind, value.strip())


def mask_number(number: str) -> str:
    """Keep the first 4 and last 4 characters, `*` for each one between."""
    if len(number) <= 8:
        return number[:2] + "*" * max(0, len(number) - 2)
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


MAX_ROSTER_NAME = 32
"""The longest roster name (terminal.payloads.Appointment.name)."""


def mask_roster_name(name: str) -> str:
    """A roster's masked name (SPEC 6.5): first and last character kept (张*三, 欧阳**锋);
    two-character names keep the first (李*)."""
    name = name.strip()
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * min(len(name) - 2, MAX_ROSTER_NAME - 2) + name[-1]


MAX_SHOWN_OF_MASKED = 3
"""A masked name shows at most this many characters (张*三 2, a compound surname's 欧阳**锋 3)."""


def is_masked(name: str) -> bool:
    """Whether a roster name is masked: it has a `*` and shows at most MAX_SHOWN_OF_MASKED
    characters (`Zhang*San Feng` has a `*` and shows nearly all of it). An empty one is too."""
    shown = sum(1 for c in name if c != "*" and not c.isspace())
    return shown == 0 or ("*" in name and shown <= MAX_SHOWN_OF_MASKED)


def shown_roster_name(name: str) -> str:
    """A roster name as a kiosk shows and prints it: as the site masked it (`is_masked`), or
    masked here (a HIS that publishes full names must not put them on screen or paper)."""
    return name if is_masked(name) else mask_roster_name(name)


def mask_name(name: str) -> str | None:
    name = name.strip()
    if not name:
        return None
    return name[0] + "*" * (len(name) - 1)
