#!/usr/bin/env bash
# Builds the control-plane binaries (and Prometheus 3) our tests run against from their Go modules,
# into a cache outside
# the repo keyed on the pinned versions (hack/tools/*/go.mod + go.sum) and the Go version. A warm cache
# makes this a no-op. Prints the bin directory on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export GOTOOLCHAIN=local GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=0

KV=v1.36.3           # k8s.io/kubernetes, see hack/tools/k8s/go.mod
KWOK=v0.8.0 HELM=v4.3.1 ETCD=v3.6.16
PROM3=3.16.0        # github.com/prometheus/prometheus v0.316.0, see hack/tools/prometheus/go.mod
KEDA=2.20.2         # github.com/kedacore/keda/v2, see hack/tools/keda/go.mod (its replace block)
KARPENTER=v1.14.1   # sigs.k8s.io/karpenter, see hack/tools/karpenter/go.mod

cache="${INFERENCE_OPERATOR_CACHE:-$HOME/.cache/inference-operator}"
# One directory of links per combination of everything below; each binary is kept under a key of
# its own module pins, package and flags, so adding or bumping one tool rebuilds only that tool.
key=$(cat "$here"/tools/*/go.mod "$here"/tools/*/go.sum "$0" <(go version) | sha256sum | cut -c1-16)
out="$cache/bin/$key"
store="$cache/store"
mkdir -p "$out" "$store"

build() {  # build <dir> <output-name> <package> [ldflags]
  local dir=$1 name=$2 pkg=$3 ldf=${4:-}
  local k bin
  k=$(cat "$here/tools/$dir/go.mod" "$here/tools/$dir/go.sum" <(go version) <(echo "$pkg $ldf") \
    | sha256sum | cut -c1-16)
  bin="$store/$name-$k"
  if [ ! -x "$bin" ]; then
    local t0=$SECONDS
    (cd "$here/tools/$dir" && go build -trimpath -ldflags "-s -w $ldf" -o "$bin.tmp" "$pkg")
    mv "$bin.tmp" "$bin"
    echo "built $name in $((SECONDS - t0)) s" >&2
  fi
  ln -sfn "$bin" "$out/$name"
}

minor=${KV#v1.}; minor=${minor%%.*}
k8s_ldf=""
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldf+=" -X $p.gitVersion=$KV -X $p.gitMajor=1 -X $p.gitMinor=$minor"
  k8s_ldf+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done

build etcd etcd go.etcd.io/etcd/server/v3 "-X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD"
build kwok kwok sigs.k8s.io/kwok/cmd/kwok
build k8s kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$k8s_ldf"
build k8s kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$k8s_ldf"
build k8s kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler "$k8s_ldf"
build helm helm helm.sh/helm/v4/cmd/helm "-X helm.sh/helm/v4/internal/version.version=$HELM"
# Prometheus 3 beside Debian's 2.42: the two negotiate scrape formats (and so vLLM's metric names)
# differently. Named prometheus3 so it never shadows Debian's on PATH. No web UI assets: the API is
# all the tests use.
build prometheus prometheus3 github.com/prometheus/prometheus/cmd/prometheus \
  "-X github.com/prometheus/common/version.Version=$PROM3"

# The real KEDA: its operator (ScaledObject -> HPA, activation, fallback) and its metrics API
# server (external.metrics.k8s.io, which the HPA controller reads through the aggregator).
keda_ldf="-X github.com/kedacore/keda/v2/version.Version=$KEDA -X github.com/kedacore/keda/v2/version.GitCommit=v$KEDA"
build keda keda-operator github.com/kedacore/keda/v2/cmd/operator "$keda_ldf"
build keda keda-adapter github.com/kedacore/keda/v2/cmd/adapter "$keda_ldf"
# Karpenter's kwok cloud provider (NodePools -> NodeClaims -> fake nodes). Upstream names its
# binary kwok as well: kept apart from kwok's own here.
build karpenter karpenter-kwok sigs.k8s.io/karpenter/kwok

module_dir() {  # module_dir <dir> <module@version> <name>: where the module cache holds it
  (cd "$here/tools/$1" && go mod download -json "$2") \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])' > "$out/$3-module-dir"
}
# Files read from module caches at run time, never copied: KEDA's eventing CRDs (which its
# operator watches), kwok's stages (its binary ships none) and Karpenter's CRDs.
module_dir keda "github.com/kedacore/keda/v2@v$KEDA" keda
module_dir kwok "sigs.k8s.io/kwok@$KWOK" kwok
module_dir karpenter "sigs.k8s.io/karpenter@$KARPENTER" karpenter
echo "$out"
