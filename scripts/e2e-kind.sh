#!/usr/bin/env bash
# `make e2e-kind`: the real images in a real kind cluster. Builds both images (the
# Dockerfile's targets: the operator, the model server), loads them into kind,
# installs the chart with the operator image, dry-runs the examples (server-side: their
# images are placeholders) and its own manifests, then rolls out a model by
# canary gated on its error rate in Prometheus: version 2 is promoted, version 3
# (answering half its requests with 500) is rolled back automatically. Last, Envoy
# Gateway's chart and a Gateway API canary: at setWeight 5 the canary's share of
# 4,000 answers through the gateway is within 1.5 points of 5%.
# Needs Docker, kind, kubectl and helm on PATH. It has NOT been run on the
# development machine, which has no Docker engine (README "Kind").
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "e2e-kind: $tool is not on PATH" >&2; exit 2; }
done
cluster="${KIND_CLUSTER:-modelrollout}"
# shellcheck source=../tools/cluster/versions.env
. tools/cluster/versions.env
ns=modelrollout-e2e
kubectl() { command kubectl --context "kind-$cluster" "$@"; }
step() { echo "[e2e-kind] $*" >&2; }

step "building the images modelrollout-operator:e2e and modelrollout:e2e (the model server)"
docker build --target operator -t modelrollout-operator:e2e .
docker build --target modelserver -t modelrollout:e2e .
kind get clusters | grep -qx "$cluster" || kind create cluster --name "$cluster" --wait 120s
kind load docker-image modelrollout-operator:e2e modelrollout:e2e --name "$cluster"

step "installing the chart (namespaced: $ns)"
kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f -
helm upgrade --install modelrollout charts/modelrollout --kube-context "kind-$cluster" \
  -n modelrollout-system --create-namespace --wait --timeout 180s \
  --set image.repository=modelrollout-operator --set image.tag=e2e --set image.pullPolicy=Never \
  --set "watchNamespaces={$ns}" --set rbac.gatewayAPI.enabled=true

step "Envoy Gateway $ENVOY_GATEWAY_VERSION (its chart brings the Gateway API CRDs)"
helm upgrade --install eg oci://docker.io/envoyproxy/gateway-helm --version "$ENVOY_GATEWAY_VERSION" \
  --kube-context "kind-$cluster" -n envoy-gateway-system --create-namespace --wait --timeout 300s

step "the examples and the e2e manifests pass the API server's validation"
scripts/e2e-kind/check-manifests.sh --context "kind-$cluster"

step "Prometheus, version 1 and traffic"
kubectl apply -f scripts/e2e-kind/prometheus.yaml
kubectl -n "$ns" rollout status deploy/prometheus --timeout=180s
kubectl apply -f scripts/e2e-kind/wine.yaml
kubectl -n "$ns" wait md/wine --for=condition=Ready --timeout=300s
kubectl apply -f scripts/e2e-kind/loadgen.yaml

step "canary: version 2 (a better model) is promoted"
kubectl -n "$ns" patch md/wine --type=merge \
  -p '{"spec":{"model":{"version":"2","uri":"file:///models/wine-improved.skops"}}}'
kubectl -n "$ns" wait md/wine --for=jsonpath='{.status.stableVersion}'=2 --timeout=600s

step "rollback: version 3 answers half its requests with 500"
kubectl -n "$ns" patch md/wine --type=json -p '[
  {"op":"replace","path":"/spec/model/version","value":"3"},
  {"op":"add","path":"/spec/template/spec/containers/0/env",
   "value":[{"name":"MODELSERVER_FAULT_ERROR_RATE","value":"0.5"}]}]'
kubectl -n "$ns" wait md/wine --for=jsonpath='{.status.reason}'=RolledBack --timeout=600s
kubectl -n "$ns" get md/wine -o jsonpath='{.status.lastRollback}{"\n"}'
test "$(kubectl -n "$ns" get md/wine -o jsonpath='{.status.stableVersion}')" = 2

step "a route at exactly 5% through Envoy Gateway"
kubectl apply -f scripts/e2e-kind/gateway.yaml
kubectl -n "$ns" wait gateway/wine-gw --for=condition=Programmed --timeout=300s
kubectl -n "$ns" wait md/wine-gw --for=condition=Ready --timeout=300s
kubectl -n "$ns" patch md/wine-gw --type=merge \
  -p '{"spec":{"model":{"version":"2","uri":"file:///models/wine-improved.skops"}}}'
# Paused at the second step: the weight is written and the gateway reported it.
kubectl -n "$ns" wait md/wine-gw --for=jsonpath='{.status.currentStep}'=1 --timeout=600s
kubectl -n "$ns" wait md/wine-gw --for=jsonpath='{.status.trafficRouting.verified}'=yes --timeout=120s
kubectl -n "$ns" get md/wine-gw -o jsonpath='{.status.trafficRouting}{"\n"}'
envoy_service="$(kubectl -n envoy-gateway-system get svc -o jsonpath='{.items[0].metadata.name}' \
  --selector="gateway.envoyproxy.io/owning-gateway-namespace=$ns,gateway.envoyproxy.io/owning-gateway-name=wine-gw")"
kubectl -n "$ns" delete job/gateway-split --ignore-not-found
kubectl -n "$ns" create job gateway-split --image=modelrollout:e2e -- \
  modelrollout loadgen --url "http://$envoy_service.envoy-gateway-system" --dataset wine \
  --requests 4000 --rate 100 --concurrency 8 --json
kubectl -n "$ns" wait job/gateway-split --for=condition=Complete --timeout=300s
summary="$(kubectl -n "$ns" logs job/gateway-split | tail -n 1)"
echo "$summary" >&2
python3 scripts/e2e-kind/check-split.py --canary-version 2 --percent 5 --tolerance 1.5 <<<"$summary"
step "passed: version 2 promoted, version 3 rolled back, the gateway split at 5%. Clean up: kind delete cluster --name $cluster"
