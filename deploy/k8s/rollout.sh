#!/bin/sh
# Roll out billplane IMAGE to the current kubectl context and namespace, migrations first:
#   deploy/k8s/rollout.sh registry.example.com/billplane:0.1.0
# 1. the ConfigMap; 2. the migrate Job (control schema, then every tenant schema), waited for:
# if it fails, nothing else changes and the running version keeps serving; 3. the API and the
# workers, each waited for; 4. the migrate Job again, for tenants the previous version created
# meanwhile. The Secret billplane-secrets must exist (see secret.example.yaml).
set -eu
image=${1:?usage: rollout.sh IMAGE}
here=$(dirname "$0")
timeout=${MIGRATE_TIMEOUT_SECONDS:-3600}

with_image() { sed "s|image: billplane:.*|image: $image|" "$here/$1"; }

kubectl apply -f "$here/configmap.yaml"

migrate() {
  # A Job's pod template cannot be changed: the previous run is deleted before the new one starts.
  kubectl delete job billplane-migrate --ignore-not-found --wait=true
  with_image migrate-job.yaml | kubectl apply -f -
  waited=0
  while :; do
    # The Job's conditions: Complete=True once the command exited 0, Failed=True once it is out of retries.
    state=$(kubectl get job billplane-migrate \
      -o 'jsonpath={.status.conditions[?(@.type=="Complete")].status}/{.status.conditions[?(@.type=="Failed")].status}')
    case "$state" in
      True/*) echo "migrations done"; return 0 ;;
      */True) echo "migrations failed (kubectl logs job/billplane-migrate); $1" >&2; exit 1 ;;
    esac
    if [ "$waited" -ge "$timeout" ]; then
      echo "migrations still running after ${timeout}s; $1" >&2
      exit 1
    fi
    sleep 5
    waited=$((waited + 5))
  done
}

migrate "nothing was rolled out"
with_image api.yaml | kubectl apply -f -
with_image worker.yaml | kubectl apply -f -
kubectl rollout status deployment/billplane-api --timeout=10m
kubectl rollout status deployment/billplane-worker --timeout=10m
# Once more: a tenant the previous version's pods created during the rollout was provisioned at
# that version's schema, which this one cannot serve. Already migrated tenants take no time.
migrate "the new version is serving: run the migrate Job again for the tenants created during the rollout"
