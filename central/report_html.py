"""The report as one self-contained HTML page with inline SVG charts (no scripts, no CDN)."""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

from central.report import Group, reasons_text

SCORE_COLOURS = {1: "#d64545", 2: "#f0a04b", 3: "#c9d45c", 4: "#6cc070", 5: "#2e8b57"}
FONT = "'Noto Sans CJK SC','WenQuanYi Micro Hei','Microsoft YaHei',sans-serif"


def _pct_colour(p: float | None) -> str:
    if p is None:
        return "#bbb"
    return "#2e8b57" if p >= 90 else "#e0a030" if p >= 80 else "#d64545"


def _label(by: str, g: Group, names: dict[str, str]) -> str:
    if by == "hour":
        return "?" if g.key == -1 else f"{g.key:02d}:00"
    if by == "staff" and names.get(str(g.key)):
        return f"{g.key} {names[str(g.key)]}"
    return str(g.key)


def _bars_satisfaction(by: str, groups: list[Group], names: dict[str, str]) -> str:
    """Horizontal bars: satisfied share per group, colour by level, count on the right."""
    gs = [g for g in groups if g.rated]
    row_h, left, width = 30, 120, 320
    h = 30 + row_h * max(1, len(gs))
    out = [
        f'<svg viewBox="0 0 {left + width + 75} {h}" width="100%" role="img" '
        f'aria-label="satisfaction by {by}">'
    ]
    for x in (0, 25, 50, 75, 100):
        px = left + width * x / 100
        out.append(
            f'<line x1="{px}" y1="18" x2="{px}" y2="{h - 4}" stroke="#e3e3e3"/>'
            f'<text x="{px}" y="12" font-size="11" text-anchor="middle" fill="#777">{x}%</text>'
        )
    for i, g in enumerate(gs):
        y = 22 + i * row_h
        p = g.satisfied_pct or 0.0
        out.append(
            f'<text x="{left - 8}" y="{y + 15}" font-size="14" text-anchor="end">'
            f"{escape(_label(by, g, names))}</text>"
            f'<rect x="{left}" y="{y}" width="{width * p / 100:.1f}" height="20" rx="3" '
            f'fill="{_pct_colour(g.satisfied_pct)}"/>'
            f'<text x="{left + width * p / 100 + 6:.1f}" y="{y + 15}" font-size="13" '
            f'font-weight="bold">{p:.1f}%</text>'
            f'<text x="{left + width + 72}" y="{y + 15}" font-size="12" text-anchor="end" '
            f'fill="#666">n={g.rated}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _bars_scores(by: str, groups: list[Group], names: dict[str, str], scale: int) -> str:
    """100 % stacked bars: how each group's ratings split over the scores, worst on the left."""
    gs = [g for g in groups if g.rated]
    row_h, left, width = 30, 120, 390
    h = 50 + row_h * max(1, len(gs))
    out = [
        f'<svg viewBox="0 0 {left + width + 20} {h}" width="100%" role="img" '
        f'aria-label="score distribution by {by}">'
    ]
    for i, g in enumerate(gs):
        y = 8 + i * row_h
        out.append(
            f'<text x="{left - 8}" y="{y + 15}" font-size="14" text-anchor="end">'
            f"{escape(_label(by, g, names))}</text>"
        )
        x = float(left)
        for s in range(1, 6):
            n = g.scores[s]
            if not n:
                continue
            w = width * n / g.rated
            out.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="20" '
                f'fill="{SCORE_COLOURS[s]}"><title>{s}: {n}</title></rect>'
            )
            if w > 22:
                out.append(
                    f'<text x="{x + w / 2:.1f}" y="{y + 15}" font-size="11" '
                    f'text-anchor="middle" fill="#fff">{n}</text>'
                )
            x += w
    y = 16 + len(gs) * row_h
    for j, s in enumerate(range(1, scale + 1)):
        lx = left + j * 90
        out.append(
            f'<rect x="{lx}" y="{y}" width="14" height="14" fill="{SCORE_COLOURS[s]}"/>'
            f'<text x="{lx + 20}" y="{y + 12}" font-size="12">score {s}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _columns_by_hour(by_hour: list[Group]) -> str:
    """Ratings per hour of the day (columns) with the satisfied share printed on top."""
    hours = [g for g in by_hour if g.key != -1]
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
    items = sorted(total.reasons.items(), key=lambda x: (-x[1], x[0]))[:8]
    if not items:
        return "<p>No reasons given.</p>"
    top = items[0][1]
    left, width, row_h = 120, 330, 28
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


def _table(by: str, groups: list[Group], total: Group, names: dict[str, str], scale: int) -> str:
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            [escape(by)]
            + ["ratings"]
            + [f"score {s}" for s in range(1, scale + 1)]
            + ["satisfied", "misuse", "median response", "reasons"]
        )
    )
    rows = []
    for g in [*groups, total]:
        label = "Total" if g is total else escape(_label(by, g, names))
        pct = "-" if g.satisfied_pct is None else f"{g.satisfied_pct:.1f}%"
        med = "-" if g.median_response_ms is None else f"{g.median_response_ms / 1000:.1f} s"
        cells = [label, str(g.count)] + [str(g.scores[s]) for s in range(1, scale + 1)]
        cells += [
            f'<b style="color:{_pct_colour(g.satisfied_pct)}">{pct}</b>',
            str(g.misuse),
            med,
            escape(reasons_text(g.reasons)),
        ]
        cls = ' class="total"' if g is total else ""
        rows.append(f"<tr{cls}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _delivery(gap_list: list[dict[str, Any]], device_list: list[dict[str, Any]]) -> str:
    open_g = [g for g in gap_list if g["state"] == "open"]
    lost = [g for g in gap_list if g["state"] == "lost"]
    lost_n = sum(g["lost_events"] for g in lost)
    online = sum(1 for d in device_list if d["state"] == "online")
    ok = not open_g and not lost
    parts = [
        f'<p class="{"ok" if ok else "warn"}">{len(device_list)} devices ({online} online). '
        + (
            "Every event sent by the devices is in the database."
            if ok
            else f"{len(open_g)} gaps still open, {lost_n} events lost for good."
        )
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
    return "".join(parts)


def render_html(
    *,
    title: str,
    by: str,
    groups: list[Group],
    total: Group,
    by_hour: list[Group],
    names: dict[str, str],
    period: tuple[str, str],
    gap_list: list[dict[str, Any]],
    device_list: list[dict[str, Any]],
) -> str:
    scale = max([s for g in groups for s in g.scores] + [4])
    pct = total.satisfied_pct
    med = total.median_response_ms
    worst = min(
        (g for g in groups if g.rated >= 5), key=lambda g: g.satisfied_pct or 0, default=None
    )
    tiles = "".join(
        [
            _tile("ratings 评价数", f"{total.count}", f"{total.rated} counted"),
            _tile(
                "satisfied 满意率",
                "-" if pct is None else f"{pct:.1f}%",
                f"two best scores of {scale}",
                _pct_colour(pct),
            ),
            _tile(
                "lowest score 不满意",
                f"{total.low}",
                f"worst score of the scale ({total.scores[2]} at score 2)",
                "#d64545",
            ),
            _tile(
                "misuse 误按",
                "-" if total.misuse_pct is None else f"{total.misuse_pct:.1f}%",
                f"{total.misuse} presses not counted",
            ),
            _tile(
                "median response 响应",
                "-" if med is None else f"{med / 1000:.1f} s",
                "from prompt to key",
            ),
        ]
    )
    span = " – ".join(p for p in period if p) if any(period) else "all dates"
    note = (
        f"<p class='callout'>Lowest satisfaction: <b>{escape(_label(by, worst, names))}</b> "
        f"at {worst.satisfied_pct:.1f}% ({worst.rated} ratings).</p>"
        if worst
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="zh"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>
body{{font-family:{FONT};margin:28px 40px;color:#222;background:#fafafa}}
h2 small{{font-size:13px;color:#777;font-weight:normal}}
h1{{font-size:28px;margin:0 0 4px}} h2{{font-size:19px;margin:28px 0 10px;border-bottom:2px solid #4a7fc1;padding-bottom:4px}}
.sub{{color:#666;margin-bottom:18px}}
.tiles{{display:flex;gap:14px;flex-wrap:wrap}}
.tile{{background:#fff;border:1px solid #ddd;border-radius:8px;padding:12px 18px;min-width:170px}}
.tile .v{{font-size:32px;font-weight:bold}} .tile .l{{font-size:14px;color:#444}} .tile .n{{font-size:12px;color:#888}}
.grid{{display:grid;grid-template-columns:1fr 1fr;gap:24px}}
.card{{background:#fff;border:1px solid #ddd;border-radius:8px;padding:8px 16px 14px}}
table{{border-collapse:collapse;width:100%;background:#fff;font-size:14px}}
th,td{{border:1px solid #ddd;padding:5px 8px;text-align:right}} th:first-child,td:first-child,th:last-child,td:last-child{{text-align:left}}
th{{background:#eef3fa}} tr.total td{{font-weight:bold;background:#f3f3f3}}
.ok{{color:#2e8b57}} .warn{{color:#d64545;font-weight:bold}} .callout{{font-size:15px}}
</style></head><body>
<h1>{escape(title)}</h1>
<div class="sub">Period {escape(span)} · by {escape(by)} · generated {datetime.now().astimezone().strftime("%Y-%m-%d %H:%M")}</div>
<div class="tiles">{tiles}</div>
{note}
<div class="grid">
<div class="card"><h2>Satisfied share by {escape(by)} <small>green ≥ 90 %, amber ≥ 80 %</small></h2>{_bars_satisfaction(by, groups, names)}</div>
<div class="card"><h2>Scores by {escape(by)}</h2>{_bars_scores(by, groups, names, scale)}</div>
<div class="card"><h2>Ratings per hour of day <small>(satisfied share below)</small></h2>{_columns_by_hour(by_hour)}</div>
<div class="card"><h2>Reasons given for low scores</h2>{_bars_reasons(total)}</div>
</div>
<h2>Figures by {escape(by)}</h2>
{_table(by, groups, total, names, scale)}
<h2>Delivery check</h2>
{_delivery(gap_list, device_list)}
</body></html>
"""
