#!/usr/bin/env bash
# Every example and every kind end-to-end manifest through the API server's
# validation (server-side dry-run), each in the namespace it names: the examples
# in `default`, the e2e manifests in modelrollout-e2e (which must exist, as must
# the CRDs). scripts/e2e-kind.sh runs it after installing the chart; the test
# suite runs it against the local cluster. Arguments go to kubectl, e.g.
#   scripts/e2e-kind/check-manifests.sh --context kind-modelrollout
set -euo pipefail
cd "$(dirname "$0")/../.."
for manifest in examples/*.yaml scripts/e2e-kind/*.yaml; do
  # No -n: kubectl refuses a manifest whose namespace differs from -n.
  kubectl "$@" apply --dry-run=server -f "$manifest" >/dev/null \
    || { echo "check-manifests: $manifest fails the API server's validation" >&2; exit 1; }
done
