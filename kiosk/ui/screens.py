"""One builder per kiosk screen: each turns a typed view into widgets plus the order keys move
focus in. Texts wrap, lists grow and scroll, fixed buttons shrink their text to a floor: nothing
clips (tests/kiosk/test_fit.py renders every screen at four sizes, zh, en and care mode)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kivy.uix.anchorlayout import AnchorLayout
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.scrollview import ScrollView
from kivy.uix.widget import Widget

from kiosk.feedback import CATEGORIES
from kiosk.i18n import FEEDBACK_TOPICS, tr
from kiosk.ui.widgets import (
    BAD,
    BAD_TINT,
    GOOD,
    GOOD_INK,
    GOOD_TINT,
    INK,
    MUTED,
    PRIMARY,
    SECONDARY,
    WARN,
    WHITE,
    AutoButton,
    FitButton,
    FitLabel,
    FitStack,
    FocusButton,
    Panel,
    Sizes,
    SteadyScrollView,
    WrapLabel,
    qr_image,
)
from kiosk.views import View


@dataclass
class Built:
    """A built screen: its root widget, focus order, and what Escape / digits / the clock do."""

    widget: Widget
    focus: list[FocusButton] = field(default_factory=list)
    initial: int | None = 0
    """None: nothing has the focus until an arrow or Tab (the survey: no answer pre-chosen)."""
    back: Callable[[], None] | None = None
    digit: Callable[[str], None] | None = None
    backspace: Callable[[], None] | None = None
    back_in_label: WrapLabel | None = None


def site_kw(v: View) -> dict[str, Any]:
    """The hospital's own words for i18n placeholders ({desk}, {days}, {booking})."""
    s, en = v.site, v.lang == "en"
    return {
        "desk": (s.help_desk_en if en else s.help_desk) or tr("default_help_desk", v.lang),
        "days": s.feedback_reply_days,
        "booking": (s.booking_hint_en if en else s.booking_hint),
    }


class Screens:
    """Builds screens for a root that has `service` and `sizes`."""

    def __init__(self, root: Any) -> None:
        self.root = root

    @property
    def s(self) -> Sizes:
        return self.root.sizes

    @property
    def svc(self) -> Any:
        return self.root.service

    # pieces ------------------------------------------------------------------------------

    def column(self, spacing: float | None = None) -> BoxLayout:
        s = self.s
        return BoxLayout(
            orientation="vertical", padding=s.pad, spacing=s.gap if spacing is None else spacing
        )

    def title(self, text: str, color: tuple = INK) -> WrapLabel:
        return WrapLabel(text, font_size=self.s.title, bold=True, color=color)

    def text(
        self, text: str, size: float | None = None, color: tuple = INK, halign: str = "left"
    ) -> WrapLabel:
        return WrapLabel(text, font_size=size or self.s.body, color=color, halign=halign)

    def button(
        self,
        text: str,
        fn: Callable[[], None],
        color: tuple = PRIMARY,
        fg: tuple = WHITE,
        size: float | None = None,
        **kw: Any,
    ) -> FitButton:
        kw.setdefault("size_hint_y", None)
        kw.setdefault("height", self.s.button)
        return FitButton(
            text, fn, floor=self.s.floor, color_bg=color, fg=fg, font_size=size or self.s.body, **kw
        )

    def back_button(self, L: str, fn: Callable[[], None] | None = None) -> FitButton:
        return self.button(tr("btn_back", L), fn or self.svc.back, color=SECONDARY, fg=INK)

    def home_button(self, L: str) -> FitButton:
        return self.button(tr("btn_home", L), lambda: self.svc.go("home"))

    def row(self, buttons: list[FocusButton]) -> BoxLayout:
        row = BoxLayout(size_hint_y=None, height=self.s.button, spacing=self.s.gap)
        for b in buttons:
            row.add_widget(b)
        return row

    def scroll(self, inner: Widget) -> ScrollView:
        sv = SteadyScrollView(do_scroll_x=False)
        inner.size_hint_y = None
        inner.padding = [0, 0, 16, 0]  # keep buttons clear of the scroll bar
        inner.bind(minimum_height=inner.setter("height"))
        sv.add_widget(inner)
        return sv

    def scroll_text(self, *labels: Widget) -> ScrollView:
        """Body text that scrolls when a long hospital text would not fit (never clips)."""
        box = BoxLayout(orientation="vertical", spacing=self.s.gap)
        for lbl in labels:
            box.add_widget(lbl)
        return self.scroll(box)

    def keypad(
        self,
        on_key: Callable[[str], None],
        ok_text: str,
        lang: str,
    ) -> tuple[GridLayout, list[FocusButton]]:
        """Portrait: a fixed block under the fields; landscape: fills the right-hand side."""
        s = self.s
        key_h = s.button
        if s.portrait:  # under the fields, taking the height that is left
            grid = GridLayout(cols=3, spacing=s.gap, size_hint=(None, 1))
            grid.width = min(s.w - 2 * s.pad, key_h * 3 * 2.0)
        else:  # 1 2 3 4 / 5 6 7 8 / 9 0 delete ok: three rows fit a short screen
            grid = GridLayout(cols=4, spacing=s.gap, size_hint=(None, 1))
            grid.width = min(s.w * 0.45, key_h * 4 * 2.0)
        keys: list[FocusButton] = []
        for d in "123456789":
            keys.append(self._key(d, lambda d=d: on_key(d), s.title))
        if s.portrait:
            keys.append(self._key(tr("btn_delete", lang), lambda: on_key("delete"), s.body))
            keys.append(self._key("0", lambda: on_key("0"), s.title))
        else:
            keys.append(self._key("0", lambda: on_key("0"), s.title))
            keys.append(self._key(tr("btn_delete", lang), lambda: on_key("delete"), s.body))
        keys.append(FitButton(ok_text, lambda: on_key("ok"), floor=s.floor, font_size=s.body))
        for k in keys:
            grid.add_widget(k)
        return grid, keys

    def _key(self, text: str, fn: Callable[[], None], size: float) -> FitButton:
        return FitButton(text, fn, floor=self.s.floor, font_size=size, color_bg=SECONDARY, fg=INK)

    def keypad_screen(
        self,
        title: str,
        left: list[Widget],
        pad: GridLayout,
        back: FocusButton,
    ) -> BoxLayout:
        """Fields and keypad: stacked in portrait, side by side in landscape (the keypad
        takes the height a landscape screen has)."""
        col = self.column()
        col.add_widget(self.title(title))
        if self.s.portrait:
            for w in left:
                col.add_widget(w)
            box = AnchorLayout(anchor_x="center")
            box.add_widget(pad)
            col.add_widget(box)
            col.add_widget(self.row([back]))
            return col
        body = BoxLayout(spacing=self.s.pad)
        side = BoxLayout(orientation="vertical", spacing=self.s.gap)
        inner = BoxLayout(orientation="vertical", spacing=self.s.gap)
        for w in left:
            inner.add_widget(w)
        side.add_widget(self.scroll(inner))
        side.add_widget(self.row([back]))
        body.add_widget(side)
        body.add_widget(pad)
        col.add_widget(body)
        return col

    def centered(self, w: Widget, height: float) -> AnchorLayout:
        box = AnchorLayout(anchor_x="center", anchor_y="center", size_hint_y=None, height=height)
        box.add_widget(w)
        return box

    def message_screen(
        self,
        v: View,
        title: str,
        body: str,
        buttons: list[FocusButton],
        color: tuple = INK,
        back: Callable[[], None] | None = None,
        initial: int = 0,
        extra: list[Widget] | None = None,
    ) -> Built:
        col = self.column()
        col.add_widget(self.title(title, color=color))
        labels = [Panel(body, font_size=self.s.title if not self.s.care else self.s.body)]
        col.add_widget(self.scroll_text(*labels))
        for w in extra or []:
            col.add_widget(w)
        back_in = self.text("", size=self.s.small, color=MUTED, halign="center")
        col.add_widget(back_in)
        col.add_widget(self.row(buttons))
        return Built(col, buttons, initial, back=back or self.svc.back, back_in_label=back_in)

    # screens ------------------------------------------------------------------------------

    def build(self, view: View) -> Built:
        return getattr(self, f"screen_{view.screen.value}")(view)

    def screen_home(self, v: View) -> Built:
        s, L = self.s, v.lang
        col = self.column(spacing=s.gap * 2)
        prompt = round(s.title * (1.15 if not s.care else 1.0))
        # The prompt shares the height with the buttons: under a status line of two or three
        # faults on a short screen it shrinks (the buttons keep a button's height), and it never
        # runs up under the status line (800x480 in English: 48 px buttons before).
        texts = FitStack(spacing=s.gap, floor=s.floor, size_hint_y=0.55 if s.care else 0.5)
        texts.add_line(
            WrapLabel(
                tr("home_prompt", L), font_size=prompt, bold=True, color=PRIMARY, halign="center"
            ),
            key=True,
        )
        texts.add_line(self.text(tr("home_hint", L), color=MUTED, halign="center"))
        col.add_widget(texts)
        cols = (1 if s.portrait else 4) if s.care else 2
        grid = GridLayout(cols=cols, spacing=s.gap * 2, size_hint_y=1.4 if cols == 1 else 0.9)
        rows = 4 // cols
        # never shorter than a button of any other screen
        grid.size_hint_min_y = rows * s.button + (rows - 1) * grid.spacing[1]
        big = round(s.title * 1.05)
        specs = [
            ("btn_checkin", "checkin", PRIMARY),
            ("btn_guide", "guide", GOOD),
            ("btn_feedback", "feedback", (0.36, 0.30, 0.62, 1)),
            ("btn_survey", "survey", WARN),
        ]
        buttons = []
        for key, where, color in specs:
            b = FitButton(
                tr(key, L),
                (lambda w=where: self.svc.go(w)),
                floor=s.floor,
                font_size=big,
                color_bg=color,
            )
            buttons.append(b)
            grid.add_widget(b)
        col.add_widget(grid)
        col.add_widget(Widget(size_hint_y=0.05))
        return Built(col, buttons, 0, back=None)

    def screen_checkin(self, v: View) -> Built:
        L, d = v.lang, v.data
        kw = site_kw(v)
        col = self.column()
        col.add_widget(self.title(tr("checkin_title", L)))
        if d.reader_ok:
            body = [
                WrapLabel(
                    tr("checkin_prompt", L), font_size=self.s.title, color=PRIMARY, halign="center"
                )
            ]
            if d.lookup:
                body.append(self.text(tr("checkin_or_type", L), color=MUTED, halign="center"))
        else:
            body = [Panel(tr("checkin_reader_fault", L, **kw), font_size=self.s.body, color=INK)]
        col.add_widget(self.scroll_text(*body))
        buttons: list[FocusButton] = []
        if d.lookup:
            buttons.append(self.button(tr("btn_type", L), lambda: self.svc.go("lookup")))
        back = self.back_button(L)
        col.add_widget(self.row([back, *buttons]))
        return Built(col, [*buttons, back], 0, back=self.svc.back)

    def screen_lookup(self, v: View) -> Built:
        s, L, d = self.s, v.lang, v.data
        back = self.back_button(L)
        if not d.method:
            col = self.column()
            col.add_widget(self.title(tr("lk_title", L)))
            col.add_widget(self.text(tr("lk_choose", L), color=MUTED))
            buttons = [
                self.button(
                    tr(f"lk_{m}", L),
                    (lambda m=m: self.svc.lookup_method(m)),
                    size=s.title,
                    size_hint_y=1,  # share the height the screen has
                    height=0,
                )
                for m in d.methods
            ]
            for b in buttons:
                col.add_widget(b)
            col.add_widget(self.row([back]))
            return Built(col, [*buttons, back], 0, back=self.svc.back)
        fields: list[FocusButton] = []
        left: list[Widget] = []
        if d.method == "appointment":
            left.append(self.text(tr("lk_number", L), color=MUTED, size=s.small))
            left.append(Panel(d.number or "—", font_size=s.title, halign="center"))
        else:
            for name, key in (("phone", "lk_phone"), ("birth", "lk_birth")):
                value = getattr(d, name) or "—"
                mark = "▶ " if d.field == name else ""
                b = AutoButton(
                    f"{mark}{tr(key, L)}\n{value}",
                    (lambda n=name: self.svc.lookup_field(n)),
                    min_height=s.button,
                    font_size=s.body,
                    color_bg=PRIMARY if d.field == name else SECONDARY,
                    fg=WHITE if d.field == name else INK,
                )
                b.halign = "left"
                fields.append(b)
                left.append(b)
        if d.error:
            left.append(self.text(tr(d.error, L), color=BAD, size=s.small))
        pad, keys = self.keypad(self.svc.lookup_key, tr("btn_find", L), L)
        col = self.keypad_screen(tr("lk_title", L), left, pad, back)
        focus = [*keys, *fields, back]
        kf = self.root.key_focus
        return Built(
            col,
            focus,
            kf if kf is not None and kf < len(focus) else len(keys) - 1,
            back=self.svc.back,
            digit=self.svc.lookup_key,
            backspace=lambda: self.svc.lookup_key("delete"),
        )

    def screen_appointments(self, v: View) -> Built:
        s, L, d = self.s, v.lang, v.data
        col = self.column()
        who = f" · {d.patient}" if d.patient else ""
        col.add_widget(self.title(tr("appts_title", L) + who))
        col.add_widget(self.text(tr("appts_hint", L), color=MUTED, size=s.small))
        inner = GridLayout(cols=1, spacing=s.gap)
        buttons = []
        for it in d.items:
            dept = it.department_en if L == "en" and it.department_en else it.department
            if it.state == "checkin":
                action, bg, fg = tr("appt_checkin", L), PRIMARY, WHITE
            elif it.state == "reprint":
                action, bg, fg = tr("appt_reprint", L), GOOD, WHITE
            elif it.state == "too_early":
                action, bg, fg = tr("appt_too_early", L, hhmm=it.hhmm), SECONDARY, INK
            else:
                action, bg, fg = tr("appt_too_late", L, **site_kw(v)), SECONDARY, INK
            doctor = f"{tr('appt_doctor', L)} {it.doctor}" if it.doctor else ""
            lines = [
                f"[size={s.title}][b]{it.queue_no}[/b][/size]   [b]{dept}[/b]",
                "   ".join(x for x in (doctor, f"{tr('appt_time', L)} {it.time}") if x),
                it.where,
                f"[b]{action}[/b]",
            ]
            b = AutoButton(
                "\n".join(x for x in lines if x),
                (lambda i=it.id, ok=it.can_choose: self._choose(i, ok)),
                min_height=s.button * 1.5,
                color_bg=bg,
                fg=fg,
                markup=True,
                font_size=s.body,
            )
            b.halign = "left"
            b.appointment_id = it.id
            b.appointment_state = it.state
            buttons.append(b)
            inner.add_widget(b)
        col.add_widget(self.scroll(inner))
        back = self.back_button(L)
        col.add_widget(self.row([back]))
        return Built(
            col,
            [*buttons, back],
            len(buttons) if d.focus is None else d.focus,
            back=self.svc.back,
        )

    def _choose(self, appointment_id: str, checks_in: bool) -> None:
        self.svc.choose(appointment_id)  # first: the core thread prints while this one draws
        if checks_in:
            self.root.show_busy()  # the ticket may take a moment on a slow printer

    def screen_refused(self, v: View) -> Built:
        L, d = v.lang, v.data
        key = "refused_early" if d.reason == "too_early" else "refused_late"
        body = tr(key, L, hhmm=d.hhmm, slot=d.slot, **site_kw(v))
        back = self.back_button(L)
        home = self.home_button(L)
        return self.message_screen(v, tr("refused_title", L), body, [home, back], color=WARN)

    def screen_problem(self, v: View) -> Built:
        L, d = v.lang, v.data
        kw = {**site_kw(v), "queue_no": d.queue_no}
        buttons: list[FocusButton] = []
        if d.problem == "qr_used":
            buttons.append(
                self.button(
                    tr("btn_reprint", L), lambda: self._choose(d.appointment, True), color=GOOD
                )
            )
        if d.lookup:
            buttons.append(self.button(tr("btn_type", L), lambda: self.svc.go("lookup")))
        buttons.append(self.home_button(L))
        return self.message_screen(
            v,
            tr(f"pr_{d.problem}_title", L),
            tr(f"pr_{d.problem}_text", L, **kw),
            buttons,
            color=WARN,
        )

    def screen_notice(self, v: View) -> Built:
        L, d = v.lang, v.data
        body = tr(d.text, L, **site_kw(v)) if d.text else ""
        if not body:
            col = self.column()
            col.add_widget(self.title(tr(d.title, L), color=GOOD))
            col.add_widget(Widget())
            back_in = self.text("", size=self.s.small, color=MUTED, halign="center")
            col.add_widget(back_in)
            home = self.home_button(L)
            col.add_widget(self.row([home]))
            return Built(col, [home], 0, back=self.svc.back, back_in_label=back_in)
        return self.message_screen(v, tr(d.title, L), body, [self.home_button(L)])

    def screen_help(self, v: View) -> Built:
        L, d = v.lang, v.data
        body = tr("help_again" if d.repeated else "help_text", L)
        if d.location:
            body += "\n" + tr("help_where", L, where=d.location)
        return self.message_screen(
            v,
            tr("help_title", L),
            body,
            [self.back_button(L)],  # to the screen the patient called from
            color=GOOD,
        )

    def screen_done(self, v: View) -> Built:
        """Everything the patient needs at one glance, never scrolled: the number, where to go,
        what to do with the ticket (or the ticket itself on screen). Landscape: the number on
        the left, where to go on the right (and the QR when the printer failed); portrait: one
        column. Lines that do not fit their area shrink together rather than scroll."""
        s, L, d = self.s, v.lang, v.data
        failed = d.ticket == "failed"
        title_key = "done_title"
        if d.repeat:
            title_key = "done_already_title" if failed else "done_reprint_title"
        title = self.title(tr(title_key, L), color=GOOD)
        queue = self.text(tr("done_queue", L), color=MUTED, halign="center")
        number = WrapLabel(
            d.queue_no,
            font_size=round(s.u * (16 if s.portrait else 15) * (1.2 if s.care else 1)),
            bold=True,
            color=PRIMARY,
            halign="center",
        )
        number.queue_label = True
        dept = d.department_en if L == "en" and d.department_en else d.department
        details = self.text(" · ".join(x for x in (dept, d.doctor, d.time) if x), halign="center")
        where = tr("done_go", L, where=d.where)
        if d.location:
            where += f" ({d.location})"
        go = Panel(where, font_size=s.body, halign="center", padding=(s.pad, s.gap))
        lines: list[Widget] = [title, number, go]  # (+ status): never scrolled away
        status = None
        if failed or d.ticket == "printed":
            # A tinted band, not a button's solid colour: it says what to do, it does nothing.
            status = Panel(
                tr("done_ticket_failed" if failed else "done_take", L),
                tint=BAD_TINT if failed else GOOD_TINT,
                color=BAD if failed else GOOD_INK,
                font_size=s.body,
                bold=True,
                halign="center",
                padding=(s.pad, s.gap),
            )
            lines.append(status)
        qr = self._qr_box(d.qr, d.appointment) if failed else None
        back_in = self.text(
            "", size=s.small, color=MUTED, halign="right" if not s.portrait else "center"
        )
        home = self.home_button(L)
        col = self.column()
        if s.portrait:
            col.add_widget(title)
            stack = FitStack(spacing=s.gap, floor=s.floor)
            for w in (queue, number, go):
                stack.add_line(w, key=True)
            stack.add_line(details)
            col.add_widget(stack)
            if qr is not None:
                qr.size_hint_y = None
                qr.height = s.u * 26 + s.small * 2
                col.add_widget(qr)
            if status is not None:
                col.add_widget(status)
            col.add_widget(back_in)
        else:
            header = BoxLayout(size_hint_y=None, spacing=s.gap)
            back_in.size_hint_x = 0.45
            header.add_widget(title)
            header.add_widget(back_in)

            def fit_header(*_: object) -> None:
                header.height = max(title.height, back_in.height)

            title.bind(height=fit_header)
            back_in.bind(height=fit_header)
            col.add_widget(header)
            body = BoxLayout(spacing=s.pad)
            left = FitStack(spacing=s.gap, floor=s.floor, size_hint_x=0.36 if failed else 0.42)
            left.add_line(queue, key=True)  # above the number it names
            left.add_line(number, key=True)
            right = FitStack(spacing=s.gap, floor=s.floor)
            right.add_line(go, key=True)
            right.add_line(details)
            body.add_widget(left)
            body.add_widget(right)
            if qr is not None:
                qr.size_hint_x = None
                qr.width = min(s.u * 28, s.w * 0.25)
                body.add_widget(qr)
            col.add_widget(body)
            if status is not None:  # a band across the screen, above the button
                col.add_widget(status)
        col.add_widget(self.row([home]))
        for w in (*lines, home, *([qr] if qr is not None else [])):
            w.key_line = True  # tests/kiosk/test_fit.py: visible without scrolling
        return Built(col, [home], 0, back=lambda: self.svc.go("home"), back_in_label=back_in)

    def _qr_box(self, data: str, appointment: str) -> BoxLayout:
        """The ticket's QR code and appointment number, as large as the box allows."""
        s = self.s
        box = BoxLayout(orientation="vertical", spacing=s.gap // 2)
        holder = AnchorLayout(anchor_x="center", anchor_y="center")
        img = qr_image(data, s.u * 28)
        holder.add_widget(img)
        label = FitLabel(
            appointment,
            floor=s.floor,
            font_size=s.small,
            halign="center",
            color=INK,
            size_hint_y=None,
            height=round(s.small * 1.5),
        )
        box.add_widget(holder)
        box.add_widget(label)

        def fit(*_: object) -> None:
            side = max(1, min(holder.width, holder.height))
            img.size = (side, side)

        holder.bind(size=fit)
        return box

    def _wrap(self, inner: Widget) -> ScrollView:
        return self.scroll(inner)

    # guide --------------------------------------------------------------------------------

    def screen_guide(self, v: View) -> Built:
        s, L, d = self.s, v.lang, v.data
        directory = d.directory
        if d.dept and directory.department(d.dept):
            return self._guide_department(v)
        col = self.column()
        col.add_widget(self.title(tr("guide_title", L)))
        col.add_widget(
            self.text(
                tr("guide_letter" if L == "zh" else "guide_letter_en", L), size=s.small, color=MUTED
            )
        )
        letters = ["", *directory.letters(L)]
        bar = GridLayout(
            cols=min(len(letters), 8 if s.care else (10 if s.portrait else 14)),
            spacing=s.gap / 2,
            size_hint_y=None,
        )
        bar.bind(minimum_height=bar.setter("height"))
        focus: list[FocusButton] = []
        for letter in letters:
            on = letter == d.letter
            b = FitButton(
                letter or tr("guide_all", L),
                (lambda x=letter: self.svc.guide(letter=x)),
                floor=s.floor,
                font_size=s.body,
                size_hint_y=None,
                height=max(s.button * 0.8, 60),
                color_bg=PRIMARY if on else SECONDARY,
                fg=WHITE if on else INK,
            )
            bar.add_widget(b)
            focus.append(b)
        col.add_widget(bar)
        inner = GridLayout(cols=1, spacing=s.gap)
        depts = directory.search(d.letter, L)
        if not depts:
            inner.add_widget(self.text(tr("guide_empty", L), color=MUTED))
        cols = 1 if s.care else (2 if s.portrait or s.w < 1000 else 3)
        for floor, members in directory.floors():
            shown = [m for m in members if m in depts]
            if not shown:
                continue
            inner.add_widget(self.text(floor, size=s.small, color=MUTED))
            grid = GridLayout(cols=cols, spacing=s.gap, size_hint_y=None)
            grid.bind(minimum_height=grid.setter("height"))
            for dep in shown:
                b = AutoButton(
                    dep.display(L),
                    (lambda i=dep.id: self.svc.guide(dept=i)),
                    min_height=s.button,
                    font_size=s.body,
                    color_bg=PRIMARY,
                )
                grid.add_widget(b)
                focus.append(b)
            inner.add_widget(grid)
        col.add_widget(self.scroll(inner))
        back = self.back_button(L)
        col.add_widget(self.row([back]))
        focus.append(back)
        first = letters.index(d.letter) if d.letter in letters else 0
        return Built(col, focus, first, back=self.svc.back)

    def _guide_department(self, v: View) -> Built:
        s, L, d = self.s, v.lang, v.data
        dep = d.directory.department(d.dept)
        col = self.column()
        col.add_widget(self.title(dep.display(L)))
        inner = GridLayout(cols=1, spacing=s.gap)
        inner.add_widget(Panel(f"{dep.floor}  {dep.location}".strip(), font_size=s.title))
        inner.add_widget(self.text(tr("guide_doctors", L), color=MUTED, size=s.small))
        docs = d.directory.doctors_today(d.dept)
        if not docs:
            inner.add_widget(self.text(tr("guide_no_doctors", L), color=MUTED))
        for doc in docs:
            inner.add_widget(
                Panel(
                    f"[b]{doc.name}[/b]  {doc.title}\n{'  '.join(doc.today)}",
                    markup=True,
                    font_size=s.body,
                )
            )
        col.add_widget(self.scroll(inner))
        back = self.back_button(L)
        col.add_widget(self.row([back]))
        return Built(col, [back], 0, back=self.svc.back)

    # feedback ------------------------------------------------------------------------------

    def screen_feedback(self, v: View) -> Built:
        return getattr(self, f"_fb_{v.data.step}")(v)

    def _fb_frame(self, v: View, heading: str) -> tuple[BoxLayout, FocusButton]:
        col = self.column()
        col.add_widget(self.title(tr("fb_title", v.lang)))
        col.add_widget(self.text(heading, color=MUTED))
        return col, self.back_button(v.lang)

    def _fb_category(self, v: View) -> Built:
        s, L = self.s, v.lang
        col, back = self._fb_frame(v, tr("fb_category", L))
        vertical = s.portrait
        grid = GridLayout(cols=1 if vertical else 3, spacing=s.gap * 2)
        colors = {"praise": GOOD, "suggestion": PRIMARY, "complaint": WARN}
        buttons = []
        for c in CATEGORIES:
            b = FitButton(
                tr(f"cat_{c}", L),
                (lambda c=c: self.svc.feedback("category", c)),
                floor=s.floor,
                font_size=s.title,
                color_bg=colors[c],
            )
            grid.add_widget(b)
            buttons.append(b)
        col.add_widget(grid)
        col.add_widget(self.row([back]))
        return Built(col, [*buttons, back], 0, back=self.svc.back)

    def _fb_department(self, v: View) -> Built:
        s, L = self.s, v.lang
        col, back = self._fb_frame(v, tr("fb_department", L))
        cols = 1 if s.care else (2 if s.portrait or s.w < 1000 else 4)
        grid = GridLayout(cols=cols, spacing=s.gap)
        buttons = [
            AutoButton(
                tr("fb_none", L),
                lambda: self.svc.feedback("department", None),
                min_height=s.button,
                font_size=s.body,
                color_bg=SECONDARY,
                fg=INK,
            )
        ]
        for d in v.data.directory.departments:
            buttons.append(
                AutoButton(
                    d.display(L),
                    (lambda i=d.id: self.svc.feedback("department", i)),
                    min_height=s.button,
                    font_size=s.body,
                    color_bg=PRIMARY,
                )
            )
        for b in buttons:
            grid.add_widget(b)
        col.add_widget(self.scroll(grid))
        col.add_widget(self.row([back]))
        return Built(col, [*buttons, back], 0, back=self.svc.back)

    def _fb_topics(self, v: View) -> Built:
        s, L, d = self.s, v.lang, v.data
        col, back = self._fb_frame(v, tr("fb_topics", L))
        grid = GridLayout(cols=1 if s.care else 2, spacing=s.gap)
        buttons = []
        for zh, en in FEEDBACK_TOPICS.get(d.category, []):
            on = zh in d.topics
            b = AutoButton(
                ("✓ " if on else "") + (en if L == "en" else zh),
                (lambda t=zh: self.svc.feedback("topic", t)),
                min_height=s.button,
                font_size=s.body,
                color_bg=PRIMARY if on else SECONDARY,
                fg=WHITE if on else INK,
            )
            b.topic = zh
            grid.add_widget(b)
            buttons.append(b)
        col.add_widget(self.scroll(grid))
        if d.error:
            col.add_widget(self.text(tr(d.error, L), color=BAD, size=s.small))
        nxt = self.button(tr("btn_next", L), lambda: self.svc.feedback("next"))
        col.add_widget(self.row([back, nxt]))
        kf = self.root.key_focus
        return Built(
            col, [*buttons, nxt, back], kf if kf is not None else len(buttons), back=self.svc.back
        )

    def _fb_phone(self, v: View) -> Built:
        s, L, d = self.s, v.lang, v.data
        left: list[Widget] = [
            self.text(tr("fb_phone", L), color=MUTED),
            Panel(d.phone or "—", font_size=s.title, halign="center"),
        ]
        if d.error:
            left.append(self.text(tr(d.error, L), color=BAD, size=s.small))

        def key(k: str) -> None:
            if k == "ok":
                self.svc.feedback("submit")
            elif k == "delete":
                self.svc.feedback("delete")
            else:
                self.svc.feedback("digit", k)

        back = self.back_button(L)
        pad, keys = self.keypad(key, tr("btn_submit", L), L)
        col = self.keypad_screen(tr("fb_title", L), left, pad, back)
        kf = self.root.key_focus
        return Built(
            col,
            [*keys, back],
            kf if kf is not None else len(keys) - 1,
            back=self.svc.back,
            digit=key,
            backspace=lambda: key("delete"),
        )

    def screen_feedback_done(self, v: View) -> Built:
        s, L, d = self.s, v.lang, v.data
        kw = site_kw(v)
        col = self.column()
        col.add_widget(self.title(tr("fb_done_title", L), color=GOOD))
        parts = [
            self.text(tr("fb_done_no", L), color=MUTED, halign="center"),
            # one line, shrunk to fit: wrapped, "F-20261203-kiosk-01-00 / 03" misread as two
            FitLabel(
                d.tracking_no,
                floor=s.floor,
                font_size=s.title,
                bold=True,
                color=PRIMARY,
                halign="center",
                size_hint_y=None,
                height=round(s.title * 1.4),
            ),
        ]
        if d.phone:
            parts.append(self.text(tr("fb_done_reply", L, phone=d.phone, **kw)))
        parts.append(self.text(tr("fb_done_ask", L, **kw)))
        if not d.printed:
            parts.append(self.text(tr("fb_slip_failed", L), color=BAD))
        col.add_widget(self.scroll_text(*parts))
        back_in = self.text("", size=s.small, color=MUTED, halign="center")
        col.add_widget(back_in)
        home = self.home_button(L)
        col.add_widget(self.row([home]))
        return Built(col, [home], 0, back=lambda: self.svc.go("home"), back_in_label=back_in)

    # survey ---------------------------------------------------------------------------------

    def screen_survey(self, v: View) -> Built:
        s, L, d = self.s, v.lang, v.data
        col = self.column()
        progress = tr("sv_progress", L, i=d.i, n=d.n)
        if s.portrait:
            col.add_widget(self.title(tr("sv_title", L)))
            col.add_widget(self.text(progress, color=MUTED, size=s.small))
        else:  # one line: a short landscape screen keeps its height for the answers
            col.add_widget(self.text(f"{tr('sv_title', L)} · {progress}", color=MUTED))
        text = d.text_en if L == "en" and d.text_en else d.text
        q_size = round(s.title * 1.05) if s.portrait else s.title
        col.add_widget(WrapLabel(text, font_size=q_size, bold=True, color=INK, halign="center"))
        labels = d.labels_en if L == "en" else d.labels
        vertical = s.portrait or d.scale > 5
        grid = GridLayout(cols=1 if vertical else d.scale, spacing=s.gap)

        buttons = []
        # best first, as the pads and most paper forms read: the patient's eye lands on it
        for n in range(d.scale, 0, -1):
            chosen = d.answer == n
            b = FitButton(
                labels[n - 1],
                (lambda n=n: self.svc.survey_answer(n, d.qid)),
                floor=s.floor,
                font_size=s.body,
                color_bg=PRIMARY if chosen else SECONDARY,
                fg=WHITE if chosen else INK,
            )
            b.score = n
            grid.add_widget(b)
            buttons.append(b)
        col.add_widget(grid)
        back = self.back_button(L)
        skip = self.button(
            tr("btn_skip", L), lambda: self.svc.survey_answer(None, d.qid), color=SECONDARY, fg=INK
        )
        col.add_widget(self.row([back, skip]))

        def digit(ch: str) -> None:
            if ch.isdigit() and 1 <= int(ch) <= d.scale:
                self.svc.survey_answer(int(ch), d.qid)

        # No answer has the focus at first: Enter alone must not record a score.
        initial = d.scale - d.answer if d.answer else None
        return Built(col, [*buttons, skip, back], initial, back=self.svc.back, digit=digit)

    # maintenance ----------------------------------------------------------------------------

    def screen_pin(self, v: View) -> Built:
        s, L, d = self.s, v.lang, v.data
        local = self.root.local
        pin = local.setdefault("pin", "")
        back = self.button(tr("btn_back", L), lambda: self.svc.go("home"), color=SECONDARY, fg=INK)
        if d.disabled:
            col = self.column()
            col.add_widget(self.title(tr("pin_title", L)))
            col.add_widget(Panel(tr("pin_disabled", L), font_size=s.body))
            col.add_widget(Widget())
            col.add_widget(self.row([back]))
            return Built(col, [back], 0, back=lambda: self.svc.go("home"))
        left: list[Widget] = [
            self.text(tr("pin_text", L), color=MUTED),
            Panel("● " * len(pin) or "—", font_size=s.title, halign="center"),
        ]
        if d.error and not local.get("typed"):
            left.append(self.text(tr(d.error, L), color=BAD))

        def key(k: str) -> None:
            cur = local.get("pin", "")
            if k == "ok":
                local.update(pin="", typed=False)
                self.root.key_focus = None
                self.svc.enter_pin(cur)
                return
            if k == "delete":
                local["pin"] = cur[:-1]
            elif len(cur) < 12:
                local.update(pin=cur + k, typed=True)
            self.root.keep_focus_and_rebuild()

        pad, keys = self.keypad(key, tr("btn_ok", L), L)
        col = self.keypad_screen(tr("pin_title", L), left, pad, back)
        kf = self.root.key_focus
        return Built(
            col,
            [*keys, back],
            0 if kf is None else kf,
            back=lambda: self.svc.go("home"),
            digit=key,
            backspace=lambda: key("delete"),
        )

    def screen_maintenance(self, v: View) -> Built:
        s, L, d = self.s, v.lang, v.data
        col = self.column()
        col.add_widget(self.title(tr("mt_title", L)))
        grid = GridLayout(cols=2, spacing=(s.gap * 2, s.gap // 2), size_hint_y=None)
        grid.bind(minimum_height=grid.setter("height"))
        for k, val in d.rows:
            grid.add_widget(WrapLabel(tr(k, L), font_size=s.small, color=MUTED, size_hint_x=0.3))
            grid.add_widget(WrapLabel(str(val), font_size=s.small, color=INK, size_hint_x=0.7))
        col.add_widget(self.scroll(grid))
        if d.message:
            text = tr(d.message, L) if d.message.startswith("mt_") else d.message
            col.add_widget(Panel(text, font_size=s.small))
        b1 = self.button(
            tr("mt_test_printer", L), lambda: self.svc.maintenance("test_printer"), size=s.small
        )
        b2 = self.button(
            tr("mt_test_reader", L), lambda: self.svc.maintenance("test_reader"), size=s.small
        )
        b3 = self.button(
            tr("mt_close", L), lambda: self.svc.maintenance("close"), color=GOOD, size=s.small
        )
        b4 = self.button(
            tr("mt_exit", L), lambda: self.svc.maintenance("exit"), color=BAD, size=s.small
        )
        if s.portrait or s.w < 1000:
            col.add_widget(self.row([b1, b2]))
            col.add_widget(self.row([b3, b4]))
        else:
            col.add_widget(self.row([b1, b2, b3, b4]))
        return Built(col, [b1, b2, b3, b4], 0, back=lambda: self.svc.maintenance("close"))
