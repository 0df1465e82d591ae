#!/usr/bin/env bash
# Runs the streaming-analytics benchmark and writes, in this directory,
# results-<date>.md (tables, notes and a JSON block). Extra arguments go to
# the command (go run ./benchmarks/stream -h lists them), for example:
#   ./run.sh -mode e2e -rate 50000        or   ./run.sh -mode memory
#
# Needs victoria-metrics in PATH and java plus the Kafka broker jars
# (scripts/test-deps.sh installs both) for the end-to-end mode; the memory
# mode needs no server and about 4 GiB of memory at 1M series. On a shared
# machine, run as root with NICE=-10 so that other load disturbs the
# measured processes less. OUT=file writes elsewhere.
set -euo pipefail
cd "$(dirname "$0")/../.."
date=$(date -u +%F)
out=${OUT:-benchmarks/stream/results-$date.md}
bin=$(mktemp -d)/stream-bench
trap 'rm -rf "$(dirname "$bin")"' EXIT
go build -o "$bin" ./benchmarks/stream
nice -n "${NICE:-0}" "$bin" -out "$out" "$@"
