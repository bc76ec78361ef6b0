#!/usr/bin/env bash
# make helm-check: the chart's checks, with the tools and offline schemas of scripts/helm-tools.sh.
#
#   1. helm lint --strict, with the default values and with each ci/*.yaml
#   2. helm template (default values and each ci/*.yaml) for each Kubernetes version, every rendered
#      manifest validated by kubeconform -strict against that version's schemas plus the
#      prometheus-operator CRD schemas; no -ignore-missing-schemas: a kind without a schema fails
#   3. helm unittest (tests/*_test.yaml)
#
# CHART (default helm/turnout) picks the chart. Every step runs and reports; the exit code is non-zero
# when any failed. A tool that cannot be installed fails the check in CI (CI=true) and is a skip, with
# the reason, elsewhere.
set -uo pipefail
CI="${CI:-}"
cd "$(dirname "$0")/.." || exit 1

CHART="${CHART:-helm/turnout}"
RELEASE="${RELEASE:-turnout}"
CACHE="${TURNOUT_TOOLS_CACHE:-$HOME/.cache/turnout-tools}"
in_ci() { [[ "${CI,,}" =~ ^(true|1|yes)$ ]]; }

if ! bash scripts/helm-tools.sh; then
    echo "helm-check: FAILED: scripts/helm-tools.sh could not install the tools (see above)" >&2
    exit 1
fi
# shellcheck source=/dev/null
source "$CACHE/helm-tools.env"
if [[ -n "$HELM_TOOLS_MISSING" ]]; then
    echo "helm-check: SKIPPED: missing $HELM_TOOLS_MISSING (see the helm-tools notes above)" >&2
    exit 0 # in CI, helm-tools.sh has already exited non-zero
fi
if [[ ! -f "$CHART/Chart.yaml" ]]; then
    echo "helm-check: FAILED: no chart at $CHART (CHART=$CHART)" >&2
    exit 1
fi

K8S_LOCATION="$K8S_SCHEMA_DIR/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json"
CRD_LOCATION="$CRD_SCHEMA_DIR/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

failures=()
step() { printf '\n== %s\n' "$*"; }
ok() { echo "   ok: $*"; }
fail() {
    echo "   FAIL: $*"
    failures+=("$*")
}

# The values sets: default, then each ci/*.yaml.
values_sets=(default)
shopt -s nullglob
for f in "$CHART"/ci/*.yaml; do values_sets+=("$f"); done
shopt -u nullglob
values_args() { [[ "$1" == default ]] && return 0; printf '%s\0%s\0' --values "$1"; }
label() { [[ "$1" == default ]] && echo "default values" || echo "${1#"$CHART"/}"; }

# --- 1. helm lint --strict --------------------------------------------------------------------------
for vs in "${values_sets[@]}"; do
    step "helm lint --strict $CHART ($(label "$vs"))"
    mapfile -d '' args < <(values_args "$vs")
    if "$HELM_BIN" lint --strict "${args[@]}" "$CHART" >"$OUT/lint.log" 2>&1; then
        ok "$(grep -E 'chart\(s\) linted' "$OUT/lint.log")"
    else
        sed 's/^/   | /' "$OUT/lint.log"
        fail "helm lint --strict ($(label "$vs"))"
    fi
done

# --- 2. helm template | kubeconform -strict ---------------------------------------------------------
# --api-versions: the chart may render a ServiceMonitor/PrometheusRule only where the cluster serves
# monitoring.coreos.com/v1; say it does, so that those templates are rendered and validated too.
for kv in $K8S_VERSIONS; do
    for vs in "${values_sets[@]}"; do
        step "helm template + kubeconform -strict, Kubernetes $kv ($(label "$vs"))"
        mapfile -d '' args < <(values_args "$vs")
        # Named for the output: kubeconform prints this path (relative to $OUT) with each finding.
        name="$(label "$vs" | tr ' /' '-_')"
        rendered="k8s-$kv/${name%.yaml}.yaml"
        mkdir -p "$OUT/k8s-$kv"
        if ! "$HELM_BIN" template "$RELEASE" "$CHART" "${args[@]}" --kube-version "$kv" \
            --api-versions monitoring.coreos.com/v1 >"$OUT/$rendered" 2>"$OUT/template.log"; then
            sed 's/^/   | /' "$OUT/template.log"
            fail "helm template, Kubernetes $kv ($(label "$vs"))"
            continue
        fi
        kinds="$(awk '/^kind:/ { print $2 }' "$OUT/$rendered" | sort | uniq -c | awk '{ printf "%s%s x%s", sep, $2, $1; sep=", " }')"
        echo "   rendered: ${kinds:-nothing}"
        if (cd "$OUT" && "$KUBECONFORM_BIN" -strict -summary -kubernetes-version "$kv" \
            -schema-location "$K8S_LOCATION" -schema-location "$CRD_LOCATION" \
            "$rendered") >"$OUT/kc.log" 2>&1; then
            ok "$(tail -n 1 "$OUT/kc.log")"
        else
            sed 's/^/   | /' "$OUT/kc.log"
            fail "kubeconform -strict, Kubernetes $kv ($(label "$vs"))"
        fi
    done
done

# --- 3. helm unittest -------------------------------------------------------------------------------
step "helm unittest $CHART"
shopt -s nullglob
suites=("$CHART"/tests/*_test.yaml)
shopt -u nullglob
if ((${#suites[@]} == 0)); then
    fail "helm unittest: no $CHART/tests/*_test.yaml"
elif HELM_PLUGINS="$HELM_UNITTEST_PLUGINS" "$HELM_BIN" unittest --strict --color=false "$CHART" \
    >"$OUT/unittest.log" 2>&1; then
    grep -E '^(Charts|Test Suites|Tests|Snapshot|Time):' "$OUT/unittest.log" | sed 's/^/   /'
    ok "helm unittest (${#suites[@]} suites)"
else
    sed 's/^/   | /' "$OUT/unittest.log"
    fail "helm unittest"
fi

# --- Summary ----------------------------------------------------------------------------------------
echo
if ((${#failures[@]})); then
    echo "helm-check: ${#failures[@]} step(s) FAILED:"
    printf '  - %s\n' "${failures[@]}"
    exit 1
fi
echo "helm-check: all passed ($CHART; Kubernetes $K8S_VERSIONS; ${#values_sets[@]} values sets)"
