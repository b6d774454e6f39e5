"""Every text the kiosk shows or prints, in Chinese (default) and English."""

from __future__ import annotations

from typing import Any

LANGS = ("zh", "en")

TEXTS: dict[str, tuple[str, str]] = {
    "app_title": ("门诊自助服务", "Outpatient self-service"),
    # home
    "home_prompt": (
        "请刷身份证/就诊卡或扫描预约二维码",
        "Tap your ID or hospital card, or scan your appointment QR code",
    ),
    "home_hint": ("刷卡后即可签到取号", "Then check in and get your queue ticket"),
    "btn_checkin": ("签到取号", "Check in"),
    "btn_guide": ("就医指南", "Hospital guide"),
    "btn_feedback": ("意见反馈", "Feedback"),
    "btn_survey": ("满意度调查", "Survey"),
    "btn_lang": ("English", "中文"),
    "btn_back": ("返回", "Back"),
    "btn_home": ("首页", "Home"),
    "btn_ok": ("确定", "OK"),
    "btn_submit": ("提交", "Submit"),
    "btn_next": ("下一步", "Next"),
    "btn_skip": ("跳过", "Skip"),
    "btn_clear": ("清除", "Clear"),
    "btn_delete": ("删除", "Delete"),
    "status_printer": (
        "打印机故障: 凭条将显示在屏幕上",
        "Printer out of order: tickets are shown on screen",
    ),
    "status_network": ("网络中断: 签到照常进行", "Network down: check-in still works"),
    "status_reader": (
        "读卡器故障: 请点“输入号码查询”, 或到{desk}办理",
        "Card reader out of order: tap “Type a number”, or go to {desk}",
    ),
    "status_printer_unknown": (
        "打印机状态未知: 如未出凭条, 请看屏幕",
        "Printer status unknown: if no ticket comes out, use the screen",
    ),
    "status_roster": (
        "今日预约名单未到: 请到{desk}签到",
        "Today's appointment list has not arrived: please check in at {desk}",
    ),
    "default_help_desk": ("人工窗口", "a service window"),
    "btn_help": ("呼叫工作人员", "Call staff"),
    "btn_care": ("关怀模式", "Care mode"),
    "btn_type": ("输入号码查询", "Type a number"),
    "help_title": ("已通知工作人员", "Staff have been called"),
    "help_text": (
        "工作人员马上就到, 请在本机旁稍候。",
        "Someone is coming to help you. Please wait by this kiosk.",
    ),
    "help_where": ("位置: {where}", "Location: {where}"),
    "help_again": ("工作人员已在路上。", "Staff are already on their way."),
    # check-in prompt (the check-in button without a card)
    "checkin_title": ("签到取号", "Check in"),
    "checkin_prompt": (
        "请将身份证或就诊卡放在读卡区\n或将预约二维码对准扫描窗口",
        "Place your ID or hospital card on the reader\nor hold your appointment QR code to the scanner",
    ),
    "checkin_reader_fault": (
        "读卡器暂时故障, 刷卡和扫码都无法使用。\n请输入预约号或手机号查询, 或到{desk}办理。",
        "The card reader is out of order: cards and QR codes cannot be read.\n"
        "Type your appointment or phone number instead, or go to {desk}.",
    ),
    "checkin_or_type": ("没有卡? 也可以输入号码查询", "No card? You can type a number instead"),
    # manual lookup
    "lk_title": ("输入号码查询", "Find by number"),
    "lk_choose": ("请选择查询方式", "How would you like to find your appointment?"),
    "lk_appointment": ("预约号", "Appointment number"),
    "lk_phone_birth": ("手机号 + 出生日期", "Phone number + birth date"),
    "lk_number": ("请输入预约号中的数字", "Type the digits of your appointment number"),
    "lk_phone": ("手机号 (11位)", "Mobile number (11 digits)"),
    "lk_birth": ("出生日期 (年月日 8位, 如 19560312)", "Birth date (8 digits, e.g. 19560312)"),
    "lk_phone_bad": ("请输入11位手机号", "Enter an 11-digit mobile number"),
    "lk_birth_bad": ("出生日期应为8位, 如 19560312", "Birth date: 8 digits, e.g. 19560312"),
    "lk_number_bad": ("请输入预约号中的数字 (至少4位)", "Type at least 4 digits"),
    "btn_find": ("查询", "Find"),
    # appointment list
    "appts_title": ("您今天的预约", "Your appointments today"),
    "appts_hint": ("请选择要签到的预约", "Choose the appointment to check in"),
    "appt_checkin": ("签到", "Check in"),
    "appt_reprint": ("已签到 · 补打凭条", "Checked in · reprint"),
    "appt_too_early": ("未到签到时间: 请于 {hhmm} 后再来", "Too early: come back at {hhmm}"),
    "appt_too_late": ("已过签到时间: 请到{desk}办理", "Too late: go to {desk}"),
    "appt_queue": ("排队号", "Queue no."),
    "appt_doctor": ("医生", "Doctor"),
    "appt_room": ("诊室", "Room"),
    "appt_time": ("时间", "Time"),
    "appt_patient": ("患者", "Patient"),
    # refusal
    "refused_title": ("暂时不能签到", "Cannot check in now"),
    "refused_early": (
        "您的就诊时间是 {slot}。\n签到从 {hhmm} 开始, 请于 {hhmm} 后再来签到。",
        "Your appointment is at {slot}.\nCheck-in opens at {hhmm}: please come back at {hhmm}.",
    ),
    "refused_late": (
        "您的就诊时间 {slot} 已过, 超过签到时限。\n请到{desk}办理。",
        "Your appointment at {slot} has passed the check-in limit.\nPlease go to {desk}.",
    ),
    # no appointment
    # a read or lookup that found nothing usable: what went wrong, then what to do instead
    "pr_unrecognised_title": ("无法识别", "Not recognised"),
    "pr_unrecognised_text": (
        "无法识别这张卡或这个二维码。\n请使用身份证、就诊卡或预约二维码, 或输入号码查询。",
        "This card or code is not one the kiosk knows.\n"
        "Use your ID card, hospital card or appointment QR code, or type a number.",
    ),
    "pr_check_digit_title": ("身份证号校验未通过", "ID number check failed"),
    "pr_check_digit_text": (
        "读到的身份证号码校验位不对, 可能读错了。\n请重新放卡, 或输入号码查询。",
        "The ID number read has a wrong check digit: it was probably misread.\n"
        "Place the card again, or type a number instead.",
    ),
    "pr_incomplete_title": ("请重新放卡", "Place your card again"),
    "pr_incomplete_text": (
        "卡片没有读完就离开了读卡区。\n请把卡重新放在读卡区, 放稳不动, 直到屏幕显示您的预约。\n"
        "也可以输入号码查询。",
        "The card left the reader before it was read.\n"
        "Place it on the reader again and hold it still until your appointments appear.\n"
        "You can also type a number instead.",
    ),
    "pr_expired_title": ("证件已过期", "Card expired"),
    "pr_expired_text": (
        "这张证件已过有效期。\n请使用就诊卡或预约二维码, 或输入号码查询。",
        "This card has expired.\nUse your hospital card or appointment QR code, or type a number.",
    ),
    "pr_no_appointment_title": ("未找到今天的预约", "No appointment today"),
    "pr_no_appointment_text": (
        "没有找到您今天的预约。\n请到{desk}挂号。{booking}",
        "We found no appointment for you today.\nPlease register at {desk}. {booking}",
    ),
    "pr_not_found_title": ("没有找到预约", "No appointment found"),
    "pr_not_found_text": (
        "没有找到与这个号码匹配的今天的预约。\n请检查号码后重试, 或到{desk}办理。",
        "No appointment today matches that number.\nCheck it and try again, or go to {desk}.",
    ),
    "pr_no_roster_title": ("暂时无法签到", "Cannot check in here now"),
    "pr_no_roster_text": (
        "今日预约名单尚未送达本机。\n请到{desk}签到。",
        "Today's appointment list has not reached this kiosk.\nPlease check in at {desk}.",
    ),
    "pr_fault_title": ("暂时无法办理", "Cannot help you here now"),
    "pr_fault_text": (
        "本机暂时无法为您办理。\n请到{desk}签到。",
        "This kiosk cannot help you with this now.\nPlease check in at {desk}.",
    ),
    "pr_qr_other_day_title": ("不是今天的预约", "Not today's appointment"),
    "pr_qr_other_day_text": (
        "这个二维码是其他日期的预约。\n请在预约当天来签到; 如有疑问请到{desk}。",
        "This QR code is for an appointment on another day.\n"
        "Please come on that day; for questions go to {desk}.",
    ),
    "pr_qr_used_title": ("这个预约已签到", "Already checked in"),
    "pr_qr_used_text": (
        "这个二维码的预约今天已经签到过了, 排队号 {queue_no}。\n需要凭条请点“补打凭条”。",
        "This appointment was already checked in today, queue number {queue_no}.\n"
        "Tap “Reprint ticket” if you need the ticket again.",
    ),
    "pr_reader_fault_title": ("读卡器故障", "Card reader out of order"),
    "pr_reader_fault_text": (
        "读卡器暂时无法使用。\n请输入号码查询, 或到{desk}办理。",
        "The card reader is out of order.\nType a number instead, or go to {desk}.",
    ),
    "btn_reprint": ("补打凭条", "Reprint ticket"),
    # done
    "done_title": ("签到成功", "You are checked in"),
    "done_reprint_title": ("凭条已补打", "Ticket reprinted"),
    "done_already_title": ("您已签到", "You are already checked in"),
    "done_queue": ("您的排队号", "Your queue number"),
    "done_go": ("请前往 {where} 候诊", "Please go to {where} and wait to be called"),
    "done_take": ("请取走凭条", "Please take your ticket"),
    "done_ticket_failed": (
        "打印机故障, 请拍照保存此凭条",
        "The printer failed: please take a photo of this ticket",
    ),
    "done_back": ("{n} 秒后返回首页", "Back to the start in {n} s"),
    "failed_title": ("暂时无法办理", "Cannot do this now"),
    "failed_text": (
        "本机暂时无法保存记录。\n请到{desk}办理。",
        "This kiosk cannot save records right now.\nPlease go to {desk}.",
    ),
    "busy": ("正在办理, 请稍候 ...", "One moment, please ..."),
    # guide
    "guide_title": ("就医指南", "Hospital guide"),
    "guide_all": ("全部", "All"),
    "guide_doctors": ("今日出诊医生", "Doctors today"),
    "guide_no_doctors": ("今日无出诊医生信息", "No doctors listed for today"),
    "guide_empty": ("暂无科室信息", "No departments listed"),
    "guide_letter": ("按拼音首字母查找", "Find by first letter"),
    "guide_letter_en": ("按首字母查找", "Find by first letter"),
    # feedback
    "fb_title": ("意见反馈", "Feedback"),
    "fb_category": ("反馈类型", "Kind of feedback"),
    "cat_praise": ("表扬", "Praise"),
    "cat_suggestion": ("建议", "Suggestion"),
    "cat_complaint": ("投诉", "Complaint"),
    "fb_department": ("相关科室 (可选)", "Department (optional)"),
    "fb_none": ("不指定", "None"),
    "fb_topics": ("反馈内容 (可多选)", "Topics (choose any)"),
    "fb_phone": ("回访电话 (可选)", "Phone for a call back (optional)"),
    "fb_phone_bad": ("请输入11位手机号或留空", "Enter an 11-digit mobile number or leave it empty"),
    "fb_done_title": ("感谢您的反馈", "Thank you for your feedback"),
    "fb_done_no": ("受理编号", "Reference number"),
    "fb_done_reply": (
        "我们将在{days}个工作日内致电 {phone} 回复您。",
        "We will call you on {phone} within {days} working days.",
    ),
    "fb_done_ask": (
        "可凭受理编号到{desk}查询处理结果。",
        "Ask at {desk} with this number for the outcome.",
    ),
    "fb_empty": (
        "请至少选择一项反馈内容或相关科室",
        "Choose at least one topic or a department",
    ),
    "fb_slip_failed": (
        "打印机故障: 请记下受理编号",
        "Printer failed: please note the reference number",
    ),
    # survey
    "sv_title": ("满意度调查", "Satisfaction survey"),
    "sv_progress": ("第 {i} / {n} 题", "Question {i} of {n}"),
    "sv_none": ("当前没有调查问卷", "There is no survey at the moment"),
    "sv_done_title": ("感谢您的参与", "Thank you for taking part"),
    "sv_scale_low": ("很不满意", "Very dissatisfied"),
    "sv_scale_high": ("非常满意", "Very satisfied"),
    # idle
    "idle_title": ("还在吗?", "Are you still there?"),
    "idle_text": (
        "{n} 秒后返回首页, 您的信息将被清除。\n触摸屏幕继续。",
        "Returning to the start in {n} s; your details will be cleared.\nTouch the screen to continue.",
    ),
    "idle_continue": ("继续", "Continue"),
    # maintenance
    "pin_title": ("维护登录", "Maintenance sign-in"),
    "pin_text": ("请输入维护密码", "Enter the maintenance PIN"),
    "pin_bad": ("密码错误", "Wrong PIN"),
    "pin_disabled": (
        "未设置维护密码 (maintenance_pin_sha256)",
        "No maintenance PIN is set (maintenance_pin_sha256)",
    ),
    "mt_title": ("设备维护", "Maintenance"),
    "mt_test_printer": ("打印测试页", "Print test ticket"),
    "mt_test_reader": ("读卡测试", "Card reader test"),
    "mt_reader_wait": ("请刷卡 ...", "Present a card ..."),
    "mt_exit": ("退出程序", "Quit the app"),
    "mt_close": ("返回首页", "Back to start"),
    "mt_device": ("设备", "device"),
    "mt_broker": ("服务器", "broker"),
    "mt_outbox": ("待发事件", "outbox"),
    "mt_printer": ("打印机", "printer"),
    "mt_card_reader": ("读卡器", "card reader"),
    "mt_roster": ("预约名单", "roster"),
    "mt_checkins": ("今日签到", "check-ins today"),
    "mt_directory": ("科室目录", "directory"),
    "mt_survey": ("调查问卷", "survey"),
    # tickets
    "ticket_title": ("门诊签到凭条", "Outpatient check-in"),
    "ticket_reprint": ("(补打)", "(reprint)"),
    "ticket_queue_no": ("排队号", "Queue number"),
    "ticket_department": ("科室", "Department"),
    "ticket_where": ("地点", "Where"),
    "ticket_route": ("路线", "Route"),
    "ticket_doctor": ("医生", "Doctor"),
    "ticket_time": ("时间", "Time"),
    "ticket_patient": ("患者", "Patient"),
    "ticket_footer": (
        "请留意叫号, 过号请到分诊台",
        "Listen for your number; if missed, see the triage desk",
    ),
    "slip_title": ("意见反馈回执", "Feedback receipt"),
    "slip_tracking": ("受理编号", "Reference number"),
    "slip_category": ("类型", "Kind"),
    "slip_topics": ("内容", "Topics"),
    "slip_process": ("受理 → 登记 → 反馈", "Received → registered → answered"),
    "slip_callback": (
        "我们将在{days}个工作日内电话回访",
        "We will call you back within {days} working days",
    ),
    "slip_ask": ("可凭受理编号到{desk}查询", "Ask at {desk} with this number"),
    "test_ticket": ("打印测试", "Printer test"),
}

FEEDBACK_TOPICS: dict[str, list[tuple[str, str]]] = {
    "praise": [
        ("服务热情", "Friendly service"),
        ("医术精湛", "Skilled care"),
        ("流程便捷", "Smooth process"),
        ("环境整洁", "Clean environment"),
    ],
    "suggestion": [
        ("候诊时间", "Waiting time"),
        ("指引标识", "Signs and directions"),
        ("自助设备", "Self-service machines"),
        ("停车与交通", "Parking and transport"),
    ],
    "complaint": [
        ("服务态度", "Staff attitude"),
        ("等候时间长", "Long wait"),
        ("收费问题", "Charges"),
        ("环境卫生", "Cleanliness"),
    ],
}


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


def tr(key: str, lang: str, **kw: Any) -> str:
    """The text for `key` in `lang`; a missing key shows itself, a missing `{field}` is blank,
    rather than crashing a screen."""
    pair = TEXTS.get(key)
    if pair is None:
        return key
    text = pair[1] if lang == "en" else pair[0]
    return text.format_map(_Blank(kw)).strip() if "{" in text else text
