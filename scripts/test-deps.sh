#!/usr/bin/env bash
# Installs what NovaCron's tests need on a Debian machine, idempotently:
# Debian packages for the real servers the tests start, and the Apache
# Kafka broker from Maven Central. Run as root (or with sudo available).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: binary to check -> package.
declare -A pkgs=(
  [kcat]=kcat
  [victoria-metrics]=victoria-metrics
)
missing=()
for bin in "${!pkgs[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("${pkgs[$bin]}")
done
if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  echo "test-deps: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Packaged daemons must not keep running as system services: the tests
  # start their own instances on loopback.
  for svc in victoria-metrics; do
    $SUDO systemctl stop "$svc" >/dev/null 2>&1 || true
    $SUDO service "$svc" stop >/dev/null 2>&1 || true
  done
fi

# The Kafka broker (Maven Central), cached under .cache/.
if [[ -x scripts/fetch-kafka.sh ]]; then
  ./scripts/fetch-kafka.sh
fi

# Provider- and component-specific dependencies (libvirt, moto, Alertmanager,
# PostgreSQL, ...), each in its own idempotent script.
for extra in scripts/test-deps-*.sh; do
  [[ -e "$extra" ]] || continue
  bash "$extra"
done
