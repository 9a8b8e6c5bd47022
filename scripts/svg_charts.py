#!/usr/bin/env python3
"""Draws the charts of the README and docs/benchmarks.md as plain SVG from the CSVs the demo and benchmark write.
Standard library only (a developer tool; the product never runs Python).

usage: svg_charts.py lift <lift.csv> <out.svg> [title]
       svg_charts.py scoring <scoring.csv> <out.svg>
       svg_charts.py throughput <bench/results/models.txt> <out.svg>
       svg_charts.py accuracy <bench/results/accuracy.csv> <out.svg> [dataset]
"""
import csv
import sys
from html import escape

FONT = 'font-family="DejaVu Sans, Arial, sans-serif"'
COLORS = ["#4C72B0", "#DD8452"]


def text(x, y, s, size=12, anchor="start", weight="normal", fill="#222"):
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'font-weight="{weight}" fill="{fill}" {FONT}>{escape(str(s))}</text>')


def rect(x, y, w, h, fill):
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" fill="{fill}"/>'


def svg(width, height, body):
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}"><rect width="100%" height="100%" fill="white"/>'
            + "".join(body) + "</svg>\n")


def lift(rows, title):
    width, height, left, right, top, bottom = 760, 400, 60, 20, 50, 60
    plot_w, plot_h = width - left - right, height - top - bottom
    vmax = max(max(float(r["mean_predicted"]), float(r["mean_actual"])) for r in rows) * 1.1
    vmin = min(0.0, min(float(r["mean_predicted"]) for r in rows))
    scale = plot_h / (vmax - vmin)
    zero_y = top + vmax * scale
    body = [text(width / 2, 24, title, 15, "middle", "bold")]
    for k in range(6):
        v = vmin + (vmax - vmin) * k / 5
        y = zero_y - v * scale
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        body.append(text(left - 6, y + 4, f"{v:.0f}", 11, "end"))
    group = plot_w / len(rows)
    bar = group * 0.36
    for i, r in enumerate(rows):
        x0 = left + i * group + group * 0.14
        for j, key in enumerate(["mean_predicted", "mean_actual"]):
            v = float(r[key])
            y = zero_y - max(v, 0) * scale
            body.append(rect(x0 + j * bar, y, bar - 2, abs(v) * scale, COLORS[j]))
        body.append(text(left + (i + 0.5) * group, height - bottom + 18, r["decile"], 11, "middle"))
    body.append(f'<line x1="{left}" x2="{width - right}" y1="{zero_y:.1f}" y2="{zero_y:.1f}" stroke="#444"/>')
    body.append(text(left + plot_w / 2, height - 14, "decile of predicted value (1 = highest)", 12, "middle"))
    body.append(text(14, top + plot_h / 2, "mean 39-week spend ($)", 12, "middle").replace(
        "<text ", f'<text transform="rotate(-90 14 {top + plot_h / 2:.1f})" '))
    for j, label in enumerate(["predicted", "actual"]):
        body.append(rect(width - right - 170 + j * 85, top - 2, 12, 12, COLORS[j]))
        body.append(text(width - right - 154 + j * 85, top + 9, label, 12))
    return svg(width, height, body)


def scoring(rows, title):
    labels = {
        "count_row": "count(c): materialise the row",
        "plain_sql": "plain SQL formula",
        "linear": "customer_value(c), linear",
        "tier": "customer_tier(c), linear",
        "forest": "customer_value(c), 100-tree forest",
    }
    order = [k for k in labels if any(r["query"] == k for r in rows)]
    ms = {(r["query"], r["workers"]): float(r["ms"]) for r in rows}
    n_rows = next(int(r["rows"]) for r in rows if r["query"] == "plain_sql")
    width, left, right, top, row_h = 820, 250, 90, 60, 44
    height = top + row_h * len(order) + 50
    vmax = max(ms[(k, w)] for k in order for w in ("0", "2")) * 1.05
    scale = (width - left - right) / vmax
    body = [text(width / 2, 24, title, 15, "middle", "bold"),
            text(width / 2, 42, f"{n_rows:,} rows, milliseconds per query (lower is better)", 12, "middle")]
    for i, k in enumerate(order):
        y = top + i * row_h
        body.append(text(left - 8, y + row_h / 2 + 2, labels[k], 12, "end"))
        for j, w in enumerate(("0", "2")):
            v = ms[(k, w)]
            body.append(rect(left, y + 6 + j * 17, v * scale, 15, COLORS[j]))
            body.append(text(left + v * scale + 4, y + 18 + j * 17, f"{v:.0f} ms", 11))
    for j, label in enumerate(["serial", "2 parallel workers"]):
        body.append(rect(left + j * 110, height - 30, 12, 12, COLORS[j]))
        body.append(text(left + 16 + j * 110, height - 20, label, 12))
    return svg(width, height, body)


def throughput(results_path):
    """Rows/s of the last size in bench/results/models.txt, in-database scoring vs Python."""
    blocks = open(results_path).read().split("scoring the spend model, all ")
    last = blocks[-1].splitlines()
    n_rows = int(last[0].split()[0])
    wanted = {
        "SQL sum(customer_value(c, 'spend_gbm'))": "customer_value(c), 100-tree gbm",
        "LightGBM predict, batch (threads)": "LightGBM batch predict",
        "scikit-learn predict, batch (threads)": "scikit-learn batch predict",
        "LightGBM predict, one row per call": "LightGBM, one row per call",
        "scikit-learn predict, one row per call": "scikit-learn, one row per call",
    }
    rows = []
    for line in last[1:]:
        for key, label in wanted.items():
            if line.strip().startswith(key):
                values = line.strip()[len(key):].split()
                serial = float(values[0])
                parallel = float(values[1]) if values[1] != "-" else None
                rows.append((label, serial, parallel))
    width, left, right, top, row_h = 860, 250, 120, 60, 44
    height = top + row_h * len(rows) + 50
    vmax = max(max(r[1], r[2] or 0) for r in rows) * 1.05
    scale = (width - left - right) / vmax
    body = [text(width / 2, 24, "Scoring a 100-tree depth-6 boosted model", 15, "middle", "bold"),
            text(width / 2, 42, f"{n_rows:,} customers, rows per second (higher is better)", 12, "middle")]
    for i, (label, serial, parallel) in enumerate(rows):
        y = top + i * row_h
        body.append(text(left - 8, y + row_h / 2 + 2, label, 12, "end"))
        for j, v in enumerate((serial, parallel)):
            if v is None:
                continue
            body.append(rect(left, y + 6 + j * 17, max(v * scale, 1), 15, COLORS[j]))
            body.append(text(left + max(v * scale, 1) + 4, y + 18 + j * 17, f"{v:,.0f}", 11))
    for j, label in enumerate(["1 core", "2 cores (parallel workers / threads)"]):
        body.append(rect(left + j * 110, height - 30, 12, 12, COLORS[j]))
        body.append(text(left + 16 + j * 110, height - 20, label, 12))
    return svg(width, height, body)


def accuracy(rows, dataset):
    """Normalized Gini (bars) and total error (labels) of every approach on one data set's
    holdout, best Gini first; the oracle is left out (it is 1 by definition)."""
    rows = [r for r in rows if r["dataset"] == dataset and not r["approach"].startswith("oracle")]
    rows.sort(key=lambda r: -float(r["gini"]))
    width, left, right, top, row_h = 860, 330, 130, 56, 26
    height = top + row_h * len(rows) + 56
    plot_w = width - left - right
    gmin, gmax = 0.3, 0.8
    body = [text(width / 2, 24, f"{dataset}: predicting the holdout's spend - normalized Gini, total error", 15,
                 "middle", "bold")]
    for k in range(6):
        g = gmin + (gmax - gmin) * k / 5
        x = left + plot_w * (g - gmin) / (gmax - gmin)
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 8}" y2="{height - 48}" stroke="#ddd"/>')
        body.append(text(x, height - 32, f"{g:.1f}", 11, "middle"))
    for i, r in enumerate(rows):
        y = top + i * row_h
        gini, error = float(r["gini"]), float(r["total_error_pct"])
        ours = r["approach"].startswith("customer_value train_from_log")
        color = COLORS[0] if ours else ("#999" if not r["approach"].startswith("customer_value") else COLORS[1])
        w = plot_w * (max(gini, gmin) - gmin) / (gmax - gmin)
        body.append(text(left - 8, y + 15, r["approach"], 12, "end"))
        body.append(rect(left, y + 3, w, row_h - 8, color))
        good = abs(error) <= 10
        body.append(text(left + w + 6, y + 15, f"{gini:.3f}  ({error:+.1f} %)", 12,
                         weight="bold" if good else "normal"))
    body.append(text(left + plot_w / 2, height - 12,
                     "normalized Gini of the ranking (bars); total error in parentheses, bold within ±10 %", 12, "middle"))
    return svg(width, height, body)


def main():
    kind, source, target = sys.argv[1:4]
    title = sys.argv[4] if len(sys.argv) > 4 else None
    if kind == "throughput":
        with open(target, "w") as f:
            f.write(throughput(source))
        return
    with open(source, newline="") as f:
        rows = list(csv.DictReader(f))
    if kind == "lift":
        out = lift(rows, title or "CDNOW: predicted vs actual spend of the next 39 weeks, by decile")
    elif kind == "accuracy":
        out = accuracy(rows, title or "CDNOW")
    elif kind == "scoring":
        out = scoring(rows, "Scoring cost inside PostgreSQL 15")
    else:
        sys.exit(f"unknown chart {kind}")
    with open(target, "w") as f:
        f.write(out)


if __name__ == "__main__":
    main()
