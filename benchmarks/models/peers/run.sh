#!/usr/bin/env bash
# Side-by-side of NovaCron's models with PyPI peers, measured in one run on
# one machine, written to results.md beside this script:
#   M4 hourly dev: novacron forecast (combination, ets, theta, mstl) against
#     statsforecast AutoETS, AutoTheta and MSTL (m4_peers.py), all scored by
#     `novacron models score-forecasts`;
#   NAB nab-dev: novacron detect (ensemble) against pyod IForest and adtk
#     PersistAD run causally by periodic refits (nab_peers.py), all scored
#     by `novacron models score-anomalies`.
# The peers live in a venv under .cache/peers-venv (created on first use,
# packages from requirements.txt). Data are read from ../shared beside the
# repository. Run standalone or as `benchmarks/models/run.sh --peers`.
# Work caps: NAB peers refit every $NAB_REFIT rows (default 500) on at
# most the trailing 2000 rows.
set -euo pipefail
cd "$(dirname "$0")/../../.."
root=$(pwd)
shared=${NOVACRON_SHARED:-$root/../shared}
nab=$shared/datasets/nab-dev
m4=$shared/datasets/m4-hourly-dev
here=$root/benchmarks/models/peers
venv=$root/.cache/peers-venv
refit=${NAB_REFIT:-500}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for d in "$nab" "$m4"; do
  [ -d "$d" ] || { echo "missing $d: the datasets must sit beside the repository" >&2; exit 1; }
done
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q -r "$here/requirements.txt"
go build -o "$work/ncm" ./benchmarks/models/cmd/novacron-models
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
t0=$(date +%s)

now() { date +%s.%N; }
# NovaCron forecasters.
for model in combination ets theta mstl; do
  s=$(now)
  "$work/ncm" forecast --model "$model" --train "$m4/Hourly-train.csv" --output "$work/nc-$model.csv" >/dev/null 2>&1
  e=$(now)
  "$work/ncm" score-forecasts --train "$m4/Hourly-train.csv" --test "$m4/Hourly-test.csv" --forecasts "$work/nc-$model.csv" |
    tail -1 | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); d.update(task="m4", name="novacron "+sys.argv[1], wall_s=float(sys.argv[2])); print(json.dumps(d))' "$model" "$(echo "$e - $s" | bc)" >>"$work/rows.jsonl"
done
# Peer forecasters.
"$venv/bin/python" "$here/m4_peers.py" --train "$m4/Hourly-train.csv" --out-dir "$work/peers-m4" >&2
for model in AutoETS AutoTheta MSTL; do
  "$work/ncm" score-forecasts --train "$m4/Hourly-train.csv" --test "$m4/Hourly-test.csv" --forecasts "$work/peers-m4/$model.csv" |
    tail -1 | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); t=json.load(open(sys.argv[2]))[sys.argv[1]]; d.update(task="m4", name="statsforecast "+sys.argv[1], wall_s=t["wall_s"], warmup_s=t["compile_s"]); print(json.dumps(d))' "$model" "$work/peers-m4/m4-times.json" >>"$work/rows.jsonl"
done
# NovaCron detector.
s=$(now)
"$work/ncm" detect --input "$nab" --output "$work/nc-nab" >/dev/null 2>&1
e=$(now)
"$work/ncm" score-anomalies --data "$nab" --labels "$nab/labels.json" --results "$work/nc-nab" |
  tail -1 | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); d.update(task="nab", name="novacron ensemble", wall_s=float(sys.argv[1])); print(json.dumps(d))' "$(echo "$e - $s" | bc)" >>"$work/rows.jsonl"
# Peer detectors.
"$venv/bin/python" "$here/nab_peers.py" --data "$nab" --out-dir "$work/peers-nab" --refit "$refit" >&2
for det in pyod-iforest adtk-persist; do
  "$work/ncm" score-anomalies --data "$nab" --labels "$nab/labels.json" --results "$work/peers-nab/$det" |
    tail -1 | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); t=json.load(open(sys.argv[2]))[sys.argv[1]]; d.update(task="nab", name=sys.argv[1], wall_s=t["wall_s"]); print(json.dumps(d))' "$det" "$work/peers-nab/nab-times.json" >>"$work/rows.jsonl"
done
total=$(( $(date +%s) - t0 ))
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

export MACHINE_CPU="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
export MACHINE_CORES="$(nproc)"
export MACHINE_MEM="$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
export GO_VERSION="$(go version | cut -d' ' -f3-4)"
export PY_VERSIONS="$("$venv/bin/python" -c 'import sys, importlib.metadata as m; print("Python %s; " % sys.version.split()[0] + ", ".join("%s %s" % (p, m.version(p)) for p in ["statsforecast","numpy","pandas","numba","pyod","scikit-learn","adtk"]))')"
export COMMIT="$(git rev-parse --short HEAD)" LOAD_START="$load_start" LOAD_END="$load_end" TOTAL_S="$total" REFIT="$refit"
python3 "$here/report.py" "$work/rows.jsonl" | tee "$here/results.md"
