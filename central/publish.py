"""Checking the site's retained documents (roster, directory, staff, survey) before publishing them."""

from __future__ import annotations

import base64
import binascii
import json
import re
from pathlib import Path
from typing import Any

from terminal import topics
from terminal.cliutil import UsageError
from terminal.envelope import dumps
from terminal.topics import SiteDocument

TOKEN_RE = re.compile(r"^[0-9a-f]{32}$")
MAX_PAYLOAD = 16 * 1024 * 1024  # keep well under mosquitto's default message size limit


def site_topic(topic_root: str, site: str, kind: SiteDocument) -> str:
    if not topics.NAME_RE.match(site):
        raise UsageError(f"--site {site!r}: a site is lower-case letters, digits and '-'")
    try:
        return topics.site_document(topic_root, site, kind)
    except topics.TopicError as e:
        raise UsageError(f"--topic-root: {e}") from None


class _Check:
    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[str] = []

    def need(
        self, obj: Any, key: str, typ: type | tuple[type, ...], where: str, optional: bool = False
    ) -> Any:
        if not isinstance(obj, dict):
            self.problems.append(f"{self.path}: {where}: expected an object")
            return None
        if key not in obj:
            if not optional:
                self.problems.append(f"{self.path}: {where}: missing {key!r}")
            return None
        v = obj[key]
        if not isinstance(v, typ) or isinstance(v, bool) and typ is int:
            names = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
            self.problems.append(f"{self.path}: {where}.{key}: expected {names}, got {v!r:.40}")
            return None
        if isinstance(v, str) and not v.strip() and not optional:
            self.problems.append(f"{self.path}: {where}.{key}: empty")
        return v

    def items(self, obj: Any, key: str, where: str) -> list[Any]:
        v = self.need(obj, key, list, where)
        return v if isinstance(v, list) else []


def _roster(c: _Check, doc: Any) -> str:
    c.need(doc, "v", int, "roster")
    c.need(doc, "date", str, "roster")
    items = c.items(doc, "appointments", "roster")
    for i, a in enumerate(items):
        w = f"appointments[{i}]"
        for k in (
            "id",
            "token",
            "name",
            "department_id",
            "department",
            "doctor",
            "room",
            "slot_start",
            "slot_end",
            "queue_no",
        ):
            c.need(a, k, str, w)
        tok = a.get("token") if isinstance(a, dict) else None
        if isinstance(tok, str) and not TOKEN_RE.fullmatch(tok):
            c.problems.append(
                f"{c.path}: {w}.token: not a card token (32 hex characters); "
                "build the roster with `careterm site roster build`"
            )
    return f"roster for {doc.get('date') if isinstance(doc, dict) else '?'} ({len(items)} entries)"


def _directory(c: _Check, doc: Any) -> str:
    c.need(doc, "v", int, "directory")
    deps = c.items(doc, "departments", "directory")
    for i, d in enumerate(deps):
        for k in ("id", "name"):
            c.need(d, k, str, f"departments[{i}]")
    docs = c.items(doc, "doctors", "directory")
    for i, d in enumerate(docs):
        for k in ("name", "department_id"):
            c.need(d, k, str, f"doctors[{i}]")
        c.need(d, "today", list, f"doctors[{i}]", optional=True)
    return f"directory ({len(deps)} departments, {len(docs)} doctors)"


def _staff(c: _Check, doc: Any) -> str:
    if not isinstance(doc, list):
        c.problems.append(f"{c.path}: the staff directory is a JSON array of clerks")
        return "staff"
    seen: dict[str, int] = {}
    for i, s in enumerate(doc):
        w = f"[{i}]"
        sid = c.need(s, "staff", str, w)
        c.need(s, "name", str, w)
        c.need(s, "title", str, w, optional=True)
        tok = c.need(s, "token", (str, type(None)), w, optional=True)
        if isinstance(tok, str) and not TOKEN_RE.fullmatch(tok):
            c.problems.append(f"{c.path}: {w}.token: not a card token (32 hex characters)")
        photo = c.need(s, "photo", (str, type(None)), w, optional=True)
        if isinstance(photo, str):
            try:
                head = base64.b64decode(photo[:64] + "=" * (-len(photo[:64]) % 4), validate=True)
            except (binascii.Error, ValueError):
                head = b""
            if not head.startswith(b"\xff\xd8"):
                c.problems.append(f"{c.path}: {w}.photo: not a base64 JPEG")
        if isinstance(sid, str):
            if sid in seen:
                c.problems.append(f"{c.path}: {w}.staff: {sid} is also at [{seen[sid]}]")
            seen[sid] = i
    return f"staff directory ({len(doc)} clerks)"


def _survey(c: _Check, doc: Any) -> str:
    c.need(doc, "v", int, "survey")
    c.need(doc, "id", str, "survey")
    qs = c.items(doc, "questions", "survey")
    if isinstance(doc, dict) and "questions" in doc and not qs:
        c.problems.append(f"{c.path}: survey.questions: empty")
    ids = set()
    for i, q in enumerate(qs):
        w = f"questions[{i}]"
        qid = c.need(q, "id", str, w)
        c.need(q, "text", str, w)
        scale = c.need(q, "scale", int, w)
        if isinstance(scale, int) and not 3 <= scale <= 5:
            c.problems.append(f"{c.path}: {w}.scale: {scale} is not 3, 4 or 5")
        if qid in ids:
            c.problems.append(f"{c.path}: {w}.id: {qid} appears twice")
        ids.add(qid)
    return f"survey {doc.get('id') if isinstance(doc, dict) else '?'} ({len(qs)} questions)"


CHECKS = {"roster": _roster, "directory": _directory, "staff": _staff, "survey": _survey}


def load_publishable(kind: str, path: str) -> tuple[bytes, str]:
    """The compact JSON to publish and a one-line summary; UsageError naming every problem."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as e:
        raise UsageError(f"{path}: cannot read: {e.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(
            f"{path}: line {e.lineno}, column {e.colno}: not valid JSON: {e.msg}"
        ) from None
    c = _Check(path)
    summary = CHECKS[kind](c, doc)
    if c.problems:
        shown = "\n".join(c.problems[:20])
        raise UsageError(f"{shown}\n{path}: {len(c.problems)} problem(s); nothing published")
    payload = dumps(doc)
    if len(payload) > MAX_PAYLOAD:
        raise UsageError(f"{path}: {len(payload)} bytes is too large to publish")
    return payload, summary
