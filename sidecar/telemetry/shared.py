"""What every recording of one Telemetry reads: its settings, SDK parts, instruments and caches.

Made once at start (Telemetry is this, plus its public face); the per-call observers
(rpc_scope.py) and the attempt and decision recorders are handed it and only read it.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from opentelemetry import propagate

from sidecar.domain.model import ModelSpec, ProviderSpec
from sidecar.telemetry import names as n
from sidecar.telemetry.metric_keys import MetricKeys
from sidecar.telemetry.metrics import Instruments
from sidecar.telemetry.pending import Pending
from sidecar.telemetry.privacy import IdHasher
from sidecar.telemetry.setup import SdkParts, TelemetryOptions

log = logging.getLogger("sidecar.telemetry.recorder")

NANOS_PER_USD = 1_000_000_000


class Shared:
    def __init__(
        self,
        sdk: SdkParts,
        options: TelemetryOptions | None = None,
        *,
        capture_content: bool = False,
        id_secret: str = "",
        reference: ModelSpec | None = None,
    ) -> None:
        options = options or TelemetryOptions()
        self.sdk = sdk
        self.options = options
        self.tracing = sdk.tracing
        self.metering = sdk.metrics
        self.capture_content = capture_content and sdk.tracing
        self.propagate = options.propagate_to_providers and sdk.tracing
        self.trace_fields = frozenset(f.lower() for f in propagate.get_global_textmap().fields)
        self.request_log = options.request_log
        self.tracer = sdk.tracer
        self.finished = sdk.finished_spans
        self.instruments = Instruments(sdk.meter, sdk.tally, sdk.names)
        self.keys = MetricKeys()
        self.reference = reference  # the model savings are counted against (a reload may change it)
        self._ids = IdHasher(id_secret)
        self._endpoints: dict[str, tuple[str, str, int | None]] = {}
        self._failed_once = False
        pending = Pending(self.recording_failed)
        # later(record, *args): record what ended at the next drain; drain(): record it all now
        self.later = pending.later
        self.drain = pending.drain
        sdk.tally.drains.append(self.drain)

    @property
    def active(self) -> bool:
        return self.tracing or self.metering or self.request_log

    def hashed(self, value: str) -> str:
        return self._ids.hash(value)

    def endpoint(self, endpoint: ProviderSpec | None, model: ModelSpec) -> tuple[str, str, int | None]:
        """(gen_ai.provider.name, server.address, server.port) of a provider entry, cached."""
        if endpoint is None:
            return model.provider, "", None
        known = self._endpoints.get(endpoint.base_url + "\0" + endpoint.name)
        if known is None:
            if endpoint.kind == "openai_compatible":
                name = n.PROVIDER_BY_FLAVOR.get(endpoint.option("flavor"), endpoint.name)
            else:
                name = n.PROVIDER_BY_KIND.get(endpoint.kind, endpoint.name)
            url = urlsplit(endpoint.base_url)
            port = url.port or (443 if url.scheme == "https" else 80)
            known = self._endpoints[endpoint.base_url + "\0" + endpoint.name] = (
                name,
                url.hostname or "",
                port,
            )
        return known

    def recording_failed(self) -> None:
        if not self._failed_once:
            self._failed_once = True
            log.exception("telemetry: recording failed (reported once; requests are unaffected)")
