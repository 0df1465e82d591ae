#!/usr/bin/env python3
"""Run PyPI anomaly detectors causally on NAB-layout CSVs.

    nab_peers.py --data DIR --out-dir DIR [--refit 250] [--window 2000] [--jobs 2]

For each detector writes DIR/<detector>/<same relative path>.csv with
columns timestamp,value,anomaly_score (NAB results layout) and
DIR/nab-times.json with each detector's wall time over the corpus.

Both libraries are batch-only, so each detector is run causally by
periodic refits: every --refit rows it is fitted on at most the trailing
--window rows before that point (past only) and then scores the next
--refit rows. The first rows (before the first fit, at NAB's probation
length but at least 64 rows) score 0; NAB never scores the probation
rows anyway.

Detectors:
  pyod-iforest  pyod IForest (100 trees, seed 0) on sliding windows of the
                last 8 values; the score of a row is the fraction of the
                training windows' scores below its own (a causal
                calibration to [0, 1]).
  adtk-persist  adtk PersistAD (window 1, c 3): a value far from the
                previous one relative to the fitted interquartile range of
                such changes; binary score.
"""

import argparse
import json
import os
import time
import warnings
from multiprocessing import Pool

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")

LAG = 8


def probation(n):
    return min(int(np.floor(0.15 * n)), int(0.15 * 5000))


def windows(v, lag=LAG):
    return np.lib.stride_tricks.sliding_window_view(v, lag)


def run_iforest(df, refit, window):
    from pyod.models.iforest import IForest

    v = df["value"].to_numpy(dtype=float)
    n = len(v)
    scores = np.zeros(n)
    start = max(probation(n), 64)
    w = windows(v)  # w[i] holds v[i..i+LAG-1]; row t's window is w[t-LAG+1]
    for s in range(start, n, refit):
        lo = max(LAG - 1, s - window)
        train = w[lo - LAG + 1: s - LAG + 1]
        det = IForest(n_estimators=100, random_state=0, n_jobs=1)
        det.fit(train)
        ref = np.sort(det.decision_scores_)
        e = min(n, s + refit)
        new = det.decision_function(w[s - LAG + 1: e - LAG + 1])
        scores[s:e] = np.searchsorted(ref, new, side="left") / len(ref)
    return scores


def run_persist(df, refit, window):
    from adtk.detector import PersistAD

    ts = pd.Series(df["value"].to_numpy(dtype=float), index=pd.to_datetime(df["timestamp"]))
    ts = ts[~ts.index.duplicated(keep="first")] if ts.index.has_duplicates else ts
    n = len(ts)
    scores = np.zeros(len(df))
    start = max(probation(n), 64)
    for s in range(start, n, refit):
        det = PersistAD(window=1, c=3.0, side="both")
        det.fit(ts.iloc[max(0, s - window): s])
        e = min(n, s + refit)
        flags = det.detect(ts.iloc[s - 1: e]).iloc[1:]
        scores[s:e] = flags.fillna(False).astype(float).to_numpy()
    return scores


DETECTORS = {"pyod-iforest": run_iforest, "adtk-persist": run_persist}


def one(args):
    det, data, rel, out, refit, window = args
    df = pd.read_csv(os.path.join(data, rel))
    sc = DETECTORS[det](df, refit, window)
    dst = os.path.join(out, det, rel)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    pd.DataFrame({"timestamp": df["timestamp"], "value": df["value"], "anomaly_score": sc}).to_csv(dst, index=False)
    return rel


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--refit", type=int, default=250)
    ap.add_argument("--window", type=int, default=2000)
    ap.add_argument("--jobs", type=int, default=os.cpu_count())
    ap.add_argument("--detectors", default=",".join(DETECTORS))
    a = ap.parse_args()
    files = sorted(
        os.path.relpath(os.path.join(d, f), a.data)
        for d, _, fs in os.walk(a.data) for f in fs if f.endswith(".csv")
    )
    times = {}
    for det in a.detectors.split(","):
        t0 = time.perf_counter()
        with Pool(a.jobs) as pool:
            list(pool.imap_unordered(one, [(det, a.data, rel, a.out_dir, a.refit, a.window) for rel in files]))
        times[det] = {"wall_s": time.perf_counter() - t0, "files": len(files), "refit": a.refit, "window": a.window}
        print("%s: %d files in %.1fs" % (det, len(files), times[det]["wall_s"]), flush=True)
    with open(os.path.join(a.out_dir, "nab-times.json"), "w") as fh:
        json.dump(times, fh, indent=1)


if __name__ == "__main__":
    main()
