"""The site's retained documents on a device (SPEC 9.4): validated in one place, last good one kept.

A roster, directory, survey or staff document is validated with its terminal.payloads model.
One that fails never replaces the last good one, in memory or on disk, and raises a `warning`
alert of kind `document` naming the document and the fault (once per distinct payload, so a
retained document re-read at every reconnect does not repeat it). A valid roster for another
date is kept aside (`roster-YYYY-MM-DD.json`), never in place of today's, and becomes the
current one on its day.

    store = DocumentStore("staff", cfg.data_dir, alert=uplink.alert)
    store.migrate(old_path)           # once: a file an older version kept elsewhere
    store.load()                      # at start: the last good one from disk, or None
    result = store.offer(payload)     # a retained message arrived
    if result.accepted: use(store.current)

A document from a local file (the kiosk's `roster_file`) is offered with `save=False` (the file
is its own copy on disk) and `if_newer=True` (it never replaces a roster generated later).

Thread-safe; `offer` writes a file (fsync), so call it from the app's core thread rather than
the link thread.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from terminal.payloads import DOCUMENTS, PayloadError, Roster, loads, parse
from terminal.privacy import MAX_ROSTER_NAME, is_masked, shown_roster_name
from terminal.roster_index import RosterIndex, prune
from terminal.roster_rows import parse_roster
from terminal.storage import write_durably
from terminal.topics import SiteDocument

log = logging.getLogger("careterm.documents")

FOLDER = "documents"
INDEX_FOLDER = "roster-index"
"""In FOLDER: the appointments of the rosters in use and kept aside, as SQLite files
(terminal.roster_index), off the kiosk's heap."""
KEEP_ASIDE_DAYS = 7
"""Rosters further ahead than this are not kept aside (a typo in the date, most likely)."""
FOLDER_MODE = 0o750
"""The documents folder: a roster holds patients' card tokens, masked names and appointments,
so other users of the device never read it, whatever the umask it was started with."""

_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")


_NAME = re.compile(rb'"name"\s*:\s*"((?:[^"\\]|\\.)*)"')


def masked_roster(payload: bytes) -> bytes:
    """The roster payload as it is kept on disk: itself when every name is masked (the site's
    `site roster build` masks them), else a copy with the names masked as a kiosk shows them
    (a HIS publishing SPEC 6.5 itself may send full names: they never reach the disk)."""
    if all(is_masked(_json_text(m[1])) for m in _NAME.finditer(payload)):
        return payload
    try:
        doc = loads(payload)  # (size, nesting and encoding guarded as validation does)
    except PayloadError:
        return payload  # not a roster: validation says why
    rows = doc.get("appointments") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        return payload
    for a in rows:
        name = a.get("name") if isinstance(a, dict) else None
        # (one too long stays as it is: it is refused as it always was)
        if isinstance(name, str) and len(name) <= MAX_ROSTER_NAME:
            a["name"] = shown_roster_name(name)
    return json.dumps(doc, ensure_ascii=False).encode()


def _has_unmasked_name(rows: Any) -> bool:
    if isinstance(rows, RosterIndex):
        return rows.has_unmasked_name()
    return any(not is_masked(a.name) for a in rows)


def _json_text(raw: bytes) -> str:
    """A JSON string's content (escapes included) as text; "" when it is not one."""
    try:
        text = json.loads(b'"' + raw + b'"')
    except ValueError:
        return ""
    return text if isinstance(text, str) else ""


def safe_fault(fault: str) -> str:
    """A validation fault as it is logged, alerted (MQTT, site database) and shown: every quoted
    value left out. A validator may quote the field it refused (`not an ISO 8601 time ('...')`),
    and a HIS export whose columns slipped puts an ID number or a full name in that field."""
    return _QUOTED.sub("<value not shown>", fault)


AlertFn = Callable[..., object]
"""`alert(kind, severity, message, **details)`, e.g. `Uplink.alert`."""


@dataclass(frozen=True)
class Prepared:
    """A payload validated (and a roster indexed) ahead of its `offer`, off the core thread."""

    digest: str
    document: BaseModel | None
    fault: str | None


@dataclass(frozen=True)
class Offer:
    """What became of an offered document."""

    accepted: bool
    """It is now the current one."""
    kept_aside: bool = False
    """A valid roster for another date: kept for its day, not in use."""
    fault: str | None = None
    """Why it was refused (None when it was valid)."""
    document: BaseModel | None = None


class DocumentStore:
    """One retained document of the site: its model, the last good copy and its file."""

    def __init__(
        self,
        name: SiteDocument,
        data_dir: str | os.PathLike[str],
        *,
        alert: AlertFn | None = None,
        today: Callable[[], date] = date.today,
    ) -> None:
        self.name = name
        self.model: type[BaseModel] = DOCUMENTS[name]
        self.folder = Path(data_dir) / FOLDER
        self.path = self.folder / f"{name}.json"
        self.index_dir = self.folder / INDEX_FOLDER if name == "roster" else None
        self._alert = alert
        self._today = today
        self._lock = threading.Lock()
        self._current: BaseModel | None = None
        self._source: tuple[BaseModel, str, bool] | None = None
        """(document, sha256 of its payload, that payload is this store's file): a retained
        document offered again unchanged (at every reconnect, and right after start-up when the
        one on disk was loaded) is known without validating it again (a 20,000-entry roster:
        ~0.3 s of CPU on a desktop, seconds on a Pi-class kiosk) nor writing it again."""
        self._aside: dict[date, tuple[Roster, bytes]] = {}
        self._alerted: set[str] = set()
        self.full_names = False
        """The last roster parsed had full names (a HIS publishing SPEC 6.5 itself, or a copy an
        older version kept): its index was made from a masked copy (`masked_roster`)."""
        self._preparing = 0
        self._prepared: list[Path] = []
        """Index files of rosters prepared and not yet offered: kept by `_prune`."""

    # -- reading -----------------------------------------------------------------------------

    @property
    def current(self) -> BaseModel | None:
        """The document in use: for a roster, today's only (one kept aside takes over on its day)."""
        with self._lock:
            if self.name == "roster":
                self._roll_over()
            return self._current

    def aside(self) -> list[date]:
        """Dates of the valid rosters kept aside for another day."""
        with self._lock:
            return sorted(self._aside)

    def aside_rosters(self) -> list[Roster]:
        """The valid rosters kept aside for another day, by date."""
        with self._lock:
            return [self._aside[d][0] for d in sorted(self._aside)]

    def load(self) -> BaseModel | None:
        """Read the last good copy (and any rosters kept aside) from disk at start-up."""
        with self._lock:
            self._current, raw, digest = self._read_with_bytes(self.path)
            if self._current is not None:
                self._source = (self._current, digest, True)
                if self.full_names:
                    self._save(self.path, raw)  # kept with full names by an older version
            if self.name == "roster":
                for p in sorted(self.folder.glob("roster-*.json")):
                    doc, aside_raw, _ = self._read_with_bytes(p)
                    if isinstance(doc, Roster):
                        self._aside[doc.date] = (doc, aside_raw)
                        if self.full_names:
                            self._save(p, aside_raw)
                if isinstance(self._current, Roster) and self._current.date != self._today():
                    if self._current.date < self._today():
                        self._drop_past(self._current)
                    else:  # a clock behind (a Pi without RTC): keep it for its day
                        self._aside.setdefault(self._current.date, (self._current, b""))
                    self._current = None
                self._roll_over()
                # Only what a killed process left half written: the file of a roster that is
                # not stored here (the kiosk's `roster_file`) is offered next, and opened again.
                self._prune(temporary_only=True)
        return self.current

    def _read_with_bytes(self, path: Path) -> tuple[BaseModel | None, bytes, str]:
        """The document in `path`, its bytes and their digest."""
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None, b"", ""
        except OSError as e:
            log.error("%s: cannot read %s: %s", self.name, path, e.strerror)
            return None, b"", ""
        digest = _digest(raw)
        try:
            return self._parse(raw, digest), raw, digest
        except PayloadError as e:
            log.error("%s: %s is not usable (%s); ignored", self.name, path, e)
            return None, raw, digest

    def prepare(self, payload: bytes) -> Prepared:
        """Validate `payload` (and index a roster) on any thread, for `offer(payload,
        prepared=...)` on the app's core thread: the time it takes is then not the core's."""
        digest = _digest(payload)
        with self._lock:
            self._preparing += 1
        try:
            doc = self._parse(payload, digest)
        except PayloadError as e:
            return Prepared(digest, None, str(e))
        else:
            if isinstance(doc, Roster) and isinstance(doc.appointments, RosterIndex):
                with self._lock:
                    self._prepared.append(doc.appointments.path)
            return Prepared(digest, doc, None)
        finally:
            with self._lock:
                self._preparing -= 1

    def _parse(self, payload: bytes, digest: str) -> BaseModel:
        """Validated with its model (PayloadError, its values left out: `safe_fault`); a roster
        kept small (terminal.roster_rows)."""
        try:
            if self.model is not Roster:
                return parse(self.model, payload)
            self._private_folder()
            doc = parse_roster(payload, self.index_dir, digest=digest)
            rows = doc.appointments
            self.full_names = _has_unmasked_name(rows)
            if not self.full_names:
                return doc
            # A HIS's full names: the rows are made again from a masked copy, and the index
            # file keeps the name of the payload received (an unchanged one is known).
            if isinstance(rows, RosterIndex):
                rows.close()
                self._unlink(rows.path)
            return parse_roster(masked_roster(payload), self.index_dir, digest=digest)
        except PayloadError as e:
            raise PayloadError(safe_fault(str(e))) from None

    def _private_folder(self) -> None:
        """The documents folder, closed to other users (FOLDER_MODE)."""
        try:
            self.folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
            if self.folder.stat().st_mode & 0o007:
                os.chmod(self.folder, FOLDER_MODE)
        except OSError as e:
            log.warning("%s: cannot close %s to other users: %s", self.name, self.folder, e)

    # -- offering ----------------------------------------------------------------------------

    def offer(
        self,
        payload: bytes,
        source: str = "mqtt",
        *,
        save: bool = True,
        if_newer: bool = False,
        prepared: Prepared | None = None,
    ) -> Offer:
        """Validate `payload`; keep it when it is good. Never raises for a bad document.

        `save=False`: used in memory but not written (a local file is its own copy on disk).
        `if_newer`: a roster for today generated before the one in use is not taken.
        `prepared`: `prepare(payload)`'s result, used instead of validating here."""
        if prepared is not None and isinstance(prepared.document, Roster):
            rows = prepared.document.appointments
            with self._lock:  # offered: its file is now kept only if the roster is
                if isinstance(rows, RosterIndex) and rows.path in self._prepared:
                    self._prepared.remove(rows.path)
        if not payload:
            # An empty retained message clears the topic at the broker: nothing to use.
            log.info("%s: empty retained message ignored; the last good one stays", self.name)
            return Offer(False, fault="empty message")
        digest = _digest(payload)
        with self._lock:
            if self.name == "roster":
                self._roll_over()
            cur, known = self._current, self._source
            unchanged = known is not None and known[0] is cur and known[1] == digest
            if unchanged and (not save or (known is not None and known[2] and self.path.exists())):
                log.debug("%s from %s unchanged", self.name, source)
                if isinstance(cur, Roster):
                    self._unlink(self._aside_path(cur.date))
                return Offer(True, document=cur)
        if prepared is not None and prepared.digest == digest:
            if prepared.document is None:
                fault = prepared.fault or "not valid"
                self._refused(payload, fault, source)
                return Offer(False, fault=fault)
            doc = prepared.document
        else:
            try:
                doc = self._parse(payload, digest)
            except PayloadError as e:
                self._refused(payload, str(e), source)
                return Offer(False, fault=str(e))
        if isinstance(doc, Roster) and doc.date != self._today():
            with self._lock:
                try:
                    offered = self._keep_aside(doc, payload, save)
                finally:
                    self._prune()
            if offered.fault is not None:
                # valid, but for a day gone or too far ahead: the site is told, as for a fault
                self._refused(payload, offered.fault, source)
            return offered
        with self._lock:
            try:
                if if_newer and self.name == "roster":
                    self._roll_over()
                    if _generated(doc) < _generated(self._current):
                        log.info("roster from %s is older than the one in use; not used", source)
                        return Offer(False, document=doc)
                self._current = doc
                self._source = (doc, digest, save)
                self._aside.pop(getattr(doc, "date", None), None)  # type: ignore[arg-type]
            finally:
                self._prune()
        if save:
            self._save(self.path, payload)
        if isinstance(doc, Roster):
            self._unlink(self._aside_path(doc.date))
        log.info("%s from %s accepted", self.name, source)
        return Offer(True, document=doc)

    def _keep_aside(self, doc: Roster, payload: bytes, save: bool = True) -> Offer:
        today = self._today()
        if doc.date < today or (doc.date - today).days > KEEP_ASIDE_DAYS:
            fault = (
                f"roster for {doc.date} is not for today ({today}) nor the "
                f"{KEEP_ASIDE_DAYS} days after it: not used, not kept"
            )
            return Offer(False, fault=fault, document=doc)
        self._aside[doc.date] = (doc, payload)
        if save:
            self._save(self._aside_path(doc.date), payload)
        log.info("roster for %s kept aside; today's (%s) stays in use", doc.date, today)
        return Offer(False, kept_aside=True, document=doc)

    def _roll_over(self) -> None:
        """Called with the lock held: on a new day, a roster kept aside for it takes over."""
        today = self._today()
        cur = self._current
        if isinstance(cur, Roster) and cur.date == today:
            return
        if cur is not None:
            self._current = None
            if isinstance(cur, Roster) and cur.date < today:
                self._drop_past(cur)
        aside = len(self._aside)
        hit = self._aside.pop(today, None)
        for d in [d for d in self._aside if d < today]:
            del self._aside[d]
            self._unlink(self._aside_path(d))
        if hit is not None:
            doc, raw = hit
            self._current = doc
            if raw:
                self._save(self.path, raw)
                self._source = (doc, _digest(raw), True)
            self._unlink(self._aside_path(today))
            log.info("roster for %s (kept aside) is now in use", today)
        if cur is not None or len(self._aside) != aside:
            self._prune()

    def _drop_past(self, doc: Roster) -> None:
        """Called with the lock held: a past day's roster is never used again (check-in takes
        today's only), so its patients' tokens, names and appointments leave the disk now, not
        whenever the next roster comes (a weekend, a site that stopped publishing)."""
        known = self._source
        if known is not None and known[0] is doc:
            self._source = None
            if known[2]:
                self._unlink(self.path)
        rows = doc.appointments
        if isinstance(rows, RosterIndex) and rows.path not in self._prepared:
            self._unlink(rows.path)  # (still readable through a handle held until let go)
        log.info("roster of %s is past: removed from this device", doc.date)

    def _prune(self, *, temporary_only: bool = False) -> None:
        """Called with the lock held: remove the index files of rosters no longer in use nor
        kept aside (one still held by a reader stays readable until it lets it go)."""
        if self.index_dir is None or self._preparing:
            return  # (tidied at the next change)
        docs = [self._current, *(doc for doc, _ in self._aside.values())]
        if self._source is not None:
            docs.append(self._source[0])
        keep = [
            d.appointments.path
            for d in docs
            if isinstance(d, Roster) and isinstance(d.appointments, RosterIndex)
        ] + self._prepared
        prune(self.index_dir, keep, temporary_only=temporary_only)

    def _aside_path(self, day: date) -> Path:
        return self.folder / f"roster-{day.isoformat()}.json"

    def _refused(self, payload: bytes, fault: str, source: str) -> None:
        log.warning("%s from %s refused (the last good one stays): %s", self.name, source, fault)
        digest = hashlib.sha256(payload).hexdigest()
        with self._lock:
            if digest in self._alerted:
                return
            self._alerted.add(digest)
        if self._alert is None:
            return
        try:
            self._alert(
                "document",
                "warning",
                f"{self.name} document refused, the last good one stays: {fault}"[:500],
                document=self.name,
                fault=fault[:300],
                source=source,
            )
        except Exception as e:  # the alert is news, not a reason to fail the offer
            log.error("%s: the document alert was not recorded: %s", self.name, e)

    # -- files -------------------------------------------------------------------------------

    def migrate(self, old: Path) -> None:
        """Adopt, once, a file an older version kept at `old` (call before `load`): a valid one
        becomes this store's file (a roster for another date its file kept aside) unless the
        store has one there already, and `old` is removed; an unusable one is renamed
        `<old>.unusable` so that it is neither used nor looked at again."""
        try:
            raw = old.read_bytes()
        except FileNotFoundError:
            return
        except OSError as e:
            log.error("%s: cannot read %s to move it: %s", self.name, old, e.strerror)
            return
        try:
            doc = parse(self.model, raw)
        except PayloadError as e:
            log.error(
                "%s: %s is not usable (%s); renamed .unusable", self.name, old, safe_fault(str(e))
            )
            try:
                old.rename(old.with_name(old.name + ".unusable"))
            except OSError as err:
                log.error("%s: cannot rename %s: %s", self.name, old, err.strerror)
            return
        dest = self.path
        if isinstance(doc, Roster) and doc.date != self._today():
            dest = self._aside_path(doc.date)
        if dest.exists():
            log.info("%s: %s left from an older version; %s is newer", self.name, old, dest)
        else:
            try:
                write_durably(dest, masked_roster(raw) if self.model is Roster else raw)
            except OSError as e:
                log.error("%s: cannot move %s to %s: %s", self.name, old, dest, e)
                return
            log.info("%s: %s moved to %s", self.name, old, dest)
        self._unlink(old)

    def _save(self, path: Path, payload: bytes) -> None:
        self._private_folder()
        if self.model is Roster:
            # (the index of a payload received before may be the masked one already: the
            # payload itself says whether it has full names)
            payload = masked_roster(payload)
        try:
            write_durably(path, payload)
        except OSError as e:
            log.error("%s: kept in memory but not on disk (%s): %s", self.name, path, e)

    @staticmethod
    def _unlink(path: Path) -> None:
        try:
            path.unlink()
        except OSError:
            pass


def _digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def _generated(doc: BaseModel | None) -> datetime:
    """When a document was generated (a naive time is local); the oldest time when unknown."""
    text = getattr(doc, "generated", None)
    try:
        when = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        when = None
    if when is None:
        return datetime.min.replace(tzinfo=UTC)
    return when if when.tzinfo is not None else when.astimezone()


def summary(doc: Any) -> str:
    """A short description for logs and maintenance screens."""
    if isinstance(doc, Roster):
        return f"roster of {doc.date}, {len(doc.appointments)} appointments"
    return type(doc).__name__ if doc is not None else "none"
