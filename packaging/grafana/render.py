"""Draws packaging/grafana/ivr.json's panels from a Prometheus, without Grafana: every query of
every panel over the last minutes, a small chart per panel, into one PNG. The README's picture
is made with it over a test run:

    python3 packaging/grafana/render.py http://127.0.0.1:9090 15 docs/dashboard.png

Needs matplotlib (python3 -m pip install matplotlib).
"""
import json
import math
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PROMETHEUS, MINUTES, OUT = sys.argv[1], float(sys.argv[2]), sys.argv[3]
DASHBOARD = json.loads((Path(__file__).parent / "ivr.json").read_text())


def query_range(expr, start, end, step):
    args = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    with urllib.request.urlopen(f"{PROMETHEUS}/api/v1/query_range?{args}", timeout=10) as r:
        return json.load(r)["data"]["result"]


def legend(template, labels):
    out = template
    for key, value in labels.items():
        out = out.replace("{{" + key + "}}", value)
    return out


end = time.time()
start = end - MINUTES * 60
step = max(1, int(MINUTES * 60 / 200))
panels = DASHBOARD["panels"]
columns = 3
rows = math.ceil(len(panels) / columns)
figure, axes = plt.subplots(rows, columns, figsize=(6 * columns, 2.6 * rows))
for ax, panel in zip(axes.flat, panels):
    ax.set_title(panel["title"], fontsize=9)
    ax.tick_params(labelsize=7)
    for target in panel["targets"]:
        for series in query_range(target["expr"], start, end, step):
            xs = [(float(t) - end) / 60 for t, _ in series["values"]]
            ys = [float(v) for _, v in series["values"]]
            ax.plot(xs, ys, label=legend(target["legendFormat"], series["metric"]), linewidth=1.2)
    ax.set_xlabel("minutes ago", fontsize=7)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6, loc="upper left")
for ax in list(axes.flat)[len(panels):]:
    ax.axis("off")
figure.suptitle(f"IVR dashboard (packaging/grafana/ivr.json), last {MINUTES:g} minutes", fontsize=12)
figure.tight_layout()
figure.savefig(OUT, dpi=80)
print(f"wrote {OUT}")
