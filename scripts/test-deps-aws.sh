#!/usr/bin/env bash
# Installs what the AWS collector and driver tests need, idempotently: moto
# (PyPI moto[server], pinned) in a virtual environment under .cache/, whose
# moto_server the tests start on 127.0.0.1 (internal/testserver/moto.go).
# Needs python3 with the venv module and network access to PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION="${MOTO_VERSION:-5.2.5}"
cache="${NOVACRON_TEST_CACHE:-$PWD/.cache}"
venv="$cache/moto-venv"
stamp="$venv/.novacron-moto-$MOTO_VERSION"

if [[ -x "$venv/bin/moto_server" && -e "$stamp" ]]; then
  exit 0
fi

if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  echo "test-deps-aws: installing python3-venv"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
fi

echo "test-deps-aws: installing moto[server]==$MOTO_VERSION into $venv"
mkdir -p "$cache"
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION"
"$venv/bin/moto_server" --help >/dev/null
touch "$stamp"
