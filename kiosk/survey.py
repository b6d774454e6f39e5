"""The satisfaction survey (retained `R/S/survey`): one question a screen, answers on a 1..scale."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


class SurveyError(ValueError):
    pass


# Worst first. A question without its own `labels` gets these for its scale (careterm's
# extension of the survey document: `labels` / `labels_en`, one per point, worst first).
DEFAULT_LABELS: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {
    2: (("不满意", "满意"), ("Dissatisfied", "Satisfied")),
    3: (("不满意", "一般", "满意"), ("Dissatisfied", "Neutral", "Satisfied")),
    4: (
        ("不满意", "基本满意", "满意", "非常满意"),
        ("Dissatisfied", "Acceptable", "Satisfied", "Very satisfied"),
    ),
    5: (
        ("很不满意", "不满意", "一般", "满意", "非常满意"),
        ("Very dissatisfied", "Dissatisfied", "Neutral", "Satisfied", "Very satisfied"),
    ),
}


def default_labels(scale: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if scale in DEFAULT_LABELS:
        return DEFAULT_LABELS[scale]
    nums = tuple(str(n) for n in range(1, scale + 1))
    return nums, nums


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    text_en: str
    scale: int
    labels: tuple[str, ...] = ()
    labels_en: tuple[str, ...] = ()

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
            labels = _labels(q, "labels", scale, i) or default_labels(scale)[0]
            labels_en = _labels(q, "labels_en", scale, i) or (
                default_labels(scale)[1] if "labels" not in q else labels
            )
            qs.append(
                Question(
                    str(q["id"]),
                    str(q["text"]),
                    str(q.get("text_en") or ""),
                    scale,
                    labels,
                    labels_en,
                )
            )
        if not qs:
            raise SurveyError("questions: empty")
        return cls(sid, tuple(qs))


def _labels(q: dict[str, Any], key: str, scale: int, i: int) -> tuple[str, ...]:
    v = q.get(key)
    if v is None:
        return ()
    if not isinstance(v, list) or len(v) != scale or not all(isinstance(x, str) and x for x in v):
        raise SurveyError(f"questions[{i}].{key}: needs {scale} texts (one per point, worst first)")
    return tuple(v)


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
