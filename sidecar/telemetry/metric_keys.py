"""The attribute sets of the per-request metrics, each made once and then looked up.

A Generate records about ten measurements, and most of their attribute sets repeat from request
to request (the same model, provider, route, outcome). Building each as a dict and then the
tally's frozenset key, per measurement, would cost more than recording it; one tuple lookup here
returns all of an attempt's keys at once (decision 030). Each table holds at most MAX_ENTRIES
sets and is emptied when full (the metrics themselves cap their series; see
tally.CARDINALITY_LIMIT), so ids or tenants that come and go cannot grow it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sidecar.domain.model import ModelSpec
from sidecar.domain.outcome import AttemptRecord
from sidecar.telemetry import names as n
from sidecar.telemetry.tally import Key, series_key

MAX_ENTRIES = 4096
_K = TypeVar("_K")
_V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class AttemptKeys:
    """The keys one provider attempt records under."""

    attempts: Key  # turnout attempts: model, provider, cause, outcome (and error.type)
    genai: Key  # GenAI client metrics: operation, provider, request (and response) model, server
    timed: Key  # operation duration: genai (and error.type)
    input_tokens: Key
    output_tokens: Key
    queue: Key  # queue wait: model, provider


class MetricKeys:
    def __init__(self) -> None:
        self._attempts: dict[tuple[Any, ...], AttemptKeys] = {}
        self._requests: dict[tuple[str, str, str], Key] = {}
        self._costs: dict[tuple[str, str | None, str, str], Key] = {}
        self._references: dict[tuple[str, str | None, str], Key] = {}

    def attempt(
        self, model: ModelSpec, provider: str, address: str, record: AttemptRecord, error_type: str
    ) -> AttemptKeys:
        at: tuple[Any, ...] = (model.name, model.provider, model.upstream_model, provider, address)
        at += (record.cause, record.outcome, error_type, record.response_model)
        keys = self._attempts.get(at)
        if keys is None:
            keys = _remember(self._attempts, at, _attempt_keys(model, provider, address, record, error_type))
        return keys

    def request(self, method: str, route: str, status: str) -> Key:
        at = (method, route, status)
        known = self._requests.get(at)
        if known is None:
            known = _remember(
                self._requests, at, series_key({n.RPC_METHOD: method, n.ROUTE: route, n.RPC_STATUS: status})
            )
        return known

    def cost(self, route: str, tenant: str | None, model: str, provider: str) -> Key:
        """Cost by route, model, provider and (unless the tenant label is off: None) tenant."""
        at = (route, tenant, model, provider)
        known = self._costs.get(at)
        if known is None:
            labels = _labels(route, tenant)
            known = _remember(self._costs, at, series_key({**labels, n.MODEL: model, n.PROVIDER: provider}))
        return known

    def reference(self, route: str, tenant: str | None, reference_model: str) -> Key:
        at = (route, tenant, reference_model)
        known = self._references.get(at)
        if known is None:
            labels = _labels(route, tenant)
            known = _remember(
                self._references, at, series_key({**labels, n.REFERENCE_MODEL: reference_model})
            )
        return known


def _labels(route: str, tenant: str | None) -> dict[str, str]:
    return {n.ROUTE: route} if tenant is None else {n.ROUTE: route, n.TENANT: tenant}


def _remember(table: dict[_K, _V], at: _K, value: _V) -> _V:
    if len(table) >= MAX_ENTRIES:
        table.clear()
    table[at] = value
    return value


def _attempt_keys(
    model: ModelSpec, provider: str, address: str, record: AttemptRecord, error_type: str
) -> AttemptKeys:
    attempts = {
        n.MODEL: model.name,
        n.PROVIDER: model.provider,
        n.ATTEMPT_CAUSE: record.cause,
        n.ATTEMPT_OUTCOME: record.outcome.value,
    }
    genai: dict[str, Any] = {
        n.GEN_AI_OPERATION_NAME: n.OPERATION_CHAT,
        n.GEN_AI_PROVIDER_NAME: provider,
        n.GEN_AI_REQUEST_MODEL: model.upstream_model,
        n.SERVER_ADDRESS: address,
    }
    if record.response_model:
        genai[n.GEN_AI_RESPONSE_MODEL] = record.response_model
    timed = genai
    if error_type:
        attempts[n.ERROR_TYPE] = error_type
        timed = {**genai, n.ERROR_TYPE: error_type}
    return AttemptKeys(
        attempts=series_key(attempts),
        genai=series_key(genai),
        timed=series_key(timed),
        input_tokens=series_key({**genai, n.GEN_AI_TOKEN_TYPE: "input"}),
        output_tokens=series_key({**genai, n.GEN_AI_TOKEN_TYPE: "output"}),
        queue=series_key({n.MODEL: model.name, n.PROVIDER: model.provider}),
    )
