"""Turns a line from a scanner or card reader into a `CardRead` (SPEC 6.2, 6.4): the raw number stops here.

Magstripe swipes arrive as track text: track 1 `%B<number>^<NAME>^...?`, track 2
`;<number>=<data>?` (track 3 like track 2). A swipe may carry several tracks in one line;
each track is tried against the rules, track 2 first, then track 1 (which also gives a name).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from drivers.card_reader.base import CardRead, unreadable
from drivers.card_reader.sam_protocol import IdText
from terminal import resident_id
from terminal.privacy import card_token, mask_name, mask_number

log = logging.getLogger("careterm.drivers.card")

TRACK1 = re.compile(r"%[A-Z]?(?P<pan>[0-9]{1,19})\^(?P<name>[^^?]{0,26})\^[^?]*\?")
ELDERLY_AGE = 65
"""An ID card of a patient this old or older turns the kiosk's care mode on (SPEC 9.6)."""
TRACK23 = re.compile(r"[;+](?P<pan>[0-9]{1,19})(?:=(?P<data>[0-9]*))?\?")


@dataclass(frozen=True)
class Rule:
    kind: str
    pattern: re.Pattern[str]


def compile_rules(rules: Iterable[object]) -> list[Rule]:
    """From `[card_reader].classify` (objects or dicts with `kind` and `pattern`)."""
    out = []
    for r in rules:
        kind = r["kind"] if isinstance(r, dict) else r.kind  # type: ignore[attr-defined]
        pattern = r["pattern"] if isinstance(r, dict) else r.pattern  # type: ignore[attr-defined]
        out.append(Rule(str(kind), re.compile(str(pattern))))
    return out


def track_candidates(line: str) -> list[tuple[str, str | None]]:
    """(text to classify, cardholder name or None) for a line; the line itself comes first."""
    out: list[tuple[str, str | None]] = [(line, None)]
    if not line or line[0] not in "%;+":
        return out
    t1 = TRACK1.search(line)
    name = None
    if t1:
        raw_name = t1.group("name").strip()
        # track 1 names are "SURNAME/GIVEN"; a mask keeps only the first letter anyway
        name = raw_name.replace("/", "") or None
    for m in TRACK23.finditer(line):
        text = m.group(0) if line[m.start()] == ";" else ";" + m.group(0)[1:]
        out.append((text, name))
        out.append((m.group("pan"), name))
    if t1:
        out.append((t1.group("pan"), name))
    return out


class Classifier:
    """First matching rule wins; ID numbers must pass their check digit or the read is dropped."""

    def __init__(self, rules: Sequence[Rule], salt: bytes, today: dt.date | None = None) -> None:
        self.rules = list(rules)
        self.salt = salt
        self._today = today
        self._why = "unrecognised"  # why the last read_for / classify gave None

    def read_for(
        self, kind: str, number: str, name: str | None = None, valid: bool = True
    ) -> CardRead | None:
        """The SPEC 6.4 read for a number of a known kind (None for a failed ID check digit)."""
        number = number.strip()
        self._why = "unrecognised"
        if not number:
            return None
        if kind == "id_card" and not resident_id.is_valid(number):
            log.info("card: ID number rejected (check digit wrong)")
            self._why = "check_digit"
            return None
        name_masked = mask_name(name) if name else None
        if kind == "appointment_qr":
            return CardRead(
                kind=kind,
                token=None,
                masked=mask_number(number),
                name_masked=name_masked,
                valid=valid,
                appointment=number,
            )
        return CardRead(
            kind=kind,
            token=card_token(self.salt, kind, number),
            masked=mask_number(number.upper()),
            name_masked=name_masked,
            valid=valid,
            elderly=kind == "id_card" and self._elderly(number),
        )

    def _elderly(self, number: str) -> bool:
        """Aged ELDERLY_AGE or more today, from the birth date inside the ID number."""
        try:
            born = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
        except ValueError:
            return False
        today = self._today or dt.date.today()
        age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
        return age >= ELDERLY_AGE

    def classify_or_reject(self, line: str) -> CardRead:
        """`classify`, but a line that gives no read becomes a read with `problem` set
        ("unrecognised" or "check_digit") and no token, so the kiosk can tell the patient."""
        read = self.classify(line)
        if read is not None:
            return read
        return unreadable(self._why)

    def classify(self, line: str) -> CardRead | None:
        for text, name in track_candidates(line):
            for rule in self.rules:
                m = rule.pattern.search(text)
                if not m:
                    continue
                # first match wins: an ID number failing its check digit rejects the line
                # rather than falling through to a looser rule (18 digits also fit a
                # medical card pattern)
                return self.read_for(rule.kind, m.group("number") or "", name)
        log.info("card: a line of %d characters matched no [card_reader].classify rule", len(line))
        self._why = "unrecognised"
        return None

    def id_card(self, text: IdText) -> CardRead | None:
        """A SAM read: valid=False when the card's `valid to` date has passed."""
        today = self._today or dt.date.today()
        return self.read_for("id_card", text.number, text.name, valid=not text.expired(today))
