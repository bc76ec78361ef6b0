"""A real Jaeger (v2) and a real Prometheus, started on free loopback ports for integration tests.

The binaries come from `make test-deps` (scripts/test-deps.sh): Jaeger is built from the pin in
tools/jaeger/ into ${TURNOUT_TOOLS_CACHE:-~/.cache/turnout-tools}/jaeger-<version>/jaeger, Prometheus
is the Debian package. `TURNOUT_JAEGER_BIN` / `TURNOUT_PROMETHEUS_BIN` override where they are found.
A binary that cannot be found raises `ToolMissing` (the fixtures in conftest.py skip on it, or fail in
CI); one that is found but does not come up raises `ServiceFailed` with the tail of its log.

Only the standard library speaks HTTP here (urllib, with any *_proxy variables ignored: everything is
on 127.0.0.1).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
JAEGER_GO_MOD = ROOT / "tools" / "jaeger" / "go.mod"
TEST_DEPS = "make test-deps (scripts/test-deps.sh)"

# Loopback only: never route these through an HTTP proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ToolMissing(RuntimeError):
    """The binary is not installed here: a reason to skip (outside CI)."""


class ServiceFailed(RuntimeError):
    """The binary is there but the service did not come up: always an error."""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET `url`; (status, body) for any HTTP answer, including error statuses."""
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def get_json(url: str, timeout: float = 5.0) -> Any:
    status, body = http_get(url, timeout)
    if status != 200:
        raise RuntimeError(f"GET {url}: HTTP {status}: {body[:500]!r}")
    return json.loads(body)


# --- Finding the binaries ----------------------------------------------------------------------------


def jaeger_version() -> str:
    """The Jaeger module version pinned in tools/jaeger/go.mod (e.g. "v1.76.0")."""
    match = re.search(r"^\s*github\.com/jaegertracing/jaeger\s+(v\S+)", JAEGER_GO_MOD.read_text(), re.M)
    if match is None:
        raise RuntimeError(f"{JAEGER_GO_MOD} does not require github.com/jaegertracing/jaeger")
    return match.group(1)


def tools_cache() -> Path:
    return Path(os.environ.get("TURNOUT_TOOLS_CACHE") or Path.home() / ".cache" / "turnout-tools")


def jaeger_binary() -> str:
    """Path of the Jaeger v2 binary: $TURNOUT_JAEGER_BIN, else the one test-deps.sh built in the cache."""
    explicit = os.environ.get("TURNOUT_JAEGER_BIN")
    path = Path(explicit) if explicit else tools_cache() / f"jaeger-{jaeger_version()}" / "jaeger"
    if not os.access(path, os.X_OK):
        source = "TURNOUT_JAEGER_BIN" if explicit else "the tools cache"
        raise ToolMissing(f"no Jaeger binary at {path} ({source}); build it with {TEST_DEPS}, which needs Go")
    return str(path)


def prometheus_binary() -> str:
    """Path of the Prometheus binary: $TURNOUT_PROMETHEUS_BIN, else `prometheus` on PATH."""
    explicit = os.environ.get("TURNOUT_PROMETHEUS_BIN")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise ToolMissing(f"TURNOUT_PROMETHEUS_BIN={explicit} is not an executable")
        return explicit
    found = shutil.which("prometheus")
    if found is None:
        raise ToolMissing(
            f"no `prometheus` on PATH; install it with {TEST_DEPS} (Debian package, as root), "
            "`apt-get install prometheus` or `brew install prometheus`, or set TURNOUT_PROMETHEUS_BIN"
        )
    return found


def helm_binary() -> str:
    """Path of helm: $TURNOUT_HELM_BIN, else the one scripts/helm-tools.sh (make helm-check) installed
    (its helm-tools.env in the tools cache names it), else `helm` on PATH."""
    explicit = os.environ.get("TURNOUT_HELM_BIN")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise ToolMissing(f"TURNOUT_HELM_BIN={explicit} is not an executable")
        return explicit
    env_file = tools_cache() / "helm-tools.env"
    if env_file.is_file():
        for line in env_file.read_text().splitlines():
            name, _, value = line.partition("=")
            if name == "HELM_BIN" and value and os.access(value, os.X_OK):
                return value
    found = shutil.which("helm")
    if found is None:
        raise ToolMissing("no helm: install it with make helm-check (scripts/helm-tools.sh, needs Go)")
    return found


# --- Running a process until it is ready --------------------------------------------------------------


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextmanager
def _process(argv: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_ready(
    name: str, process: subprocess.Popen[bytes], log: Path, urls: list[str], timeout: float
) -> float:
    """Poll until every url answers 200; the seconds it took. ServiceFailed (with the log) otherwise."""
    started = time.monotonic()
    deadline = started + timeout
    pending = list(urls)
    last = "no answer yet"
    while pending:
        if process.poll() is not None:
            raise ServiceFailed(
                f"{name} exited with {process.returncode} while starting; its log:\n{_tail(log)}"
            )
        if time.monotonic() > deadline:
            raise ServiceFailed(
                f"{name} not ready after {timeout:.0f}s ({pending[0]}: {last}); its log:\n{_tail(log)}"
            )
        try:
            status, body = http_get(pending[0], timeout=2)
            last = f"HTTP {status} {body[:200]!r}"
            if status == 200:
                pending.pop(0)
                continue
        except (OSError, urllib.error.URLError) as error:
            last = repr(error)
        time.sleep(0.1)
    return time.monotonic() - started


def _address_in_use(log: Path) -> bool:
    return "address already in use" in _tail(log, 200).lower()


# --- Jaeger -------------------------------------------------------------------------------------------


@dataclass
class Jaeger:
    """A running Jaeger v2 (in-memory storage) on loopback."""

    otlp_grpc_endpoint: str  # "http://127.0.0.1:<port>": OTEL_EXPORTER_OTLP_ENDPOINT for the gRPC exporter
    otlp_http_endpoint: str  # "http://127.0.0.1:<port>": the OTLP/HTTP base (traces at + "/v1/traces")
    query_url: str  # "http://127.0.0.1:<port>": the query service (UI and /api/...)
    log: Path
    ready_seconds: float

    def services(self) -> list[str]:
        return list(get_json(f"{self.query_url}/api/services")["data"] or [])

    def traces(self, service: str, limit: int = 100, **params: str) -> list[dict[str, Any]]:
        """The traces of `service` from the query API (`/api/traces`): each has "traceID", "spans"
        (each with "operationName", "spanID", "references", "tags": [{"key", "type", "value"}], ...)
        and "processes"."""
        query = urllib.parse.urlencode({"service": service, "limit": limit, "lookback": "1h", **params})
        return list(get_json(f"{self.query_url}/api/traces?{query}")["data"] or [])

    def wait_for_traces(
        self, service: str, count: int = 1, timeout: float = 30.0, spans: int = 1, **params: str
    ) -> list[dict[str, Any]]:
        """Poll `traces` until it holds at least `count` traces with at least `spans` spans each
        (exporters batch, so spans arrive late); AssertionError with what was there on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.traces(service, **params)
            if sum(len(trace["spans"]) >= spans for trace in found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"Jaeger has {len(found)} trace(s) of {service!r} after {timeout}s, wanted {count} "
                    f"with >= {spans} span(s); services: {self.services()}; span counts: "
                    f"{[len(t['spans']) for t in found]}"
                )
            time.sleep(0.2)


def span_tags(span: dict[str, Any]) -> dict[str, Any]:
    """A query-API span's tags (attributes) as a plain dict."""
    return {tag["key"]: tag["value"] for tag in span.get("tags", [])}


def jaeger_config(ports: dict[str, int]) -> dict[str, Any]:
    """Jaeger v2's all-in-one config (cmd/jaeger/internal/all-in-one.yaml) cut down to OTLP in,
    memory storage, the query API and a health check, everything on 127.0.0.1."""

    def at(name: str) -> str:
        return f"127.0.0.1:{ports[name]}"

    return {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query", "healthcheckv2"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["batch"],
                    "exporters": ["jaeger_storage_exporter"],
                }
            },
            # No self-metrics endpoint (the collector's default would bind :8888).
            "telemetry": {
                "metrics": {"level": "none"},
                "traces": {"level": "none"},
                "logs": {"level": "info"},
            },
        },
        "extensions": {
            "jaeger_query": {
                "storage": {"traces": "memstore"},
                # Its default (true) traces the query service itself to localhost:4317, and shutdown
                # then waits ~10 s trying to flush there.
                "enable_tracing": False,
                "http": {"endpoint": at("query_http")},
                "grpc": {"endpoint": at("query_grpc")},
            },
            "jaeger_storage": {"backends": {"memstore": {"memory": {"max_traces": 100000}}}},
            "healthcheckv2": {"use_v2": True, "http": {"endpoint": at("health")}},
        },
        "receivers": {
            "otlp": {
                "protocols": {"grpc": {"endpoint": at("otlp_grpc")}, "http": {"endpoint": at("otlp_http")}}
            }
        },
        # Flush fast: tests wait for their spans.
        "processors": {"batch": {"timeout": "200ms"}},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": "memstore"}},
    }


@contextmanager
def run_jaeger(tmp: Path, binary: str | None = None, timeout: float = 60.0) -> Iterator[Jaeger]:
    """Start Jaeger v2 with a config written into `tmp`; yield it once OTLP and the query API are up."""
    binary = binary or jaeger_binary()
    for attempt in (1, 2):  # a free port can be taken between picking it and Jaeger binding it
        ports = {
            name: free_port() for name in ("otlp_grpc", "otlp_http", "query_http", "query_grpc", "health")
        }
        config, log = tmp / "jaeger.yaml", tmp / f"jaeger-{attempt}.log"
        config.write_text(yaml.safe_dump(jaeger_config(ports), sort_keys=False))
        with _process([binary, "--config", f"file:{config}"], log) as process:
            query_url = f"http://127.0.0.1:{ports['query_http']}"
            try:
                ready = _wait_ready(
                    "jaeger",
                    process,
                    log,
                    [f"http://127.0.0.1:{ports['health']}/status", f"{query_url}/api/services"],
                    timeout,
                )
            except ServiceFailed:
                if attempt == 1 and _address_in_use(log):
                    continue
                raise
            yield Jaeger(
                otlp_grpc_endpoint=f"http://127.0.0.1:{ports['otlp_grpc']}",
                otlp_http_endpoint=f"http://127.0.0.1:{ports['otlp_http']}",
                query_url=query_url,
                log=log,
                ready_seconds=ready,
            )
            return


# --- Prometheus ---------------------------------------------------------------------------------------


@dataclass
class Prometheus:
    """A running Prometheus on loopback, scraping the targets of `set_targets` every second."""

    url: str  # "http://127.0.0.1:<port>"
    log: Path
    ready_seconds: float
    targets_file: Path
    job: str
    _targets: list[str] = field(default_factory=list)

    def set_targets(self, targets: Iterable[str], **labels: str) -> None:
        """Scrape these "host:port" targets (their /metrics) from now on, instead of the previous ones.
        File-based discovery: Prometheus batches discovery updates every 5 s, so the first samples of
        a new target land 1-6 s later (`wait_for` polls through that)."""
        self._targets = list(targets)
        staged = self.targets_file.with_suffix(".tmp")
        staged.write_text(json.dumps([{"targets": self._targets, "labels": labels}]))
        staged.replace(self.targets_file)  # atomic, as file_sd expects

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result: a list of series, each {"metric": {labels}, "value": [ts, "v"]}
        (a scalar comes back as one such entry with no labels)."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        answer = get_json(url)
        if answer.get("status") != "success":
            raise RuntimeError(f"PromQL {promql!r}: {answer}")
        data = answer["data"]
        if data["resultType"] in ("scalar", "string"):  # one [ts, "v"] pair, not a list of series
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def wait_for(self, promql: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Poll `query` until the result is non-empty; AssertionError with the scrape state on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(promql)
            if result:
                return result
            if time.monotonic() > deadline:
                state = [(t.get("scrapeUrl"), t.get("health"), t.get("lastError")) for t in self.targets()]
                raise AssertionError(f"PromQL {promql!r} still empty after {timeout}s; targets: {state}")
            time.sleep(0.25)

    def targets(self) -> list[dict[str, Any]]:
        """The active targets (/api/v1/targets), each with "labels", "scrapeUrl", "health"
        ("up"/"down"/"unknown"), "lastError"..."""
        return list(get_json(f"{self.url}/api/v1/targets")["data"]["activeTargets"])

    def wait_for_up(self, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Poll until every target set with `set_targets` has been scraped successfully."""
        deadline = time.monotonic() + timeout
        while True:
            active = self.targets()
            up = {t["labels"].get("instance") for t in active if t.get("health") == "up"}
            if set(self._targets) <= up:
                return active
            if time.monotonic() > deadline:
                state = [(t.get("scrapeUrl"), t.get("health"), t.get("lastError")) for t in active]
                raise AssertionError(f"targets not all up after {timeout}s: {state}")
            time.sleep(0.25)


def prometheus_config(targets_file: Path, job: str, metrics_path: str) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": job,
                "metrics_path": metrics_path,
                "file_sd_configs": [{"files": [str(targets_file)], "refresh_interval": "1s"}],
            }
        ],
    }


@contextmanager
def run_prometheus(
    tmp: Path,
    targets: Iterable[str] = (),
    *,
    job: str = "turnout",
    metrics_path: str = "/metrics",
    binary: str | None = None,
    timeout: float = 60.0,
) -> Iterator[Prometheus]:
    """Start Prometheus (config and TSDB in `tmp`) scraping `targets` ("host:port") every second, and
    any set later with `Prometheus.set_targets`; yield it once /-/ready answers."""
    binary = binary or prometheus_binary()
    targets_file = tmp / "targets.json"
    config = tmp / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(targets_file, job, metrics_path), sort_keys=False))
    for attempt in (1, 2):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = tmp / f"prometheus-{attempt}.log"
        prometheus = Prometheus(url=url, log=log, ready_seconds=0.0, targets_file=targets_file, job=job)
        prometheus.set_targets(targets)
        argv = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / f'tsdb-{attempt}'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=info",
        ]
        with _process(argv, log) as process:
            try:
                prometheus.ready_seconds = _wait_ready(
                    "prometheus", process, log, [f"{url}/-/ready"], timeout
                )
            except ServiceFailed:
                if attempt == 1 and _address_in_use(log):
                    continue
                raise
            yield prometheus
            return
