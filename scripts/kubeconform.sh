#!/usr/bin/env bash
# Validate Kubernetes manifests (files, or standard input) with kubeconform -strict against the offline
# schemas of scripts/helm-tools.sh: each Kubernetes version it pins (1.29, the chart's floor, and the
# newest it ships) plus the Prometheus Operator CRDs. No network needed, unlike kubeconform's
# default schema location. Exit non-zero when any manifest is invalid under any version.
#
#   helm template shop helm/examples/my-app | scripts/kubeconform.sh
#   scripts/kubeconform.sh rendered.yaml
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${TURNOUT_TOOLS_CACHE:-$HOME/.cache/turnout-tools}"

bash "$ROOT/scripts/helm-tools.sh" >/dev/null 2>&1 || true   # installs or finds the pinned tools
if [[ ! -f "$CACHE/helm-tools.env" ]]; then
    echo "kubeconform.sh: no tools: run bash scripts/helm-tools.sh (needs Go) and see its notes" >&2
    exit 2
fi
# shellcheck source=/dev/null
source "$CACHE/helm-tools.env"
if [[ -n "$HELM_TOOLS_MISSING" ]]; then
    echo "kubeconform.sh: missing $HELM_TOOLS_MISSING: run bash scripts/helm-tools.sh for the reason" >&2
    exit 2
fi

input="$(mktemp --suffix=.yaml)"
trap 'rm -f "$input"' EXIT
if (($#)); then cat "$@" >"$input"; else cat >"$input"; fi
if ! grep -q '^kind:' "$input"; then
    echo "kubeconform.sh: no manifest in the input" >&2
    exit 1
fi

status=0
for kv in $K8S_VERSIONS; do
    echo "Kubernetes $kv:"
    "$KUBECONFORM_BIN" -strict -summary -kubernetes-version "$kv" \
        -schema-location "$K8S_SCHEMA_DIR/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
        -schema-location "$CRD_SCHEMA_DIR/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json" \
        "$input" || status=1
done
exit $status
