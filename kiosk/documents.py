"""Validation of the site's retained documents (roster, directory, survey) in one place: each
parser returns the typed document or raises `DocumentError` naming the first bad field.

When the device session's pydantic payload models land in `terminal/`, these call them."""

from __future__ import annotations

from kiosk.directory import Directory, DirectoryError
from kiosk.roster import Roster, RosterError
from kiosk.survey import Survey, SurveyError


class DocumentError(ValueError):
    """A retained document that must not replace the last good one."""


def parse_roster(payload: bytes, source: str = "") -> Roster:
    try:
        return Roster.parse(payload, source=source)
    except RosterError as e:
        raise DocumentError(str(e)) from None


def parse_directory(payload: bytes) -> Directory:
    try:
        return Directory.parse(payload)
    except (DirectoryError, ValueError, TypeError, AttributeError) as e:
        raise DocumentError(str(e) or type(e).__name__) from None


def parse_survey(payload: bytes) -> Survey:
    try:
        return Survey.parse(payload)
    except (SurveyError, ValueError, TypeError, AttributeError) as e:
        raise DocumentError(str(e) or type(e).__name__) from None
