"""The kiosk's texts (kiosk/i18n.py) name the site's help desk from `[kiosk] help_desk`, never
a desk of their own (SPEC 9.6: site texts are configuration)."""

from __future__ import annotations

import pytest

from kiosk.i18n import TEXTS, tr

DEFAULT_DESK = TEXTS["default_help_desk"]


@pytest.mark.parametrize("lang,i", [("zh", 0), ("en", 1)])
def test_no_text_names_the_default_help_desk_instead_of_the_configured_one(lang, i):
    """The appointment list said "请到人工窗口办理" for a missed slot while the next screen said
    the configured "门诊楼1层服务台": two places to go for one problem."""
    words = {"zh": ("人工窗口",), "en": ("the window", "a service window")}[lang]
    own = [
        key
        for key, pair in TEXTS.items()
        if key != "default_help_desk" and any(w in pair[i] for w in words)
    ]
    assert not own, f"texts naming a desk of their own: {own}"


def test_a_missed_slot_in_the_list_sends_the_patient_to_the_configured_desk():
    assert (
        tr("appt_too_late", "zh", desk="门诊楼1层服务台") == "已过签到时间: 请到门诊楼1层服务台办理"
    )
    assert tr("appt_too_late", "en", desk="the help desk") == "Too late: go to the help desk"
    assert DEFAULT_DESK[0] in tr("appt_too_late", "zh", desk=DEFAULT_DESK[0])
