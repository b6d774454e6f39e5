"""The hospital guide's data (retained `R/S/directory`, validated and kept by terminal.documents):
departments by floor, today's doctors, and lookup by the first letter of a department's pinyin
(or English name)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kiosk.initials import pinyin_initial
from terminal import payloads


@dataclass(frozen=True)
class Department:
    id: str
    name: str
    name_en: str = ""
    floor: str = ""
    location: str = ""
    initial: str = ""
    """First letter of the name's pinyin, upper case (心内科 -> X)."""

    def display(self, lang: str) -> str:
        return self.name_en if lang == "en" and self.name_en else self.name

    def letter(self, lang: str) -> str:
        if lang == "en" and self.name_en:
            return self.name_en[:1].upper()
        return self.initial


@dataclass(frozen=True)
class Doctor:
    name: str
    title: str = ""
    department_id: str = ""
    today: tuple[str, ...] = ()
    bio: str = ""


@dataclass(frozen=True)
class Directory:
    departments: tuple[Department, ...] = ()
    doctors: tuple[Doctor, ...] = ()
    _by_id: dict[str, Department] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_id.update({d.id: d for d in self.departments})

    def department(self, dept_id: str) -> Department | None:
        return self._by_id.get(dept_id)

    def floors(self) -> list[tuple[str, list[Department]]]:
        """Departments grouped by floor, floors in the order they first appear."""
        out: dict[str, list[Department]] = {}
        for d in self.departments:
            out.setdefault(d.floor, []).append(d)
        return list(out.items())

    def letters(self, lang: str) -> list[str]:
        return sorted({d.letter(lang) for d in self.departments if d.letter(lang)})

    def search(self, letter: str, lang: str) -> list[Department]:
        """Departments whose (pinyin or English) name starts with `letter`; all for ''."""
        letter = letter.upper()
        return [d for d in self.departments if not letter or d.letter(lang) == letter]

    def doctors_today(self, dept_id: str | None = None) -> list[Doctor]:
        return [
            d for d in self.doctors if d.today and (dept_id is None or d.department_id == dept_id)
        ]

    @classmethod
    def of(cls, doc: payloads.Directory, *, initials: Mapping[str, str] | None = None) -> Directory:
        """The kiosk's guide from a validated directory document (terminal.payloads). `initials`:
        the names' pinyin initials as far as known (kiosk.initials; a name missing has none yet),
        else they are made here."""
        depts = tuple(
            Department(
                d.id,
                d.name,
                d.name_en,
                d.floor,
                d.location,
                pinyin_initial(d.name) if initials is None else initials.get(d.name, ""),
            )
            for d in doc.departments
        )
        doctors = tuple(
            Doctor(d.name, d.title, d.department_id, tuple(d.today), d.bio) for d in doc.doctors
        )
        return cls(depts, doctors)

    @classmethod
    def parse(cls, payload: bytes | str | dict[str, Any]) -> Directory:
        """Validate with terminal.payloads (PayloadError naming the field), then index."""
        return cls.of(payloads.parse(payloads.Directory, payload))


__all__ = ["Department", "Directory", "Doctor", "pinyin_initial"]
