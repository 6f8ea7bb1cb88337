#!/usr/bin/env bash
# Release pasar to Kubernetes with an automatic rollback:
#   deploy/k8s/rollout.sh [overlay-dir]      (default: deploy/k8s/overlays/production)
# 1. runs the migration Job of the new release (expand migrations only: the running release
#    keeps working on the new schema) and waits for it;
# 2. applies the overlay, which rolls the Deployments one pod at a time (maxUnavailable: 0;
#    a new pod takes traffic once /readyz answers);
# 3. waits for each rollout; one that fails or passes its progressDeadlineSeconds is undone
#    by `kubectl rollout undo` of every Deployment (so no two releases stay mixed; each keeps
#    revisionHistoryLimit revisions), and the script exits 1. The schema stays expanded: the previous release runs on it.
set -euo pipefail
overlay="${1:-$(dirname "$0")/overlays/production}"
namespace="${PASAR_NAMESPACE:-pasar}"
timeout="${PASAR_ROLLOUT_TIMEOUT:-600s}"
deployments=(pasar-api pasar-worker pasar-sandbox-worker)
k() { kubectl --namespace "$namespace" "$@"; }

rendered="$(mktemp)"
trap 'rm -f "$rendered"' EXIT
kubectl kustomize "$overlay" > "$rendered"

# The Job's pod template is immutable: the previous release's finished Job goes first.
k delete job pasar-migrate --ignore-not-found --wait=true
kubectl apply -f "$rendered" --selector app.kubernetes.io/name=pasar-migrate
if ! k wait --for=condition=complete job/pasar-migrate --timeout="$timeout"; then
  echo "rollout: the migration Job did not complete; nothing was rolled" >&2
  k logs job/pasar-migrate --tail=50 >&2 || true
  exit 1
fi

kubectl apply -f "$rendered"
failed=()
for deployment in "${deployments[@]}"; do
  if ! k rollout status "deployment/$deployment" --timeout="$timeout"; then
    failed+=("$deployment")
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "rollout: ${failed[*]} did not become ready; rolling every Deployment back" >&2
  for deployment in "${deployments[@]}"; do
    k rollout undo "deployment/$deployment"
    k rollout status "deployment/$deployment" --timeout="$timeout" || true
  done
  exit 1
fi
echo "rollout: done"
