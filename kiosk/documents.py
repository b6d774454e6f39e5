"""Validation of the site's retained documents (roster, directory, survey) in one place: each
parser returns the typed document or raises `DocumentError` naming the first bad field.

Each document is first checked against its model in `terminal.payloads` (the one definition
of every payload), then turned into the kiosk's indexed form."""

from __future__ import annotations

from kiosk.directory import Directory, DirectoryError
from kiosk.roster import Roster, RosterError
from kiosk.survey import Survey, SurveyError
from terminal import payloads


class DocumentError(ValueError):
    """A retained document that must not replace the last good one."""


def _check(model: type, payload: bytes) -> None:
    try:
        payloads.parse(model, payload)
    except payloads.PayloadError as e:
        raise DocumentError(str(e)) from None


def parse_roster(payload: bytes, source: str = "") -> Roster:
    _check(payloads.Roster, payload)
    try:
        return Roster.parse(payload, source=source)
    except RosterError as e:
        raise DocumentError(str(e)) from None


def parse_directory(payload: bytes) -> Directory:
    _check(payloads.Directory, payload)
    try:
        return Directory.parse(payload)
    except (DirectoryError, ValueError, TypeError, AttributeError) as e:
        raise DocumentError(str(e) or type(e).__name__) from None


def parse_survey(payload: bytes) -> Survey:
    _check(payloads.Survey, payload)
    try:
        return Survey.parse(payload)
    except (SurveyError, ValueError, TypeError, AttributeError) as e:
        raise DocumentError(str(e) or type(e).__name__) from None
