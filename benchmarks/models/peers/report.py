#!/usr/bin/env python3
"""Render the rows written by run.sh (JSON lines) as results.md (stdout)."""

import json
import os
import sys
from datetime import datetime, timezone

rows = {}
with open(sys.argv[1]) as fh:
    for line in fh:
        d = json.loads(line)
        rows[d["name"]] = d
env = os.environ.get

print("# NovaCron models side by side with PyPI peers\n")
print("Written by `benchmarks/models/peers/run.sh` (commit %s, %s). NovaCron's commands"
      % (env("COMMIT"), datetime.now(timezone.utc).strftime("%Y-%m-%d")))
print("and the peers ran one after the other in the same run on the same machine;")
print("every result is scored by NovaCron's scorers (`novacron models score-forecasts`,")
print("`score-anomalies`), which agree with the reference scorers.\n")
print("- machine: %s, %s cores, %s; %s" % (env("MACHINE_CPU"), env("MACHINE_CORES"), env("MACHINE_MEM"), env("GO_VERSION")))
print("- peers: %s" % env("PY_VERSIONS"))
print("- load average (1, 5, 15 min) at start %s, at end %s; whole run %s s. The machine is"
      % (env("LOAD_START"), env("LOAD_END"), env("TOTAL_S")))
print("  shared, so wall times carry noise from other work; the ratios compare runs made")
print("  minutes apart under the same conditions.\n")

print("## M4 hourly dev (207 series, h = 48, m = 24)\n")
print("Wall time: fit and forecast of all series, both cores (NovaCron: the `forecast` command,")
print("including reading and writing files; statsforecast: `StatsForecast.forecast` with")
print("`n_jobs=2`, after a warm-up on one series that compiles numba code, shown apart).\n")
print("| model | sMAPE | MASE | OWA | wall s |")
print("|---|---:|---:|---:|---:|")
for name, d in rows.items():
    if d["task"] != "m4":
        continue
    w = "%.1f" % d["wall_s"]
    if "warmup_s" in d:
        w += " (+%.1f warm-up)" % d["warmup_s"]
    print("| %s | %.3f | %.3f | %.3f | %s |" % (name, d["sMAPE"], d["MASE"], d["OWA"], w))
print("\nRatios NovaCron / peer (OWA: below 1 means NovaCron is more accurate; time: below 1")
print("means NovaCron is faster):\n")
print("| NovaCron | peer | OWA ratio | time ratio |")
print("|---|---|---:|---:|")
for a, b in [("ets", "AutoETS"), ("theta", "AutoTheta"), ("mstl", "MSTL"), ("combination", "AutoETS"), ("combination", "MSTL")]:
    x, y = rows.get("novacron " + a), rows.get("statsforecast " + b)
    if x and y:
        print("| %s | %s | %.3f | %.3f |" % (a, b, x["OWA"] / y["OWA"], x["wall_s"] / y["wall_s"]))

print("\n## NAB nab-dev (35 files, %d windows)\n" % rows["novacron ensemble"]["windows"])
print("NovaCron's detector streams (one pass, O(1) per sample). The peers are batch")
print("libraries, run causally: every %s rows each is refitted on at most the trailing" % env("REFIT"))
print("2000 rows (past only) and scores the next %s rows (`nab_peers.py`; the refit" % env("REFIT"))
print("interval caps the work). Scores are NAB normalised scores (null detector 0,")
print("perfect 100) at the corpus-wide best threshold.\n")
print("| detector | standard | reward_low_FP | reward_low_FN | windows hit | wall s |")
print("|---|---:|---:|---:|---:|---:|")
for name, d in rows.items():
    if d["task"] != "nab":
        continue
    p = d["profiles"]
    print("| %s | %.2f | %.2f | %.2f | %d/%d | %.1f |" % (
        name, p["standard"]["normalized"], p["reward_low_FP"]["normalized"], p["reward_low_FN"]["normalized"],
        p["standard"]["windows_detected"], d["windows"], d["wall_s"]))
print("\nRatios NovaCron ensemble / peer (score: above 1 means NovaCron scores higher;")
print("time: below 1 means NovaCron is faster):\n")
print("| peer | standard-score ratio | time ratio |")
print("|---|---:|---:|")
nc = rows["novacron ensemble"]
for name, d in rows.items():
    if d["task"] != "nab" or name == "novacron ensemble":
        continue
    s = d["profiles"]["standard"]["normalized"]
    r = "%.2f" % (nc["profiles"]["standard"]["normalized"] / s) if s > 0 else "n/a (peer scores %.2f)" % s
    print("| %s | %s | %.4f |" % (name, r, nc["wall_s"] / d["wall_s"]))
