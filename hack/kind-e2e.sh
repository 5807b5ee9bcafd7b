#!/usr/bin/env bash
# Runs the integration and end-to-end suite against a kind cluster (for users with Docker; CI here
# has no Docker engine and uses the embedded control plane instead). kind nodes carry no GPUs, so
# the same kwok fake nodes are added: kwok runs against the kind cluster from this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${KIND_CLUSTER_NAME:-inference-operator-e2e}
kubeconfig=$(mktemp)
kind create cluster --name "$name" --kubeconfig "$kubeconfig" --wait 120s
trap 'kind delete cluster --name "$name"' EXIT
bin=$(bash hack/build-tools.sh | tail -n1)
module_dir=$(cat "$bin/kwok-module-dir")
stages=$(mktemp)
for s in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
         pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
  echo ---; cat "$module_dir/kustomize/stage/$s"
done > "$stages"
"$bin/kwok" --kubeconfig="$kubeconfig" --manage-all-nodes=false \
  --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
  --node-lease-duration-seconds=40 --config="$stages" >"$(mktemp)" 2>&1 &
kwok_pid=$!
trap 'kill $kwok_pid; kind delete cluster --name "$name"' EXIT
python3 -c "
import json, sys; sys.path.insert(0, 'hack')
from localcluster import default_fake_nodes
print(json.dumps({'apiVersion': 'v1', 'kind': 'List', 'items': default_fake_nodes()}))
" | kubectl --kubeconfig "$kubeconfig" apply -f -
INFOP_KUBECONFIG=$kubeconfig python3 -m pytest tests/integration tests/e2e "$@"
