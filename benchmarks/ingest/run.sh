#!/usr/bin/env bash
# Runs the ingest benchmark and writes, in this directory:
#   results-<date>.md  Markdown tables, notes and a JSON block
#   bench-<date>.txt   the same numbers as benchstat input (one op = one sample)
# Extra arguments go to the command (go run ./benchmarks/ingest -h lists them),
# for example: ./run.sh -count 5   or   ./run.sh -samples-per-record 20
#
# Needs victoria-metrics in PATH and java plus the Kafka broker jars
# (scripts/test-deps.sh installs both). On a shared machine, run as root
# with NICE=-10 so that other load disturbs the measured processes less;
# PROFILE_DIR=dir keeps a CPU profile of every NovaCron ingest process.
set -euo pipefail
cd "$(dirname "$0")/../.."
date=$(date -u +%F)
out=benchmarks/ingest
bin=$(mktemp -d)/ingest-bench
trap 'rm -rf "$(dirname "$bin")"' EXIT
go build -o "$bin" ./benchmarks/ingest
args=(-out "$out/results-$date.md" -bench-out "$out/bench-$date.txt")
if [ -n "${PROFILE_DIR:-}" ]; then
	args+=(-profile "$PROFILE_DIR")
fi
nice -n "${NICE:-0}" "$bin" "${args[@]}" "$@"
