#!/usr/bin/env bash
# Installs the Debian packages the tests and the demo run (a real Prometheus;
# openssl makes the certificates of the TLS analysis test),
# only when missing, so a warm machine pays nothing.
set -euo pipefail
packages=(prometheus openssl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
echo "[deps] installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# The package's service is not started (no init system here, and we start our own
# instance on a free loopback port).
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
