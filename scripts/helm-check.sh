#!/usr/bin/env bash
# make helm-check: the chart's checks, with the tools and offline schemas of scripts/helm-tools.sh.
#
#   1. helm lint --strict, with the default values and with each ci/*.yaml
#   2. helm template (default values and each ci/*.yaml) for each Kubernetes version, every rendered
#      manifest validated by kubeconform -strict against that version's schemas plus the
#      prometheus-operator CRD schemas; no -ignore-missing-schemas: a kind without a schema fails
#   3. the same for each example chart under helm/examples/ (EXAMPLES= to skip) that includes the
#      sidecar in its own Deployment, with the chart as a fresh file:// dependency
#   4. every turnout.yaml the chart renders loads in the sidecar's own config loader, and the demo
#      config is a copy of examples/turnout.yaml
#   5. helm unittest (tests/*_test.yaml)
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
# validate_rendered WHAT KUBE_VERSION CHART RENDERED [helm args...]: helm template into $OUT/RENDERED
# (named for the output: kubeconform prints that path with each finding), then kubeconform -strict.
# --api-versions: the chart may render a ServiceMonitor/PrometheusRule only where the cluster serves
# monitoring.coreos.com/v1; say it does, so that those templates are rendered and validated too.
validate_rendered() {
    local what="$1" kv="$2" chart="$3" rendered="$4" kinds
    shift 4
    mkdir -p "$OUT/$(dirname "$rendered")"
    if ! "$HELM_BIN" template "$RELEASE" "$chart" "$@" --kube-version "$kv" \
        --api-versions monitoring.coreos.com/v1 >"$OUT/$rendered" 2>"$OUT/template.log"; then
        sed 's/^/   | /' "$OUT/template.log"
        fail "helm template, Kubernetes $kv ($what)"
        return
    fi
    kinds="$(awk '/^kind:/ { print $2 }' "$OUT/$rendered" | sort | uniq -c | awk '{ printf "%s%s x%s", sep, $2, $1; sep=", " }')"
    echo "   rendered: ${kinds:-nothing}"
    if (cd "$OUT" && "$KUBECONFORM_BIN" -strict -summary -kubernetes-version "$kv" \
        -schema-location "$K8S_LOCATION" -schema-location "$CRD_LOCATION" \
        "$rendered") >"$OUT/kc.log" 2>&1; then
        ok "$(tail -n 1 "$OUT/kc.log")"
    else
        sed 's/^/   | /' "$OUT/kc.log"
        fail "kubeconform -strict, Kubernetes $kv ($what)"
    fi
}

for kv in $K8S_VERSIONS; do
    for vs in "${values_sets[@]}"; do
        step "helm template + kubeconform -strict, Kubernetes $kv ($(label "$vs"))"
        mapfile -d '' args < <(values_args "$vs")
        name="$(label "$vs" | tr ' /' '-_')"
        validate_rendered "$(label "$vs")" "$kv" "$CHART" "k8s-$kv/${name%.yaml}.yaml" "${args[@]}"
    done
done

# --- 3. example charts that include the sidecar (helm/examples/*/) --------------------------------------
# The named sidecar template renders only inside a chart that includes it: these depend on the chart
# by a file:// path, so a copy of helm/ gets a fresh `helm dependency update` (never a stale
# charts/*.tgz of the work tree), then the same lint and kubeconform as above.
EXAMPLES="${EXAMPLES-helm/examples}"
shopt -s nullglob
examples=()
[[ -n "$EXAMPLES" ]] && examples=("$EXAMPLES"/*/Chart.yaml)
shopt -u nullglob
if ((${#examples[@]})); then
    mkdir -p "$OUT/tree"
    cp -R "$(dirname "$EXAMPLES")" "$OUT/tree/"
fi
for chart_yaml in "${examples[@]}"; do
    example="$OUT/tree/$(dirname "$chart_yaml")"
    name="${chart_yaml%/Chart.yaml}"
    rm -rf "$example/charts" "$example/Chart.lock"
    step "example $name: helm dependency update + helm lint --strict"
    if "$HELM_BIN" dependency update "$example" >"$OUT/dep.log" 2>&1 &&
        "$HELM_BIN" lint --strict "$example" >"$OUT/lint.log" 2>&1; then
        ok "$(grep -E 'chart\(s\) linted' "$OUT/lint.log")"
    else
        cat "$OUT/dep.log" "$OUT/lint.log" 2>/dev/null | sed 's/^/   | /'
        fail "example $name: dependency update or lint"
        continue
    fi
    for kv in $K8S_VERSIONS; do
        step "example $name: helm template + kubeconform -strict, Kubernetes $kv"
        validate_rendered "example $name" "$kv" "$example" "k8s-$kv/example-$(basename "$name").yaml"
    done
done

# --- 4. the Turnout configs the chart renders load in the sidecar's own config loader ----------------
# A values example (or the demo config) that the sidecar would refuse at start fails here, not in a pod.
# The demo config is a copy of examples/turnout.yaml (a chart cannot read files outside its folder).
step "Turnout configs in the rendered ConfigMaps (sidecar.config.parse_config)"
if cmp -s examples/turnout.yaml "$CHART/files/demo-config.yaml"; then
    ok "$CHART/files/demo-config.yaml is examples/turnout.yaml"
else
    fail "$CHART/files/demo-config.yaml differs from examples/turnout.yaml: cp examples/turnout.yaml $CHART/files/demo-config.yaml"
fi
first_kv="${K8S_VERSIONS%% *}"
shopt -s nullglob
rendered=("$OUT/k8s-$first_kv"/*.yaml)
shopt -u nullglob
if "${PYTHON_BIN:-.venv/bin/python}" scripts/chart_configs.py "${rendered[@]}" >"$OUT/configs.log" 2>&1; then
    sed "s|$OUT/||" "$OUT/configs.log"
    ok "every rendered turnout.yaml loads"
else
    sed "s|$OUT/||; s/^/   | /" "$OUT/configs.log"
    fail "a rendered turnout.yaml does not load (or .venv is missing: make install)"
fi

# --- 5. helm unittest -------------------------------------------------------------------------------
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
echo "helm-check: all passed ($CHART; Kubernetes $K8S_VERSIONS; ${#values_sets[@]} values sets; ${#examples[@]} example charts)"
