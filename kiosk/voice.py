"""Spoken guidance: the shipped zh/en clips (kiosk/voice/<lang>/<clip>.wav, made by
`scripts/make-voice`) played through a `drivers.speaker` at `[kiosk].voice_volume`."""

from __future__ import annotations

import logging
from pathlib import Path

from drivers.speaker.base import Speaker

log = logging.getLogger("careterm.kiosk.voice")

CLIPS_DIR = Path(__file__).resolve().parent / "voice"

# Every clip the kiosk speaks, and what it says (scripts/make-voice renders these).
CLIPS: dict[str, tuple[str, str]] = {
    "home": (
        "欢迎使用自助服务。请刷身份证或就诊卡, 或扫描预约二维码。",
        "Welcome. Please tap your ID or hospital card, or scan your appointment QR code.",
    ),
    "checkin": (
        "请把身份证或就诊卡放在读卡区, 或把预约二维码对准扫描窗口。",
        "Place your card on the reader, or hold your QR code to the scanner.",
    ),
    "care_on": (
        "已打开关怀模式。字更大, 操作不限时。需要帮助请按呼叫工作人员。",
        "Care mode is on: larger text and no time limits. Press call staff if you need help.",
    ),
    "list": (
        "这是您今天的预约。请点签到, 或按确认键。",
        "Here are your appointments today. Tap check in, or press Enter.",
    ),
    "lookup": (
        "请输入预约号, 或手机号加出生日期。",
        "Type your appointment number, or your phone number and birth date.",
    ),
    "lookup_bad": (
        "号码不完整, 请检查后重新输入。",
        "That number is not complete. Please check it.",
    ),
    "done": (
        "签到成功。请取走凭条, 按凭条上的地点候诊。",
        "You are checked in. Take your ticket and wait where it says.",
    ),
    "done_no_ticket": (
        "签到成功。打印机故障, 请拍下屏幕上的凭条。",
        "You are checked in. The printer failed: please take a photo of the screen.",
    ),
    "refused_too_early": (
        "还没到签到时间, 请按屏幕上的时间再来。",
        "It is too early to check in. Please come back at the time on the screen.",
    ),
    "refused_too_late": (
        "已过签到时间, 请到人工窗口办理。",
        "The check-in time has passed. Please go to a service window.",
    ),
    "problem_unrecognised": (
        "无法识别这张卡。请使用身份证、就诊卡, 或输入号码查询。",
        "This card is not recognised. Use your ID or hospital card, or type a number.",
    ),
    "problem_check_digit": (
        "身份证没有读对。请重新放卡, 或输入号码查询。",
        "The ID card was misread. Place it again, or type a number.",
    ),
    "problem_incomplete": (
        "卡没有读完。请重新放卡, 放稳不要移动。",
        "The card was not read. Please place it again and hold it still.",
    ),
    "problem_expired": (
        "证件已过期。请使用就诊卡, 或输入号码查询。",
        "This card has expired. Use your hospital card, or type a number.",
    ),
    "problem_no_appointment": (
        "没有找到您今天的预约。请到人工窗口挂号。",
        "We found no appointment for you today. Please register at a window.",
    ),
    "problem_not_found": (
        "没有找到与这个号码匹配的预约。请检查号码。",
        "No appointment matches that number. Please check it.",
    ),
    "problem_no_roster": (
        "本机暂时无法签到, 请到人工窗口签到。",
        "This kiosk cannot check you in now. Please go to a window.",
    ),
    "problem_qr_other_day": (
        "这个二维码不是今天的预约。",
        "This QR code is not for today.",
    ),
    "problem_qr_used": (
        "这个预约今天已经签到过了。",
        "This appointment is already checked in today.",
    ),
    "reader_fault": (
        "读卡器故障。请输入号码查询, 或到人工窗口办理。",
        "The card reader is out of order. Type a number, or go to a window.",
    ),
    "help": (
        "已通知工作人员, 马上就到。请在本机旁稍候。",
        "Staff have been called and are on their way. Please wait here.",
    ),
    "failed": (
        "本机暂时无法办理, 请到人工窗口。",
        "This kiosk cannot do this now. Please go to a window.",
    ),
}


class Voice:
    """Turns `Speak` effects into clips on a speaker; a missing clip is logged once."""

    def __init__(self, speaker: Speaker, clips_dir: Path = CLIPS_DIR) -> None:
        self.speaker = speaker
        self.dir = clips_dir
        self._missing: set[Path] = set()

    def path(self, clip: str, lang: str) -> Path:
        return self.dir / ("en" if lang == "en" else "zh") / f"{clip}.wav"

    def say(self, clip: str, lang: str, care: bool = False) -> bool:
        p = self.path(clip, lang)
        if not p.is_file():
            if p not in self._missing:
                self._missing.add(p)
                log.warning("voice: no clip %s (run scripts/make-voice)", p)
            return False
        return self.speaker.play(p)

    def close(self) -> None:
        self.speaker.close()
