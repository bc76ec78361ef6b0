#!/usr/bin/env bash
# make image-test: build the container image with podman and smoke-test it.
#
#   1. installs podman, runc and debootstrap with apt when missing (there is no Docker engine here);
#   2. makes a local base image, Debian bookworm with python3 and python3-venv, when it is absent
#      (image registries are unreachable here, so the official python image cannot be pulled);
#   3. builds the Dockerfile on that base (the layer cache makes a rerun quick);
#   4. checks the image: uid 10001, no compiler, no pip, the shipped config validates;
#   5. runs it read-only as uid 10001 with a /tmp tmpfs, in demo mode with the built-in simulator,
#      on free loopback ports: grpc.health.v1 says SERVING, one Generate answers through the
#      simulator, /readyz is 200 (when the image's `turnout serve` has --probe-port), SIGTERM ->
#      exit 0; reports the image size and each step's time.
#
# Podman flags, as this machine needs them: the vfs storage driver, runc (crun fails on hybrid
# cgroups), explicit ulimits (podman's defaults are refused) and host networking (no bridge).
# pip inside the build uses this machine's CA bundle, mounted read-only at build time, never baked
# in. Under CI=true a missing tool fails the run; elsewhere it is skipped with a message.
#
# Environment: IMAGE (localhost/turnout:test), BASE_IMAGE (localhost/turnout-base:bookworm; set it
# to e.g. python:3.11-slim-bookworm where registries are reachable), CA_BUNDLE (pip's cert),
# IMAGE_TEST_CACHE (where the debootstrap root is made, /var/tmp/turnout-image), IMAGE_TEST_REF (build
# that commit, e.g. HEAD, instead of the working tree).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-localhost/turnout:test}
BASE_IMAGE=${BASE_IMAGE:-localhost/turnout-base:bookworm}
CACHE=${IMAGE_TEST_CACHE:-/var/tmp/turnout-image}
PY=.venv/bin/python
TURNOUT=.venv/bin/turnout
PODMAN=(podman --storage-driver vfs)
RUN_FLAGS=(--runtime runc --network host --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

declare -a STEPS=()
CONTAINERS=()
WORK=$(mktemp -d)
cleanup() {
    local c
    for c in "${CONTAINERS[@]}"; do "${PODMAN[@]}" rm -f -t 0 "$c" >/dev/null 2>&1 || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

say() { printf 'image-test: %s\n' "$*"; }
die() { printf 'image-test: FAILED: %s\n' "$*" >&2; exit 1; }
# run CMD...: run a command, and on failure name it exactly, with its output.
run() {
    if ! "$@" >"$WORK/out" 2>&1; then
        local rc=$?
        cat "$WORK/out" >&2
        die "exit $rc from: $(printf '%q ' "$@")"
    fi
    cat "$WORK/out"
}
now() { date +%s.%N; }
step_start() { STEP_NAME=$1; STEP_T0=$(now); say "$1 ..."; }
step_end() {
    local dt
    dt=$(awk -v a="$STEP_T0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
    STEPS+=("$(printf '%-44s %7s s' "$STEP_NAME" "$dt")")
}
missing() {  # a tool we cannot get: CI fails, a developer machine skips
    if [[ ${CI:-} == true ]]; then die "$*"; fi
    say "SKIPPED: $*"
    exit 0
}

T0=$(now)

# --- 1. tools ---------------------------------------------------------------------------------------
step_start "tools (podman runc debootstrap)"
tools=(podman runc)
[[ $BASE_IMAGE == localhost/turnout-base:* ]] && tools+=(debootstrap)  # only to make the local base
need=()
for tool in "${tools[@]}"; do command -v "$tool" >/dev/null || need+=("$tool"); done
if ((${#need[@]})); then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        say "installing ${need[*]} with apt-get"
        run env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
        run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
    else
        missing "${need[*]} not installed, and apt-get as root is not available to install them"
    fi
fi
[[ -x $PY && -x $TURNOUT ]] || missing "$PY not found: run 'make install' first (the checks use its grpcio and turnout CLI)"
step_end

# --- 2. base image ----------------------------------------------------------------------------------
debian_mirror() {  # the Debian mirror apt already uses
    local uri
    uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
    if [[ -z $uri ]]; then
        uri=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' \
            /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | grep -i debian | head -n1 || true)
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}
step_start "base image $BASE_IMAGE"
if "${PODMAN[@]}" image exists "$BASE_IMAGE"; then
    say "base image $BASE_IMAGE present (podman rmi it to remake it)"
elif [[ $BASE_IMAGE == localhost/turnout-base:* ]]; then
    mirror=$(debian_mirror)
    root="$CACHE/bookworm-root"
    say "debootstrap bookworm from $mirror into $root"
    rm -rf "$root" && mkdir -p "$CACHE"
    run debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" "$mirror" >/dev/null
    # No package caches, documentation or translations in an image (as Debian's slim images do).
    find "$root"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/tmp/* \
        "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*.log
    tar -C "$root" -c . | "${PODMAN[@]}" import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null ||
        die "tar -C $root -c . | podman --storage-driver vfs import - $BASE_IMAGE"
    rm -rf "$root"
else
    say "$BASE_IMAGE is pulled by the build"
fi
step_end

# --- 3. build ---------------------------------------------------------------------------------------
# The context: the working tree, or with IMAGE_TEST_REF=<commit> that commit alone (git archive),
# e.g. IMAGE_TEST_REF=HEAD to leave uncommitted edits in a shared checkout out of the image.
context=.
revision=$(git rev-parse HEAD 2>/dev/null || true)
if [[ -n ${IMAGE_TEST_REF:-} ]]; then
    context="$WORK/context"
    mkdir -p "$context"
    revision=$(git rev-parse --verify "$IMAGE_TEST_REF^{commit}") || die "git rev-parse $IMAGE_TEST_REF"
    git archive "$revision" | tar -x -C "$context" || die "git archive $revision | tar -x -C $context"
    say "building $IMAGE_TEST_REF ($revision) from git archive, without the working tree's edits"
fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$context/pyproject.toml" | head -n1)
build_flags=(--build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "VERSION=$version" --build-arg "REVISION=$revision")
ca=${CA_BUNDLE:-$(pip config get global.cert 2>/dev/null || true)}
ca=${ca:-${PIP_CERT:-}}
if [[ -n $ca && -f $ca ]]; then build_flags+=(-v "$ca:/run/host-ca.crt:ro"); fi
wheels=${PIP_FIND_LINKS:-$(pip config get global.find-links 2>/dev/null || true)}
if [[ -n $wheels && -d $wheels ]] && compgen -G "$wheels/*.whl" >/dev/null; then
    build_flags+=(-v "$wheels:/run/host-wheels:ro")
fi
BUILD_IMAGE="$IMAGE-build"  # the build stage, tagged so that its cached layers outlive a prune
step_start "build $IMAGE"
for target in build runtime; do
    tag=$IMAGE
    if [[ $target == build ]]; then tag=$BUILD_IMAGE; fi
    "${PODMAN[@]}" build "${RUN_FLAGS[@]}" "${build_flags[@]}" --target "$target" -t "$tag" "$context" ||
        die "podman --storage-driver vfs build $(printf '%q ' "${RUN_FLAGS[@]}" "${build_flags[@]}") --target $target -t $tag $context"
done
step_end

# vfs keeps every layer as a full copy of the file system (~0.2-0.3 GB each, GBs after a few
# builds): remove the untagged images of earlier runs, those built on our base image that neither
# image now uses. Other images are left alone.
step_start "remove stale build layers"
declare -A parent=() tagged=()
while read -r id repo; do
    id=${id#sha256:}
    [[ $repo == "<none>" ]] || tagged[$id]=1
    parent[$id]=""
done < <("${PODMAN[@]}" images -a --no-trunc --format '{{.ID}} {{.Repository}}')
if ((${#parent[@]})); then
    while read -r id par; do parent[$id]=${par#sha256:}; done < <(
        "${PODMAN[@]}" image inspect --format '{{.Id}} {{.Parent}}' "${!parent[@]}")
fi
chain() {  # an image and its ancestors, by the Parent each build step records
    local id=${1#sha256:}
    while [[ -n $id ]]; do echo "$id"; id=${parent[$id]:-}; done
}
full_id() { "${PODMAN[@]}" image inspect --format '{{.Id}}' "$1"; }
base_id=$(full_id "$BASE_IMAGE")
keep=" $(chain "$(full_id "$IMAGE")" | tr '\n' ' ') $(chain "$(full_id "$BUILD_IMAGE")" | tr '\n' ' ') "
stale=()
for id in "${!parent[@]}"; do
    [[ -z ${tagged[$id]:-} && $keep != *" $id "* ]] || continue
    if [[ " $(chain "$id" | tr '\n' ' ') " == *" ${base_id#sha256:} "* ]]; then stale+=("$id"); fi
done
found=${#stale[@]}
for _ in 1 2 3; do  # children before parents: a few passes
    left=()
    for id in "${stale[@]}"; do  # (removing an image may take its untagged parents with it)
        "${PODMAN[@]}" rmi "$id" >/dev/null 2>&1 || ! "${PODMAN[@]}" image exists "$id" || left+=("$id")
    done
    stale=("${left[@]}")
    ((${#stale[@]})) || break
done
say "removed $((found - ${#stale[@]})) of $found stale untagged images; storage: $(du -sh "$("${PODMAN[@]}" info --format '{{.Store.GraphRoot}}')" 2>/dev/null | cut -f1)"
step_end
size=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE")

# --- 4. the image's contents ------------------------------------------------------------------------
step_start "image checks (uid, no compiler, config)"
# No --user here: the image's own USER must be 10001:10001.
out=$(run "${PODMAN[@]}" run --rm "${RUN_FLAGS[@]}" --read-only --entrypoint /bin/sh "$IMAGE" -c '
    echo "uid=$(id -u) gid=$(id -g)"
    for t in gcc cc c++ g++ clang make ld as pip pip3; do
        if command -v "$t" >/dev/null 2>&1; then echo "found $t: $(command -v "$t")"; fi
    done
    /opt/turnout/bin/python -m pip --version >/dev/null 2>&1 && echo "found python -m pip"
    turnout serve --help | grep -q -- --probe-port && echo "probe-port yes"
    turnout validate-config /etc/turnout/turnout.yaml >/dev/null && echo "config ok"
    true')
echo "$out"
grep -qx 'uid=10001 gid=10001' <<<"$out" || die "the image's user is not 10001:10001 (id -u / id -g in the image: $out)"
if grep '^found ' <<<"$out"; then die "build tools in the runtime image (see 'found' above)"; fi
grep -qx 'config ok' <<<"$out" || die "turnout validate-config /etc/turnout/turnout.yaml failed in the image"
probes=false
grep -qx 'probe-port yes' <<<"$out" && probes=true
step_end

# --- 5. run it ----------------------------------------------------------------------------------------
read -r grpc_port sim_port metrics_port probe_port < <("$PY" - <<'EOF'
import socket

socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
)
# The shipped config with the simulator and metrics moved to free ports, mounted where a ConfigMap
# would be; everything on 127.0.0.1.
sed -e "s#127\.0\.0\.1:8400#127.0.0.1:$sim_port#g" \
    -e "s#prometheus: {enabled: true, host: 127.0.0.1, port: 9464}#prometheus: {enabled: true, host: 127.0.0.1, port: $metrics_port}#" \
    examples/turnout.yaml >"$WORK/turnout.yaml"
grep -q "port: $metrics_port" "$WORK/turnout.yaml" || die "could not move the metrics port in a copy of examples/turnout.yaml"
chmod 0644 "$WORK/turnout.yaml"
serve=(serve --config /etc/turnout/turnout.yaml --port "$grpc_port"
    --simulator /usr/share/turnout/examples/simulator.yaml --simulator-port "$sim_port")
if $probes; then serve+=(--probe-host 127.0.0.1 --probe-port "$probe_port"); fi

step_start "start container, health SERVING"
name="turnout-image-test-$$"
CONTAINERS+=("$name")
run "${PODMAN[@]}" run -d --name "$name" "${RUN_FLAGS[@]}" --read-only --tmpfs /tmp --user 10001:10001 \
    -v "$WORK/turnout.yaml:/etc/turnout/turnout.yaml:ro" "$IMAGE" "${serve[@]}" >/dev/null
if ! "$PY" - "$grpc_port" <<'EOF'; then
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

target = f"127.0.0.1:{sys.argv[1]}"
deadline = time.monotonic() + 60
last = "no answer"
while time.monotonic() < deadline:
    try:
        with grpc.insecure_channel(target) as channel:
            status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2).status
        last = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
        if last == "SERVING":
            print(f"grpc.health.v1 at {target}: SERVING")
            sys.exit(0)
    except grpc.RpcError as exc:
        last = f"{exc.code().name}: {exc.details()}"
    time.sleep(0.2)
print(f"grpc.health.v1 at {target}: {last} after 60 s", file=sys.stderr)
sys.exit(1)
EOF
    "${PODMAN[@]}" logs "$name" >&2 || true
    die "grpc.health.v1 Check on 127.0.0.1:$grpc_port (container $name) never said SERVING"
fi
step_end

if $probes; then
    step_start "GET /readyz"
    code=$(curl -s -o "$WORK/readyz" -w '%{http_code}' "http://127.0.0.1:$probe_port/readyz" || true)
    [[ $code == 200 ]] || { "${PODMAN[@]}" logs "$name" >&2; die "curl http://127.0.0.1:$probe_port/readyz: HTTP $code ($(cat "$WORK/readyz" 2>/dev/null))"; }
    say "/readyz: 200 $(cat "$WORK/readyz")"
    step_end
else
    say "/readyz check skipped: this image's 'turnout serve' has no --probe-port yet"
fi

step_start "Generate through the simulator"
gen=(timeout 60 "$TURNOUT" generate --target "127.0.0.1:$grpc_port" --timeout 30 --json
    --task-type classify "Is this email spam? 'You won a prize, click here'")
if ! "${gen[@]}" >"$WORK/generate.json" 2>"$WORK/generate.err"; then
    cat "$WORK/generate.err" >&2
    "${PODMAN[@]}" logs "$name" >&2 || true
    die "$(printf '%q ' "${gen[@]}")"
fi
"$PY" - "$WORK/generate.json" <<'EOF' || die "the Generate answer is not as expected: $(cat "$WORK/generate.json")"
import json
import sys

r = json.load(open(sys.argv[1]))
text = r.get("output", {}).get("text", "")
model = r.get("model", "")
attempts = r.get("attempts", [])
assert text.strip(), "no output text"
assert model, "no model"
assert attempts, "no attempts"
print(f"Generate: {model} answered {len(text)} chars in {len(attempts)} attempt(s): {text[:60]!r}...")
EOF
step_end

step_start "SIGTERM -> exit 0"
run "${PODMAN[@]}" kill --signal TERM "$name" >/dev/null
code=$(timeout 60 "${PODMAN[@]}" wait "$name" || echo "wait failed")
if [[ $code != 0 ]]; then
    "${PODMAN[@]}" logs "$name" >&2 || true
    die "podman wait $name after SIGTERM: exit code $code, expected 0"
fi
say "exited 0 after SIGTERM"
step_end

total=$(awk -v a="$T0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
say "PASSED: $IMAGE on $BASE_IMAGE"
printf '  %s\n' "${STEPS[@]}"
printf '  %-44s %7s s\n' "total" "$total"
printf '  image size: %s bytes (%s MB)\n' "$size" "$(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1e6 }')"
