# Turnout: the sidecar image.
#
# Build (any engine; BASE_IMAGE defaults to the official slim Python image):
#   docker build -t turnout .
#   podman build -t turnout .
# On a base made locally (Debian bookworm with only python3 and python3-venv from apt), as
# `make image-test` does where image registries are unreachable:
#   podman build --build-arg BASE_IMAGE=localhost/turnout-base:bookworm -t turnout .
# Behind a TLS-intercepting proxy, pip needs that network's CA bundle. Mount it at build time, it is
# used only if present and never stored in an image layer:
#   podman build -v /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro -t turnout .   # podman/buildah
# (a local wheel directory mounted at /run/host-wheels is used as pip --find-links the same way).
#
# Run: the entrypoint is `turnout`, the command `serve --config /etc/turnout/turnout.yaml`; mount
# your own config there (a ConfigMap in Kubernetes). API keys come only from the environment
# (providers[].api_key_env). A demo without keys, with the built-in simulator:
#   docker run --rm --read-only --tmpfs /tmp --network host turnout \
#     serve --config /etc/turnout/turnout.yaml --simulator /usr/share/turnout/examples/simulator.yaml
# The gRPC API listens on 127.0.0.1 (a sidecar shares its pod's loopback); to publish it from a
# plain container add `--host 0.0.0.0 -p 127.0.0.1:50051:50051` instead of --network host.
# Runs as uid/gid 10001 on a read-only root filesystem; it writes nothing (at most a /tmp tmpfs).

ARG BASE_IMAGE=python:3.11-slim-bookworm

# Few instructions on purpose: with podman's vfs storage driver every step is a full copy of the
# file system, so the runtime stage's metadata comes first (cached across source changes) and its
# files arrive in two COPY steps at the end.

# ---- build: the wheel of this project and a venv with it and its runtime dependencies ----------
FROM ${BASE_IMAGE} AS build
# Dependencies first, from pyproject.toml alone, so that a source change reuses this layer.
# /opt/build holds the build tools (setuptools, wheel); /opt/turnout is what the runtime gets.
COPY pyproject.toml /src/
COPY simulator/pyproject.toml /src/simulator/
RUN set -eu; cd /src; \
    export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=120 PYTHONDONTWRITEBYTECODE=1; \
    if [ -f /run/host-ca.crt ]; then export PIP_CERT=/run/host-ca.crt; fi; \
    if [ -d /run/host-wheels ]; then export PIP_FIND_LINKS=/run/host-wheels; fi; \
    python3 -m venv /opt/build; \
    /opt/build/bin/pip install --quiet "setuptools>=69" wheel; \
    /opt/build/bin/python -c "import tomllib; print('\n'.join(d for f in ('pyproject.toml', 'simulator/pyproject.toml') for d in tomllib.load(open(f, 'rb'))['project']['dependencies']))" > /tmp/requirements.txt; \
    python3 -m venv /opt/turnout; \
    /opt/turnout/bin/pip install --quiet --no-compile -r /tmp/requirements.txt
# The rest of the context: README.md, sidecar/, simulator/ (the provider simulator, for the keyless
# demo: `serve --simulator`), examples/ (.dockerignore keeps out everything else).
COPY . /src/
# The wheel, installed without its build tools and without pip; bytecode compiled once here and
# never checked against the sources' mtime (a read-only root filesystem cannot take .pyc files,
# so nothing is recompiled at each start). /out is the rest of the runtime's files: the configs,
# and a passwd entry for uid 10001 (for tools that look their user up).
RUN set -eu; cd /src; \
    export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1; \
    /opt/build/bin/pip wheel --quiet --no-deps --no-build-isolation --wheel-dir /wheels . ./simulator; \
    /opt/turnout/bin/pip install --quiet --no-deps --no-compile /wheels/turnout-*.whl /wheels/turnout_simulator-*.whl; \
    /opt/turnout/bin/python -c "import importlib.resources as r; assert r.files('sidecar.policy').joinpath('artifacts/router-v1.json.gz').is_file(), 'learned router artifact missing from the wheel'"; \
    /opt/turnout/bin/python -m pip uninstall --quiet --yes pip setuptools wheel 2>/dev/null || true; \
    rm -rf /opt/turnout/bin/pip* /opt/turnout/bin/activate* /opt/turnout/bin/Activate.ps1; \
    find /opt/turnout -name __pycache__ -type d -prune -exec rm -rf {} +; \
    /opt/turnout/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/turnout/lib >/dev/null; \
    mkdir -p /out/etc/turnout /out/usr/share/turnout/examples; \
    cp examples/turnout.yaml /out/etc/turnout/turnout.yaml; \
    cp examples/*.yaml /out/usr/share/turnout/examples/; \
    cp /etc/passwd /etc/group /out/etc/; \
    echo "turnout:x:10001:10001:Turnout:/tmp:/usr/sbin/nologin" >> /out/etc/passwd; \
    echo "turnout:x:10001:" >> /out/etc/group; \
    chmod -R a+rX,go-w /out /opt/turnout

# ---- runtime: the base image plus the venv, the example configs and a non-root user -------------
FROM ${BASE_IMAGE} AS runtime
ARG BASE_IMAGE VERSION="" REVISION=""
LABEL org.opencontainers.image.title="turnout" \
      org.opencontainers.image.description="Turnout: a per-pod LLM routing sidecar (gRPC) that sends each request to the cheapest model that serves it well." \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
ENV PATH=/opt/turnout/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
# gRPC API, built-in simulator (demo only), Prometheus metrics, HTTP probes (--probe-port, 8086 in the chart).
EXPOSE 50051 8400 9464 8086
USER 10001:10001
ENTRYPOINT ["turnout"]
CMD ["serve", "--config", "/etc/turnout/turnout.yaml"]
# Root-owned files: the user 10001 can read them, not change them.
COPY --from=build /opt/turnout /opt/turnout
COPY --from=build /out/ /
