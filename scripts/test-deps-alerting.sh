#!/usr/bin/env bash
# Installs what the alerting and state-database tests need on a Debian
# machine, idempotently: Alertmanager (prometheus-alertmanager) and
# PostgreSQL 15. The tests start their own throwaway servers on 127.0.0.1
# (internal/testserver/alertmanager.go and postgres.go), so any system
# service the packages start on install is stopped and disabled again.
# Run as root (or with sudo available).
set -euo pipefail

need=()
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
[[ -x /usr/lib/postgresql/15/bin/initdb && -x /usr/lib/postgresql/15/bin/pg_ctl ]] || need+=(postgresql)

if ((${#need[@]} == 0)); then
  exit 0
fi

SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO="sudo"
echo "test-deps-alerting: installing Debian packages: ${need[*]}"
$SUDO apt-get update -qq
# policy-rc.d exit 101 keeps the packages from starting their services on
# machines with an init system; the stops below cover the rest.
policy=/usr/sbin/policy-rc.d
created_policy=""
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  created_policy=1
fi
trap '[[ -n $created_policy ]] && $SUDO rm -f "$policy"' EXIT
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
  "${need[@]}" >/dev/null

# Stop whatever the packages started: the tests need none of it, and a
# system Alertmanager would gossip on port 9094.
if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
  $SUDO systemctl disable --now prometheus-alertmanager.service >/dev/null 2>&1 || true
  $SUDO systemctl disable --now postgresql.service >/dev/null 2>&1 || true
fi
$SUDO service prometheus-alertmanager stop >/dev/null 2>&1 || true
$SUDO service postgresql stop >/dev/null 2>&1 || true
if command -v pg_ctlcluster >/dev/null 2>&1; then
  for c in /etc/postgresql/*/*; do
    [[ -d $c ]] || continue
    $SUDO pg_ctlcluster "$(basename "$(dirname "$c")")" "$(basename "$c")" stop >/dev/null 2>&1 || true
  done
fi
