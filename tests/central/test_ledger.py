"""Sequence accounting and envelope parsing, as pure functions."""

from __future__ import annotations

import json

import pytest

from central.ledger import advance, intersect, merge, missing
from central.messages import (
    Refused,
    parse_event,
    parse_message,
    parse_rating,
    parse_status,
    parse_topic,
    rating_of,
)


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
    t = parse_topic("hosp/a/careterm/main/pad-w03/alerts/dissatisfied", "hosp/a/careterm")
    assert (t.root, t.site, t.device, t.leaf, t.name) == (
        "hosp/a/careterm",
        "main",
        "pad-w03",
        "alerts",
        "dissatisfied",
    )
    assert parse_topic("careterm/main/pad-w03/status").leaf == "status"
    with pytest.raises(Refused):
        parse_topic("careterm/main/roster")


FORGED = "careterm/main/pad-a/events/careterm/main/pad-b/events/rating"


@pytest.mark.parametrize(
    "topic",
    [
        FORGED,  # issue 12: the device was taken from the third-last segment
        "careterm/main/pad-a/events",
        "careterm/main/pad-a/events/Rating",
        "careterm/main/pad-a/events/rating/x",
        "careterm/main/PAD-A/events/rating",
        "careterm/main/pad.a/events/rating",
        "other/main/pad-a/events/rating",
        "careterm/main/pad-a/ack",  # the site's own topic: nothing to collect
        "careterm/main/pad-a/cmd/ping",
    ],
)
def test_topics_of_any_other_shape_are_refused(topic: str) -> None:
    with pytest.raises(Refused) as e:
        parse_event(topic, ENVELOPE)
    assert e.value.kind == "topic"


def test_the_forged_nested_topic_is_refused_naming_the_publishing_device() -> None:
    with pytest.raises(Refused) as e:
        parse_message(FORGED, ENVELOPE)
    assert (e.value.kind, e.value.device) == ("topic", "pad-a")


@pytest.mark.parametrize(
    "change, why",
    [
        ({"device": "pad-b"}, "says device 'pad-b'"),
        ({"site": "east"}, "at site 'east'"),
        ({"type": "checkin"}, "type is 'checkin'"),
        ({"type": "alert"}, "type is 'alert'"),
    ],
)
def test_an_envelope_that_does_not_match_its_topic_is_refused(change, why: str) -> None:
    body = {**json.loads(ENVELOPE), **change}
    with pytest.raises(Refused, match=why) as e:
        parse_event("careterm/main/pad-a/events/rating", json.dumps(body).encode())
    assert (e.value.kind, e.value.device) == ("mismatch", "pad-a")


def test_an_alert_must_be_on_its_own_kind() -> None:
    body = {
        **json.loads(ENVELOPE),
        "type": "alert",
        "data": {"kind": "printer", "severity": "critical", "message": "paper out"},
    }
    payload = json.dumps(body).encode()
    assert parse_event("careterm/main/pad-a/alerts/printer", payload).kind == "printer"
    with pytest.raises(Refused) as e:
        parse_event("careterm/main/pad-a/alerts/dissatisfied", payload)
    assert e.value.kind == "mismatch"


ENVELOPE = json.dumps(
    {
        "v": 1,
        "id": "0193a1b2-0000-7000-8000-000000000001",
        "seq": 1,
        "epoch": "0123456789abcdef",
        "device": "pad-a",
        "site": "main",
        "type": "rating",
        "ts": "2026-11-23T09:41:12.345+08:00",
        "clock_synced": True,
        "data": {
            "window": "W03",
            "staff": None,
            "score": 4,
            "scale": 4,
            "label": "x",
            "prompt": None,
            "misuse": False,
            "response_ms": None,
        },
    }
).encode()


def _env(**change) -> bytes:
    return json.dumps({**json.loads(ENVELOPE), **change}).encode()


@pytest.mark.parametrize(
    "payload, why",
    [
        (b"{", "not JSON"),
        (b"[]", "Envelope"),
        (_env(id=None), "id"),
        (_env(seq=0), "seq"),
        (_env(seq=True), "seq"),
        (_env(seq="7"), "seq"),
        (_env(data=[]), "data"),
        (_env(epoch="not hex"), "epoch"),
        (_env(clock_synced="yes"), "clock_synced"),
    ],
)
def test_malformed_envelopes_are_refused_with_a_reason(payload: bytes, why: str) -> None:
    with pytest.raises(Refused, match=why) as e:
        parse_event("careterm/main/pad-a/events/rating", payload)
    assert e.value.kind == "payload"


def test_version_1_envelopes_without_epoch_are_taken() -> None:
    body = json.loads(ENVELOPE)
    del body["epoch"]
    ev = parse_event("careterm/main/pad-a/events/rating", json.dumps(body).encode())
    assert (ev.epoch, ev.seq) == (None, 1)


def test_local_day_and_hour_come_from_the_devices_own_offset() -> None:
    ev = parse_event(
        "careterm/main/pad-a/events/rating",
        _env(seq=None, ts="2026-11-23T23:59:59.5+08:00", data={"score": 9, "scale": 4}),
    )
    assert (ev.seq, ev.day, ev.hour) == (None, "2026-11-23", 23)
    assert rating_of(ev) is None and ev.data_error  # stored, not counted
    assert parse_rating({"score": 2, "scale": 4, "misuse": "yes"}) is None


def test_data_fields_a_newer_device_adds_are_ignored() -> None:
    data = {**json.loads(ENVELOPE)["data"], "mood": "sunny"}
    ev = parse_event("careterm/main/pad-a/events/rating", _env(data=data))
    assert ev.data_error is None and rating_of(ev).score == 4


def test_status_needs_a_state_and_a_session() -> None:
    st = parse_status(
        "careterm/main/pad-w03/status", b'{"state":"offline","reason":"lost","session":4}'
    )
    assert (st.device, st.state, st.reason, st.session) == ("pad-w03", "offline", "lost", 4)
    with pytest.raises(Refused):
        parse_status("careterm/main/pad-w03/status", b'{"state":"online"}')
