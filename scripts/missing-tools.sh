# shellcheck shell=bash
# Sourced by test-deps.sh and helm-tools.sh: how a tool-install script ends when tools are missing.
# In CI (CI=true) a missing tool fails the run; elsewhere it is a note, and the checks that need it skip.
#   exit_for_missing "WHAT SKIPS"   (reads the array `missing` and the function `note`)
# shellcheck disable=SC2154  # `missing` is the sourcing script's array
exit_for_missing() {
    if ((${#missing[@]})); then
        if [[ "${CI,,}" =~ ^(true|1|yes)$ ]]; then
            note "missing in CI: ${missing[*]}"
            exit 1
        fi
        note "missing: ${missing[*]} ($1)"
    fi
    exit 0
}
