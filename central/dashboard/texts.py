"""The console's words in Chinese (first) and English, and how times and figures are written."""

from __future__ import annotations

from datetime import datetime, tzinfo

LANGS = ("zh", "en")

TEXTS: dict[str, dict[str, str]] = {
    "zh": {
        "title": "服务终端监控台",
        "wall_title": "窗口服务评价 实时看板",
        "login": "登录",
        "login_title": "登录监控台",
        "user": "用户名",
        "password": "密码",
        "bad_login": "用户名或密码不正确",
        "locked_login": "登录失败次数过多，请 {s} 秒后再试",
        "logout": "退出",
        "wall": "大屏模式",
        "console": "监控台",
        "live": "实时",
        "disconnected": "连接中断，正在重连…",
        "updated": "更新于",
        "today": "今日",
        "satisfaction": "满意度",
        "response_rate": "评价率",
        "ratings": "评价数",
        "rated_n": "已评价 {n} 次",
        "prompts_n": "邀请 {n} 次",
        "no_prompts": "无邀请评价",
        "low": "不满意",
        "open_alerts": "未处理告警",
        "devices_online": "设备在线",
        "alerts": "告警",
        "no_alerts": "没有未处理的告警",
        "ack": "确认",
        "acked": "已确认",
        "acked_by": "{user} 于 {time} 确认",
        "more_alerts": "另有 {n} 条较早的未处理告警",
        "devices": "设备状态",
        "no_devices": "数据库中还没有设备",
        "device": "设备",
        "state": "状态",
        "since": "自",
        "last_event": "最近事件",
        "outbox": "待发",
        "printer": "打印机",
        "card_reader": "读卡器",
        "buttons": "按键",
        "clock": "时钟",
        "version": "版本",
        "by_window": "今日各窗口",
        "by_staff": "今日各员工",
        "window": "窗口",
        "staff": "员工",
        "median_response": "响应中位数",
        "misuse": "误按",
        "no_ratings": "今日还没有评价",
        "db_error": "数据库暂时无法读取：{error}",
        "reason": "原因",
        "score": "评分",
        "offline_devices": "离线设备",
        "all_online": "全部设备在线",
        "state_online": "在线",
        "state_offline": "离线",
        "state_unknown": "未知",
        "reason_lost": "连接中断",
        "reason_shutdown": "正常关机",
        "role_kiosk": "自助机",
        "role_rating_pad": "评价器",
        "drv_ok": "正常",
        "drv_absent": "未连接",
        "drv_error": "故障",
        "drv_unknown": "未知",
        "drv_disabled": "未配置",
        "drv_touch": "触摸屏",
        "synced": "已同步",
        "not_synced": "未同步",
        "skew": "偏差 {d}",
        "p_offline": "离线",
        "p_printer": "打印机",
        "p_card_reader": "读卡器",
        "p_buttons": "按键",
        "p_backlog": "积压",
        "p_clock": "时钟未同步",
        "p_skew": "时钟偏差",
        "p_silent": "无消息",
        "p_gaps": "事件缺失",
        "p_cert": "证书将过期",
        "gaps_n": "缺失 {n} 段",
        "sev_critical": "严重",
        "sev_warning": "警告",
        "sev_info": "提示",
        "kind_dissatisfied": "不满意评价",
        "kind_printer": "打印机",
        "kind_card_reader": "读卡器",
        "kind_buttons": "按键",
        "kind_storage": "存储",
        "kind_outbox_backlog": "事件积压",
        "kind_clock": "时钟",
        "kind_help": "呼叫人工",
        "kind_document": "下发文件被拒",
        "ago": "{d}前",
        "sec": "{n} 秒",
        "min": "{n} 分钟",
        "hour": "{n} 小时",
        "day": "{n} 天",
        "lang_other": "English",
        "sat_today": "今日满意度",
        "resp_today": "今日评价率",
        "low_today": "今日不满意",
        "ratings_today": "今日评价数",
        "prompted_of": "邀请 {n} 次，评价 {a} 次",
        "offline_n": "{n} 台离线",
        "no_reason": "未选择",
        "last_days": "近 {n} 天",
    },
    "en": {
        "title": "Terminal console",
        "wall_title": "Service ratings, live",
        "login": "Log in",
        "login_title": "Log in to the console",
        "user": "User name",
        "password": "Password",
        "bad_login": "Wrong user name or password",
        "locked_login": (
            "Too many failed log-ins for this name or from this computer: try again in {s} s"
        ),
        "logout": "Log out",
        "wall": "Wall display",
        "console": "Console",
        "live": "Live",
        "disconnected": "Connection lost, reconnecting…",
        "updated": "Updated",
        "today": "Today",
        "satisfaction": "Satisfaction",
        "response_rate": "Response rate",
        "ratings": "Ratings",
        "rated_n": "{n} ratings",
        "prompts_n": "{n} prompts",
        "no_prompts": "no prompted ratings",
        "low": "Dissatisfied",
        "open_alerts": "Open alerts",
        "devices_online": "Devices online",
        "alerts": "Alerts",
        "no_alerts": "No open alerts",
        "ack": "Acknowledge",
        "acked": "Acknowledged",
        "acked_by": "acknowledged by {user} at {time}",
        "more_alerts": "{n} older open alerts not shown",
        "devices": "Devices",
        "no_devices": "No devices in the database yet",
        "device": "Device",
        "state": "State",
        "since": "since",
        "last_event": "Last event",
        "outbox": "Outbox",
        "printer": "Printer",
        "card_reader": "Reader",
        "buttons": "Keypad",
        "clock": "Clock",
        "version": "Version",
        "by_window": "Today by window",
        "by_staff": "Today by staff",
        "window": "Window",
        "staff": "Staff",
        "median_response": "Median response",
        "misuse": "Misuse",
        "no_ratings": "No ratings yet today",
        "db_error": "The database cannot be read right now: {error}",
        "reason": "Reason",
        "score": "Score",
        "offline_devices": "Offline devices",
        "all_online": "All devices online",
        "state_online": "Online",
        "state_offline": "Offline",
        "state_unknown": "Unknown",
        "reason_lost": "connection lost",
        "reason_shutdown": "shut down",
        "role_kiosk": "Kiosk",
        "role_rating_pad": "Rating pad",
        "drv_ok": "OK",
        "drv_absent": "not connected",
        "drv_error": "fault",
        "drv_unknown": "unknown",
        "drv_disabled": "not configured",
        "drv_touch": "touchscreen",
        "synced": "synced",
        "not_synced": "not synced",
        "skew": "off by {d}",
        "p_offline": "offline",
        "p_printer": "printer",
        "p_card_reader": "reader",
        "p_buttons": "keypad",
        "p_backlog": "backlog",
        "p_clock": "clock not synced",
        "p_skew": "clock off",
        "p_silent": "silent",
        "p_gaps": "missing events",
        "p_cert": "certificate expiring",
        "gaps_n": "{n} gaps",
        "sev_critical": "critical",
        "sev_warning": "warning",
        "sev_info": "info",
        "kind_dissatisfied": "Dissatisfied rating",
        "kind_printer": "Printer",
        "kind_card_reader": "Card reader",
        "kind_buttons": "Keypad",
        "kind_storage": "Storage",
        "kind_outbox_backlog": "Backlog",
        "kind_clock": "Clock",
        "kind_help": "Help requested",
        "kind_document": "Document rejected",
        "ago": "{d} ago",
        "sec": "{n} s",
        "min": "{n} min",
        "hour": "{n} h",
        "day": "{n} d",
        "lang_other": "中文",
        "sat_today": "Satisfaction today",
        "resp_today": "Response rate today",
        "low_today": "Dissatisfied today",
        "ratings_today": "Ratings today",
        "prompted_of": "{a} rated of {n} prompts",
        "offline_n": "{n} offline",
        "no_reason": "none given",
        "last_days": "last {n} days",
    },
}


class Words:
    """Texts and formatting for one language and time zone (used by the templates as `t`)."""

    def __init__(self, lang: str, tz: tzinfo | None, now: float) -> None:
        self.lang = lang if lang in LANGS else "zh"
        self.tz = tz
        self.now = now
        self._t = TEXTS[self.lang]

    def __call__(self, key: str, **kw: object) -> str:
        text = self._t.get(key)
        if text is None:
            return key.split("_", 1)[-1] if "_" in key else key  # an unknown kind: its name
        return text.format(**kw) if kw else text

    def has(self, key: str) -> bool:
        return key in self._t

    def duration(self, seconds: float | None) -> str:
        if seconds is None:
            return "—"
        s = abs(seconds)
        if s < 60:
            return self("sec", n=int(s))
        if s < 3600:
            return self("min", n=int(s // 60))
        if s < 86400:
            h, m = divmod(int(s // 60), 60)
            return self("hour", n=h) + (f" {self('min', n=m)}" if m and h < 10 else "")
        return self("day", n=int(s // 86400))

    def ago(self, ts: float | None) -> str:
        return "—" if ts is None else self("ago", d=self.duration(max(0.0, self.now - ts)))

    def clock(self, ts: float | None) -> str:
        """`09:41` today, `11-22 09:41` on another day (the site's time zone)."""
        if ts is None:
            return "—"
        t = datetime.fromtimestamp(ts, self.tz)
        today = datetime.fromtimestamp(self.now, self.tz).date()
        return t.strftime("%H:%M") if t.date() == today else t.strftime("%m-%d %H:%M")

    def pct(self, v: float | None) -> str:
        return "—" if v is None else f"{v:.1f}%"

    def driver(self, state: str | None) -> str:
        if state is None:
            return "—"
        return self(f"drv_{state}") if self.has(f"drv_{state}") else state


def pct_level(v: float | None) -> str:
    """Colour class of a satisfaction share: good, fair, poor (or none)."""
    if v is None:
        return "none"
    return "good" if v >= 90 else "fair" if v >= 75 else "poor"


def response_level(v: float | None) -> str:
    """Colour class of a response rate (评价率): most hospitals aim at 80% or more."""
    if v is None:
        return "none"
    return "good" if v >= 80 else "fair" if v >= 50 else "poor"
