"""The satisfaction survey (retained `R/S/survey`, validated and kept by terminal.documents): one
question a screen, answers on a 1..scale."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from terminal import payloads


class SurveyError(ValueError):
    """An answer outside the question's scale."""


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
    def of(cls, doc: payloads.Survey) -> Survey:
        """The kiosk's survey from a validated document (terminal.payloads); a question without
        its own labels gets the scale's defaults (English: its Chinese labels when it has
        those, so a custom scale is never shown with the generic words)."""
        qs = []
        for q in doc.questions:
            labels = tuple(q.labels) or default_labels(q.scale)[0]
            labels_en = tuple(q.labels_en) or (labels if q.labels else default_labels(q.scale)[1])
            qs.append(Question(q.id, q.text, q.text_en, q.scale, labels, labels_en))
        return cls(doc.id, tuple(qs))

    @classmethod
    def parse(cls, payload: bytes | str | dict[str, Any]) -> Survey:
        """Validate with terminal.payloads (PayloadError naming the field), then build."""
        return cls.of(payloads.parse(payloads.Survey, payload))


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
