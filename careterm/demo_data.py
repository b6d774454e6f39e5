"""The one demo data set (`careterm demo`, the tests, the benchmarks): a directory, a survey, a
staff list and a roster of made-up patients whose ID numbers carry valid check characters."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from terminal.privacy import card_token, mask_name
from terminal.resident_id import complete as id_number

DEPARTMENTS = [
    # id, name, name_en, floor, location, room prefix, queue letter
    ("cardio", "心内科", "Cardiology", "门诊楼3层", "电梯右转", "门诊3楼 30{}诊室", "B"),
    ("resp", "呼吸内科", "Respiratory Medicine", "门诊楼3层", "电梯左转", "门诊3楼 31{}诊室", "C"),
    ("gastro", "消化内科", "Gastroenterology", "门诊楼4层", "电梯右转", "门诊4楼 40{}诊室", "D"),
    ("ortho", "骨科", "Orthopaedics", "门诊楼2层", "扶梯正对", "门诊2楼 20{}诊室", "G"),
    ("peds", "儿科", "Paediatrics", "门诊楼1层", "大厅东侧", "门诊1楼 10{}诊室", "E"),
    ("derm", "皮肤科", "Dermatology", "门诊楼5层", "电梯左转", "门诊5楼 50{}诊室", "P"),
    ("ent", "耳鼻喉科", "ENT", "门诊楼5层", "电梯右转", "门诊5楼 51{}诊室", "R"),
    ("eye", "眼科", "Ophthalmology", "门诊楼6层", "电梯正对", "门诊6楼 60{}诊室", "Y"),
    ("gyn", "妇科", "Gynaecology", "门诊楼4层", "电梯左转", "门诊4楼 41{}诊室", "F"),
    ("icu", "重症医学科", "Critical Care", "住院楼2层", "连廊直行", "住院楼2楼 医生办公室", "Z"),
]
DOCTORS = [
    ("李明", "主任医师", "cardio", ["08:00-12:00"]),
    ("王静", "副主任医师", "cardio", ["14:00-17:30"]),
    ("赵磊", "主治医师", "resp", ["08:00-12:00", "14:00-17:30"]),
    ("陈芳", "主任医师", "gastro", ["08:00-12:00"]),
    ("刘洋", "副主任医师", "ortho", ["08:00-12:00"]),
    ("杨帆", "主治医师", "peds", ["08:00-17:30"]),
    ("黄蕾", "主任医师", "derm", ["14:00-17:30"]),
    ("周涛", "主治医师", "ent", ["08:00-12:00"]),
    ("吴敏", "副主任医师", "eye", ["08:00-12:00"]),
    ("孙丽", "主任医师", "gyn", ["14:00-17:30"]),
    ("郑强", "主治医师", "cardio", []),
    ("钱进", "主任医师", "icu", ["08:00-17:30"]),
]
SURNAMES = "张王李赵陈刘杨黄周吴徐孙胡朱高林何郭马罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"

# Demo patients a newcomer can present at the simulated reader (fictional people).
DEMO_PATIENTS = [
    # card number, name, card kind, department index, minutes from now to the slot
    (id_number("11010119900307777"), "张伟", "id_card", 0, 10),
    (id_number("11010519851224003"), "王芳", "id_card", 2, 150),
    ("6222020011223344", "李强", "medical_card", 3, -20),
    (id_number("31010419780615002"), "赵敏", "id_card", 1, -120),
]
# Clerks of the demo pad; `card` is what their staff card reads.
STAFF = [
    {"staff": "E1024", "name": "王芳", "title": "收费员", "card": "S1024"},
    {"staff": "E2048", "name": "刘洋", "title": "挂号员", "card": "S2048"},
]


def demo_staff(salt: bytes) -> list[dict[str, Any]]:
    """The staff list as the site publishes it (`R/S/staff`): card tokens, never card numbers."""
    return [
        {
            "staff": s["staff"],
            "name": s["name"],
            "title": s["title"],
            "token": card_token(salt, "staff_card", s["card"][1:]),
            "photo": None,
        }
        for s in STAFF
    ]


def demo_cards() -> list[dict[str, str]]:
    """What the simulated reader offers as buttons: the demo patients and the first clerk."""
    kinds = {"id_card": "身份证", "medical_card": "就诊卡"}
    cards = [
        {"kind": kind, "number": number, "name": name, "label": f"{name[0]}* {kinds[kind]}"}
        for number, name, kind, _dep, _minutes in DEMO_PATIENTS
    ]
    clerk = STAFF[0]
    cards.append(
        {
            "kind": "staff_card",
            "number": clerk["card"][1:],
            "name": clerk["name"],
            "label": f"{clerk['staff']} 工牌",
        }
    )
    return cards


def demo_directory() -> dict[str, Any]:
    return {
        "v": 1,
        "departments": [
            {"id": d[0], "name": d[1], "name_en": d[2], "floor": d[3], "location": d[4]}
            for d in DEPARTMENTS
        ],
        "doctors": [
            {"name": n, "title": t, "department_id": dep, "today": today, "bio": ""}
            for n, t, dep, today in DOCTORS
        ],
    }


def demo_survey() -> dict[str, Any]:
    return {
        "v": 1,
        "id": "opd-demo",
        "questions": [
            {
                "id": "q1",
                "text": "您对挂号流程满意吗?",
                "text_en": "How satisfied are you with registration?",
                "scale": 5,
            },
            {
                "id": "q2",
                "text": "您对医生的服务满意吗?",
                "text_en": "How satisfied are you with your doctor?",
                "scale": 5,
            },
            {
                "id": "q3",
                "text": "您对候诊环境满意吗?",
                "text_en": "How satisfied are you with the waiting area?",
                "scale": 5,
            },
        ],
    }


def _appointment(i: int, token: str, name: str, dep: int, start: datetime) -> dict[str, Any]:
    d = DEPARTMENTS[dep]
    return {
        "id": f"A{start:%Y%m%d}-{i:05d}",
        "token": token,
        "name": _roster_name(name),
        "department_id": d[0],
        "department": d[1],
        "doctor": DOCTORS[[x[2] for x in DOCTORS].index(d[0])][0],
        "room": d[5].format(i % 9 + 1),
        "slot_start": start.isoformat(),
        "slot_end": (start + timedelta(minutes=30)).isoformat(),
        "queue_no": f"{d[6]}{i % 1000:03d}",
    }


def _roster_name(name: str) -> str:
    """The roster's masked form keeps the first and last character (张*三); two-character
    names keep the first (张*)."""
    if len(name) <= 2:
        return mask_name(name) or ""
    return name[0] + "*" * (len(name) - 2) + name[-1]


def demo_roster(
    salt: bytes,
    day: date | None = None,
    *,
    size: int = 60,
    now: datetime | None = None,
    tz: tzinfo | None = None,
    seed: int = 7,
) -> dict[str, Any]:
    """A roster for `day` (today): the DEMO_PATIENTS first (slots relative to `now`), then `size`
    random patients with ID cards or medical cards between 08:00 and 17:30."""
    now = now or datetime.now().astimezone()
    tz = tz or now.tzinfo
    day = day or now.date()
    rng = random.Random(seed)
    rows = []
    for i, (number, name, kind, dep, minutes) in enumerate(DEMO_PATIENTS, start=1):
        start = (now + timedelta(minutes=minutes)).replace(second=0, microsecond=0)
        start = start.replace(minute=start.minute - start.minute % 5)
        if start.date() != day:  # late at night: keep every demo patient on today's roster
            start = now.replace(second=0, microsecond=0)
        rows.append(
            _appointment(i, card_token(salt, kind, number), name, dep, start.astimezone(tz))
        )
    opening = datetime.combine(day, time(8, 0), tz)
    for i in range(len(rows) + 1, len(rows) + 1 + size):
        if rng.random() < 0.7:
            number = id_number(
                f"{rng.randint(110000, 659999)}19{rng.randint(40, 99)}"
                f"{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
            )
            token = card_token(salt, "id_card", number)
        else:
            token = card_token(salt, "medical_card", f"{rng.randint(10**11, 10**12 - 1)}")
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2)))
        start = opening + timedelta(minutes=30 * rng.randint(0, 18))
        rows.append(_appointment(i, token, name, rng.randrange(len(DEPARTMENTS)), start))
    return {
        "v": 1,
        "date": day.isoformat(),
        "generated": now.isoformat(timespec="seconds"),
        "appointments": rows,
    }


def add_card_holders(
    roster: dict[str, Any], salt: bytes, numbers: list[str], now: datetime
) -> None:
    """Benchmarks: one appointment for each ID card number in `numbers` (the cards a benchmark
    reads), at 心内科 ten minutes after `now`, queue numbers B000, B001, ..."""
    start = (now + timedelta(minutes=10)).replace(second=0, microsecond=0)
    for i, number in enumerate(numbers):
        roster["appointments"].append(
            {
                "id": f"B{now:%Y%m%d}-{i:04d}",
                "token": card_token(salt, "id_card", number),
                "name": "测*试",
                "department_id": "cardio",
                "department": "心内科",
                "doctor": "李明",
                "room": "门诊3楼 305诊室",
                "slot_start": start.isoformat(),
                "slot_end": (start + timedelta(minutes=30)).isoformat(),
                "queue_no": f"B{i:03d}",
            }
        )
