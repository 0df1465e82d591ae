#!/usr/bin/env bash
# Measures NovaCron's models with the command defaults and writes the
# committed results files in this directory:
#   nab-dev.txt      NAB scores of every detector on nab-dev (reference scorer)
#   m4-hourly-dev.txt M4 scores of every forecaster on the hourly dev subset
#   bench.txt        cost of the default streaming detector (go test -bench)
#   peers/results.md side-by-side with PyPI peers (only with --peers; see
#                    peers/run.sh)
# Data are read from ../shared beside the repository.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
shared=${NOVACRON_SHARED:-$root/../shared}
nab=$shared/datasets/nab-dev
m4=$shared/datasets/m4-hourly-dev
out=$root/benchmarks/models
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for d in "$nab" "$m4"; do
  [ -d "$d" ] || { echo "missing $d: the datasets must sit beside the repository" >&2; exit 1; }
done
go build -o "$work/novacron-models" ./benchmarks/models/cmd/novacron-models
machine() {
  echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go version | cut -d' ' -f3-4)"
  echo "# commit: $(git rev-parse --short HEAD), date: $(date -u +%Y-%m-%d)"
}

{
  echo "# NAB on nab-dev (35 files), command defaults, scored by the reference scorer"
  machine
  for det in ensemble likelihood-z robust-z cusum shesd; do
    "$work/novacron-models" detect --detector "$det" --input "$nab" --output "$work/nab-$det" 2>/dev/null >/dev/null
    python3 "$shared/tools/nab/score.py" --data "$nab" --labels "$nab/labels.json" --results "$work/nab-$det" --quiet |
      python3 -c 'import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); p=d["profiles"]; print("%-14s standard %6.2f  reward_low_FP %6.2f  reward_low_FN %6.2f" % (sys.argv[1], p["standard"]["normalized"], p["reward_low_FP"]["normalized"], p["reward_low_FN"]["normalized"]))' "$det"
  done
} | tee "$out/nab-dev.txt"

{
  echo "# M4 hourly dev (207 series, h=48, m=24), scored by the reference scorer"
  machine
  for model in combination ets theta mstl snaive snaive-week naive2; do
    start=$(date +%s.%N)
    "$work/novacron-models" forecast --model "$model" --train "$m4/Hourly-train.csv" --output "$work/fc-$model.csv" \
      --lower "$work/lo-$model.csv" --upper "$work/up-$model.csv" 2>/dev/null >/dev/null
    secs=$(echo "$(date +%s.%N) - $start" | bc)
    cov=$("$work/novacron-models" score-forecasts --train "$m4/Hourly-train.csv" --test "$m4/Hourly-test.csv" --forecasts "$work/fc-$model.csv" \
      --lower "$work/lo-$model.csv" --upper "$work/up-$model.csv" | tail -1 | python3 -c 'import json,sys; print("%.3f" % json.loads(sys.stdin.read())["coverage"])')
    python3 "$shared/tools/m4/score.py" --train "$m4/Hourly-train.csv" --test "$m4/Hourly-test.csv" --forecasts "$work/fc-$model.csv" |
      tail -1 | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print("%-12s sMAPE %7.3f  MASE %6.3f  OWA %6.3f  95%%-coverage %s  (%ss)" % (sys.argv[1], d["sMAPE"], d["MASE"], d["OWA"], sys.argv[3], sys.argv[2]))' "$model" "$(printf %.1f "$secs")" "$cov"
  done
} | tee "$out/m4-hourly-dev.txt"

{
  echo "# go test -run '^\$' -bench . -count 6 ./models"
  machine
  go test -run '^$' -bench . -count 6 ./models | grep -E '^(Benchmark|goos|goarch|cpu)'
} | tee "$out/bench.txt"

if [ "${1:-}" = "--peers" ]; then
  bash benchmarks/models/peers/run.sh
fi
