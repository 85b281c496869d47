#!/usr/bin/env bash
# Copies the CRDs from crds/ (the one source of truth) into the Helm chart, which
# must ship them in its own crds/ directory. tests/integration/test_helm_chart.py
# fails when the copies differ, so run this after editing crds/*.yaml.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/charts/modelrollout/crds"
mkdir -p "$dest"
rm -f "$dest"/*.yaml
cp "$root"/crds/*.yaml "$dest"/
