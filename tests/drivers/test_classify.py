"""Line classification and SPEC 6.4 read shapes: tokens, masks, check digits, magstripe tracks."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import pytest

from drivers.card_reader import sam_protocol as sam
from drivers.card_reader.classify import Classifier, compile_rules, track_candidates
from tests.drivers.conftest import SALT


def spec_token(kind: str, number: str) -> str:
    """SPEC 6.4 written out independently of terminal.privacy."""
    return hmac.new(SALT, f"{kind}:{number.upper()}".encode(), hashlib.sha256).hexdigest()[:32]


def test_id_card_line_gives_token_and_mask(classifier: Classifier) -> None:
    r = classifier.classify("11010519491231002x")
    assert r is not None and r.kind == "id_card"
    assert r.token == spec_token("id_card", "11010519491231002X")
    assert r.masked == "1101**********002X"
    assert r.to_json() == {
        "kind": "id_card",
        "token": r.token,
        "masked": "1101**********002X",
        "name_masked": None,
        "valid": True,
    }


def test_id_number_with_wrong_check_digit_is_dropped_not_reclassified(
    classifier: Classifier,
) -> None:
    # 18 digits would also fit the medical card pattern: first match wins, then the check rejects
    assert classifier.classify("110105194912310021") is None


def test_appointment_qr_carries_the_number_not_a_token(classifier: Classifier) -> None:
    r = classifier.classify("CT1:A20261123-0042")
    assert r is not None
    assert r.to_json() == {
        "kind": "appointment_qr",
        "appointment": "A20261123-0042",
        "masked": "A202******0042",
        "name_masked": None,
        "valid": True,
    }


def test_staff_and_medical_cards(classifier: Classifier) -> None:
    staff = classifier.classify("S1024")
    assert staff is not None and staff.kind == "staff_card"
    assert staff.token == spec_token("staff_card", "1024")
    med = classifier.classify("6225880112345678")
    assert med is not None and med.kind == "medical_card"
    assert med.token == spec_token("medical_card", "6225880112345678")
    assert med.masked == "6225********5678"


def test_unmatched_lines_give_nothing(classifier: Classifier) -> None:
    for line in ("", "hello", "CT1:x", "S12", "1234567"):
        assert classifier.classify(line) is None


def test_magstripe_track2_alone(classifier: Classifier) -> None:
    r = classifier.classify(";6225880112345678=25121010000?")
    assert r is not None and r.kind == "medical_card"
    assert r.token == spec_token("medical_card", "6225880112345678")


def test_magstripe_track1_and_2_in_one_swipe_gives_the_masked_name(classifier: Classifier) -> None:
    r = classifier.classify("%B6225880112345678^ZHANG/SAN^2512101000?;6225880112345678=2512101?")
    assert r is not None and r.kind == "medical_card"
    assert r.token == spec_token("medical_card", "6225880112345678")
    assert r.name_masked == "Z" + "*" * 7


def test_magstripe_track1_alone(classifier: Classifier) -> None:
    r = classifier.classify("%B6225880112345678^LI/SI^2512?")
    assert r is not None and r.token == spec_token("medical_card", "6225880112345678")


def test_track_candidates_order() -> None:
    c = track_candidates("%B123456789^A/B^1?;123456789=1?")
    texts = [t for t, _ in c]
    assert texts[0].startswith("%B")
    assert ";123456789=1?" in texts and "123456789" in texts


def test_custom_rules_first_match_wins() -> None:
    rules = compile_rules(
        [
            {"kind": "staff_card", "pattern": r"^EMP(?P<number>\d{4})$"},
            {"kind": "medical_card", "pattern": r"^(?P<number>\d{4,})$"},
        ]
    )
    c = Classifier(rules, SALT)
    r = c.classify("EMP0042")
    assert r is not None and r.kind == "staff_card" and r.token == spec_token("staff_card", "0042")
    assert c.classify("S1024") is None


def test_sam_text_gives_name_mask_and_expiry() -> None:
    c = Classifier([], SALT, today=dt.date(2026, 11, 23))
    fields = {"name": "张三丰", "number": "11010519491231002X", "valid_to": "20200101"}
    r = c.id_card(sam.decode_text(sam.encode_text(fields)))
    assert r is not None
    assert r.name_masked == "张**" and r.valid is False
    assert r.token == spec_token("id_card", "11010519491231002X")
    bad = sam.decode_text(sam.encode_text({**fields, "number": "110105194912310021"}))
    assert c.id_card(bad) is None


@pytest.mark.parametrize("line", ["11010519491231002X", "S1024", "6225880112345678"])
def test_no_raw_number_in_the_read(classifier: Classifier, line: str) -> None:
    r = classifier.classify(line)
    assert r is not None
    assert line not in repr(r.to_json())
    assert line.lstrip("S") not in repr(r.to_json())
