"""The roster's index file (terminal.roster_index): the kiosk finds in it what it finds in rows
held in memory, keeps none of the rows on its heap, opens the file again instead of decoding
the same payload, and never trusts a file that is damaged, of another format or half written."""

from __future__ import annotations

import json
import logging
import os
import tracemalloc
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import terminal.roster_rows as roster_rows
from kiosk.roster import Roster
from terminal import payloads
from terminal.documents import DocumentStore
from terminal.roster_index import SUFFIX, RosterIndex, index_name
from terminal.roster_rows import parse_roster

from .test_roster_rows import CASES, appt, outcome, roster

DAY = date(2026, 11, 23)
TOKENS = [f"{i:x}" * 32 for i in range(1, 6)]


def payload_of(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def both(payload: bytes, folder: Path) -> tuple[Roster, Roster]:
    """The kiosk's roster from rows in memory, and from the index file."""
    listed = parse_roster(payload)
    indexed = parse_roster(payload, folder)
    assert isinstance(listed.appointments, list)
    assert isinstance(indexed.appointments, RosterIndex)
    return Roster.of(listed), Roster.of(indexed)


def same_answers(memory: Roster, index: Roster, probes: list[str]) -> None:
    assert len(index) == len(memory)
    assert index.appointments == memory.appointments
    for p in probes:
        assert index.for_token(p) == memory.for_token(p), p
        assert index.get(p) == memory.get(p), p
        assert index.by_digits(p) == memory.by_digits(p), p


# -- the same answers ------------------------------------------------------------------------

ids = st.text(alphabet="aA1-2b", min_size=1, max_size=4)
times = st.sampled_from(
    ["2026-11-23T09:00:00+08:00", "2026-11-23T08:30:00+07:00", "2026-11-23T09:00:00+09:00"]
)
rows = st.lists(
    st.fixed_dictionaries(
        {
            "id": ids,
            "token": st.one_of(st.none(), st.sampled_from(TOKENS)),
            "lookup": st.lists(st.sampled_from(TOKENS), max_size=2),
            "slot_start": times,
        }
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=rows)
def test_the_index_file_answers_every_lookup_as_rows_in_memory_do(
    rows: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Ids that differ only in case or share their digits, the same appointment twice, a token
    on several appointments (and twice on one), slot times in other offsets: the in-memory
    lookups' rules (the last with an id, the first with the digits, by time then id). Rows
    that share an id (whatever its case) are one appointment, once per card: only their
    tokens differ (payloads.SameAppointment refuses anything else)."""
    first: dict[str, dict[str, Any]] = {}
    for r in rows:
        base = first.setdefault(r["id"].upper(), r)
        r["slot_start"] = base["slot_start"]
    order = list(first)
    doc = roster(*(appt(order.index(r["id"].upper()), slot_end=r["slot_start"], **r) for r in rows))
    memory, index = both(payload_of(doc), tmp_path_factory.mktemp("index"))
    probes = [*TOKENS, "f" * 32, "", " "]
    for r in rows:
        probes += [r["id"], r["id"].lower(), r["id"].upper(), f" {r['id']} ", "x" + r["id"]]
    same_answers(memory, index, probes)


def test_the_index_is_a_sequence_of_the_document_s_rows(tmp_path: Path) -> None:
    payload = payload_of(roster(*(appt(i, lookup=[TOKENS[i % 5]]) for i in range(1100))))
    listed = parse_roster(payload).appointments
    index = parse_roster(payload, tmp_path).appointments
    assert len(index) == 1100 and list(index) == listed  # walked in batches
    assert index[0] == listed[0] and index[-1] == listed[-1] and index[517] == listed[517]
    assert index[10:20] == listed[10:20] and index[::-300] == listed[::-300]
    with pytest.raises(IndexError):
        index[1100]


@pytest.mark.parametrize("doc", CASES)
def test_with_an_index_folder_the_same_rosters_are_refused_and_nothing_is_left(
    doc: Any, tmp_path: Path
) -> None:
    payload = payload_of(doc)
    want = outcome(lambda p: payloads.parse(payloads.Roster, p), payload)
    assert outcome(lambda p: parse_roster(p, tmp_path), payload) == want
    if want[0] == "refused":
        assert files(tmp_path) == []  # not even a temporary file
    else:
        assert files(tmp_path) == [index_name(_sha(payload))]


def _sha(payload: bytes) -> str:
    import hashlib

    return hashlib.sha256(payload).hexdigest()


# -- off the heap -----------------------------------------------------------------------------


def test_the_rows_of_an_indexed_roster_are_not_on_the_heap(tmp_path: Path) -> None:
    """What Python keeps of a 5,000-entry roster: its rows in memory, next to nothing with an
    index file (the file's page cache is SQLite's, a fixed 256 KiB at most)."""
    payload = payload_of(roster(*(appt(i, token=f"{i:032x}", name=f"张*{i}") for i in range(5000))))

    def kept(folder: Path | None) -> tuple[int, Roster]:
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            r = Roster.of(parse_roster(payload, folder))
            r.for_token(f"{42:032x}")
            return tracemalloc.get_traced_memory()[0] - before, r
        finally:
            tracemalloc.stop()

    in_memory, listed = kept(None)
    with_file, indexed = kept(tmp_path)
    assert in_memory > 2_000_000, in_memory  # rows, strings and dictionaries: ~0.5 KB a row
    assert with_file < 100_000, with_file
    assert indexed.for_token(f"{4999:032x}") == listed.for_token(f"{4999:032x}")


# -- the file, again and damaged ---------------------------------------------------------------


def test_the_same_payload_again_opens_the_file_without_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = payload_of(roster(*(appt(i) for i in range(10)), generated=...))
    first = parse_roster(payload, tmp_path)
    decoded: list[int] = []
    real = roster_rows._parse
    monkeypatch.setattr(roster_rows, "_parse", lambda *a: (decoded.append(1), real(*a))[1])
    again = parse_roster(payload, tmp_path)
    assert decoded == [] and list(again.appointments) == list(first.appointments)
    assert (again.v, again.date, again.generated) == (1, DAY, None)
    assert again.model_fields_set == first.model_fields_set == {"v", "date", "appointments"}
    other = payload + b" "  # the same document, other bytes: its own file
    assert list(parse_roster(other, tmp_path).appointments) == list(first.appointments)
    assert decoded == [1] and len(files(tmp_path)) == 2


def damage_truncated(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def damage_garbage(p: Path) -> None:
    p.write_bytes(os.urandom(8192))


def damage_rows_missing(p: Path) -> None:
    import sqlite3

    with sqlite3.connect(p) as c:
        c.execute("DELETE FROM appointment WHERE n = 3")


def damage_format(p: Path) -> None:
    import sqlite3

    with sqlite3.connect(p) as c:
        c.execute("UPDATE meta SET value = '0' WHERE key = 'format'")


@pytest.mark.parametrize(
    "damage", [damage_truncated, damage_garbage, damage_rows_missing, damage_format]
)
def test_a_damaged_or_foreign_file_is_built_again(
    damage: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    payload = payload_of(roster(*(appt(i, token=TOKENS[i % 2]) for i in range(300))))
    good = list(parse_roster(payload, tmp_path).appointments)
    (path,) = tmp_path.iterdir()
    damage(path)
    with caplog.at_level(logging.WARNING, "careterm.documents"):
        again = parse_roster(payload, tmp_path)
    assert isinstance(again.appointments, RosterIndex) and list(again.appointments) == good
    assert "built again" in caplog.text and files(tmp_path) == [path.name]


def test_an_index_folder_that_cannot_be_written_keeps_the_rows_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A full or read-only disk: the roster is used all the same, from memory, and the log
    says why (the same as a disk that fails halfway through the file)."""
    blocked = tmp_path / "index"
    blocked.write_text("a file where the folder should be")
    payload = payload_of(roster(*(appt(i) for i in range(5))))
    with caplog.at_level(logging.WARNING, "careterm.documents"):
        doc = parse_roster(payload, blocked)
    assert isinstance(doc.appointments, list) and len(doc.appointments) == 5
    assert f"its index {blocked}" in caplog.text and "cannot be written" in caplog.text


def test_a_disk_that_fails_halfway_through_the_file_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    payload = payload_of(roster(*(appt(i) for i in range(600))))
    real = roster_rows.RosterIndex.build

    def failing(path: Path, head: dict[str, Any], chunks: Any) -> RosterIndex:
        def some() -> Any:
            for n, c in enumerate(chunks):
                if n == 2:
                    raise sqlite3.OperationalError("database or disk is full")
                yield c

        return real(path, head, some())

    monkeypatch.setattr(roster_rows.RosterIndex, "build", failing)
    doc = parse_roster(payload, tmp_path)
    assert isinstance(doc.appointments, list) and len(doc.appointments) == 600
    assert files(tmp_path) == []


# -- the store keeps the files of the rosters it keeps -------------------------------------


def test_the_store_keeps_only_the_files_of_the_rosters_in_use_or_kept_aside(
    tmp_path: Path,
) -> None:
    from datetime import timedelta

    class Today:
        day = DAY

        def __call__(self) -> date:
            return self.day

    today = Today()
    store = DocumentStore("roster", tmp_path, today=today)
    folder = tmp_path / "documents" / "roster-index"
    # a file a process killed while writing it left behind
    folder.mkdir(parents=True)
    (folder / f".{index_name('0' * 64)}.1.tmp").write_bytes(b"half")
    store.load()
    assert files(folder) == []

    def day_roster(day: date, token: str) -> bytes:
        return payload_of(
            roster(
                appt(
                    0,
                    token=token,
                    slot_start=f"{day}T09:00:00+08:00",
                    slot_end=f"{day}T09:30:00+08:00",
                ),
                date=str(day),
            )
        )

    first = store.offer(day_roster(DAY, TOKENS[0]))
    in_use = Roster.of(first.document)  # type: ignore[arg-type]
    assert files(folder) == [index_name(_sha(day_roster(DAY, TOKENS[0])))]
    tomorrow = DAY + timedelta(days=1)
    assert store.offer(day_roster(tomorrow, TOKENS[1])).kept_aside
    assert len(files(folder)) == 2
    assert store.offer(day_roster(DAY, TOKENS[2])).accepted
    assert files(folder) == sorted(
        index_name(_sha(day_roster(d, t))) for d, t in ((DAY, TOKENS[2]), (tomorrow, TOKENS[1]))
    )
    # the replaced roster's reader still has its (removed) file until it lets it go
    assert [a.id for a in in_use.for_token(TOKENS[0])] == ["A20261123-0000"]
    # refused: not for today nor the coming days; its file is not kept
    assert not store.offer(day_roster(DAY - timedelta(days=1), TOKENS[3])).kept_aside
    assert len(files(folder)) == 2
    # midnight: tomorrow's takes over, today's file goes
    today.day = tomorrow
    assert store.current is not None
    assert files(folder) == [index_name(_sha(day_roster(tomorrow, TOKENS[1])))]
    # after a restart, the files are opened again, not built
    restarted = DocumentStore("roster", tmp_path, today=today)
    doc = restarted.load()
    assert isinstance(doc, payloads.Roster) and isinstance(doc.appointments, RosterIndex)
    assert files(folder) == [index_name(_sha(day_roster(tomorrow, TOKENS[1])))]
    assert all(n.endswith(SUFFIX) for n in files(folder))


# -- a big roster is decoded by a child process ---------------------------------------------


@pytest.mark.parametrize(
    "doc",
    [
        roster(*(appt(i, lookup=[TOKENS[i % 3]]) for i in range(40))),
        roster(v=2),
        roster(appt(slot_start="tomorrow!!")),
        roster(*(appt(i, **({"token": "bad"} if i == 299 else {})) for i in range(300))),
        "roster",
    ],
    ids=["valid", "head", "appointment", "the-300th", "no-roster"],
)
def test_a_child_process_builds_the_same_file_or_refuses_with_the_same_fault(
    doc: Any, tmp_path: Path
) -> None:
    payload = payload_of(doc)
    want = outcome(lambda p: payloads.parse(payloads.Roster, p), payload)
    got = outcome(lambda p: parse_roster(p, tmp_path, child=True), payload)
    assert got == want
    if want[0] == "accepted":
        assert files(tmp_path) == [index_name(_sha(payload))]
        memory, index = Roster.of(parse_roster(payload)), Roster.of(parse_roster(payload, tmp_path))
        same_answers(memory, index, [*TOKENS, "A20261123-0007", "202611230039"])
    else:
        assert files(tmp_path) == []


def test_big_payloads_go_to_the_child_and_a_failed_child_leaves_the_rows_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    payload = payload_of(roster(*(appt(i, token=f"{i:032x}") for i in range(1000))))
    assert len(payload) >= roster_rows.CHILD_MIN_BYTES
    children: list[bytes] = []
    real = roster_rows._parse_in_child
    monkeypatch.setattr(
        roster_rows, "_parse_in_child", lambda raw, path: (children.append(raw), real(raw, path))[1]
    )
    doc = parse_roster(payload, tmp_path / "a")
    assert children == [payload] and isinstance(doc.appointments, RosterIndex)
    # a child that dies (killed, out of memory): the kiosk keeps the roster in memory
    monkeypatch.setattr(roster_rows.sys, "executable", "/bin/false")
    with caplog.at_level(logging.WARNING, "careterm.documents"):
        kept = parse_roster(payload, tmp_path / "c")
    assert isinstance(kept.appointments, list) and list(kept.appointments) == list(doc.appointments)
    assert "the roster builder exited with 1" in caplog.text and files(tmp_path / "c") == []
