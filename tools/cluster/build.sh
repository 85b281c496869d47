#!/usr/bin/env bash
# Builds the local cluster (Kubernetes with kubelet and kube-proxy, etcd, KWOK, Helm),
# kstatus for the GitOps tests (tools/kstatus) and a Prometheus with Kubernetes service
# discovery and metrics-server for the real-pod tests, from Go modules into a cache outside the repo, keyed
# by version and by the tools modules' go.sum, so only a cold machine pays for the
# build. Prints the binary directory on its last line.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache_root="${MODELROLLOUT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelrollout}"
export GOFLAGS="${GOFLAGS:-} -mod=mod"
# Go is told not to fetch a newer toolchain: the machine's Go is what the modules need.
export GOTOOLCHAIN=local

log() { printf '[cluster-tools] %s\n' "$*" >&2; }

command -v go >/dev/null || { log "Go is required (https://go.dev); none on PATH"; exit 1; }

key_of() {  # version + digest of the module files: a change of pins rebuilds
  local dir="$1" version="$2"
  printf '%s-%s' "$version" "$(cat "$dir/go.mod" "$dir/go.sum" | sha256sum | cut -c1-10)"
}

# The file `go build -o DIR/` writes for a package: its last path element, or the
# one before a major-version suffix (go.etcd.io/etcd/server/v3 -> server).
binary_name() {
  local base="${1##*/}"
  if [[ "$base" =~ ^v[0-9]+$ ]]; then base="$(basename "$(dirname "$1")")"; fi
  printf '%s' "$base"
}

# link_binaries OUT_DIR PACKAGE...: expose the built commands in $bin_dir.
link_binaries() {
  local out="$1"; shift
  for p in "$@"; do ln -sfn "$out/$(binary_name "$p")" "$bin_dir/$(binary_name "$p")"; done
}

# build_module NAME MODULE_DIR VERSION LDFLAGS PACKAGE...
build_module() {
  local name="$1" dir="$2" version="$3" ldflags="$4"; shift 4
  local out="$cache_root/$name-$(key_of "$dir" "$version${GO_TAGS:+-$GO_TAGS}")"
  if [[ -f "$out/.complete" ]]; then
    log "$name $version: cached in $out"
    link_binaries "$out" "$@"
    return
  fi
  log "$name $version: building $(printf '%s ' "${@##*/}")(cold machine only; progress every 200 packages)"
  local tmp="$out.tmp.$$" started=$SECONDS
  rm -rf "$tmp"; mkdir -p "$tmp"
  # GO_TAGS (optional, set by the caller): build tags, part of the cache key too.
  (cd "$dir" && go build -v -trimpath ${GO_TAGS:+-tags "$GO_TAGS"} -ldflags "$ldflags" -o "$tmp/" "$@") 2>&1 \
    | awk -v name="$name" '
        /^go: downloading/ { next }
        /^[a-zA-Z0-9_.\/-]+$/ { n++; if (n % 200 == 0) { printf "[cluster-tools] %s: %d packages compiled\n", name, n > "/dev/stderr"; fflush("/dev/stderr") } next }
        { print > "/dev/stderr" }'
  [[ ${PIPESTATUS[0]} -eq 0 ]] || { log "$name: go build failed"; exit 1; }
  touch "$tmp/.complete"
  rm -rf "$out"; mv "$tmp" "$out"
  log "$name $version: built in $((SECONDS - started)) s"
  link_binaries "$out" "$@"
}

bin_dir="$cache_root/bin-$(cat "$here/versions.env" | sha256sum | cut -c1-10)"
mkdir -p "$bin_dir"

k_ver="${KUBERNETES_VERSION#v}"; k_minor="$(cut -d. -f2 <<<"$k_ver")"
kv="k8s.io/component-base/version"
kube_ldflags="-s -w -X $kv.gitVersion=$KUBERNETES_VERSION -X $kv.gitMajor=1 -X $kv.gitMinor=$k_minor \
 -X $kv.gitTreeState=clean -X $kv.buildDate=1970-01-01T00:00:00Z \
 -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$k_minor"
# One `go build` for all six commands (the control plane, and the real node's kubelet
# and kube-proxy): they share most packages, so this is far cheaper than six builds.
build_module kubernetes "$here/kubernetes" "$KUBERNETES_VERSION" "$kube_ldflags" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl \
  k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy

build_module etcd "$here/etcd" "$ETCD_VERSION" "-s -w" go.etcd.io/etcd/server/v3

# Go names the etcd server binary `server`; kwokctl and people expect `etcd`.
mv -f "$bin_dir/server" "$bin_dir/etcd"

build_module kwok "$here/kwok" "$KWOK_VERSION" \
  "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v} -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=$k_ver" \
  sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl

# Without these, `helm template`/`lint` assume Kubernetes 1.20.
hc="helm.sh/helm/v3/pkg/chartutil"; hl="helm.sh/helm/v3/pkg/lint/rules"
build_module helm "$here/helm" "$HELM_VERSION" \
  "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X $hc.k8sVersionMajor=1 -X $hc.k8sVersionMinor=$k_minor -X $hl.k8sVersionMajor=1 -X $hl.k8sVersionMinor=$k_minor" \
  helm.sh/helm/v3/cmd/helm

# Not part of the cluster: the tests judge live objects with it the way Flux does.
build_module kstatus "$here/../kstatus" "$CLI_UTILS_VERSION" "-s -w" modelrollout.local/tools/kstatus

# Only the Kubernetes service discovery (plus file, HTTP and static, always in): the
# other 25 cloud discoveries would triple the build.
pv="github.com/prometheus/common/version"
GO_TAGS=remove_all_sd,enable_kubernetes_sd build_module prometheus "$here/prometheus" "$PROMETHEUS_VERSION" \
  "-s -w -X $pv.Version=${PROMETHEUS_VERSION#v} -X $pv.Revision=module -X $pv.Branch=module" \
  github.com/prometheus/prometheus/cmd/prometheus

build_module metrics-server "$here/metrics-server" "$METRICS_SERVER_VERSION" "-s -w" \
  sigs.k8s.io/metrics-server/cmd/metrics-server

# Not built: the Gateway API CRDs, copied from the module (its digest checked by the Go
# command against the checksum database) into $bin_dir/gateway-api/{standard,experimental}.
gateway_dir="$bin_dir/gateway-api"
if [[ ! -f "$gateway_dir/.complete-$GATEWAY_API_VERSION" ]]; then
  log "gateway-api $GATEWAY_API_VERSION: fetching its CRDs from the Go module"
  module_dir="$(cd "$here" && GOFLAGS= go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [[ -d "$module_dir/config/crd/standard" ]] || { log "gateway-api: no CRDs in $module_dir"; exit 1; }
  rm -rf "$gateway_dir.tmp"; mkdir -p "$gateway_dir.tmp"
  for channel in standard experimental; do
    mkdir -p "$gateway_dir.tmp/$channel"
    cp "$module_dir/config/crd/$channel"/gateway.networking.k8s.io_*.yaml "$gateway_dir.tmp/$channel/"
  done
  touch "$gateway_dir.tmp/.complete-$GATEWAY_API_VERSION"
  rm -rf "$gateway_dir"; mv "$gateway_dir.tmp" "$gateway_dir"
fi

printf '%s\n' "$bin_dir"
