"""Sequence accounting and envelope parsing, as pure functions."""

from __future__ import annotations

import pytest

from central.ledger import advance, intersect, merge, missing
from central.messages import BadMessage, parse_event, parse_rating, parse_status, parse_topic


def test_advance_stops_at_the_first_hole_and_jumps_lost_ranges() -> None:
    assert advance(0, [1, 2, 3, 5]) == 3
    assert advance(3, [5, 6]) == 3
    assert advance(3, [5, 6], lost=[[4, 4]]) == 6
    assert advance(0, [], lost=[[1, 10]]) == 10
    assert advance(10, [1, 2, 11, 13], lost=[[12, 12]]) == 13


def test_missing_lists_holes_up_to_the_highest_known_seq() -> None:
    assert missing(0, 10, [1, 2, 5, 6, 10]) == [(3, 4), (7, 9)]
    assert missing(0, 10, [1, 2, 5, 6, 10], lost=[[7, 8]]) == [(3, 4), (9, 9)]
    assert missing(6, 9, [5, 6]) == [(7, 9)]  # the tail a ping reported
    assert missing(4, 4, [1, 2, 3, 4]) == []


def test_merge_and_intersect() -> None:
    assert merge([[5, 6], [1, 2], [3, 3], [9, 9], [4, 4]]) == [(1, 6), (9, 9)]
    assert merge([[5, 6], [1, 2]]) == [(1, 2), (5, 6)]
    assert intersect((4, 8), [[1, 5], [7, 20]]) == [(4, 5), (7, 8)]
    assert intersect((4, 8), [[9, 9]]) == []


def test_topics_with_a_multi_level_root() -> None:
    t = parse_topic("hosp/a/careterm/main/pad-w03/alerts/dissatisfied")
    assert (t.root, t.site, t.device, t.kind, t.leaf) == (
        "hosp/a/careterm",
        "main",
        "pad-w03",
        "alerts",
        "dissatisfied",
    )
    assert parse_topic("careterm/main/pad-w03/status").kind == "status"
    with pytest.raises(BadMessage):
        parse_topic("careterm/main/roster")


@pytest.mark.parametrize(
    "payload, why",
    [
        (b"{", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"seq": 1, "type": "rating", "data": {}}', "usable `id`"),
        (b'{"id": "a", "seq": 0, "type": "rating", "data": {}}', "positive integer"),
        (b'{"id": "a", "seq": true, "type": "rating", "data": {}}', "positive integer"),
        (b'{"id": "a", "seq": 1, "type": "rating", "data": []}', "`data`"),
    ],
)
def test_malformed_envelopes_are_refused_with_a_reason(payload: bytes, why: str) -> None:
    with pytest.raises(BadMessage, match=why):
        parse_event("careterm/main/pad-w03/events/rating", payload)


def test_local_day_and_hour_come_from_the_devices_own_offset() -> None:
    ev = parse_event(
        "careterm/main/pad-w03/events/rating",
        b'{"id":"a","seq":null,"type":"rating","ts":"2026-11-23T23:59:59.5+08:00",'
        b'"data":{"score":9,"scale":4}}',
    )
    assert (ev.seq, ev.day, ev.hour) == (None, "2026-11-23", 23)
    assert parse_rating(ev.data) is None  # score outside the scale: stored, not counted
    assert parse_rating({"score": 2, "scale": 4, "misuse": "yes"}).misuse is False


def test_status_needs_a_state_and_a_session() -> None:
    st = parse_status(
        "careterm/main/pad-w03/status", b'{"state":"offline","reason":"lost","session":4}'
    )
    assert (st.device, st.state, st.reason, st.session) == ("pad-w03", "offline", "lost", 4)
    with pytest.raises(BadMessage):
        parse_status("careterm/main/pad-w03/status", b'{"state":"online"}')
