"""The hospital guide's data (retained `R/S/directory`): departments by floor, today's doctors,
and lookup by the first letter of a department's pinyin (or English name)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("careterm.kiosk.directory")


class DirectoryError(ValueError):
    pass


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
    def parse(cls, payload: bytes | str | dict[str, Any]) -> Directory:
        doc = json.loads(payload) if isinstance(payload, bytes | str) else payload
        if not isinstance(doc, dict) or not isinstance(doc.get("departments", []), list):
            raise DirectoryError("not a directory object with a departments list")
        depts = []
        for i, row in enumerate(doc.get("departments") or []):
            if not isinstance(row, dict) or not row.get("id") or not row.get("name"):
                raise DirectoryError(f"departments[{i}]: needs id and name")
            name = str(row["name"])
            depts.append(
                Department(
                    id=str(row["id"]),
                    name=name,
                    name_en=str(row.get("name_en") or ""),
                    floor=str(row.get("floor") or ""),
                    location=str(row.get("location") or ""),
                    initial=pinyin_initial(name),
                )
            )
        doctors = []
        for i, row in enumerate(doc.get("doctors") or []):
            if not isinstance(row, dict) or not row.get("name"):
                raise DirectoryError(f"doctors[{i}]: needs a name")
            today = row.get("today") or []
            doctors.append(
                Doctor(
                    name=str(row["name"]),
                    title=str(row.get("title") or ""),
                    department_id=str(row.get("department_id") or ""),
                    today=tuple(str(t) for t in today) if isinstance(today, list) else (),
                    bio=str(row.get("bio") or ""),
                )
            )
        return cls(tuple(depts), tuple(doctors))


def pinyin_initial(text: str) -> str:
    """Upper-case first letter of the pinyin of `text` (polyphones resolved by pypinyin's phrases:
    重症医学科 -> Z); an ASCII first character is its own initial."""
    text = text.strip()
    if not text:
        return ""
    if text[0].isascii():
        return text[0].upper() if text[0].isalpha() else ""
    from pypinyin import Style, lazy_pinyin

    letters = lazy_pinyin(text, style=Style.FIRST_LETTER, errors="ignore")
    return letters[0][:1].upper() if letters and letters[0] else ""
