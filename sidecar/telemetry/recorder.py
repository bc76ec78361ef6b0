"""Turns what the sidecar does into spans, metrics and one log line per request. Never steers.

An Observer (domain/observe.py): `rpc_started` makes each RPC's call observer (rpc_scope.RpcCall),
which records

    the RPC          SERVER span (continues the caller's W3C trace), request metrics, log line
    its decision     routing span + decision metrics                         (plan_facts.py)
    each attempt     CLIENT span per provider call (GenAI conventions)
                     + GenAI client metrics                                  (attempts.py)

Every event is only read and recorded; none raises into the request flow (a failure to record is
logged once and the request goes on). What ends on the request path (an RPC, with its decision;
a provider attempt) is noted there and recorded a few milliseconds later, in a batch with
whatever else ended meanwhile (pending.py).
"""

from __future__ import annotations

from sidecar.domain.observe import QUIET, CallObserver, RpcStarted
from sidecar.telemetry import names as n
from sidecar.telemetry.metrics import (
    AgreementSource,
    DepthSource,
    ShareSource,
    SpendSource,
    StateSource,
    StoreSource,
)
from sidecar.telemetry.rpc_scope import Detached, RpcCall
from sidecar.telemetry.shared import NANOS_PER_USD, Shared


class Telemetry(Shared):
    def rpc_started(self, event: RpcStarted) -> CallObserver:
        return RpcCall(self, event) if self.active else QUIET

    def detached(self) -> CallObserver:
        """An observer for work outside any RPC (tools, tests): see rpc_scope.Detached."""
        return Detached(self) if self.active else QUIET

    def watch(self, breakers: StateSource, queues: DepthSource) -> None:
        if self.metering:
            self.instruments.watch(breakers, queues)

    def watch_shadow(self, agreements: AgreementSource) -> None:
        if self.metering:
            self.instruments.watch_shadow(agreements)

    def watch_limits(self, store: StoreSource, spend: SpendSource, shares: ShareSource) -> None:
        if self.metering:
            self.instruments.watch_limits(store, spend, shares)

    def shadow_compared(self, route: str, agreed: bool, cost_usd_nanos: int) -> None:
        if self.metering:
            self.instruments.shadow_comparisons.add(1, {n.ROUTE: route, n.SHADOW_AGREED: agreed})
            if cost_usd_nanos:
                self.instruments.shadow_cost.add(cost_usd_nanos / NANOS_PER_USD, {n.ROUTE: route})

    def shadow_skipped(self, route: str, reason: str) -> None:
        if self.metering:
            self.instruments.shadow_skipped.add(1, {n.ROUTE: route, n.SHADOW_REASON: reason})

    def breaker_changed(self, model: str, state: str) -> None:
        if self.metering:
            self.instruments.breaker_transitions.add(1, {n.MODEL: model, n.BREAKER_STATE: state})

    def shutdown(self) -> None:
        self.sdk.shutdown()  # drains first
