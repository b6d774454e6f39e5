"""`site roster build` on real HIS exports: Chinese headers, column maps, dates that must not be
guessed, and the manual-lookup tokens of SPEC 9.6 (appointment number, phone + birth date)."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import pytest

from central.roster import build_roster, parse_date, parse_phone, parse_slot
from terminal import resident_id
from terminal.cliutil import UsageError
from terminal.payloads import Roster
from terminal.privacy import card_token
from tests.central.conftest import site_today
from tests.conftest import run_careterm

SALT = b"s3cret-site-salt"
CST = timezone(timedelta(hours=8))
TODAY = site_today()  # set again before every test
D0, D1 = str(TODAY), str(TODAY + timedelta(days=1))


@pytest.fixture(autouse=True)
def _today() -> None:
    """Each test's days, taken when it starts (a run may cross midnight at +08:00)."""
    global TODAY, D0, D1
    TODAY = site_today()
    D0, D1 = str(TODAY), str(TODAY + timedelta(days=1))


ID_A = resident_id.complete("11010519491231002")  # born 1949-12-31
ID_B = resident_id.complete("44030019900101123")  # born 1990-01-01

# The default Chinese header set (docs/site.md): no department id, so --directory gives it.
CN_HEADER = "预约号,身份证号,姓名,科室,医生,诊室,就诊日期,开始时间,结束时间,排队号,手机号\n"
DIRECTORY = {
    "v": 1,
    "departments": [
        {"id": "cardio", "name": "心内科", "name_en": "Cardiology", "floor": "3", "location": ""},
        {"id": "derm", "name": "皮肤科", "name_en": "Dermatology", "floor": "2", "location": ""},
    ],
    "doctors": [],
}


@pytest.fixture
def salt(tmp_path: Path) -> Path:
    p = tmp_path / "site.salt"
    p.write_bytes(SALT + b"\n")
    return p


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    p = tmp_path / "directory.json"
    p.write_text(json.dumps(DIRECTORY, ensure_ascii=False), encoding="utf-8")
    return p


def write(tmp_path: Path, text: str, encoding: str = "utf-8", name: str = "his.csv") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


def build(csv_path: Path, salt: Path, *args: str, day: str = ""):
    return run_careterm(
        "site", "roster", "build", "--csv", str(csv_path), "--salt-file", str(salt), "--date",
        day or D0,
        *args,
    )  # fmt: skip


def test_a_chinese_his_export_is_understood_out_of_the_box(
    tmp_path: Path, salt: Path, directory: Path
) -> None:
    text = CN_HEADER + (
        f"A0042,{ID_A},张三丰,心内科,李明,门诊3楼 305诊室,{D0.replace('-', '/')},9:00,9:30,B023,"
        "138-1234-5678\n"
        f"A0043,{ID_B},王芳,皮肤科,赵丽,门诊2楼 201诊室,{D0},10:00,10:30,C001,\n"
        f"A0044,{ID_B},王芳,皮肤科,赵丽,门诊2楼 201诊室,{D1},10:00,10:30,C002,\n"
    )
    r = build(write(tmp_path, text, "gb18030"), salt, "--directory", str(directory))
    assert r.returncode == 0, r.stderr
    roster = json.loads(r.stdout)
    entries = roster["appointments"]
    (first,) = [e for e in entries if e["id"] == "A0042"]
    assert first["token"] == card_token(SALT, "id_card", ID_A)
    assert first["lookup"] == [
        card_token(SALT, "appointment", "A0042"),
        card_token(SALT, "phone_birth", "13812345678" + "19491231"),  # birth from the ID
    ]
    Roster.model_validate(roster)
    assert (first["department_id"], first["department"], first["name"], first["queue_no"]) == (
        "cardio",
        "心内科",
        "张*丰",
        "B023",
    )
    assert (first["slot_start"], first["slot_end"]) == (
        f"{D0}T09:00:00+08:00",
        f"{D0}T09:30:00+08:00",
    )
    assert {e["id"] for e in entries} == {"A0042", "A0043"}  # A0044 is tomorrow's
    assert "1 row(s) are not on" in r.stderr and "3 manual lookup tokens" in r.stderr
    for secret in (ID_A, ID_B, "13812345678", "138-1234-5678", "张三丰"):
        assert secret not in r.stdout + r.stderr


def test_without_a_department_id_column_the_message_says_what_to_do(
    tmp_path: Path, salt: Path
) -> None:
    text = CN_HEADER + f"A0042,{ID_A},张三丰,心内科,李明,305,{D0},09:00,09:30,B023,\n"
    r = build(write(tmp_path, text), salt)
    assert r.returncode == 2
    assert "row 1: missing column(s) department_id (科室代码/科室编码)" in r.stderr
    assert "--directory directory.json" in r.stderr and "--map field=<column>" in r.stderr


def test_a_column_map_from_options_and_from_a_toml_file(tmp_path: Path, salt: Path) -> None:
    text = (
        "挂号流水号,证件号,患者,科别代码,科别,坐诊医生,位置,预约时段起,预约时段止,号序,卡种,卡面号\n"
        f"GH-1,,张三,cardio,心内科,李明,305,{D0} 08:00,{D0} 08:20,1,医保卡,6222020200112233\n"
        f"GH-2,{ID_B},王芳,cardio,心内科,李明,305,{D0} 08:20,{D0} 08:40,2,,\n"
    )
    csv_path = write(tmp_path, text)
    mapping = tmp_path / "his-map.toml"
    mapping.write_text(
        "# the export's headers for careterm's roster fields\n"
        'appointment_id = "挂号流水号"\nid_number = "证件号"\npatient_name = "患者"\n'
        'department_id = "科别代码"\ndepartment = "科别"\ndoctor = "坐诊医生"\n'
        'room = "位置"\nslot_start = "预约时段起"\nslot_end = "预约时段止"\n'
        'card_kind = "卡种"\ncard_number = "卡面号"\n',
        encoding="utf-8",
    )
    r = build(csv_path, salt, "--map", str(mapping), "--map", "queue_no=号序")
    assert r.returncode == 0, r.stderr
    entries = json.loads(r.stdout)["appointments"]
    assert [(e["id"], e["token"], e["lookup"]) for e in entries] == [
        (
            "GH-1",
            card_token(SALT, "medical_card", "6222020200112233"),
            [card_token(SALT, "appointment", "GH-1")],
        ),
        ("GH-2", card_token(SALT, "id_card", ID_B), [card_token(SALT, "appointment", "GH-2")]),
    ]
    r = build(csv_path, salt, "--map", str(mapping))  # queue_no left unmapped
    assert r.returncode == 2 and "missing column(s) queue_no (排队号/就诊序号)" in r.stderr
    r = build(csv_path, salt, "--map", str(mapping), "--map", "queue_no=排队序号")
    assert r.returncode == 2
    assert (
        "row 1: --map queue_no=排队序号: no such column (the columns are: 挂号流水号," in r.stderr
    )
    r = build(csv_path, salt, "--map", "queue=号序")
    assert r.returncode == 2 and "not field=column and not a readable file" in r.stderr
    mapping.write_text('queue = "号序"\n', encoding="utf-8")
    r = build(csv_path, salt, "--map", str(mapping))
    assert (
        r.returncode == 2 and "'queue' is not a roster field (fields: appointment_id," in r.stderr
    )


def test_two_headers_for_one_field_are_refused(tmp_path: Path, salt: Path) -> None:
    text = (
        "预约号,身份证号,姓名,科室代码,科室,科室名称,医生,诊室,开始时间,结束时间,排队号\n"
        f"A0042,{ID_A},张三,cardio,心内科,心内科,李明,305,{D0} 09:00,{D0} 09:30,B1\n"
    )
    p = write(tmp_path, text)
    r = build(p, salt)
    assert r.returncode == 2
    assert "columns 科室 and 科室名称 could both be department: choose one with --map" in r.stderr
    assert build(p, salt, "--map", "department=科室名称").returncode == 0


HEADER = (
    "appointment_id,id_number,patient_name,department_id,department,doctor,room,"
    "slot_start,slot_end,queue_no\n"
)


def row(aid: str, start: str, end: str) -> str:
    return f"{aid},{ID_A},张三,cardio,心内科,李明,305,{start},{end},B1\n"


def test_times_without_a_date_are_never_put_on_a_day_the_file_contradicts(
    tmp_path: Path, salt: Path
) -> None:
    """The issue's case: a time-only export re-dated to any --date with exit 0."""
    mixed = write(
        tmp_path,
        HEADER
        + row("A001", "09:00", "09:30")
        + row("A002", "09:30", "10:00")
        + row("A003", f"{D1} 10:00", f"{D1} 10:30"),
    )
    r = build(mixed, salt, day=D0)
    assert r.returncode == 2 and r.stdout == ""
    assert (
        f"rows 2-3 give a time without a date, and the dated rows are on {D1}, not on "
        f"--date {D0}: the times would land on the wrong day" in r.stderr
    )
    assert build(mixed, salt, "--force-date", day=D0).returncode == 2  # not overridable
    ok = build(mixed, salt, day=D1)
    assert ok.returncode == 0, ok.stderr
    assert len(json.loads(ok.stdout)["appointments"]) == 3

    only_times = write(tmp_path, HEADER + row("A001", "09:00", "09:30"), name="t.csv")
    assert build(only_times, salt, day=D0).returncode == 0
    assert build(only_times, salt, day=D1).returncode == 0  # built the evening before
    later = str(TODAY + timedelta(days=2))
    r = build(only_times, salt, day=later)
    assert r.returncode == 2
    assert f"would be put on {later}, which is neither today ({D0}) nor tomorrow" in r.stderr
    r = build(only_times, salt, "--force-date", day=later)
    assert r.returncode == 0 and json.loads(r.stdout)["date"] == later


def test_a_date_in_the_past_or_far_ahead_is_refused(tmp_path: Path, salt: Path) -> None:
    yesterday = str(TODAY - timedelta(days=1))
    far = str(TODAY + timedelta(days=30))
    dated = write(
        tmp_path,
        HEADER
        + row("A001", f"{yesterday} 09:00", f"{yesterday} 09:30")
        + row("A002", f"{far} 09:00", f"{far} 09:30"),
    )
    r = build(dated, salt, day=yesterday)
    assert r.returncode == 2 and f"--date {yesterday}: in the past (today is {D0})" in r.stderr
    r = build(dated, salt, day=far)
    assert r.returncode == 2 and "more than 7 days ahead" in r.stderr
    assert build(dated, salt, "--force-date", day=yesterday).returncode == 0


def test_a_visit_date_column_dates_the_times_and_must_agree_with_full_timestamps(
    tmp_path: Path, salt: Path
) -> None:
    text = (
        HEADER.rstrip("\n")
        + ",visit_date\n"
        + row("A001", "09:00", "09:30").rstrip("\n")
        + f",{D1}\n"
        + row("A002", f"{D0} 09:00", f"{D0} 09:30").rstrip("\n")
        + f",{D1}\n"
    )
    r = build(write(tmp_path, text), salt, day=D1)
    assert r.returncode == 2
    assert f"row 3, column slot_start: is on {D0}, but visit_date is {D1}" in r.stderr


def test_phone_lookup_tokens_and_bad_phones(tmp_path: Path, salt: Path) -> None:
    text = (
        HEADER.rstrip("\n")
        + ",phone,birth_date\n"
        + f"A001,{ID_A},张三,cardio,心内科,李明,305,09:00,09:30,B1,+86 139 0000 1111,1980年1月31日\n"
        + f"A002,{ID_B},王芳,cardio,心内科,李明,305,09:30,10:00,B2,010-62345678,\n"
    )
    r = build(write(tmp_path, text), salt)
    assert r.returncode == 0, r.stderr
    a1, a2 = json.loads(r.stdout)["appointments"]
    # the birth_date column wins over the ID number's date of birth
    assert a1["lookup"][1] == card_token(SALT, "phone_birth", "1390000111119800131")
    assert len(a2["lookup"]) == 1  # the appointment number only: no mobile phone
    assert "1 row(s) have a phone that is not an 11-digit mobile number" in r.stderr
    assert "62345678" not in r.stderr + r.stdout


def test_value_parsers() -> None:
    assert [parse_date(v) for v in ("2026-11-23", "2026/11/3", "20261123", "2026年11月23日")] == [
        date(2026, 11, 23),
        date(2026, 11, 3),
        date(2026, 11, 23),
        date(2026, 11, 23),
    ]
    assert parse_slot("9:05", CST).isoformat() == "09:05:00"
    assert parse_slot("2026/11/23 9:05", CST).isoformat() == "2026-11-23T09:05:00+08:00"
    assert parse_slot("2026-11-23T01:05:00Z", CST).isoformat() == "2026-11-23T01:05:00+00:00"
    for bad in ("9点", "25:00", "2026-11-23", "2026-13-01 09:00"):
        with pytest.raises(ValueError):
            parse_slot(bad, CST)
    assert parse_phone("138 1234 5678") == "13812345678"
    assert parse_phone("8613812345678") == "13812345678"
    assert parse_phone("12812345678") is None and parse_phone("62345678") is None


def test_chinese_card_kinds(tmp_path: Path) -> None:
    text = (
        "预约号,卡类型,就诊卡号,姓名,科室代码,科室,医生,诊室,开始时间,结束时间,排队号\n"
        f"A001,医保卡,6222020200112233,张三,cardio,心内科,李明,305,{D0} 09:00,{D0} 09:30,B1\n"
        f"A002,身份证,{ID_B},王芳,cardio,心内科,李明,305,{D0} 09:30,{D0} 10:00,B2\n"
        f"A003,护照,E12345678,Tom,cardio,心内科,李明,305,{D0} 10:00,{D0} 10:30,B3\n"
    )
    at_ten = datetime.combine(TODAY, time(10), CST)  # the library's clock, fixed
    with pytest.raises(UsageError) as e:
        build_roster(text, "his.csv", SALT, TODAY, CST, now=at_ten)
    assert "row 4, column 卡类型: must be one of medical_card, id_card" in str(e.value)
    assert "护照" not in str(e.value)
    roster, _ = build_roster(text.rsplit("A003", 1)[0], "his.csv", SALT, TODAY, CST, now=at_ten)
    tokens = [a["token"] for a in roster["appointments"]]
    assert card_token(SALT, "medical_card", "6222020200112233") in tokens
    assert card_token(SALT, "id_card", ID_B) in tokens
