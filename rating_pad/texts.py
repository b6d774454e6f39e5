"""Screen texts of the pad in Chinese and English (pure; the headless pad never loads Kivy)."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "zh": {
        "welcome": "欢迎光临",
        "staff_no": "工号",
        "ask": "请对我的服务进行评价",
        "ask_free": "请对本窗口的服务做出评价",
        "thanks": "谢谢您的评价!",
        "thanks_sub": "祝您早日康复",
        "reason": "请告诉我们不满意的原因",
        "reason_keys": "按原因上标明的评价键选择,或直接点击",
        "reason_key": "按「{name}」键",
        "reason_touch": "请点击原因",
        "seconds": "{s} 秒",
        "paused": "暂停服务",
        "paused_sub": "请稍候,工作人员马上回来",
        "closed": "本窗口暂未开放",
        "closed_sub": "请到其他窗口办理",
        "fault": "设备故障,暂时无法评价",
        "fault_sub": "请告知工作人员。您的评价未能保存。",
        "no_clerk": "",
        "lang": "English",
        "unknown_staff_card": "工作人员卡未登记,请联系管理员",
        "not_prompted": "请在工作人员邀请后评价",
        "status_online": "今日评价 {n} 条 · 网络正常",
        "status_offline": "今日评价 {n} 条 · 网络中断,{w} 条待发送",
        "status_offline_none": "今日评价 {n} 条 · 网络中断",
    },
    "en": {
        "welcome": "Welcome",
        "staff_no": "Staff No.",
        "ask": "Please rate my service",
        "ask_free": "Please rate the service at this window",
        "thanks": "Thank you for your feedback!",
        "thanks_sub": "We wish you a speedy recovery",
        "reason": "What went wrong?",
        "reason_keys": "Press the rating key named on a reason, or touch it",
        "reason_key": '"{name}" key',
        "reason_touch": "Touch a reason",
        "seconds": "{s} s",
        "paused": "Service paused",
        "paused_sub": "Please wait, the clerk will be back shortly",
        "closed": "This window is closed",
        "closed_sub": "Please go to another window",
        "fault": "Rating unavailable",
        "fault_sub": "Please tell the staff. Your rating could not be saved.",
        "no_clerk": "",
        "lang": "中文",
        "unknown_staff_card": "Staff card not registered: ask the administrator",
        "not_prompted": "Please rate when the clerk asks you",
        "status_online": "Today: {n} ratings · online",
        "status_offline": "Today: {n} ratings · offline, {w} waiting",
        "status_offline_none": "Today: {n} ratings · offline",
    },
}


def text(lang: str, key: str, **kw: object) -> str:
    s = TEXTS.get(lang, TEXTS["zh"]).get(key) or TEXTS["zh"][key]
    return s.format(**kw) if kw else s
