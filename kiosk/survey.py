"""The satisfaction survey (retained `R/S/survey`): one question a screen, answers on a 1..scale."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


class SurveyError(ValueError):
    pass


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    text_en: str
    scale: int

    def display(self, lang: str) -> str:
        return self.text_en if lang == "en" and self.text_en else self.text


@dataclass(frozen=True)
class Survey:
    id: str
    questions: tuple[Question, ...]

    @classmethod
    def parse(cls, payload: bytes | str | dict[str, Any]) -> Survey:
        doc = json.loads(payload) if isinstance(payload, bytes | str) else payload
        if not isinstance(doc, dict) or doc.get("v") != 1:
            raise SurveyError("not a version 1 survey object")
        sid = doc.get("id")
        if not isinstance(sid, str) or not sid:
            raise SurveyError("id: missing")
        qs = []
        for i, q in enumerate(doc.get("questions") or []):
            if not isinstance(q, dict) or not q.get("id") or not q.get("text"):
                raise SurveyError(f"questions[{i}]: needs id and text")
            scale = q.get("scale", 5)
            if not isinstance(scale, int) or not 2 <= scale <= 10:
                raise SurveyError(f"questions[{i}].scale: must be 2..10")
            qs.append(Question(str(q["id"]), str(q["text"]), str(q.get("text_en") or ""), scale))
        if not qs:
            raise SurveyError("questions: empty")
        return cls(sid, tuple(qs))


@dataclass
class SurveyRun:
    """One patient going through the survey; unanswered (skipped) questions are left out."""

    survey: Survey
    index: int = 0
    answers: dict[str, int] = field(default_factory=dict)

    @property
    def question(self) -> Question:
        return self.survey.questions[self.index]

    @property
    def finished(self) -> bool:
        return self.index >= len(self.survey.questions)

    def answer(self, score: int | None) -> None:
        """Answer (or skip with None) the current question and move on."""
        if self.finished:
            return
        q = self.question
        if score is not None:
            if not 1 <= score <= q.scale:
                raise SurveyError(f"{q.id}: score {score} outside 1..{q.scale}")
            self.answers[q.id] = score
        self.index += 1

    def back(self) -> bool:
        """Go to the previous question; False when already on the first."""
        if self.index == 0:
            return False
        self.index -= 1
        return True

    def event_data(self) -> dict[str, Any]:
        return {"survey": self.survey.id, "answers": dict(self.answers)}
