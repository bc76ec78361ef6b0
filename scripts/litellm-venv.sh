#!/usr/bin/env bash
# Create (or reuse) a venv with the LiteLLM proxy that benchmarks/proxy_bench.py compares Turnout with.
#
#   scripts/litellm-venv.sh           install if missing, then print the venv's path on stdout
#   scripts/litellm-venv.sh --check   print the path and exit 0 if the venv is ready, exit 1 if not
#
# The venv lives outside the clone, at ${TURNOUT_TOOLS_CACHE:-$HOME/.cache/turnout-tools}/litellm-<version>,
# so it survives between runs where the machine keeps $HOME. A venv counts as ready only once the
# install finished and `import litellm` worked (a stamp file); a half-built one is rebuilt. The
# version is pinned: 1.106.2 is the release the reference figures were measured with, and a
# pin keeps a bad upload (as litellm 1.82.7 and 1.82.8 were, in March 2026) from arriving through an
# open range. Progress goes to stderr; stdout is only the path.
set -euo pipefail

VERSION="1.106.2"
CACHE="${TURNOUT_TOOLS_CACHE:-$HOME/.cache/turnout-tools}"
VENV="$CACHE/litellm-$VERSION"
STAMP="$VENV/.turnout-ready"
PYTHON="${PYTHON:-python3}"

note() { echo "litellm-venv: $*" >&2; }

ready() {
    [[ -f "$STAMP" && -x "$VENV/bin/litellm" ]] &&
        "$VENV/bin/python" -c "" >/dev/null 2>&1
}

if ready; then
    echo "$VENV"
    exit 0
fi
if [[ "${1:-}" == "--check" ]]; then
    note "no LiteLLM $VERSION venv at $VENV (run scripts/litellm-venv.sh or make bench to install it)"
    exit 1
fi

command -v "$PYTHON" >/dev/null 2>&1 || { note "no $PYTHON on PATH"; exit 1; }
note "installing litellm[proxy]==$VERSION into $VENV (takes a minute or more)..."
start="$(date +%s)"
rm -rf "$VENV"
mkdir -p "$CACHE"
if ! "$PYTHON" -m venv "$VENV" >&2; then
    note "could not create a venv with $PYTHON"
    rm -rf "$VENV"
    exit 1
fi
if ! "$VENV/bin/pip" install --quiet --disable-pip-version-check "litellm[proxy]==$VERSION" >&2; then
    note "pip install litellm[proxy]==$VERSION failed (network to PyPI?); nothing left behind"
    rm -rf "$VENV"
    exit 1
fi
if ! LITELLM_LOCAL_MODEL_COST_MAP=True "$VENV/bin/python" -c "import litellm" >&2; then
    note "litellm installed but does not import; removing $VENV"
    rm -rf "$VENV"
    exit 1
fi
touch "$STAMP"
note "installed in $(($(date +%s) - start)) s"
echo "$VENV"
