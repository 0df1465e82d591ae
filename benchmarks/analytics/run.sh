#!/usr/bin/env bash
# Runs the analytics stage benchmarks and writes results.txt with the
# machine they ran on. Usage: benchmarks/analytics/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
out=benchmarks/analytics/results.txt
{
  echo "# go test -run '^\$' -bench 'Process|StateBytes' -benchtime 3s -count 6 ./pipeline/analytics"
  echo "# machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(go version | cut -d' ' -f3-)"
  echo "# commit: $(git rev-parse --short HEAD), date: $(date -u +%F)"
  echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  go test -run '^$' -bench 'Process' -benchtime 3s -count 6 ./pipeline/analytics
  go test -run '^$' -bench 'StateBytes' -benchtime 1x -count 1 ./pipeline/analytics | grep Benchmark
  echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out"
