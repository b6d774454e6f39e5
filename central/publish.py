"""Checking the site's retained documents (roster, directory, staff, survey) before publishing
them, with the same models the devices validate them with (terminal.payloads)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from terminal import topics
from terminal.cliutil import UsageError
from terminal.envelope import dumps
from terminal.payloads import DOCUMENTS, MAX_PAYLOAD_BYTES
from terminal.privacy import shown_roster_name
from terminal.topics import SiteDocument

MAX_PAYLOAD = MAX_PAYLOAD_BYTES  # what the devices parse at all


def site_topic(topic_root: str, site: str, kind: SiteDocument) -> str:
    if not topics.NAME_RE.fullmatch(site):
        raise UsageError(f"--site {site!r}: a site is lower-case letters, digits and '-'")
    try:
        return topics.site_document(topic_root, site, kind)
    except topics.TopicError as e:
        raise UsageError(f"--topic-root: {e}") from None


def _where(loc: tuple[Any, ...]) -> str:
    """`questions[0].scale` from pydantic's ("questions", 0, "scale")."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "document"


def _model_problems(path: str, kind: str, doc: Any) -> list[str]:
    """What the devices' own model of the document (terminal.payloads) refuses: a document
    they would refuse must never be published (SPEC 9.4: they keep the last good one)."""
    try:
        DOCUMENTS[kind].model_validate(doc)
    except ValidationError as e:
        return [
            f"{path}: {_where(tuple(err['loc']))}: {err['msg'].removeprefix('Value error, ')}"
            for err in e.errors()
        ]
    return []


def _staff_photos(path: str, doc: Any) -> list[str]:
    problems = []
    for i, s in enumerate(doc if isinstance(doc, list) else []):
        photo = s.get("photo") if isinstance(s, dict) else None
        if isinstance(photo, str):
            try:
                head = base64.b64decode(photo[:64] + "=" * (-len(photo[:64]) % 4), validate=True)
            except (binascii.Error, ValueError):
                head = b""
            if not head.startswith(b"\xff\xd8"):
                problems.append(f"{path}: [{i}].photo: not a base64 JPEG")
    return problems


def _summary(kind: str, doc: Any) -> str:
    d = doc if isinstance(doc, dict) else {}
    if kind == "roster":
        return f"roster for {d.get('date')} ({len(d.get('appointments', []))} entries)"
    if kind == "directory":
        deps, docs = len(d.get("departments", [])), len(d.get("doctors", []))
        return f"directory ({deps} departments, {docs} doctors)"
    if kind == "staff":
        return f"staff directory ({len(doc)} clerks)"
    return f"survey {d.get('id')} ({len(d.get('questions', []))} questions)"


def _mask_names(doc: dict[str, Any]) -> int:
    """Mask, in place, every appointment's name that is not masked (no `*`): a roster goes to
    every kiosk and the broker keeps it on disk, so a full name from a HIS export that skipped
    `site roster build` never leaves the site tools. Returns how many were masked."""
    n = 0
    for a in doc.get("appointments", []):
        name = a.get("name")
        shown = shown_roster_name(name) if isinstance(name, str) else name
        if shown != name:
            a["name"] = shown
            n += 1
    return n


ROSTER_KEPT_AFTER_ITS_DAY = timedelta(hours=6)
"""A retained roster expires at the broker this long after its day ends (the site's time)."""
ROSTER_KEPT_AT_LEAST = timedelta(hours=1)


def retained_expiry_s(kind: str, payload: bytes, now: datetime) -> int | None:
    """How long the broker keeps a retained document: a roster until a while after its day
    (`now`'s time zone is the site's): it names patients' appointments, and a kiosk keeps its
    own copy; every other document until it is replaced (None)."""
    if kind != "roster":
        return None
    day = date.fromisoformat(json.loads(payload)["date"])
    end = datetime.combine(day + timedelta(days=1), time(0), now.tzinfo)
    return int(max(end + ROSTER_KEPT_AFTER_ITS_DAY - now, ROSTER_KEPT_AT_LEAST).total_seconds())


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
    problems = _model_problems(path, kind, doc)
    if kind == "staff":
        problems += _staff_photos(path, doc)
    if problems:
        shown = "\n".join(problems[:20])
        raise UsageError(f"{shown}\n{path}: {len(problems)} problem(s); nothing published")
    summary = _summary(kind, doc)
    if kind == "roster":
        masked = _mask_names(doc)
        if masked:
            summary += (
                f"; {masked} full name(s) masked before publishing (a roster carries names "
                "masked as 张*三, SPEC 6.5: check the export that made it)"
            )
    payload = dumps(doc)
    if len(payload) > MAX_PAYLOAD:
        raise UsageError(f"{path}: {len(payload)} bytes is too large to publish")
    return payload, summary
