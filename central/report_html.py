"""The report as one self-contained HTML page with inline SVG charts (no scripts, no CDN)."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from html import escape

from central.report_model import FEW_RATINGS, NO_HOUR, Group, Report
from central.report_text import (
    CALLOUT_RULE,
    callout_text,
    data_notes,
    delivery_summary,
    group_label,
    pct,
    plural,
    reasons_text,
    shown,
)

SCORE_COLOURS = {1: "#d64545", 2: "#f0a04b", 3: "#c9d45c", 4: "#6cc070", 5: "#2e8b57"}
FEW_COLOUR = "#9aa5b1"
FONT = "'Noto Sans CJK SC','WenQuanYi Micro Hei','Microsoft YaHei',sans-serif"


def _pct_colour(p: float | None) -> str:
    if p is None:
        return "#bbb"
    return "#2e8b57" if p >= 90 else "#e0a030" if p >= 80 else "#d64545"


def _text_px(s: str, size: int) -> float:
    """Rough rendered width: CJK characters are square, Latin ones a bit over half."""
    return sum(size if unicodedata.east_asian_width(ch) in "WF" else size * 0.6 for ch in s)


def _left(labels: list[str], size: int = 14) -> int:
    return int(max([_text_px(s, size) for s in labels] + [60]) + 16)


def _bars_satisfaction(r: Report) -> str:
    """Horizontal bars: satisfied share per group, colour by level, count on the right.
    Groups with few ratings are drawn grey and say so; groups with none are listed too."""
    gs = r.groups
    labels = [group_label(r.by, g, r.names) for g in gs]
    row_h, width, right = 30, 300, 130
    left = _left(labels)
    h = 30 + row_h * max(1, len(gs))
    out = [
        f'<svg viewBox="0 0 {left + width + right} {h}" width="100%" role="img" '
        f'aria-label="satisfaction by {escape(r.by)}">'
    ]
    for x in (0, 25, 50, 75, 100):
        px = left + width * x / 100
        out.append(
            f'<line x1="{px}" y1="18" x2="{px}" y2="{h - 4}" stroke="#e3e3e3"/>'
            f'<text x="{px}" y="12" font-size="11" text-anchor="middle" fill="#777">{x}%</text>'
        )
    for i, (g, label) in enumerate(zip(gs, labels, strict=True)):
        y = 22 + i * row_h
        out.append(
            f'<text x="{left - 8}" y="{y + 15}" font-size="14" text-anchor="end">'
            f"{escape(label)}</text>"
        )
        if not g.rated:
            out.append(
                f'<text x="{left + 6}" y="{y + 15}" font-size="12" fill="#777">'
                "no counted ratings</text>"
            )
            continue
        p = g.satisfied_pct or 0.0
        colour = FEW_COLOUR if g.few else _pct_colour(g.satisfied_pct)
        note = f"n={g.rated}" + (" · few ratings" if g.few else "")
        out.append(
            f'<rect x="{left}" y="{y}" width="{width * p / 100:.1f}" height="20" rx="3" '
            f'fill="{colour}"/>'
            f'<text x="{left + width * p / 100 + 6:.1f}" y="{y + 15}" font-size="13" '
            f'font-weight="bold">{p:.1f}%</text>'
            f'<text x="{left + width + right - 4}" y="{y + 15}" font-size="12" '
            f'text-anchor="end" fill="#666">{escape(note)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _legend(scale: int, x0: float, y: float, width: float) -> tuple[list[str], float]:
    """Legend entries laid out left to right, wrapping instead of running off the chart."""
    out, x = [], x0
    for s in range(1, scale + 1):
        text = f"score {s}"
        w = 20 + _text_px(text, 12) + 18
        if x + w > x0 + width and x > x0:
            x, y = x0, y + 20
        out.append(
            f'<rect x="{x:.1f}" y="{y}" width="14" height="14" fill="{SCORE_COLOURS[s]}"/>'
            f'<text x="{x + 20:.1f}" y="{y + 12}" font-size="12">{text}</text>'
        )
        x += w
    return out, y + 20


def _bars_scores(r: Report) -> str:
    """100 % stacked bars: how each group's ratings split over the scores, worst on the left."""
    gs = r.groups
    labels = [group_label(r.by, g, r.names) for g in gs]
    row_h, width = 30, 360
    left = _left(labels)
    body = []
    for i, (g, label) in enumerate(zip(gs, labels, strict=True)):
        y = 8 + i * row_h
        body.append(
            f'<text x="{left - 8}" y="{y + 15}" font-size="14" text-anchor="end">'
            f"{escape(label)}</text>"
        )
        if not g.rated:
            body.append(
                f'<text x="{left + 6}" y="{y + 15}" font-size="12" fill="#777">'
                "no counted ratings</text>"
            )
            continue
        x = float(left)
        for s in range(1, 6):
            n = g.scores[s]
            if not n:
                continue
            w = width * n / g.rated
            body.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="20" '
                f'fill="{SCORE_COLOURS[s]}"><title>score {s}: {n}</title></rect>'
            )
            if w > 22:
                body.append(
                    f'<text x="{x + w / 2:.1f}" y="{y + 15}" font-size="11" '
                    f'text-anchor="middle" fill="#fff">{n}</text>'
                )
            x += w
    legend, bottom = _legend(r.scale, 10, 16 + max(1, len(gs)) * row_h, left + width)
    return (
        f'<svg viewBox="0 0 {left + width + 20} {bottom + 4}" width="100%" role="img" '
        f'aria-label="score distribution by {escape(r.by)}">' + "".join(body + legend) + "</svg>"
    )


def _columns_by_hour(by_hour: list[Group]) -> str:
    """Ratings per hour of the day (columns) with the satisfied share printed below."""
    hours = [g for g in by_hour if g.key != NO_HOUR and g.count]
    if not hours:
        return "<p>No ratings.</p>"
    lo, hi = min(g.key for g in hours), max(g.key for g in hours)
    span = list(range(lo, hi + 1))
    counts = {g.key: g for g in hours}
    top = max(g.count for g in hours)
    left, width, height = 10, 500, 200
    col = width / len(span)
    out = [
        f'<svg viewBox="0 0 {left + width + 10} {height + 60}" width="100%" role="img" '
        'aria-label="ratings per hour">'
    ]
    out.append(
        f'<line x1="{left}" y1="{height + 20}" x2="{left + width}" y2="{height + 20}" '
        'stroke="#999"/>'
    )
    for i, hr in enumerate(span):
        g = counts.get(hr)
        x = left + i * col + col * 0.15
        if g:
            bh = height * g.count / top
            out.append(
                f'<rect x="{x:.1f}" y="{height + 20 - bh:.1f}" width="{col * 0.7:.1f}" '
                f'height="{bh:.1f}" fill="#4a7fc1"><title>{g.count}</title></rect>'
                f'<text x="{x + col * 0.35:.1f}" y="{height + 14 - bh:.1f}" font-size="11" '
                f'text-anchor="middle">{g.count}</text>'
            )
            if g.satisfied_pct is not None:
                out.append(
                    f'<text x="{x + col * 0.35:.1f}" y="{height + 52}" font-size="12" '
                    f'text-anchor="middle" font-weight="bold" '
                    f'fill="{_pct_colour(g.satisfied_pct)}">{g.satisfied_pct:.0f}%</text>'
                )
        out.append(
            f'<text x="{x + col * 0.35:.1f}" y="{height + 36}" font-size="12" '
            f'text-anchor="middle">{hr:02d}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _bars_reasons(total: Group) -> str:
    items = [(shown(r), n) for r, n in sorted(total.reasons.items(), key=lambda x: (-x[1], x[0]))]
    items = items[:8]
    if not items:
        return "<p>No reasons given.</p>"
    top = items[0][1]
    left, width, row_h = _left([r for r, _ in items]), 330, 28
    out = [
        f'<svg viewBox="0 0 {left + width + 60} {10 + row_h * len(items)}" width="100%" '
        'role="img" aria-label="reasons">'
    ]
    for i, (r, n) in enumerate(items):
        y = 4 + i * row_h
        w = width * n / top
        out.append(
            f'<text x="{left - 8}" y="{y + 15}" font-size="14" text-anchor="end">'
            f'{escape(r)}</text><rect x="{left}" y="{y}" width="{w:.1f}" height="20" '
            f'rx="3" fill="#d64545"/><text x="{left + w + 6:.1f}" y="{y + 15}" '
            f'font-size="13">{n}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _tile(label: str, value: str, note: str = "", colour: str = "#222") -> str:
    return (
        f'<div class="tile"><div class="v" style="color:{colour}">{escape(value)}</div>'
        f'<div class="l">{escape(label)}</div><div class="n">{escape(note)}</div></div>'
    )


def _tiles(r: Report) -> str:
    t = r.total
    low_share = f"{100.0 * t.lowest / t.rated:.1f} %" if t.rated else "-"
    if t.prompts:
        response_note = f"{t.prompted} of {plural(t.prompts, 'prompt')} rated"
    else:
        response_note = "no prompts (free mode pads)"
    return "".join(
        [
            _tile("ratings 评价数", f"{t.count}", f"{t.rated} counted, {t.misuse} misuse"),
            _tile(
                "satisfied 满意率",
                pct(t.satisfied_pct),
                f"two best scores of {r.scale}",
                _pct_colour(t.satisfied_pct),
            ),
            _tile("response rate 评价率", pct(t.response_pct), response_note),
            _tile(
                "lowest score 最低分",
                f"{t.lowest}",
                f"ratings at score 1: {low_share} of counted",
                "#d64545",
            ),
            _tile(
                "misuse 误按",
                pct(t.misuse_pct),
                f"{plural(t.misuse, 'press', 'presses')} not counted",
            ),
            _tile(
                "median response 响应",
                "-" if t.median_response_ms is None else f"{t.median_response_ms / 1000:.1f} s",
                "from prompt to key",
            ),
        ]
    )


def _table(r: Report) -> str:
    scale = r.scale
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            [escape(r.by)]
            + ["ratings"]
            + [f"score {s}" for s in range(1, scale + 1)]
            + ["satisfied", "misuse", "prompts", "response", "median response", "reasons"]
        )
    )
    rows = []
    for g in [*r.groups, r.total]:
        label = "Total" if g is r.total else escape(group_label(r.by, g, r.names))
        if g is not r.total and g.rated and g.few:
            label += ' <span class="few">few ratings</span>'
        med = "-" if g.median_response_ms is None else f"{g.median_response_ms / 1000:.1f} s"
        cells = [label, str(g.count)] + [str(g.scores[s]) for s in range(1, scale + 1)]
        cells += [
            f'<b style="color:{_pct_colour(g.satisfied_pct)}">{pct(g.satisfied_pct)}</b>',
            str(g.misuse),
            str(g.prompts) if g.prompts else "-",
            pct(g.response_pct),
            med,
            escape(reasons_text(g.reasons)),
        ]
        cls = ' class="total"' if g is r.total else ""
        rows.append(f"<tr{cls}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _delivery(r: Report) -> str:
    open_g, lost, summary = delivery_summary(r)
    online = sum(1 for d in r.device_list if d["state"] == "online")
    ok = not open_g and not lost
    parts = [
        f'<p class="{"ok" if ok else "warn"}">{plural(len(r.device_list), "device")} '
        f"({online} online). "
        + ("Every event sent by the devices is in the database." if ok else f"{summary}.")
        + "</p>"
    ]
    if open_g or lost:
        rows = "".join(
            f"<tr><td>{escape(g['device'])}</td><td>{g['first_seq']}–{g['last_seq']}</td>"
            f"<td>{escape(g['state'])}</td><td>{g['resends']}</td>"
            f"<td>{escape(str(g['lost'] or ''))}</td><td>{escape(g['detected'] or '')}</td></tr>"
            for g in open_g + lost
        )
        parts.append(
            "<table><thead><tr><th>device</th><th>seq</th><th>state</th><th>resends</th>"
            f"<th>lost</th><th>detected</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    notes = data_notes(r)
    if notes:
        parts.append(
            '<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>"
        )
    return "".join(parts)


def render_html(r: Report, title: str) -> str:
    span = " – ".join(p for p in r.period if p) if any(r.period) else "all dates"
    callout = callout_text(r)
    note = (
        f"<p class='callout'>{escape(callout)}<br><small>{escape(CALLOUT_RULE)}</small></p>"
        if callout
        else ""
    )
    by = escape(r.by)
    return f"""<!DOCTYPE html>
<html lang="zh"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>
body{{font-family:{FONT};margin:28px 40px;color:#222;background:#fafafa}}
h2 small{{font-size:13px;color:#777;font-weight:normal}}
h1{{font-size:28px;margin:0 0 4px}} h2{{font-size:19px;margin:28px 0 10px;border-bottom:2px solid #4a7fc1;padding-bottom:4px}}
.sub{{color:#666;margin-bottom:18px}}
.tiles{{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:14px}}
.tile{{background:#fff;border:1px solid #ddd;border-radius:8px;padding:12px 16px}}
.tile .v{{font-size:32px;font-weight:bold}} .tile .l{{font-size:14px;color:#444}} .tile .n{{font-size:12px;color:#888}}
.grid{{display:grid;grid-template-columns:1fr 1fr;gap:24px}}
.card{{background:#fff;border:1px solid #ddd;border-radius:8px;padding:8px 16px 14px}}
table{{border-collapse:collapse;width:100%;background:#fff;font-size:14px}}
th,td{{border:1px solid #ddd;padding:5px 8px;text-align:right}} th:first-child,td:first-child,th:last-child,td:last-child{{text-align:left}}
td:first-child{{white-space:nowrap}} th{{background:#eef3fa}} tr.total td{{font-weight:bold;background:#f3f3f3}}
.few{{font-size:11px;color:#fff;background:{FEW_COLOUR};border-radius:3px;padding:0 4px;font-weight:normal}}
.ok{{color:#2e8b57}} .warn{{color:#d64545;font-weight:bold}} .callout{{font-size:15px}} .callout small{{color:#777}}
</style></head><body>
<h1>{escape(title)}</h1>
<div class="sub">Period {escape(span)} · by {by} · times in {escape(r.timezone)} · generated {datetime.now().astimezone().strftime("%Y-%m-%d %H:%M")}</div>
<div class="tiles">{_tiles(r)}</div>
{note}
<div class="grid">
<div class="card"><h2>Satisfied share by {by} <small>green ≥ 90 %, amber ≥ 80 %, grey: fewer than {FEW_RATINGS} ratings</small></h2>{_bars_satisfaction(r)}</div>
<div class="card"><h2>Scores by {by}</h2>{_bars_scores(r)}</div>
<div class="card"><h2>Ratings per hour of day <small>(satisfied share below)</small></h2>{_columns_by_hour(r.by_hour)}</div>
<div class="card"><h2>Reasons given for low scores</h2>{_bars_reasons(r.total)}</div>
</div>
<h2>Figures by {by} <small>response = prompts answered by a counted rating (评价率); misuse presses never count</small></h2>
{_table(r)}
<h2>Delivery and data check</h2>
{_delivery(r)}
</body></html>
"""
