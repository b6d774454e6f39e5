"""A roster validated a few appointments at a time and kept small: a tuple per appointment,
or a row of an SQLite file (terminal.roster_index).

`payloads.parse(payloads.Roster, ...)` of a 20,000-entry roster builds 20,000 pydantic models at
once next to the decoded JSON: ~42 MB held for the day and a peak of ~90 MB that the allocator
does not give back. `parse_roster` validates exactly as `payloads.Roster` does, with the same
models (the head against `payloads.Roster`, the appointments against `payloads.Appointment`,
CHUNK at a time), but turns each appointment into an `AppointmentRow` as soon as it is valid and
lets its JSON go, and shares the strings that repeat (departments, doctors, rooms, slot times).
The result is a `payloads.Roster` whose appointments are those rows, in a list or, given a
folder for it, in the roster's index file (nothing of them left on the heap). Any fault: the
whole payload is validated again by `payloads.parse`, so that a refused roster is refused with
the same message as before.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from terminal import payloads
from terminal.roster_index import AppointmentRow, RosterIndex, index_name

__all__ = ["AppointmentRow", "no_cycle_collection", "parse_roster"]

log = logging.getLogger("careterm.documents")


_PROBE = {
    "id": "probe",
    "department_id": "probe",
    "department": "probe",
    "slot_start": "2000-01-01T00:00:00",
    "slot_end": "2000-01-01T00:00:00",
    "queue_no": "1",
}
"""A valid appointment: the head of a roster is validated with it in place of the list."""

CHUNK = 128
"""Appointments validated per call: the per-call cost shared (~3x faster than one by one), the
models alive at once few."""
_CHECK = TypeAdapter(list[payloads.Appointment])


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Without Python's cycle collector for a while: decoding and validating a big roster makes
    ~0.5 million containers, none in a cycle, and the collector would walk the whole heap
    again and again meanwhile (~35 % of a 20,000-entry roster's parse and index)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


CHILD_MIN_BYTES = 256 * 1024
"""A roster this big (~800 appointments) is decoded and validated by a child process that writes
its index file: the decoded JSON (~6x the payload at its peak) is the child's memory, returned
whole when it exits. In the kiosk's own heap it would be scattered among what the screen and
the link allocate meanwhile, and much of it kept (~16 MB of a 20,000-entry roster's 39 MB)."""
CHILD_TIMEOUT_S = 600
REFUSED = 3
"""The child's exit status for a payload that is not a valid roster (the fault on stdout)."""


def in_child(payload: bytes | str) -> bool:
    """Whether `parse_roster(payload, index_dir)` has a child process validate it (seconds of a
    Pi-class CPU for a big roster)."""
    return len(payload) >= CHILD_MIN_BYTES


def parse_roster(
    payload: bytes | str,
    index_dir: Path | None = None,
    *,
    child: bool | None = None,
    digest: str | None = None,
) -> payloads.Roster:
    """Like `payloads.parse(payloads.Roster, payload)`: the same document or the same
    PayloadError, with the appointments as `AppointmentRow`s.

    With `index_dir`, the rows go to an SQLite file there (terminal.roster_index) instead of
    the heap, chunk by chunk as they are validated, and the document's `appointments` is that
    file's `RosterIndex`; a file already built from the same payload is opened instead. `child`
    (default: from CHILD_MIN_BYTES up) has a child process build the file. When the file cannot
    be written (disk full, say) or the child fails, the rows are kept in memory as without it.
    `digest`: the payload's SHA-256 (hex) when the caller has it already (a 6 MB roster: ~10 ms
    here, a tenth of a second at a Pi 3-class budget)."""
    if index_dir is not None:
        raw = payload.encode() if isinstance(payload, str) else payload
        path = index_dir / index_name(digest or hashlib.sha256(raw).hexdigest())
        found = RosterIndex.open(path)
        if found is not None:
            head, index = found
            return _document(head, index)
        try:
            if in_child(raw) if child is None else child:
                return _parse_in_child(raw, path)
            return _parse(payload, path)
        except (OSError, sqlite3.Error, subprocess.SubprocessError) as e:
            log.warning("roster kept in memory: its index %s cannot be written: %s", path, e)
    return _parse(payload, None)


def _parse_in_child(raw: bytes, path: Path) -> payloads.Roster:
    done = subprocess.run(
        [sys.executable, "-m", "terminal.roster_rows", str(path)],
        input=raw,
        capture_output=True,
        timeout=CHILD_TIMEOUT_S,
    )
    if done.returncode == REFUSED:
        raise payloads.PayloadError(done.stdout.decode("utf-8", "replace"))
    if done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise OSError(f"the roster builder exited with {done.returncode}: {why[0]}")
    found = RosterIndex.open(path)
    if found is None:
        raise OSError(f"{path}: built by the child but cannot be opened")
    return _document(*found)


def _parse(payload: bytes | str, path: Path | None) -> payloads.Roster:
    with no_cycle_collection():
        obj = payloads.loads(payload)
        doc = _rows(obj, path) if isinstance(obj, dict) else None
    if doc is None:
        return payloads.parse(payloads.Roster, payload)  # the fault, named as ever
    return doc


class _Refused(Exception):
    """An appointment further on is not valid: the file being written is dropped."""


def _rows(obj: dict[str, Any], path: Path | None) -> payloads.Roster | None:
    """The roster, or None when anything in it is not valid (`obj` is consumed)."""
    items = obj.get("appointments")
    if type(items) is not list or not items:
        return None
    try:
        head = payloads.Roster.model_validate(
            {**{k: v for k, v in obj.items() if k != "appointments"}, "appointments": [_PROBE]}
        )
    except ValidationError:
        return None
    shared: dict[str, str] = {}
    one = shared.setdefault
    same = payloads.SameAppointment()

    def chunks() -> Iterator[list[AppointmentRow]]:
        for start in range(0, len(items), CHUNK):
            end = start + CHUNK
            try:
                models = _CHECK.validate_python(items[start:end])
                for a in models:
                    same.check(a)
            except ValueError:  # a ValidationError, or one id given two appointments
                raise _Refused from None
            items[start:end] = [None] * len(models)  # their JSON can go now
            yield [
                AppointmentRow(
                    a.id,
                    a.token,
                    tuple(a.lookup),
                    a.name,
                    one(a.department_id, a.department_id),
                    one(a.department, a.department),
                    one(a.doctor, a.doctor),
                    one(a.room, a.room),
                    one(a.slot_start, a.slot_start),
                    one(a.slot_end, a.slot_end),
                    a.queue_no,
                )
                for a in models
            ]

    fields = {
        "v": head.v,
        "date": head.date.isoformat(),
        "generated": head.generated,
        "fields_set": sorted(head.model_fields_set),
    }
    try:
        if path is None:
            rows: list[AppointmentRow] | RosterIndex = [a for c in chunks() for a in c]
        else:
            rows = RosterIndex.build(path, fields, chunks())
    except _Refused:
        return None
    return _document(fields, rows)


def _document(head: dict[str, Any], rows: list[AppointmentRow] | RosterIndex) -> payloads.Roster:
    """The roster of a validated head and its rows (not validated again)."""
    return payloads.Roster.model_construct(
        set(head["fields_set"]),
        v=head["v"],
        date=date.fromisoformat(head["date"]),
        generated=head["generated"],
        appointments=rows,
    )


def main() -> int:
    """`python -m terminal.roster_rows INDEX_FILE`: the roster payload on stdin is validated
    and its index file written (status 0); a payload that is no valid roster: its fault on
    stdout, status REFUSED."""
    try:
        _parse(sys.stdin.buffer.read(), Path(sys.argv[1]))
    except payloads.PayloadError as e:
        sys.stdout.write(str(e))
        return REFUSED
    return 0


if __name__ == "__main__":
    sys.exit(main())
