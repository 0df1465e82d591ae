#!/usr/bin/env python3
"""Forecast M4-layout series with statsforecast's AutoETS, AutoTheta and MSTL.

    m4_peers.py --train Hourly-train.csv --out-dir DIR [--horizon 48] [--jobs 2]

Writes DIR/<model>.csv in the M4 submission layout (id,F1..Fh) and
DIR/m4-times.json with the wall time of each model's fit-and-forecast
over all series. Each model first runs once on one series so that numba's
compilation is timed apart (compile_s) from the measured run (wall_s).
"""

import argparse
import csv
import json
import os
import time

import numpy as np
import pandas as pd
from statsforecast import StatsForecast
from statsforecast.models import MSTL, AutoETS, AutoTheta


def read_m4(path):
    ids, values = [], []
    with open(path, newline="") as fh:
        r = csv.reader(fh)
        next(r)
        for row in r:
            if not row:
                continue
            ids.append(row[0].strip().strip('"'))
            values.append(np.array([float(v) for v in row[1:] if v.strip() != ""]))
    return ids, values


def models():
    return {
        "AutoETS": lambda: AutoETS(season_length=24),
        "AutoTheta": lambda: AutoTheta(season_length=24),
        "MSTL": lambda: MSTL(season_length=[24, 168]),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--horizon", type=int, default=48)
    ap.add_argument("--jobs", type=int, default=os.cpu_count())
    a = ap.parse_args()
    ids, values = read_m4(a.train)
    df = pd.DataFrame({
        "unique_id": np.repeat(ids, [len(v) for v in values]),
        "ds": np.concatenate([np.arange(1, len(v) + 1) for v in values]),
        "y": np.concatenate(values),
    })
    os.makedirs(a.out_dir, exist_ok=True)
    times = {}
    for name, make in models().items():
        t0 = time.perf_counter()
        StatsForecast(models=[make()], freq=1, n_jobs=1).forecast(df=df[df.unique_id == ids[0]], h=a.horizon)
        compile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        fc = StatsForecast(models=[make()], freq=1, n_jobs=a.jobs).forecast(df=df, h=a.horizon)
        wall = time.perf_counter() - t0
        col = [c for c in fc.columns if c not in ("unique_id", "ds")][0]
        by = {uid: g.sort_values("ds")[col].to_numpy() for uid, g in fc.groupby("unique_id")}
        path = os.path.join(a.out_dir, name + ".csv")
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["id"] + ["F%d" % (k + 1) for k in range(a.horizon)])
            for sid in ids:
                w.writerow([sid] + [repr(float(v)) for v in by[sid]])
        times[name] = {"wall_s": wall, "compile_s": compile_s}
        print("%s: %.1fs (first-series warm-up %.1fs)" % (name, wall, compile_s), flush=True)
    with open(os.path.join(a.out_dir, "m4-times.json"), "w") as fh:
        json.dump(times, fh, indent=1)


if __name__ == "__main__":
    main()
