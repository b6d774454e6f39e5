"""Ticket and slip documents, tracking numbers, the guide's pinyin search, survey, feedback, idle."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from careterm.demo_data import demo_directory
from drivers.printer.document import QR, Text
from kiosk.directory import Directory, pinyin_initial
from kiosk.feedback import FeedbackForm, mask_phone
from kiosk.roster import Roster
from kiosk.survey import Survey, SurveyError, SurveyRun
from kiosk.ticket import Place, checkin_ticket, feedback_slip
from terminal.payloads import PayloadError

CST = timezone(timedelta(hours=8))


def appointment():
    return Roster.parse(
        {
            "v": 1,
            "date": "2026-11-23",
            "appointments": [
                {
                    "id": "A20261123-0042",
                    "token": "7" * 32,
                    "name": "张*三",
                    "department_id": "cardio",
                    "department": "心内科",
                    "doctor": "李明",
                    "room": "门诊3楼 305诊室",
                    "slot_start": "2026-11-23T09:00:00+08:00",
                    "slot_end": "2026-11-23T09:30:00+08:00",
                    "queue_no": "B023",
                }
            ],
        }
    ).appointments[0]


def texts(doc) -> list[str]:
    return [b.text for b in doc.blocks if isinstance(b, Text)]


def test_checkin_ticket_has_queue_number_double_place_doctor_time_qr_and_masked_name():
    doc = checkin_ticket(
        appointment(),
        Place("门诊楼3层", "电梯右转", "Cardiology"),
        "zh",
        "kiosk-01",
        datetime(2026, 11, 23, 8, 50, tzinfo=CST),
    )
    big = [b for b in doc.blocks if isinstance(b, Text) and b.double]
    assert [b.text for b in big] == ["B023"]
    joined = "\n".join(texts(doc))
    for part in (
        "心内科",
        "地点: 门诊3楼 305诊室",
        "李明",
        "09:00-09:30",
        "张*三",
        "A20261123-0042",
    ):
        assert part in joined
    assert [b.data for b in doc.blocks if isinstance(b, QR)] == ["CT1:A20261123-0042"]
    assert "补打" not in joined
    en = checkin_ticket(
        appointment(),
        Place("门诊楼3层", "", "Cardiology"),
        "en",
        "kiosk-01",
        datetime(2026, 11, 23, 8, 50, tzinfo=CST),
        repeat=True,
    )
    assert "Department: Cardiology" in texts(en) and "(reprint)" in texts(en)


def test_feedback_slip_promises_a_reply_only_with_a_callback_and_names_the_desk():
    slip = feedback_slip(
        "F-20261124-kiosk-01-0001",
        "complaint",
        "心内科",
        ["等候时间长"],
        True,
        "zh",
        datetime(2026, 11, 24, 10, 0),
        hospital="市第一人民医院",
        reply_days=5,
        help_desk="门诊楼1层服务台",
    )
    t = texts(slip)
    assert t[0] == "市第一人民医院" and "F-20261124-kiosk-01-0001" in t and "类型: 投诉" in t
    joined = "".join(t)  # 32 columns: long lines wrap
    assert "我们将在5个工作日内电话回访" in joined and "可凭受理编号到门诊楼1层服务台查询" in joined
    quiet = feedback_slip("F-1", "praise", "", [], False, "zh", datetime(2026, 11, 24, 10, 0))
    assert not any("工作日" in x for x in texts(quiet))
    assert "可凭受理编号到人工窗口查询" in "".join(texts(quiet))


def test_guide_groups_by_floor_and_finds_by_pinyin_initial():
    d = Directory.parse(demo_directory())
    floors = dict(d.floors())
    assert [x.id for x in floors["门诊楼3层"]] == ["cardio", "resp"]
    assert [x.id for x in d.search("x", "zh")] == ["cardio", "gastro"]  # 心内科, 消化内科
    assert [x.id for x in d.search("Z", "zh")] == ["icu"]  # 重症: zhong, not chong
    assert [x.id for x in d.search("C", "en")] == ["cardio", "icu"]
    assert "X" in d.letters("zh") and len(d.search("", "zh")) == len(d.departments)
    assert [x.name for x in d.doctors_today("cardio")] == ["李明", "王静"]  # 郑强 is off today
    assert pinyin_initial("Dermatology") == "D" and pinyin_initial("") == ""


def test_survey_one_question_at_a_time_with_skip_and_back():
    s = Survey.parse(
        {
            "v": 1,
            "id": "opd",
            "questions": [
                {"id": "q1", "text": "挂号?", "scale": 5},
                {"id": "q2", "text": "医生?", "scale": 3},
            ],
        }
    )
    run = SurveyRun(s)
    run.answer(5)
    with pytest.raises(SurveyError):
        run.answer(4)  # q2 has a 3-point scale
    assert run.back() and run.question.id == "q1"
    run.answer(4)
    run.answer(None)
    assert run.finished and run.event_data() == {"survey": "opd", "answers": {"q1": 4}}
    with pytest.raises(PayloadError, match="questions"):
        Survey.parse({"v": 1, "id": "x", "questions": []})


def test_feedback_form_validates_phone_and_builds_the_event():
    f = FeedbackForm()
    assert f.problem() == "fb_category"
    f.category = "complaint"
    f.toggle_topic("等候时间长")
    f.toggle_topic("收费问题")
    f.toggle_topic("收费问题")
    for ch in "138123456789x":
        f.type_digit(ch)
    assert f.phone == "13812345678" and mask_phone(f.phone) == "138****5678"
    data = f.event_data("F-20261123-kiosk-01-0007")
    assert data == {
        "category": "complaint",
        "department_id": None,
        "topics": ["等候时间长"],
        "text": "",
        "callback_phone": "13812345678",
        "tracking_no": "F-20261123-kiosk-01-0007",
    }
    f.delete_digit()
    assert f.problem() == "fb_phone_bad"
