"""One builder per kiosk screen: each turns a `View` into widgets plus the order keys move focus in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kivy.uix.anchorlayout import AnchorLayout
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.scrollview import ScrollView
from kivy.uix.widget import Widget

from kiosk.directory import Directory
from kiosk.feedback import CATEGORIES, FeedbackForm
from kiosk.i18n import FEEDBACK_TOPICS, tr
from kiosk.ui.widgets import (
    BAD,
    GOOD,
    INK,
    MUTED,
    PRIMARY,
    SECONDARY,
    WARN,
    WHITE,
    FocusButton,
    Panel,
    Sizes,
    WrapLabel,
    qr_image,
)


@dataclass
class Built:
    """A built screen: its root widget, focus order, and what Escape / digits / the clock do."""

    widget: Widget
    focus: list[FocusButton] = field(default_factory=list)
    initial: int = 0
    back: Callable[[], None] | None = None
    digit: Callable[[str], None] | None = None
    backspace: Callable[[], None] | None = None
    back_in_label: WrapLabel | None = None


class Screens:
    """Builds screens for a root that has `service`, `sizes`, `local` (UI-only state of the
    screen shown, dropped when the screen changes) and `rebuild()`."""

    def __init__(self, root: Any) -> None:
        self.root = root

    # shortcuts ---------------------------------------------------------------------------

    @property
    def s(self) -> Sizes:
        return self.root.sizes

    @property
    def svc(self) -> Any:
        return self.root.service

    @property
    def local(self) -> dict[str, Any]:
        return self.root.local

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
        height: float | None = None,
        size: float | None = None,
        **kw: Any,
    ) -> FocusButton:
        return FocusButton(
            text,
            fn,
            color_bg=color,
            fg=fg,
            font_size=size or self.s.body,
            size_hint_y=None,
            height=height or self.s.button,
            **kw,
        )

    def bottom_row(self, buttons: list[FocusButton]) -> BoxLayout:
        row = BoxLayout(size_hint_y=None, height=self.s.button, spacing=self.s.gap)
        for b in buttons:
            row.add_widget(b)
        return row

    def scroll(self, inner: Widget) -> ScrollView:
        sv = ScrollView(do_scroll_x=False, bar_width=10, scroll_type=["bars", "content"])
        inner.size_hint_y = None
        inner.padding = [0, 0, 16, 0]  # keep buttons clear of the scroll bar
        inner.bind(minimum_height=inner.setter("height"))
        sv.add_widget(inner)
        return sv

    def keypad(
        self,
        on_digit: Callable[[str], None],
        on_delete: Callable[[], None],
        ok_text: str,
        on_ok: Callable[[], None],
        lang: str,
    ) -> tuple[GridLayout, list]:
        s = self.s
        grid = GridLayout(cols=3, spacing=s.gap, size_hint=(None, None))
        key_h = s.button * (0.9 if not s.portrait else 1.0)
        grid.width = min(s.w - 2 * s.pad, key_h * 3 * 1.9)
        grid.height = key_h * 4 + 3 * s.gap
        keys = []
        for d in "123456789":
            keys.append(
                FocusButton(
                    d, (lambda d=d: on_digit(d)), font_size=s.title, color_bg=SECONDARY, fg=INK
                )
            )
        keys.append(
            FocusButton(
                tr("btn_delete", lang), on_delete, font_size=s.body, color_bg=SECONDARY, fg=INK
            )
        )
        keys.append(
            FocusButton("0", lambda: on_digit("0"), font_size=s.title, color_bg=SECONDARY, fg=INK)
        )
        keys.append(FocusButton(ok_text, on_ok, font_size=s.body, color_bg=PRIMARY))
        for k in keys:
            grid.add_widget(k)
        return grid, keys

    def centered(self, w: Widget, height: float) -> AnchorLayout:
        box = AnchorLayout(anchor_x="center", anchor_y="center", size_hint_y=None, height=height)
        box.add_widget(w)
        return box

    # screens ------------------------------------------------------------------------------

    def build(self, view: Any) -> Built:
        fn = getattr(self, f"screen_{view.screen}", None)
        if fn is None:
            return self.screen_notice(view)
        return fn(view)

    def screen_home(self, v: Any) -> Built:
        s, L = self.s, v.lang
        col = self.column(spacing=s.gap * 2)
        col.add_widget(Widget(size_hint_y=0.15))
        prompt = round(s.u * 5.0) if s.portrait else round(s.title * 1.15)
        col.add_widget(
            WrapLabel(
                tr("home_prompt", L), font_size=prompt, bold=True, color=PRIMARY, halign="center"
            )
        )
        col.add_widget(self.text(tr("home_hint", L), color=MUTED, halign="center"))
        col.add_widget(Widget(size_hint_y=0.1))
        grid = GridLayout(cols=2, spacing=s.gap * 2, size_hint_y=None)
        h = s.u * (26 if s.portrait else 20)
        grid.height = h * 2 + s.gap * 2
        big = round(s.title * 1.05)
        buttons = [
            FocusButton(
                tr("btn_checkin", L),
                lambda: self.svc.go("checkin"),
                font_size=big,
                color_bg=PRIMARY,
            ),
            FocusButton(
                tr("btn_guide", L), lambda: self.svc.go("guide"), font_size=big, color_bg=GOOD
            ),
            FocusButton(
                tr("btn_feedback", L),
                lambda: self.svc.go("feedback"),
                font_size=big,
                color_bg=(0.36, 0.30, 0.62, 1),
            ),
            FocusButton(
                tr("btn_survey", L), lambda: self.svc.go("survey"), font_size=big, color_bg=WARN
            ),
        ]
        for b in buttons:
            grid.add_widget(b)
        col.add_widget(grid)
        col.add_widget(Widget(size_hint_y=0.2))
        return Built(col, buttons, 0, back=None)

    def screen_checkin(self, v: Any) -> Built:
        L = v.lang
        col = self.column()
        col.add_widget(self.title(tr("checkin_title", L)))
        col.add_widget(Widget(size_hint_y=0.2))
        col.add_widget(
            WrapLabel(
                tr("checkin_prompt", L), font_size=self.s.title, color=PRIMARY, halign="center"
            )
        )
        col.add_widget(Widget(size_hint_y=0.4))
        back = self.button(tr("btn_back", L), self.svc.back, color=SECONDARY, fg=INK)
        col.add_widget(self.bottom_row([back]))
        return Built(col, [back], 0, back=self.svc.back)

    def screen_appointments(self, v: Any) -> Built:
        s, L, d = self.s, v.lang, v.data
        col = self.column()
        who = f" · {d['patient']}" if d.get("patient") else ""
        col.add_widget(self.title(tr("appts_title", L) + who))
        col.add_widget(self.text(tr("appts_hint", L), color=MUTED, size=s.small))
        inner = GridLayout(cols=1, spacing=s.gap)
        buttons = []
        for it in d["items"]:
            dept = it["department_en"] if L == "en" and it["department_en"] else it["department"]
            state = it["state"]
            if state == "checkin":
                action, bg, fg = tr("appt_checkin", L), PRIMARY, WHITE
            elif state == "reprint":
                action, bg, fg = tr("appt_reprint", L), GOOD, WHITE
            elif state == "too_early":
                action, bg, fg = tr("appt_too_early", L, hhmm=it["hhmm"]), SECONDARY, INK
            else:
                action, bg, fg = tr("appt_too_late", L), SECONDARY, INK
            text = (
                f"[size={s.title}][b]{it['queue_no']}[/b][/size]   [b]{dept}[/b] · "
                f"{tr('appt_doctor', L)} {it['doctor']}\n"
                f"{it['room']}   {tr('appt_time', L)} {it['time']}\n"
                f"[size={s.small}]{action}[/size]"
            )
            b = FocusButton(
                text,
                (lambda i=it["id"], ok=state in ("checkin", "reprint"): self._choose(i, ok)),
                color_bg=bg,
                fg=fg,
                markup=True,
                font_size=s.body,
                size_hint_y=None,
                height=s.body * 3 + s.title + s.pad * 2,
            )
            b.halign = "left"
            b.appointment_id = it["id"]
            b.appointment_state = state
            buttons.append(b)
            inner.add_widget(b)
        col.add_widget(self.scroll(inner))
        back = self.button(tr("btn_back", L), self.svc.back, color=SECONDARY, fg=INK)
        col.add_widget(self.bottom_row([back]))
        focus = d.get("focus")
        return Built(
            col, [*buttons, back], len(buttons) if focus is None else focus, back=self.svc.back
        )

    def _choose(self, appointment_id: str, checks_in: bool) -> None:
        if checks_in:
            self.root.show_busy()  # the ticket may take a moment on a slow printer
        self.svc.choose(appointment_id)

    def screen_refused(self, v: Any) -> Built:
        L, d = v.lang, v.data
        col = self.column()
        col.add_widget(self.title(tr("refused_title", L), color=WARN))
        col.add_widget(Widget(size_hint_y=0.1))
        key = "refused_early" if d.get("reason") == "too_early" else "refused_late"
        col.add_widget(
            Panel(
                tr(key, L, hhmm=d.get("hhmm", ""), slot=d.get("slot", "")), font_size=self.s.title
            )
        )
        col.add_widget(Widget(size_hint_y=0.5))
        back = self.button(tr("btn_back", L), self.svc.back, color=SECONDARY, fg=INK)
        home = self.button(tr("btn_home", L), lambda: self.svc.go("home"))
        col.add_widget(self.bottom_row([back, home]))
        return Built(col, [home, back], 0, back=self.svc.back)

    def screen_noappt(self, v: Any) -> Built:
        L = v.lang
        col = self.column()
        col.add_widget(self.title(tr("noappt_title", L), color=WARN))
        col.add_widget(Widget(size_hint_y=0.1))
        key = "noroster_text" if v.data.get("no_roster") else "noappt_text"
        col.add_widget(Panel(tr(key, L), font_size=self.s.title))
        col.add_widget(Widget(size_hint_y=0.5))
        home = self.button(tr("btn_home", L), lambda: self.svc.go("home"))
        col.add_widget(self.bottom_row([home]))
        return Built(col, [home], 0, back=self.svc.back)

    def screen_notice(self, v: Any) -> Built:
        L, d = v.lang, v.data
        col = self.column()
        col.add_widget(self.title(tr(d.get("title", "failed_title"), L)))
        col.add_widget(Widget(size_hint_y=0.1))
        if d.get("text"):
            col.add_widget(Panel(tr(d["text"], L), font_size=self.s.title))
        col.add_widget(Widget(size_hint_y=0.5))
        back_in = self.text("", size=self.s.small, color=MUTED, halign="center")
        col.add_widget(back_in)
        home = self.button(tr("btn_home", L), lambda: self.svc.go("home"))
        col.add_widget(self.bottom_row([home]))
        return Built(col, [home], 0, back=self.svc.back, back_in_label=back_in)

    def screen_done(self, v: Any) -> Built:
        s, L, d = self.s, v.lang, v.data
        failed = d.get("ticket") == "failed"
        col = self.column()
        title = tr("done_title", L)
        if d.get("repeat"):
            title = tr("done_already_title" if failed else "done_reprint_title", L)
        col.add_widget(self.title(title, color=GOOD))
        body = BoxLayout(
            orientation="horizontal" if not s.portrait else "vertical", spacing=s.gap * 2
        )
        left = BoxLayout(orientation="vertical", spacing=s.gap)
        left.add_widget(self.text(tr("done_queue", L), color=MUTED, halign="center"))
        q = WrapLabel(
            d["queue_no"],
            font_size=round(s.u * (16 if s.portrait else 13)),
            bold=True,
            color=PRIMARY,
            halign="center",
        )
        q.queue_label = True
        left.add_widget(q)
        dept = d["department_en"] if L == "en" and d.get("department_en") else d["department"]
        left.add_widget(self.text(f"{dept} · {d['doctor']} · {d['time']}", halign="center"))
        where = tr("done_go", L, where=d["where"])
        if d.get("location"):
            where += f" ({d['location']})"
        left.add_widget(Panel(where, font_size=s.body, halign="center"))
        status = (
            tr("done_ticket_failed", L)
            if failed
            else (tr("done_take", L) if d.get("ticket") == "printed" else "")
        )
        if status:
            left.add_widget(self.text(status, color=BAD if failed else GOOD, halign="center"))
        left.add_widget(Widget())
        body.add_widget(left)
        if failed:
            side = s.u * (34 if s.portrait else 30)
            qr = qr_image(d["qr"], side)
            box = BoxLayout(
                orientation="vertical",
                size_hint=(None, None) if not s.portrait else (1, None),
                width=side,
                height=side + s.body * 2,
            )
            box.add_widget(self.centered(qr, side))
            box.add_widget(self.text(d["appointment"], size=s.small, halign="center"))
            body.add_widget(box)
        col.add_widget(body)
        back_in = self.text("", size=s.small, color=MUTED, halign="center")
        col.add_widget(back_in)
        home = self.button(tr("btn_home", L), lambda: self.svc.go("home"))
        col.add_widget(self.bottom_row([home]))
        return Built(col, [home], 0, back=lambda: self.svc.go("home"), back_in_label=back_in)

    # guide --------------------------------------------------------------------------------

    def screen_guide(self, v: Any) -> Built:
        L = v.lang
        directory: Directory = v.data.get("directory") or Directory()
        dept_id = self.local.get("dept")
        if dept_id and directory.department(dept_id):
            return self._guide_department(v, directory, dept_id)
        s = self.s
        col = self.column()
        col.add_widget(self.title(tr("guide_title", L)))
        letter = self.local.get("letter", "")
        col.add_widget(
            self.text(
                tr("guide_letter" if L == "zh" else "guide_letter_en", L), size=s.small, color=MUTED
            )
        )
        letters = ["", *directory.letters(L)]
        bar = GridLayout(
            cols=min(len(letters), 6 if s.portrait else 12), spacing=s.gap, size_hint_y=None
        )
        rows = (len(letters) + bar.cols - 1) // bar.cols
        bar.height = rows * s.button * 0.8 + (rows - 1) * s.gap
        focus: list[FocusButton] = []
        for x in letters:
            b = FocusButton(
                x or tr("guide_all", L),
                (lambda x=x: self._set_local(letter=x)),
                font_size=s.body,
                color_bg=PRIMARY if x == letter else SECONDARY,
                fg=WHITE if x == letter else INK,
            )
            bar.add_widget(b)
            focus.append(b)
        col.add_widget(bar)
        inner = GridLayout(cols=1, spacing=s.gap)
        found = directory.search(letter, L)
        if not found:
            inner.add_widget(self.text(tr("guide_empty", L), color=MUTED))
        floors: dict[str, list] = {}
        for d in found:
            floors.setdefault(d.floor, []).append(d)
        for floor, depts in floors.items():
            inner.add_widget(self.text(floor, size=s.small, color=MUTED))
            grid = GridLayout(cols=2 if s.portrait else 3, spacing=s.gap, size_hint_y=None)
            grid.bind(minimum_height=grid.setter("height"))
            for d in depts:
                b = FocusButton(
                    f"{d.display(L)}\n[size={s.small}]{d.location}[/size]",
                    (lambda i=d.id: self._set_local(dept=i)),
                    markup=True,
                    font_size=s.body,
                    size_hint_y=None,
                    height=s.button * 1.1,
                    color_bg=PRIMARY,
                )
                grid.add_widget(b)
                focus.append(b)
            for _ in range((-len(depts)) % grid.cols):
                grid.add_widget(Widget(size_hint_y=None, height=s.button * 1.1))
            inner.add_widget(grid)
        col.add_widget(self.scroll(inner))
        back = self.button(tr("btn_back", L), self.svc.back, color=SECONDARY, fg=INK)
        col.add_widget(self.bottom_row([back]))
        focus.append(back)
        first = letters.index(letter) if letter in letters else 0
        return Built(col, focus, first, back=self.svc.back)

    def _guide_department(self, v: Any, directory: Directory, dept_id: str) -> Built:
        s, L = self.s, v.lang
        d = directory.department(dept_id)
        assert d is not None
        col = self.column()
        col.add_widget(self.title(d.display(L)))
        col.add_widget(Panel(f"{d.floor}  {d.location}", font_size=s.title))
        col.add_widget(self.text(tr("guide_doctors", L), color=MUTED, size=s.small))
        inner = GridLayout(cols=1, spacing=s.gap)
        docs = directory.doctors_today(dept_id)
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
        back = self.button(
            tr("btn_back", L), lambda: self._set_local(dept=None), color=SECONDARY, fg=INK
        )
        col.add_widget(self.bottom_row([back]))
        return Built(col, [back], 0, back=lambda: self._set_local(dept=None))

    def _set_local(self, **kw: Any) -> None:
        self.local.update(kw)
        self.svc.activity()
        self.root.rebuild()

    # feedback ------------------------------------------------------------------------------

    def screen_feedback(self, v: Any) -> Built:
        form: FeedbackForm = self.local.setdefault("form", FeedbackForm())
        step = self.local.setdefault("step", "category")
        return getattr(self, f"_fb_{step}")(v, form)

    def _fb_back(self, to: str | None) -> Callable[[], None]:
        return (lambda: self._set_local(step=to, error="")) if to else self.svc.back

    def _fb_frame(self, v: Any, heading: str, back_to: str | None) -> tuple[BoxLayout, FocusButton]:
        col = self.column()
        col.add_widget(self.title(tr("fb_title", v.lang)))
        col.add_widget(self.text(heading, color=MUTED))
        back = self.button(tr("btn_back", v.lang), self._fb_back(back_to), color=SECONDARY, fg=INK)
        return col, back

    def _fb_category(self, v: Any, form: FeedbackForm) -> Built:
        s, L = self.s, v.lang
        col, back = self._fb_frame(v, tr("fb_category", L), None)
        grid = GridLayout(cols=1 if s.portrait else 3, spacing=s.gap * 2, size_hint_y=None)
        colors = {"praise": GOOD, "suggestion": PRIMARY, "complaint": WARN}
        buttons = []
        for c in CATEGORIES:
            b = FocusButton(
                tr(f"cat_{c}", L),
                (lambda c=c: self._fb_set(category=c, step="department")),
                font_size=s.title,
                color_bg=colors[c],
                size_hint_y=None,
                height=s.u * 18,
            )
            grid.add_widget(b)
            buttons.append(b)
        grid.height = (len(buttons) if s.portrait else 1) * (s.u * 18 + s.gap * 2)
        col.add_widget(Widget(size_hint_y=0.2))
        col.add_widget(grid)
        col.add_widget(Widget())
        col.add_widget(self.bottom_row([back]))
        return Built(col, [*buttons, back], 0, back=back.on_choose)

    def _fb_set(self, **kw: Any) -> None:
        form: FeedbackForm = self.local["form"]
        for k in ("category", "department_id"):
            if k in kw:
                setattr(form, k, kw.pop(k))
        self._set_local(**kw)

    def _fb_department(self, v: Any, form: FeedbackForm) -> Built:
        s, L = self.s, v.lang
        directory: Directory = v.data.get("directory") or Directory()
        col, back = self._fb_frame(v, tr("fb_department", L), "category")
        grid = GridLayout(cols=2 if s.portrait else 4, spacing=s.gap)
        buttons = [
            FocusButton(
                tr("fb_none", L),
                lambda: self._fb_set(department_id=None, step="topics"),
                font_size=s.body,
                color_bg=SECONDARY,
                fg=INK,
                size_hint_y=None,
                height=s.button,
            )
        ]
        for d in directory.departments:
            buttons.append(
                FocusButton(
                    d.display(L),
                    (lambda i=d.id: self._fb_set(department_id=i, step="topics")),
                    font_size=s.body,
                    size_hint_y=None,
                    height=s.button,
                    color_bg=PRIMARY,
                )
            )
        for b in buttons:
            grid.add_widget(b)
        col.add_widget(self.scroll(grid))
        col.add_widget(self.bottom_row([back]))
        return Built(col, [*buttons, back], 0, back=back.on_choose)

    def _fb_topics(self, v: Any, form: FeedbackForm) -> Built:
        s, L = self.s, v.lang
        col, back = self._fb_frame(v, tr("fb_topics", L), "department")
        grid = GridLayout(cols=2, spacing=s.gap * 1.5, size_hint_y=None)
        buttons = []
        topics = FEEDBACK_TOPICS.get(form.category, [])
        for zh, en in topics:
            on = zh in form.topics
            b = FocusButton(
                ("✓ " if on else "") + (en if L == "en" else zh),
                (lambda t=zh: self._fb_toggle(t)),
                font_size=s.body,
                color_bg=PRIMARY if on else SECONDARY,
                fg=WHITE if on else INK,
                size_hint_y=None,
                height=s.button * 1.2,
            )
            b.topic = zh
            grid.add_widget(b)
            buttons.append(b)
        grid.height = ((len(buttons) + 1) // 2) * (s.button * 1.2 + s.gap * 1.5)
        col.add_widget(grid)
        col.add_widget(Widget())
        nxt = self.button(tr("btn_next", L), lambda: self._set_local(step="phone"))
        col.add_widget(self.bottom_row([back, nxt]))
        last = self.local.get("topic_focus", len(buttons))
        return Built(col, [*buttons, nxt, back], last, back=back.on_choose)

    def _fb_toggle(self, topic: str) -> None:
        form: FeedbackForm = self.local["form"]
        form.toggle_topic(topic)
        names = [zh for zh, _ in FEEDBACK_TOPICS.get(form.category, [])]
        self._set_local(topic_focus=names.index(topic) if topic in names else 0)

    def _fb_phone(self, v: Any, form: FeedbackForm) -> Built:
        s, L = self.s, v.lang
        col, back = self._fb_frame(v, tr("fb_phone", L), "topics")
        shown = form.phone or "—"
        col.add_widget(Panel(shown, font_size=s.title, halign="center"))
        if self.local.get("error"):
            col.add_widget(self.text(tr(self.local["error"], L), color=BAD, size=s.small))

        def digit(d: str) -> None:
            form.type_digit(d)
            self._set_local(error="", key_focus=self.root.focus_index)

        def delete() -> None:
            form.delete_digit()
            self._set_local(error="", key_focus=self.root.focus_index)

        def submit() -> None:
            problem = form.problem()
            if problem:
                self._set_local(error=problem)
                return
            self.svc.submit_feedback(form)

        pad, keys = self.keypad(digit, delete, tr("btn_submit", L), submit, L)
        col.add_widget(self.centered(pad, pad.height))
        col.add_widget(Widget())
        col.add_widget(self.bottom_row([back]))
        return Built(
            col,
            [*keys, back],
            self.local.get("key_focus", len(keys) - 1),
            back=back.on_choose,
            digit=digit,
            backspace=delete,
        )

    def screen_feedback_done(self, v: Any) -> Built:
        s, L, d = self.s, v.lang, v.data
        col = self.column()
        col.add_widget(self.title(tr("fb_done_title", L), color=GOOD))
        col.add_widget(Panel(tr("fb_done_text", L, no=d["tracking_no"]), font_size=s.title))
        if not d.get("printed"):
            col.add_widget(self.text(tr("fb_slip_failed", L), color=BAD))
        col.add_widget(Widget())
        back_in = self.text("", size=s.small, color=MUTED, halign="center")
        col.add_widget(back_in)
        home = self.button(tr("btn_home", L), lambda: self.svc.go("home"))
        col.add_widget(self.bottom_row([home]))
        return Built(col, [home], 0, back=lambda: self.svc.go("home"), back_in_label=back_in)

    # survey ---------------------------------------------------------------------------------

    def screen_survey(self, v: Any) -> Built:
        s, L, d = self.s, v.lang, v.data
        col = self.column()
        col.add_widget(self.title(tr("sv_title", L)))
        col.add_widget(
            self.text(tr("sv_progress", L, i=d["i"], n=d["n"]), color=MUTED, size=s.small)
        )
        col.add_widget(Widget(size_hint_y=0.2))
        text = d["text_en"] if L == "en" and d.get("text_en") else d["text"]
        col.add_widget(
            WrapLabel(text, font_size=round(s.title * 1.1), bold=True, color=INK, halign="center")
        )
        col.add_widget(Widget(size_hint_y=0.2))
        scale = int(d["scale"])
        # Portrait: one full-width row per score, so the end labels never wrap mid-word.
        cols = 1 if s.portrait else scale
        row = GridLayout(cols=cols, spacing=s.gap, size_hint_y=None)
        row.height = (s.u * 18) if cols > 1 else scale * (s.button + s.gap)
        buttons = []
        for n in range(1, scale + 1):
            label = str(n)
            sep = "  " if s.portrait else "\n"
            if n == 1:
                label += f"{sep}[size={s.small}]{tr('sv_scale_low', L)}[/size]"
            elif n == scale:
                label += f"{sep}[size={s.small}]{tr('sv_scale_high', L)}[/size]"
            chosen = d.get("answer") == n
            b = FocusButton(
                label,
                (lambda n=n: self.svc.survey_answer(n, d["qid"])),
                markup=True,
                font_size=s.title,
                color_bg=PRIMARY if chosen else SECONDARY,
                fg=WHITE if chosen else INK,
            )
            b.score = n
            row.add_widget(b)
            buttons.append(b)
        col.add_widget(row)
        col.add_widget(Widget())
        back = self.button(tr("btn_back", L), self.svc.back, color=SECONDARY, fg=INK)
        skip = self.button(
            tr("btn_skip", L),
            lambda: self.svc.survey_answer(None, d["qid"]),
            color=SECONDARY,
            fg=INK,
        )
        col.add_widget(self.bottom_row([back, skip]))

        def digit(ch: str) -> None:
            if ch.isdigit() and 1 <= int(ch) <= scale:
                self.svc.survey_answer(int(ch), d["qid"])

        initial = (d["answer"] - 1) if d.get("answer") else scale - 1
        return Built(col, [*buttons, skip, back], initial, back=self.svc.back, digit=digit)

    # maintenance ----------------------------------------------------------------------------

    def screen_pin(self, v: Any) -> Built:
        s, L, d = self.s, v.lang, v.data
        pin = self.local.setdefault("pin", "")
        col = self.column()
        col.add_widget(self.title(tr("pin_title", L)))
        if d.get("disabled"):
            col.add_widget(Panel(tr("pin_disabled", L), font_size=s.body))
            col.add_widget(Widget())
            back = self.button(
                tr("btn_back", L), lambda: self.svc.go("home"), color=SECONDARY, fg=INK
            )
            col.add_widget(self.bottom_row([back]))
            return Built(col, [back], 0, back=lambda: self.svc.go("home"))
        col.add_widget(self.text(tr("pin_text", L), color=MUTED))
        col.add_widget(Panel("● " * len(pin) or "—", font_size=s.title, halign="center"))
        if d.get("error") and not self.local.get("typed"):
            col.add_widget(self.text(tr(d["error"], L), color=BAD))

        def digit(ch: str) -> None:
            if len(self.local.get("pin", "")) < 12:
                self._set_local(
                    pin=self.local.get("pin", "") + ch, typed=True, key_focus=self.root.focus_index
                )

        def delete() -> None:
            self._set_local(pin=self.local.get("pin", "")[:-1], key_focus=self.root.focus_index)

        def ok() -> None:
            entered = self.local.get("pin", "")
            self.local.update(pin="", typed=False, key_focus=None)
            self.svc.enter_pin(entered)

        pad, keys = self.keypad(digit, delete, tr("btn_ok", L), ok, L)
        col.add_widget(self.centered(pad, pad.height))
        col.add_widget(Widget())
        back = self.button(tr("btn_back", L), lambda: self.svc.go("home"), color=SECONDARY, fg=INK)
        col.add_widget(self.bottom_row([back]))
        kf = self.local.get("key_focus")
        return Built(
            col,
            [*keys, back],
            0 if kf is None else kf,
            back=lambda: self.svc.go("home"),
            digit=digit,
            backspace=delete,
        )

    def screen_maintenance(self, v: Any) -> Built:
        s, L, d = self.s, v.lang, v.data
        col = self.column()
        col.add_widget(self.title(tr("mt_title", L)))
        grid = GridLayout(cols=2, spacing=(s.gap * 2, s.gap // 2), size_hint_y=None)
        grid.bind(minimum_height=grid.setter("height"))
        for k, val in d.get("rows", []):
            grid.add_widget(WrapLabel(tr(k, L), font_size=s.small, color=MUTED, size_hint_x=0.3))
            grid.add_widget(WrapLabel(str(val), font_size=s.small, color=INK, size_hint_x=0.7))
        col.add_widget(self.scroll(grid))
        msg = d.get("message") or ""
        if msg:
            text = tr(msg, L) if msg.startswith("mt_") else msg
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
        if s.portrait:
            col.add_widget(self.bottom_row([b1, b2]))
            col.add_widget(self.bottom_row([b3, b4]))
        else:
            col.add_widget(self.bottom_row([b1, b2, b3, b4]))
        return Built(col, [b1, b2, b3, b4], 0, back=lambda: self.svc.maintenance("close"))
