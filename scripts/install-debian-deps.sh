#!/usr/bin/env bash
# Installs the Debian packages the tests and the demo run (a real Prometheus;
# openssl makes the certificates of the TLS analysis test), and what builds and
# runs the images of a real node (tools/images/build.sh; the node's containerd),
# only when missing, so a warm machine pays nothing.
set -euo pipefail
packages=(
  prometheus openssl
  # Docker's engine builds the images (no registry is reachable: nothing is pulled);
  # containerd, runc/crun, the CNI plugins, iptables and conntrack run the real node.
  docker.io containerd runc crun containernetworking-plugins iptables conntrack
  # The Debian base image is bootstrapped from the machine's apt mirror; the
  # keyring verifies what it downloads (--no-install-recommends would skip it).
  debootstrap debian-archive-keyring
  # The pause image is a static C program.
  gcc libc6-dev
  # benchmarks/modelserver_bench.py loads both model servers' REST with a tool neither wrote.
  wrk
  # The local cluster's inference-records store (devenv/postgres.py): a PostgreSQL
  # server run as an unprivileged user on a loopback port.
  postgresql
)
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
# Nothing relies on the packages' services (the development machine has no init
# system): we start our own instances (Prometheus on a free loopback port, a
# private dockerd, the node's containerd).
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
