"""`site roster build` from a HIS export, and publishing the retained site documents."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from pathlib import Path

import pytest

from terminal import resident_id
from terminal.payloads import Roster
from terminal.privacy import card_token, mask_roster_name
from tests.central.conftest import site_today
from tests.conftest import run_careterm, wait_for

HEADER = (
    "appointment_id,id_number,card_kind,card_number,patient_name,department_id,department,"
    "doctor,room,slot_start,slot_end,queue_no\n"
)


ID_A = resident_id.complete("11010519491231002")
ID_B = resident_id.complete("44030019900101123")
TODAY = site_today()  # the default --utc-offset's day; set again before every test
D0, D1, D2 = (str(TODAY + timedelta(days=n)) for n in range(3))


@pytest.fixture(autouse=True)
def _today() -> None:
    """Each test's days, taken when it starts (a run may cross midnight at +08:00)."""
    global TODAY, D0, D1, D2, GOOD
    TODAY = site_today()
    D0, D1, D2 = (str(TODAY + timedelta(days=n)) for n in range(3))
    GOOD = good_rows()


@pytest.fixture
def salt(tmp_path: Path) -> Path:
    p = tmp_path / "site.salt"
    p.write_text("  s3cret-site-salt\n")
    return p


def his_csv(tmp_path: Path, rows: list[str], encoding: str = "utf-8") -> Path:
    p = tmp_path / "his.csv"
    p.write_bytes((HEADER + "\n".join(rows) + "\n").encode(encoding))
    return p


def good_rows() -> list[str]:
    return [
        f"A20261123-0042,{ID_A},medical_card,6222020200112233,张三丰,cardio,心内科,李明,门诊3楼 305诊室,"
        "09:00,09:30,B023",
        f"A20261123-0043,{ID_B.lower()},,,王芳,derm,皮肤科,赵丽,门诊2楼 201诊室,"
        f"{D0}T10:00:00+08:00,{D0} 10:30,C001",
        "A20261124-0001,,medical_card,12345678,李四,derm,皮肤科,赵丽,门诊2楼 201诊室,"
        f"{D1} 09:00,{D1} 09:30,C002",
    ]


GOOD = good_rows()


def test_roster_has_tokens_masked_names_and_one_entry_per_card(tmp_path: Path, salt: Path) -> None:
    r = run_careterm(
        "site",
        "roster",
        "build",
        "--csv",
        str(his_csv(tmp_path, GOOD)),
        "--salt-file",
        str(salt),
        "--date",
        D0,
    )
    assert r.returncode == 0, r.stderr
    roster = json.loads(r.stdout)
    assert roster["v"] == 1 and roster["date"] == D0
    assert roster["generated"].endswith("+08:00")
    s = b"s3cret-site-salt"
    got = [(a["id"], a["token"], a["name"], a["queue_no"]) for a in roster["appointments"]]
    assert got == [
        ("A20261123-0042", card_token(s, "id_card", ID_A), "张*丰", "B023"),
        ("A20261123-0042", card_token(s, "medical_card", "6222020200112233"), "张*丰", "B023"),
        ("A20261123-0043", card_token(s, "id_card", ID_B), "王*", "C001"),
    ]
    # the manual lookup token (SPEC 9.6) rides on the appointment's first entry only
    assert [a["lookup"] for a in roster["appointments"]] == [
        [card_token(s, "appointment", "A20261123-0042")],
        [],
        [card_token(s, "appointment", "A20261123-0043")],
    ]
    Roster.model_validate(roster)  # the contract's model of the retained document
    first = roster["appointments"][0]
    assert (first["slot_start"], first["slot_end"]) == (
        f"{D0}T09:00:00+08:00",
        f"{D0}T09:30:00+08:00",
    )
    assert (first["department_id"], first["department"], first["doctor"], first["room"]) == (
        "cardio",
        "心内科",
        "李明",
        "门诊3楼 305诊室",
    )
    for secret in (ID_A, ID_B, "6222020200112233", "张三丰", "王芳"):
        assert secret not in r.stdout and secret not in r.stderr
    assert f"1 row(s) are not on {D0}" in r.stderr


def test_a_gb18030_export_from_a_chinese_windows_his_is_read(tmp_path: Path, salt: Path) -> None:
    r = run_careterm(
        "site",
        "roster",
        "build",
        "--csv",
        str(his_csv(tmp_path, GOOD[:1], "gb18030")),
        "--salt-file",
        str(salt),
        "--date",
        D0,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["appointments"][0]["department"] == "心内科"


def test_bad_rows_are_reported_by_file_row_and_column_without_the_number(
    tmp_path: Path, salt: Path
) -> None:
    bad_id = ID_A[:-1] + ("0" if ID_A[-1] != "0" else "1")
    rows = [
        f"A20261123-0042,{bad_id},,,张三,cardio,心内科,李明,305,09:00,09:30,B023",
        f"A20261123-0044,{ID_B},,,王芳,cardio,心内科,李明,305,9点,09:30,B024",
        "A20261123-0045,,,,李四,cardio,心内科,李明,305,09:00,08:30,B025",
    ]
    p = his_csv(tmp_path, rows)
    r = run_careterm(
        "site", "roster", "build", "--csv", str(p), "--salt-file", str(salt), "--date", D0
    )
    assert r.returncode == 2
    assert r.stdout == ""
    err = r.stderr
    assert f"{p}: row 2, column id_number: check character is wrong" in err
    assert f"{p}: row 3, column slot_start: is not a time" in err and "9点" not in err
    assert f"{p}: row 4, column slot_end: is not after slot_start" in err
    assert f"{p}: row 4, column id_number: no card" in err
    assert bad_id not in err and "Traceback" not in err


def test_a_row_whose_columns_slipped_is_reported_without_any_cell(
    tmp_path: Path, salt: Path
) -> None:
    # A HIS export with one column too few in a row: name, ID number and phone land in the
    # department, time and date columns. The problem names row and column; no cell is printed
    # (stderr goes to the journal of the timer that builds the roster).
    rows = [f"A20261123-0042,,,,欧阳明月,cardio,{ID_B},13812345678,305,{ID_B} 欧阳明月,09:30,B023"]
    p = his_csv(tmp_path, rows)
    r = run_careterm(
        "site", "roster", "build", "--csv", str(p), "--salt-file", str(salt), "--date", D0
    )
    assert r.returncode == 2 and f"{p}: row 2, column slot_start: is not a time" in r.stderr
    for secret in (ID_B, "13812345678", "欧阳明月"):
        assert secret not in r.stderr


def test_a_roster_with_a_patient_in_a_time_field_is_refused_without_quoting_it(
    tmp_path: Path,
) -> None:
    roster = {
        "v": 1,
        "date": D0,
        "appointments": [
            {
                "id": "A20261123-0042",
                "token": "0" * 32,
                "name": "欧*月",
                "department_id": "cardio",
                "department": "心内科",
                "doctor": "李明",
                "room": "305",
                "slot_start": f"欧阳明月 {ID_B}",
                "slot_end": f"{D0}T09:30:00+08:00",
                "queue_no": "B023",
            }
        ],
    }
    p = tmp_path / "roster.json"
    p.write_text(json.dumps(roster, ensure_ascii=False), encoding="utf-8")
    r = run_careterm("site", "publish", "roster", str(p), "--broker", "mqtt://127.0.0.1:1")
    assert r.returncode == 2 and "slot_start: not an ISO 8601 time" in r.stderr, r.stderr
    assert ID_B not in r.stderr and "欧阳明月" not in r.stderr


def test_missing_columns_and_salt_are_named(tmp_path: Path, salt: Path) -> None:
    p = tmp_path / "his.csv"
    p.write_text("appointment_id,patient_name\nA1,张三\n")
    r = run_careterm(
        "site", "roster", "build", "--csv", str(p), "--salt-file", str(salt), "--date", D0
    )
    assert r.returncode == 2 and "row 1: missing column(s) department_id" in r.stderr
    r = run_careterm(
        "site",
        "roster",
        "build",
        "--csv",
        str(his_csv(tmp_path, GOOD)),
        "--salt-file",
        str(tmp_path / "nope.salt"),
        "--date",
        D0,
    )
    assert r.returncode == 2 and "nope.salt: salt file not found (--salt-file)" in r.stderr


def test_a_roster_with_nothing_on_the_day_is_refused_unless_asked_for(
    tmp_path: Path, salt: Path
) -> None:
    args = (
        "site",
        "roster",
        "build",
        "--csv",
        str(his_csv(tmp_path, GOOD[1:])),
        "--salt-file",
        str(salt),
        "--date",
        D2,
    )
    r = run_careterm(*args)
    assert r.returncode == 2 and f"no appointments on {D2} (2 rows on other days)" in r.stderr
    r = run_careterm(*args, "--allow-empty")
    assert r.returncode == 0 and json.loads(r.stdout)["appointments"] == []


def test_name_mask_and_id_checksum() -> None:
    assert [mask_roster_name(n) for n in ("张三", "张三丰", "欧阳锋华", "买买提·艾力")] == [
        "张*",
        "张*丰",
        "欧**华",
        "买****力",
    ]
    long = mask_roster_name("Hubert Blaine Wolfeschlegelsteinhausenbergerdorff")
    assert long == "H" + "*" * 30 + "f"  # fits the kiosks' 32 characters


@pytest.mark.broker
def test_roster_and_documents_are_published_retained(
    broker, subscriber_factory, tmp_path: Path, salt: Path
) -> None:
    roster = tmp_path / "roster.json"
    r = run_careterm(
        "site",
        "roster",
        "build",
        "--csv",
        str(his_csv(tmp_path, GOOD)),
        "--salt-file",
        str(salt),
        "--date",
        D0,
        "--out",
        str(roster),
    )
    assert r.returncode == 0, r.stderr
    r = run_careterm("site", "roster", "publish", "--broker", broker.url, str(roster))
    assert r.returncode == 0, r.stderr
    assert "no --site given: publishing to site 'main'" in r.stderr
    staff = tmp_path / "staff.json"
    staff.write_text(
        json.dumps(
            [
                {
                    "staff": "E1024",
                    "name": "王芳",
                    "title": "收费员",
                    "token": "0" * 32,
                    "photo": None,
                }
            ],
            ensure_ascii=False,
        )
    )
    survey = tmp_path / "survey.json"
    survey.write_text(
        json.dumps(
            {
                "v": 1,
                "id": "opd-2026q4",
                "questions": [
                    {
                        "id": "q1",
                        "text": "您对挂号流程满意吗?",
                        "text_en": "Registration?",
                        "scale": 5,
                    }
                ],
            }
        )
    )
    directory = tmp_path / "directory.json"
    directory.write_text(
        json.dumps(
            {
                "v": 1,
                "departments": [
                    {
                        "id": "cardio",
                        "name": "心内科",
                        "name_en": "Cardiology",
                        "floor": "3",
                        "location": "x",
                    }
                ],
                "doctors": [
                    {
                        "name": "李明",
                        "title": "主任医师",
                        "department_id": "cardio",
                        "today": ["08:00-12:00"],
                        "bio": "",
                    }
                ],
            }
        )
    )
    for kind, f in (("staff", staff), ("survey", survey), ("directory", directory)):
        r = run_careterm("site", "publish", kind, str(f), "--broker", broker.url, "--site", "main")
        assert r.returncode == 0, r.stderr
        assert f"careterm/main/{kind} (retained)" in r.stdout
    # a kiosk that connects later still gets them
    sub = subscriber_factory(broker.port, ["careterm/main/+"])
    wait_for(lambda: len(sub.messages) == 4, 10, what="four retained documents")
    by_topic = {m.topic: (json.loads(m.payload), m.retain) for m in sub.messages}
    assert by_topic["careterm/main/roster"][0] == json.loads(roster.read_text())
    # The roster (patients' appointments) leaves the broker 6 h after its day; the others stay.
    expiry = {m.topic: getattr(m.properties, "MessageExpiryInterval", None) for m in sub.messages}
    end = datetime.combine(site_today() + timedelta(days=1), time(0)).astimezone()
    left = (end + timedelta(hours=6) - datetime.now().astimezone()).total_seconds()
    assert left - 60 < expiry["careterm/main/roster"] <= left + 1
    assert expiry["careterm/main/staff"] is None and expiry["careterm/main/survey"] is None
    assert by_topic["careterm/main/staff"][0][0]["name"] == "王芳"
    assert all(retained for _, retained in by_topic.values())


def test_bad_documents_are_refused_before_publishing(tmp_path: Path) -> None:
    survey = tmp_path / "survey.json"
    survey.write_text(
        json.dumps(
            {
                "v": 1,
                "id": "s",
                "questions": [
                    {"id": "q1", "text": "x", "scale": 12},
                    {"id": "q2", "text": "", "scale": 5},
                ],
            }
        )
    )
    r = run_careterm(
        "site", "publish", "survey", str(survey), "--broker", "mqtt://127.0.0.1:1", "--site", "main"
    )
    assert r.returncode == 2
    # the devices' own model (terminal.payloads.Survey) judges it, every fault at once
    assert "questions[0].scale: Input should be less than or equal to 10" in r.stderr
    assert "questions[1].text: String should have at least 1 character" in r.stderr
    survey.write_text(
        json.dumps(
            {"v": 1, "id": "s", "questions": [{"id": "q1", "text": "x"}, {"id": "q1", "text": "y"}]}
        )
    )
    r = run_careterm(
        "site", "publish", "survey", str(survey), "--broker", "mqtt://127.0.0.1:1", "--site", "main"
    )
    assert r.returncode == 2 and "survey.json: document: question ids repeat" in r.stderr
    roster = tmp_path / "roster.json"
    roster.write_text(json.dumps({"v": 1, "date": "2026-11-23", "appointments": []}))
    r = run_careterm(
        "site", "roster", "publish", str(roster), "--broker", "mqtt://127.0.0.1:1", "--site", "main"
    )
    assert r.returncode == 2 and "appointments: List should have at least 1 item" in r.stderr
    staff = tmp_path / "staff.json"
    staff.write_text('[{"staff": "E1", "name": "x", "token": "1234"}')
    r = run_careterm(
        "site", "publish", "staff", str(staff), "--broker", "mqtt://127.0.0.1:1", "--site", "main"
    )
    assert r.returncode == 2 and "line 1, column" in r.stderr and "not valid JSON" in r.stderr
    survey.write_text(
        json.dumps({"v": 1, "id": "s", "questions": [{"id": "q1", "text": "x", "scale": 5}]})
    )
    r = run_careterm(
        "site",
        "publish",
        "survey",
        str(survey),
        "--broker",
        "mqtt://127.0.0.1:1",
        "--site",
        "Main Site",
    )
    assert r.returncode == 2 and "--site 'Main Site': a site is lower-case" in r.stderr


def test_a_roster_with_full_names_is_published_with_them_masked(tmp_path: Path) -> None:
    from central.publish import load_publishable

    def appointment(n: int, name: str) -> dict[str, str]:
        return {
            "id": f"A20261123-00{n}",
            "token": f"{n:032x}",
            "name": name,
            "department_id": "cardio",
            "department": "心内科",
            "doctor": "李明",
            "room": "305",
            "slot_start": f"{D0}T09:00:00+08:00",
            "slot_end": f"{D0}T09:30:00+08:00",
            "queue_no": f"B{n}",
        }

    doc = {
        "v": 1,
        "date": D0,
        "appointments": [appointment(41, "张*三"), appointment(42, "欧阳明月")],
    }
    p = tmp_path / "roster.json"
    p.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    payload, summary = load_publishable("roster", str(p))
    names = [a["name"] for a in json.loads(payload)["appointments"]]
    assert names == ["张*三", "欧**月"] and "欧阳明月" not in payload.decode()
    assert "1 full name(s) masked" in summary and "欧阳明月" not in summary
