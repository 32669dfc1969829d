#!/usr/bin/env python3
"""Draws the cold-start bench's JSON (target/cold-start.json) as an SVG chart.

    python3 scripts/chart.py [target/cold-start.json] [docs/cold-start.svg] [--note TEXT]

Top: the Rust roles on a linear scale, each bar split into init (exec -> first /next) and the
first invocation (-> first /response), with the p10..p90 spread of the total, the ratio to the
bare-work baseline, and the goal line (bare work x 1.10). Bottom: bare work, ours (segments) and the
Python original on a log scale (when Python was measured). Standard library only; writes SVG directly.
"""

import argparse
import datetime
import json
import math
import sys
from xml.sax.saxutils import escape

WIDTH = 980
OFF_SCALE = 3.0  # a role slower than this × the baseline is drawn cut at the axis
LEFT = 150  # room for the role names
RIGHT = 320  # room for the value labels
BAR = 22
GAP = 10
COLORS = {
    "baseline": ("#4d4d4d", "#9e9e9e"),
    "reference": ("#7a7a7a", "#c4c4c4"),
    # The old in-bench baseline, kept as a control row: not ours, not the baseline.
    "control": ("#a08a5a", "#d8c8a0"),
    "ours": ("#c2571a", "#f0a46e"),
    "python": ("#2f6fad", "#8fb8e0"),
}


def text(x, y, s, size=12, anchor="start", weight="normal", fill="#222"):
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'font-weight="{weight}" fill="{fill}">{escape(s)}</text>'
    )


def rect(x, y, w, h, fill, title=None):
    tip = f"<title>{escape(title)}</title>" if title else ""
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{h:.1f}" fill="{fill}">{tip}</rect>'


def line(x1, y1, x2, y2, stroke="#222", width=1, dash=None):
    dashes = f' stroke-dasharray="{dash}"' if dash else ""
    return (
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
        f'stroke="{stroke}" stroke-width="{width}"{dashes}/>'
    )


def nice_step(span, ticks=6):
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * power:
            return m * power
    return 10 * power


def median(role, part):
    stats = role.get(f"{part}_ms")
    return stats["median"] if stats else None


def linear_panel(roles, baseline, top):
    """The Rust roles, linear scale. Returns (svg parts, height)."""
    out = []
    rows = [r for r in roles if r["kind"] != "python" and median(r, "total") is not None]
    if not rows:
        return out, 0
    plot_w = WIDTH - LEFT - RIGHT
    base_total = median(baseline, "total") if baseline else None
    # A role over OFF_SCALE × the baseline (lr-otel, about 5×) would squash every other bar into
    # the left fifth: the scale is set by the rest, and its bar is cut at the axis, labelled with
    # its own figures.
    on_scale = [r for r in rows if not base_total or median(r, "total") <= base_total * OFF_SCALE] or rows
    highest = max(r["total_ms"]["p90"] for r in on_scale)
    if base_total:
        highest = max(highest, base_total * 1.10)
    step = nice_step(highest)
    axis_max = step * math.ceil(highest / step)
    scale = plot_w / axis_max
    y = top + 24
    out.append(text(LEFT, top + 12, "Rust: exec → first /response, median (ms), linear scale", 13, weight="bold"))
    height = len(rows) * (BAR + GAP)
    # Grid and axis.
    tick = 0.0
    while tick <= axis_max + 1e-9:
        x = LEFT + tick * scale
        out.append(line(x, y - 4, x, y + height, "#e3e3e3"))
        out.append(text(x, y + height + 14, f"{tick:g}", 11, "middle", fill="#555"))
        tick += step
    for r in rows:
        dark, light = COLORS.get(r["kind"], COLORS["ours"])
        init, total = median(r, "init"), median(r, "total")
        out.append(text(LEFT - 8, y + BAR * 0.7, r["name"], 12, "end"))
        if r not in on_scale:
            cut = axis_max * scale
            out.append(rect(LEFT, y, min(init * scale, cut), BAR, dark, f"{r['name']}: init {init:.3f} ms"))
            if init * scale < cut:
                out.append(rect(LEFT + init * scale, y, cut - init * scale, BAR, light,
                                f"{r['name']}: first invocation {total - init:.3f} ms"))
            # Two slashes across the end of the bar: cut, not to scale.
            for dx in (-10, -4):
                out.append(line(LEFT + cut + dx, y + BAR + 3, LEFT + cut + dx + 6, y - 3, "#fff", 3))
            ratio = r["ratios"].get("total_over_bare_work")
            label = f"{total:.2f} ms (init {init:.2f}), off the scale"
            if ratio:
                label += f" · {ratio:.2f}× bare work"
            out.append(text(LEFT + cut + 6, y + BAR * 0.7, label, 11))
            y += BAR + GAP
            continue
        out.append(rect(LEFT, y, init * scale, BAR, dark, f"{r['name']}: init {init:.3f} ms"))
        out.append(
            rect(LEFT + init * scale, y, (total - init) * scale, BAR, light,
                 f"{r['name']}: first invocation {total - init:.3f} ms")
        )
        p10, p90 = r["total_ms"]["p10"], r["total_ms"]["p90"]
        mid = y + BAR / 2
        out.append(line(LEFT + p10 * scale, mid, LEFT + p90 * scale, mid, "#222"))
        out.append(line(LEFT + p10 * scale, mid - 4, LEFT + p10 * scale, mid + 4, "#222"))
        out.append(line(LEFT + p90 * scale, mid - 4, LEFT + p90 * scale, mid + 4, "#222"))
        label = f"{total:.2f} ms"
        ratio = r["ratios"].get("total_over_bare_work")
        if r["kind"] in ("ours", "reference") and ratio:
            init_ratio = r["ratios"].get("init_over_bare_work") or 0
            label += f" · {ratio:.2f}× bare work (init {init_ratio:.2f}×)"
        exports = r.get("received", {}).get("expected_exports")
        if exports == 0:
            label += " · ⚠ nothing of its kind received"
        out.append(text(LEFT + max(p90, total) * scale + 6, y + BAR * 0.7, label, 11))
        y += BAR + GAP
    if base_total:
        goal = base_total * 1.10
        x = LEFT + goal * scale
        out.append(line(x, top + 18, x, y - GAP + 4, "#b00020", 1.2, "5,3"))
        out.append(text(x + 4, top + 28, "goal: bare work × 1.10", 10, fill="#b00020"))
    legend_y = y + 34
    out.append(rect(LEFT, legend_y - 9, 12, 10, COLORS["ours"][0]))
    out.append(text(LEFT + 16, legend_y, "init: exec → first /next", 11))
    out.append(rect(LEFT + 190, legend_y - 9, 12, 10, COLORS["ours"][1]))
    out.append(text(LEFT + 206, legend_y, "first invocation: → /response", 11))
    out.append(text(LEFT + 410, legend_y, "whisker: p10..p90 of the total", 11))
    return out, legend_y - top + 6


def log_panel(roles, baseline, top):
    """Bare work, ours (segments) and Python, log scale. Returns (svg parts, height)."""
    python = next((r for r in roles if r["kind"] == "python" and median(r, "total")), None)
    if python is None:
        return [text(LEFT, top + 14, "The Python original was not measured in this run.", 12, fill="#555")], 24
    # Ours = segments, else the fastest role that exported something of its kind.
    exporting = [
        r for r in roles
        if r["kind"] == "ours" and median(r, "total") and r["received"]["expected_exports"]
    ]
    segments = next((r for r in exporting if r["name"] == "segments"), None)
    ours = segments or min(exporting, key=lambda r: median(r, "total"), default=None)
    rows = [r for r in (baseline, ours) if r]
    rows.append(python)
    out = [text(LEFT, top + 12, "With the Python original: exec → first /response, median (ms), log scale", 13, weight="bold")]
    plot_w = WIDTH - LEFT - RIGHT
    lo = 10 ** math.floor(math.log10(min(median(r, "total") for r in rows)))
    hi = 10 ** math.ceil(math.log10(max(median(r, "total") for r in rows)))
    decades = math.log10(hi / lo)

    def xpos(v):
        return LEFT + math.log10(v / lo) / decades * plot_w

    y = top + 24
    height = len(rows) * (BAR + GAP)
    v = lo
    while v <= hi * 1.0001:
        out.append(line(xpos(v), y - 4, xpos(v), y + height, "#e3e3e3"))
        out.append(text(xpos(v), y + height + 14, f"{v:g}", 11, "middle", fill="#555"))
        v *= 10
    for r in rows:
        dark, _ = COLORS.get(r["kind"], COLORS["ours"])
        total = median(r, "total")
        out.append(text(LEFT - 8, y + BAR * 0.7, r["name"], 12, "end"))
        out.append(rect(LEFT, y, xpos(total) - LEFT, BAR, dark, f"{r['name']}: {total:.3f} ms"))
        label = f"{total:.2f} ms"
        if r is python and ours:
            label += f" = {total / median(ours, 'total'):.0f}× {ours['name']}"
        out.append(text(xpos(total) + 6, y + BAR * 0.7, label, 11))
        y += BAR + GAP
    return out, y - top + 20


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", nargs="?", default="target/cold-start.json")
    parser.add_argument("output", nargs="?", default="docs/cold-start.svg")
    parser.add_argument("--note", default="", help="a line under the title, e.g. the machine")
    args = parser.parse_args()
    with open(args.input, encoding="utf-8") as f:
        data = json.load(f)
    roles = data["roles"]
    baseline = next((r for r in roles if r["name"] == data.get("baseline")), None)
    when = datetime.datetime.fromtimestamp(data.get("generated_unix", 0), datetime.timezone.utc)
    machine = data.get("machine", {})
    parts = [
        text(20, 28, "hello-lambda cold start: full observability vs the same work without it", 16, weight="bold"),
        text(
            20, 48,
            f"median of {data['rounds']} shuffled rounds against a local Runtime API, page cache hot; "
            f"{machine.get('cpus', '?')} CPUs {machine.get('arch', '')}, {when:%Y-%m-%d %H:%M} UTC",
            11, fill="#555",
        ),
    ]
    top = 58
    if args.note:
        parts.append(text(20, 64, args.note, 11, fill="#b00020"))
        top = 74
    linear, h1 = linear_panel(roles, baseline, top)
    parts += linear
    logs, h2 = log_panel(roles, baseline, top + h1 + 16)
    parts += logs
    height = top + h1 + 16 + h2 + 10
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0f}" '
        f'viewBox="0 0 {WIDTH} {height:.0f}" font-family="Helvetica, Arial, sans-serif">\n'
        f'<rect width="100%" height="100%" fill="#fff"/>\n' + "\n".join(parts) + "\n</svg>\n"
    )
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(svg)
    print(f"wrote {args.output} from {args.input}", file=sys.stderr)


if __name__ == "__main__":
    main()
