"""The payload models: strict where the contract names a field, one-line errors for any input."""

import json

import pytest

from careterm.demo_data import demo_directory, demo_roster, demo_staff, demo_survey
from terminal import payloads as p

SALT = b"test-salt"


def test_the_demo_documents_are_valid() -> None:
    assert p.parse(p.Roster, json.dumps(demo_roster(SALT, size=5)).encode()).appointments
    assert p.parse(p.Directory, demo_directory()).departments
    assert p.parse(p.Survey, demo_survey()).questions
    assert len(p.parse(p.StaffDirectory, demo_staff(SALT)).root) == 2


@pytest.mark.parametrize(
    "model, payload",
    [
        (p.StaffDirectory, b"[1,2,3]"),
        (p.StaffDirectory, b"[]"),
        (p.StaffDirectory, b"{}"),
        (p.Directory, b"{}"),
        (p.Directory, b'{"v":1,"departments":[]}'),
        (p.Roster, b'{"v":1,"date":"2026-11-23","appointments":[]}'),
        (p.Roster, b'{"v":1,"date":20261123,"appointments":[{}]}'),
        (p.Survey, b'{"v":1,"id":"s","questions":[{"id":"q","text":"t","scale":"5"}]}'),
        (
            p.Survey,
            b'{"v":1,"id":"s","questions":[{"id":"q","text":"t","scale":3,"labels":["a"]}]}',
        ),
        (p.Ack, b'{"seq":5}'),
        (p.Ack, b'{"seq":"5","epoch":"0123456789abcdef"}'),
        (p.ResendCommand, b'{"cid":"c","from":9223372036854775808,"to":9223372036854775809}'),
        (p.ResendCommand, b'{"cid":"c","from":5,"to":4}'),
        (p.StaffCommand, b'{"cid":"c","action":"sign_in"}'),
        (p.Command, b'{"cid":""}'),
        (p.Command, b"\xff\xfe"),
        (p.Command, b"[" * 100_000 + b"]" * 100_000),
        (p.Command, b"not json"),
    ],
)
def test_bad_payloads_give_one_payload_error_with_a_one_line_reason(model, payload) -> None:
    with pytest.raises(p.PayloadError) as e:
        p.parse(model, payload)
    assert "\n" not in str(e.value) and str(e.value)


def test_a_cid_is_read_from_any_command_that_has_one() -> None:
    assert p.read_cid(b'{"cid":"c1","from":' + b"[" * 5000 + b"]" * 5000 + b"}") == "c1"
    assert p.read_cid(b'{"cid":"c2","from":9223372036854775808}') == "c2"
    assert p.read_cid(b'{"cid":7}') is None
    assert p.read_cid(b"\xff") is None
    # a payload that does not parse: its cid is still read (SPEC 9.4)
    assert p.read_cid(b'{"cid":"t1", "x": ') == "t1"
    assert p.read_cid(b'{"cid":"t2","ticket":"\xb2\xe2"}') == "t2"  # GBK, not UTF-8
    assert p.read_cid(b'{"cid":"t3"}\x00') == "t3"
    assert p.read_cid(b'{"ticket":"\xb2","cid" : "t4"}') == "t4"
    assert p.read_cid(b'{"cid":"t5","x":"' + b"a" * p.MAX_PAYLOAD_BYTES + b'"}') == "t5"
    # over 128 characters: read, so that the command is refused with its cid (SPEC 9.4)
    assert p.read_cid(b'{"cid":"' + b"c" * 200 + b'"}') == "c" * 200
    assert p.read_cid(b'{"cid":"c' + b"c" * 200 + b'"') == "c" * 201
    assert p.read_cid(b'{"cid":"' + b"c" * (p.MAX_READ_CID + 1) + b'"}') is None
    assert p.read_cid(b'{"cid":"\xff\xfe", "x":') is None  # the cid itself not UTF-8
    assert p.read_cid(b'{"x": "' + b"a" * 5000 + b'", "cid": "far"') is None  # past 4 KiB


def test_rating_data_refuses_a_score_above_its_scale_and_strings_for_numbers() -> None:
    good = {
        "window": "W03",
        "staff": None,
        "score": 4,
        "scale": 4,
        "label": "非常满意",
        "reason_asked": False,
        "prompt": None,
        "misuse": False,
        "response_ms": None,
    }
    assert p.RatingData.model_validate(good).score == 4
    for bad in ({"score": 5}, {"score": "4"}, {"misuse": "false"}):
        with pytest.raises(ValueError):
            p.RatingData.model_validate(good | bad)


def test_every_event_type_and_document_has_a_json_schema() -> None:
    for model in [*p.EVENT_DATA.values(), *p.DOCUMENTS.values(), *p.COMMANDS.values()]:
        assert model.model_json_schema()


def test_a_staff_directory_refuses_one_card_token_for_two_clerks() -> None:
    shared = [
        {"staff": "E1024", "name": "王芳", "token": "a" * 32},
        {"staff": "E2000", "name": "李雷", "token": "a" * 32},
    ]
    with pytest.raises(p.PayloadError, match="E1024 and E2000 have the same card token"):
        p.parse(p.StaffDirectory, shared)
    no_cards = [{"staff": "E1024", "name": "王芳"}, {"staff": "E2000", "name": "李雷"}]
    assert len(p.parse(p.StaffDirectory, no_cards).root) == 2  # clerks without a card: fine


@pytest.mark.parametrize(
    "number", ["E\n2000", "E2000\u0007", "E\t2000", " E2000", "E2000 ", "E\u20282000", "", "E" * 33]
)
def test_a_staff_number_the_staff_command_refuses_is_refused_in_the_directory(number) -> None:
    assert p.staff_number(number) is None  # the rule the pad's `staff` command applies
    with pytest.raises(p.PayloadError, match=r"^0\.staff: "):
        p.parse(p.StaffDirectory, [{"staff": number, "name": "李雷"}])


@pytest.mark.parametrize("number", ["E2000", "工号 2000", "E" * 32])
def test_a_staff_number_both_take(number) -> None:
    assert p.staff_number(number) == number
    assert p.parse(p.StaffDirectory, [{"staff": number, "name": "李雷"}]).root[0].staff == number
