#!/usr/bin/env bash
# Installs what the libvirt collector and driver tests need on a Debian
# machine, idempotently: the libvirtd daemon with its QEMU driver and the
# x86 system emulator. Nothing is started or enabled: the tests start their
# own unprivileged session daemons. Run as root (or with sudo available).
set -euo pipefail

need=()
command -v libvirtd >/dev/null 2>&1 || need+=(libvirt-daemon)
command -v virsh >/dev/null 2>&1 || need+=(libvirt-clients)
[[ -e /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so ]] ||
  [[ -n "$(find /usr/lib -name 'libvirt_driver_qemu.so' 2>/dev/null | head -1)" ]] ||
  need+=(libvirt-daemon-driver-qemu)
command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)

if ((${#need[@]} == 0)); then
  exit 0
fi

SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO="sudo"
echo "test-deps-libvirt: installing Debian packages: ${need[*]}"
$SUDO apt-get update -qq
# No recommends: libvirt-daemon-system would start a system daemon and add
# users; the tests need neither.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
  "${need[@]}" >/dev/null
